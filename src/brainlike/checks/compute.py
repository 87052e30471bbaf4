"""Check that a Dask cluster gives the same organization metrics as the `dvc repro` run.

    python -m brainlike.checks compute [--params params.yaml] [--scheduler local] [--n-workers N]
                                       [--out build/compute-check] [--reference metrics/organization.json]

In a workspace where `dvc repro` has run, reruns encode (every model + the baseline) ->
networks -> metrics with ``compute.scheduler`` = ``--scheduler`` (one cluster for the three
stages) into ``--out``, from a copy of params.yaml (``<out>/params.yaml``) whose outputs point
there: ``encoding.output``, ``encoding.baseline_output``, ``networks.output`` and the metrics
folder. Inputs are the real ones: ``paths.prepared``, ``patterns.output``, ``paths.atlases`` and
``<paths.metrics>/validation.json``. The DVC-tracked outputs are never written.

Then compares ``<out>/metrics/organization.json`` with ``--reference`` (the `dvc repro` run's, by
default ``<paths.metrics>/organization.json``): organization.json holds no timing field, so
the two must be identical. Prints the first differences and exits 1 if they are not.
``$BRAINLIKE_COMPUTE_SCHEDULER`` still overrides the scheduler (e.g. a Slurm cluster's address).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from unittest import mock

import yaml

from .._utils.compute import open_executor
from .._utils.memo import MEMO_ENV
from ..config import load_params
from ..encoding.stage import run_baseline, run_encode
from ..metrics.outputs import ORGANIZATION_FILE
from ..metrics.stage import run_metrics
from ..networks.stage import run_networks
from .reproduce import differences as reproduce_differences


# Every fit, the shared-response fits included, now runs pinned to encoding.threads, and the
# small-study test finds serial, processes and local identical bit for bit; the tolerance is a
# margin for BLAS kernels that differ between machines, not for scheduling. Anything larger is a
# difference.
REL_TOL = 1e-12


def differences(a, b, where: str = "") -> list[str]:
    """Paths (``/models/m/key``) where two JSON values differ, floats within :data:`REL_TOL`."""
    return reproduce_differences(a, b, where, rel_tol=REL_TOL, names=("reference", "check"))


def redirected_params(params_path: Path, out: Path, scheduler: str, n_workers: int | None,
                      models: list[str] | None = None) -> Path:
    """A copy of params.yaml whose stage outputs point under ``out`` (and, with ``models``, whose
    ``models`` keep only those); returns its path."""
    raw = yaml.safe_load(params_path.read_text())
    if models:
        missing = sorted(set(models) - set(raw.get("models", {})))
        if missing:
            raise SystemExit(f"error: --models {missing} are not in {params_path}: models")
        raw["models"] = {k: v for k, v in raw["models"].items() if k in models}
    raw.setdefault("encoding", {}).update(output=str(out / "encoding"), baseline_output=str(out / "baseline"))
    raw.setdefault("networks", {})["output"] = str(out / "networks")
    raw.setdefault("compute", {}).update(scheduler=scheduler, n_workers=n_workers)
    dest = out / "params.yaml"
    dest.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dest


def main(argv: list[str] | None = None) -> int:
    """CLI: rerun encode -> networks -> metrics on Dask and compare organization.json (exit 1 if not identical)."""
    ap = argparse.ArgumentParser(prog="compute_check", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml", type=Path)
    ap.add_argument("--scheduler", default="local", help="local (default) or a Dask scheduler address")
    ap.add_argument("--n-workers", type=int, default=None, help="local: worker processes (default: one per core)")
    ap.add_argument("--out", default="build/compute-check", type=Path)
    ap.add_argument("--reference", type=Path, default=None, help="default: <paths.metrics>/organization.json")
    ap.add_argument("--models", default=None,
                    help="comma-separated subset (e.g. a model and its twin) to bound the check's cost; compared on "
                         "those models' entries, without the BH q of the twin comparisons (their family is the "
                         "trained models that ran)")
    args = ap.parse_args(argv)
    # recompute every model's metrics: the check compares computations, not the memo's keys
    with mock.patch.dict(os.environ, {MEMO_ENV: "0"}):
        return _check(args)


def _check(args) -> int:
    real = load_params(args.params)
    reference = args.reference or Path(real.paths.metrics) / ORGANIZATION_FILE
    if not reference.is_file():
        print(f"error: {reference}: not found; run `dvc repro` first", file=sys.stderr)
        return 2
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    subset = [m for m in (args.models or "").split(",") if m] or None
    p = load_params(redirected_params(args.params, out, args.scheduler, args.n_workers, subset))
    mdir = out / "metrics"
    validation = Path(real.paths.metrics) / "validation.json"  # the real gate verdicts (read only)
    t0 = time.perf_counter()
    with open_executor(p.compute) as ex:
        print(json.dumps({"scheduler": ex.scheduler, "workers": ex.n_workers}), flush=True)
        for m in sorted(p.models):
            t = time.perf_counter()
            run_encode(m, p.encoding, p.patterns.output, p.paths.prepared, validation, p.paths.atlases, mdir,
                       compute=ex)
            print(json.dumps({"encode": m, "s": round(time.perf_counter() - t, 1)}), flush=True)
        t = time.perf_counter()
        run_baseline(p.encoding, p.paths.prepared, validation, p.paths.atlases, mdir, compute=ex)
        print(json.dumps({"encode": "baseline", "s": round(time.perf_counter() - t, 1)}), flush=True)
        t = time.perf_counter()
        spins = p.networks.spins if Path(p.networks.spins).is_file() else None  # the run's, else built here
        run_networks(sorted(p.models), p.networks, p.encoding.output, p.paths.atlases, p.networks.output, mdir,
                     compute=ex, spins_file=spins)
        print(json.dumps({"networks": round(time.perf_counter() - t, 1)}), flush=True)
        run_metrics(p, mdir, compute=ex)  # its bootstraps on the same cluster
    wall = time.perf_counter() - t0
    ref, new = json.loads(reference.read_text()), json.loads((mdir / ORGANIZATION_FILE).read_text())
    if subset:
        ref = {"models": {m: e for m, e in ref["models"].items() if m in subset}}
        for doc in (ref, new):
            for e in doc["models"].values():
                (e.get("vs_twin_shared") or {}).pop("q", None)
    diff = differences(ref, new)
    verdict = "identical" if not diff else f"{len(diff)} differences"
    print(json.dumps({ORGANIZATION_FILE: verdict, "reference": str(reference),
                      "check": str(mdir / ORGANIZATION_FILE), "wall_s": round(wall, 1)}))
    for d in diff[:20]:
        print("  " + d)
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
