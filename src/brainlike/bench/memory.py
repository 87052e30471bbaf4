"""Memory bound: a 7B-shaped activation set streamed from disk, never held whole in memory.

    python -m brainlike.bench memory [--layers 32] [--width 11008] [--trs 1000] [--out metrics/bench_memory.json]

Synthetic activations of a LLaMA-7B-shaped model (32 layers x 11,008 FFN ANs x 1,000 TRs,
float32: 1.41 GB) are written layer by layer, in chunks of ``extract.chunk_ans`` ANs, into the
real activation store (:class:`brainlike.activations.store.LayerWriter`, one Arrow file per layer,
sha256 in the sidecar) in a temporary folder that is removed afterwards. Then, each phase under
its own :class:`~brainlike.bench._rss.PeakRSS`:

1. ``write``: generating and writing the layers (one layer in memory at a time);
2. ``scan``: one streamed pass of the patterns stage's reader
   (:func:`brainlike.patterns.stage.unit_columns`: Arrow record batch -> unit-norm columns) with
   the solver's validation scan (:func:`brainlike.patterns._solvers.scan`);
3. ``patterns_stage``: the patterns stage on the folder
   (:func:`brainlike.patterns.stage.fit_stimulus`: AN index, streamed dictionary fit with
   ``--epochs`` epochs, final coding, sub-group tables, parquet files, layer histogram).

Each allocator setting runs in a fresh Python process (its RSS is its own):
``project`` (as the patterns stage runs: its reader calls
:func:`brainlike._utils.memory.limit_heap_growth`, a fixed 1 MiB mmap threshold) and
``glibc_default`` (``$BRAINLIKE_MALLOC=glibc``: glibc's dynamic threshold). With glibc's default
the streamed passes' 16-64 MB batch temporaries end up on a heap that fragments and keeps
growing, so RSS grows with the number of ANs read although no code holds more than one batch;
the fixed threshold returns every batch buffer to the OS.

The bound asserted in the output: each phase's peak RSS increase is below ``--bound`` (default
25 %) of the full tensor. What the fit does hold is O(K x N) (dense codes, 4 K N bytes: 86 MiB
for K = 64) plus one batch and one Arrow record batch / memory-mapped layer file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .._utils.memory import ENV_OPT_OUT
from ._rss import PeakRSS, status_mb


def write_synthetic_set(folder: Path, n_layers: int, width: int, n_trs: int, chunk_ans: int = 4096,
                        n_factors: int = 16, seed: int = 0) -> dict:
    """Write a complete activation folder (Arrow layer files + sidecar) of synthetic z-scored ANs.

    Each layer is ``F @ W_l + noise`` with ``n_factors`` smooth time courses F shared across
    layers and sparse layer loadings W_l, z-scored per AN (as the extraction stores them).
    Only one layer (``n_trs x width`` float32) is in memory at a time.

    Returns
    -------
    dict : the sidecar written to ``folder / activations.json``.
    """
    from brainlike._utils.hashing import sha256_file
    from brainlike.activations.store import FORMAT_VERSION, SIDECAR, LayerWriter, layer_filename

    rng = np.random.default_rng(seed)
    kern = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    F = np.stack([np.convolve(rng.standard_normal(n_trs + 12), kern, "same")[6:-6] for _ in range(n_factors)], 1)
    F = ((F - F.mean(0)) / F.std(0)).astype(np.float32)
    gid = f"tr1.5_t00.0_n{n_trs}"
    gdir = Path(folder) / gid
    gdir.mkdir(parents=True, exist_ok=True)
    files = []
    for layer in range(n_layers):
        W = (rng.standard_normal((n_factors, width)) * (rng.random((n_factors, width)) < 0.2)).astype(np.float32)
        X = F @ W
        X += rng.standard_normal((n_trs, width), dtype=np.float32)
        X -= X.mean(0)
        X /= X.std(0)
        name = layer_filename("text", layer)
        writer = LayerWriter(gdir / (name + ".tmp"), n_trs)
        try:
            for lo in range(0, width, chunk_ans):
                hi = min(width, lo + chunk_ans)
                writer.write("text", layer, np.arange(lo, hi), np.zeros(hi - lo, np.int16), X[:, lo:hi])
        finally:
            writer.close()
        os.replace(gdir / (name + ".tmp"), gdir / name)
        del X, W
        files.append({"tower": "text", "layer": layer, "file": name, "n_rows": width, "n_constant": 0,
                      "sha256": sha256_file(gdir / name)})
    sidecar = {
        "format_version": FORMAT_VERSION, "params_hash": "synthetic", "model": {"name": "synthetic-7b"},
        "site": "ffn_act", "layers": [{"tower": "text", "layer": i, "width": width} for i in range(n_layers)],
        "n_layers": n_layers, "widths": [width],
        "grids": [{"id": gid, "tr": 1.5, "t0": 0.0, "n_trs": n_trs, "run_ids": ["synthetic"],
                   "n_ans": n_layers * width, "n_constant_dropped": 0, "files": files}],
    }
    (Path(folder) / SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
    return sidecar


def _phases(folder: Path, phases: list[str], n_layers: int, width: int, n_trs: int, chunk: int, pcfg) -> dict:
    """Run the named phases on ``folder`` in this process, each under its own PeakRSS."""
    import torch

    from brainlike.activations.store import ActivationSet
    from brainlike.patterns._solvers import scan
    from brainlike.patterns.stage import fit_stimulus, primary_grid, unit_columns

    out: dict = {"process_start_mb": round(status_mb("VmRSS") or 0.0, 1)}
    for ph in phases:
        t = time.perf_counter()
        extra: dict = {}
        with PeakRSS() as r:
            if ph == "write":
                write_synthetic_set(folder, n_layers, width, n_trs, chunk)
            elif ph == "scan":
                aset = ActivationSet(folder)
                sc = scan(unit_columns(aset, primary_grid(aset)["id"]), torch.device("cpu"))
                extra = {"n_ans": int(sc.n_samples)}
                del sc, aset
            else:
                stage_out = folder.parent.parent / f"patterns-{os.getpid()}" / folder.name
                m = fit_stimulus(folder, pcfg, stage_out)
                shutil.rmtree(stage_out.parent, ignore_errors=True)
                extra = {"epochs": m["n_epochs"], "fit_s": m["fit_s"], "r2": m["r2"], "sparsity": m["sparsity"],
                         "n_ans": m["n_ans"]}
        out[ph] = r.as_dict() | {"seconds": round(time.perf_counter() - t, 2)} | extra
    out["process_end_mb"] = round(status_mb("VmRSS") or 0.0, 1)
    return out


def _child(argv: list[str]) -> int:
    """``python -m brainlike.bench.memory --child JSON_IN JSON_OUT``: phases in a fresh process."""
    spec = json.loads(Path(argv[0]).read_text())
    from brainlike.config import PatternsConfig

    if spec["malloc"] == "glibc_default":
        os.environ[ENV_OPT_OUT] = "glibc"  # the stage's limit_heap_growth() then leaves glibc alone
    res = _phases(Path(spec["folder"]), spec["phases"], spec["n_layers"], spec["width"], spec["n_trs"],
                  spec["chunk"], PatternsConfig(**spec["patterns"]))
    Path(argv[1]).write_text(json.dumps(res))
    return 0


MALLOC_SETTINGS = ("project", "glibc_default")


def memory_bound(n_layers: int = 32, width: int = 11008, n_trs: int = 1000, epochs: int = 2, bound: float = 0.25,
                 tmp_root: str | None = None, chunk_ans: int | None = None, params: str | Path | None = "params.yaml",
                 malloc=MALLOC_SETTINGS) -> dict:
    """Peak RSS increase of writing, scanning and fitting a streamed activation set (see module doc).

    Each allocator setting runs in its own fresh Python process (so its RSS is its own): the
    first writes the set and measures every phase, the next ones reuse the set.
    """
    from brainlike.config import ExtractConfig, PatternsConfig, load_params

    p = load_params(params) if params and Path(params).is_file() else None
    pcfg = (p.patterns if p else PatternsConfig()).model_copy(update={"n_iter": epochs, "tol": 0.0, "device": "cpu"})
    chunk = chunk_ans or (p.extract if p else ExtractConfig()).chunk_ans
    full_mb = n_layers * width * n_trs * 4 / 2**20
    layer_mb = width * n_trs * 4 / 2**20
    runs = {}
    tmp = Path(tempfile.mkdtemp(prefix="brainlike-membench-", dir=tmp_root))
    try:
        folder = tmp / "synthetic-7b" / "story"
        for i, setting in enumerate(malloc):
            spec = {"folder": str(folder), "phases": (["write"] if i == 0 else []) + ["scan", "patterns_stage"],
                    "n_layers": n_layers, "width": width, "n_trs": n_trs, "chunk": chunk, "malloc": setting,
                    "patterns": pcfg.model_dump(mode="json")}
            (tmp / "spec.json").write_text(json.dumps(spec))
            subprocess.run([sys.executable, "-m", "brainlike.bench.memory", "--child", str(tmp / "spec.json"),
                            str(tmp / "res.json")], check=True)
            runs[setting] = json.loads((tmp / "res.json").read_text())
            if i == 0:
                runs[setting]["on_disk_mb"] = round(sum(f.stat().st_size for f in folder.rglob("*.arrow")) / 2**20, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in runs.values():
        r["max_rss_increase_mb"] = max(v["rss_increase_mb"] for k, v in r.items() if isinstance(v, dict))
        r["max_increase_over_full_tensor"] = round(r["max_rss_increase_mb"] / full_mb, 4)
        r["max_increase_over_one_layer"] = round(r["max_rss_increase_mb"] / layer_mb, 2)
        r["met"] = bool(r["max_rss_increase_mb"] < bound * full_mb)
    first = runs[malloc[0]]
    K = pcfg.n_atoms
    return {
        "shape": {"layers": n_layers, "ans_per_layer": width, "trs": n_trs, "dtype": "float32"},
        "full_tensor_mb": round(full_mb, 1), "one_layer_mb": round(layer_mb, 2), "on_disk_mb": first.get("on_disk_mb"),
        "chunk_ans": chunk, "n_atoms": K, "epochs": epochs, "dense_codes_mb": round(K * n_layers * width * 4 / 2**20, 1),
        "runs": runs,
        "phases": {k: v for k, v in first.items() if isinstance(v, dict)},
        "max_rss_increase_mb": first["max_rss_increase_mb"],
        "max_increase_over_full_tensor": first["max_increase_over_full_tensor"],
        "max_increase_over_one_layer": first["max_increase_over_one_layer"],
        "bound": f"every phase's peak RSS increase < {bound:.0%} of the full tensor ({bound * full_mb:.0f} MB)",
        "bound_fraction": bound,
        "met": first["met"],
        "met_by_setting": {k: r["met"] for k, r in runs.items()},
        "headline": f"allocator setting {malloc[0]} (the project's processes as they run)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brainlike.bench memory")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--width", type=int, default=11008)
    ap.add_argument("--trs", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--bound", type=float, default=0.25)
    ap.add_argument("--tmp", default=None, help="parent folder of the temporary activation set (default: $TMPDIR)")
    ap.add_argument("--out", default="metrics/bench_memory.json")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1:])
    args = ap.parse_args(argv)
    res = memory_bound(args.layers, args.width, args.trs, args.epochs, args.bound, args.tmp)
    from brainlike._utils.atomic import write_text_atomic

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(args.out), json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
