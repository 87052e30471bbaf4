"""Reproduction check: re-run the pipeline in a scratch copy and compare it with the committed outputs.

    python -m brainlike.checks reproduce [WORKSPACE] [--target STAGE]... [--rtol R] [--tmp DIR] [--keep]
    make reproduce-check [REPRODUCE_ARGS="--target validate"]

Takes a workspace ``W`` whose ``dvc status`` is clean (its outputs are what ``dvc.lock`` says),
builds ``W2`` from ``W``'s git-visible files and ``dvc.lock`` (no outputs, an empty DVC cache, so
no run cache either, and its own SQLite MLflow store), runs ``dvc repro [STAGE...]`` there with
this interpreter's environment, and compares:

- every git-visible file that the run rewrote (the metrics: JSON numbers within ``--rtol``, CSV
  numeric columns within ``--rtol``, anything else byte for byte), naming each metric that
  moved as ``file: /key/path: committed X != reproduced Y``;
- every DVC-cached output's md5 in ``W2``'s ``dvc.lock`` with ``W``'s (binary data: exact).

``--rtol`` is 0 by default: on the machine that wrote the outputs (same core count, hence the
same BLAS and torch thread counts) every output is exact, which CI checks on a fresh clone. On
another machine, last-digit float differences of BLAS reductions are expected; ``--rtol 1e-9``
accepts those in the metrics (binary outputs then differ and are listed as such).
Exit 0: reproduced; 1: something moved (each listed); 2: ``W`` is not clean.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..errors import BrainlikeError
from .outputs import DirtyWorkspaceError, _rmtree, git_visible_files, run_dvc, stale_stages
from .remote import fresh_copy


def differences(a, b, where: str = "", rel_tol: float = 0.0,
                names: tuple[str, str] = ("committed", "reproduced"), abs_tol: float | None = None,
                count_tol: float = 0.0) -> list[str]:
    """Paths (``/models/m/key``) where two JSON values differ, with both values.

    Floats are equal within ``rel_tol`` (relative) or ``abs_tol`` (absolute; default 1e-15 when
    ``rel_tol`` is set, so that a reproduced 0.0 is not a difference of an infinitesimal, else
    0); NaN equals NaN. Integers (counts; not booleans) are equal within ``count_tol`` of the
    larger. With a set ``abs_tol``, texts that carry numbers (verdicts) are equal when their
    words are and each of their numbers is within the tolerances. Everything else must be
    equal. ``names`` label ``a`` and ``b`` in the lines.
    """
    if abs_tol is None:
        abs_tol = 1e-15 if rel_tol else 0.0
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}/{k}: only {names[0] if k in a else names[1]}" for k in sorted(set(a) ^ set(b))]
        for k in a:
            if k in b:
                out += differences(a[k], b[k], f"{where}/{k}", rel_tol, names, abs_tol, count_tol)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b))
                for d in differences(x, y, f"{where}[{i}]", rel_tol, names, abs_tol, count_tol)]
    if isinstance(a, float) and isinstance(b, float):
        if (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol):
            return []
    if _is_count(a) and _is_count(b) and count_tol and abs(a - b) <= count_tol * max(abs(a), abs(b)):
        return []
    if isinstance(a, str) and isinstance(b, str) and abs_tol and _same_text_but_numbers(a, b, rel_tol, abs_tol):
        return []
    return [] if a == b else [f"{where}: {names[0]} {a!r} != {names[1]} {b!r}"]


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _same_text_but_numbers(a: str, b: str, rel_tol: float, abs_tol: float) -> bool:
    """Whether two texts (a verdict: "does not beat its twin (... BH q=0.0859 ...)") have the same
    words and the same count of numbers, each pair within the tolerances."""
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    xs, ys = _NUMBER.findall(a), _NUMBER.findall(b)
    return len(xs) == len(ys) and all(math.isclose(float(x), float(y), rel_tol=rel_tol, abs_tol=abs_tol)
                                      for x, y in zip(xs, ys))


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _frame_differences(da, db, rel_tol: float, abs_tol: float = 0.0, count_tol: float = 0.0) -> list[str]:
    import numpy as np
    import pandas as pd

    if list(da.columns) != list(db.columns) or da.shape != db.shape:
        return [f": columns/shape {list(da.columns)} {da.shape} != {list(db.columns)} {db.shape}"]
    out = []
    for col in da.columns:
        x, y = da[col], db[col]
        if pd.api.types.is_bool_dtype(x) or pd.api.types.is_bool_dtype(y):
            bad = _text_differs(x, y)
        elif pd.api.types.is_integer_dtype(x) and pd.api.types.is_integer_dtype(y):
            xa, ya = x.to_numpy(float), y.to_numpy(float)
            bad = np.abs(xa - ya) > count_tol * np.maximum(np.abs(xa), np.abs(ya))
        elif pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            bad = ~np.isclose(x.to_numpy(float), y.to_numpy(float), rtol=rel_tol, atol=abs_tol, equal_nan=True)
        else:
            bad = _text_differs(x, y)
        xs, ys = x.tolist(), y.tolist()  # Python scalars: the lines show 0.25, not np.float64(0.25)
        out += [f": row {i} column {col}: committed {xs[i]!r} != reproduced {ys[i]!r}"
                for i in np.flatnonzero(bad)[:5]]
    return out


def _text_differs(x, y):
    """Cells that differ as text; missing equals missing (pandas 3's string dtype keeps a missing
    value missing through ``astype(str)``, and missing != missing)."""
    same = (x.astype(str) == y.astype(str)).fillna(False).to_numpy(dtype=bool)
    return ~(same | (x.isna().to_numpy() & y.isna().to_numpy()))


def _csv_differences(a: bytes, b: bytes, rel_tol: float, abs_tol: float = 0.0, count_tol: float = 0.0) -> list[str]:
    import pandas as pd

    return _frame_differences(pd.read_csv(io.BytesIO(a)), pd.read_csv(io.BytesIO(b)), rel_tol, abs_tol, count_tol)


def bytes_differences(suffix: str, a: bytes, b: bytes, rel_tol: float = 0.0, abs_tol: float | None = None,
                      count_tol: float = 0.0) -> list[str]:
    """What differs between two versions (bytes) of one output file of type ``suffix`` (empty: the
    same). JSON and CSV are compared as numbers (:func:`differences`), Parquet as a table when a
    tolerance is given, anything else byte for byte."""
    if a == b:
        return []
    if suffix == ".json":
        return differences(json.loads(a), json.loads(b), "", rel_tol, abs_tol=abs_tol, count_tol=count_tol)
    if suffix == ".csv":
        return _csv_differences(a, b, rel_tol, abs_tol or 0.0, count_tol)
    if suffix == ".parquet" and (rel_tol or abs_tol or count_tol):
        import pandas as pd

        return _frame_differences(pd.read_parquet(io.BytesIO(a)), pd.read_parquet(io.BytesIO(b)), rel_tol,
                                  abs_tol or 0.0, count_tol)
    return [": bytes differ"]


def file_differences(committed: Path, reproduced: Path, rel_tol: float = 0.0) -> list[str]:
    """What differs between two versions of one output file (empty: reproduced)."""
    return bytes_differences(committed.suffix, committed.read_bytes(), reproduced.read_bytes(), rel_tol)


def lock_differences(committed_lock: Path, reproduced_lock: Path) -> list[str]:
    """DVC-cached outputs whose md5 in ``reproduced_lock`` differs from ``committed_lock``."""
    def outs(lock: Path) -> dict[str, str]:
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
        return {f"{name}: {o['path']}": o.get("md5", "") for name, st in stages.items() for o in st.get("outs", [])}

    a, b = outs(committed_lock), outs(reproduced_lock)
    return [f"dvc.lock {k}: committed md5 {a[k]} != reproduced {b.get(k, 'missing')}"
            for k in sorted(a) if a[k] != b.get(k)]


def scratch_copy(workspace: Path, dest: Path) -> Path:
    """A fresh clone of ``workspace`` at ``dest`` (:func:`.remote.fresh_copy`: git-visible files,
    ``dvc.lock``, no output, no cache), with the vendored offline HTML assets (``build/vendor``,
    fetched by ``make setup``) linked in: they are set-up, not pipeline outputs."""
    fresh_copy(workspace, dest)
    vendor = workspace / "build" / "vendor"
    if vendor.is_dir():
        (dest / "build").mkdir(exist_ok=True)
        os.symlink(vendor.resolve(), dest / "build" / "vendor")
    return dest


def reproduce(workspace: str | Path, targets: Sequence[str] = (), rel_tol: float = 0.0,
              tmp_root: str | Path | None = None, keep: bool = False) -> list[str]:
    """Re-run ``targets`` (default: the whole pipeline) in a scratch copy; what moved, one line each.

    Raises
    ------
    DirtyWorkspaceError
        ``dvc status`` of ``workspace`` is not clean: its outputs are not what dvc.lock says.
    """
    workspace = Path(workspace).resolve()
    stale = stale_stages(workspace)
    if stale:
        raise DirtyWorkspaceError(workspace, stale)
    root = Path(tempfile.mkdtemp(prefix="brainlike-reproduce-", dir=tmp_root))
    try:
        copy = scratch_copy(workspace, root / "copy")
        # the copy's own store (never the user's shared server), this interpreter's tools first
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{copy / 'mlflow.db'}",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
        run_dvc(["repro", *targets], copy, env=env)
        moved = lock_differences(workspace / "dvc.lock", copy / "dvc.lock")
        for rel in sorted(git_visible_files(workspace)):
            if rel == "dvc.lock" or not (workspace / rel).is_file() or not (copy / rel).is_file():
                continue
            moved += [f"{rel}{d}" for d in file_differences(workspace / rel, copy / rel, rel_tol)]
        return moved
    finally:
        if keep:
            print(f"reproduce: scratch copy kept at {root}", file=sys.stderr)
        else:
            _rmtree(root)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; see the module docstring. Exit 0 reproduced, 1 moved, 2 workspace not clean."""
    ap = argparse.ArgumentParser(prog="python -m brainlike.checks reproduce",
                                 description="Re-run the pipeline in a scratch copy and compare with the committed outputs")
    ap.add_argument("workspace", nargs="?", default=".")
    ap.add_argument("--target", action="append", default=[], help="stage to reproduce with its upstream (repeatable; default: all)")
    ap.add_argument("--rtol", type=float, default=0.0, help="relative tolerance for numbers in metrics files (default 0: exact)")
    ap.add_argument("--tmp", default=None, help="folder for the scratch copy")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = ap.parse_args(argv)
    try:
        moved = reproduce(args.workspace, args.target, args.rtol, args.tmp, args.keep)
    except DirtyWorkspaceError as exc:
        print(f"reproduce: {exc}", file=sys.stderr)
        return 2
    except BrainlikeError as exc:
        print(f"reproduce: {exc}", file=sys.stderr)
        return 1
    what = ", ".join(args.target) or "the whole pipeline"
    if moved:
        print(f"reproduce: {len(moved)} difference(s) after re-running {what}:", file=sys.stderr)
        for line in moved:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(f"reproduce: {what} reproduced every committed output (rtol {args.rtol:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
