"""The prepared-run store: columnar files that DVC versions (``data/prepared/``).

Layout of one run folder ``<root>/<run_id>/``::

    bold.arrow       Arrow IPC, one row per TR, column ``bold``: fixed-size list<float32>[V]
    confounds.parquet
    words.parquet    word, onset, duration (stimulus clock, seconds)
    run.json         identity, TR, t0, space, shape, target names, provenance, sha256 of bold

and ``<root>/manifest.json`` lists every run. Arrow IPC keeps a T x 20,484 matrix one
contiguous buffer (memory-mappable, zero-copy to numpy), where a column per vertex would not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from .._utils.atomic import atomic_path
from .._utils.reproducible import portable_paths
from ..errors import DataError
from .run import Run

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def _write_bold(path: Path, data: np.ndarray) -> None:
    n_t, n_v = data.shape
    flat = pa.array(np.ascontiguousarray(data, dtype=np.float32).reshape(-1))
    col = pa.FixedSizeListArray.from_arrays(flat, n_v)
    table = pa.table({"bold": col})
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_bold(path: str | Path) -> np.ndarray:
    """Read ``bold.arrow`` as a (n_trs, n_targets) float32 array (memory-mapped)."""
    path = Path(path)
    try:
        with pa.memory_map(str(path), "r") as src:
            table = ipc.open_file(src).read_all()
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(path, f"cannot read Arrow IPC bold data: {exc}") from None
    col = table.column("bold").combine_chunks()
    n_v = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).reshape(-1, n_v)


def write_run(run: Run, folder: str | Path) -> dict:
    """Write one run to ``folder`` (created; must not exist). Returns its manifest entry."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    _write_bold(folder / "bold.arrow", run.data)
    run.confounds.to_parquet(folder / "confounds.parquet", index=False)
    run.words.to_parquet(folder / "words.parquet", index=False)
    info = {
        "format_version": FORMAT_VERSION,
        "run_id": run.run_id,
        "dataset": run.dataset,
        "subject": run.subject,
        "task": run.task,
        "tr": float(run.tr),
        "t0": float(run.t0),
        "space": run.space,
        "n_trs": run.n_trs,
        "n_targets": run.n_targets,
        "n_words": int(len(run.words)),
        "target_names": run.target_names,
        "confounds": list(map(str, run.confounds.columns)),
        "bold_sha256": _sha256(run.data),
        "meta": portable_paths(run.meta),  # no path of this machine in a DVC-tracked file
    }
    (folder / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return {k: info[k] for k in ("run_id", "dataset", "subject", "task", "space", "tr", "n_trs", "n_targets", "bold_sha256")} | {
        "path": folder.name
    }


def read_run(folder: str | Path, verify: bool = False) -> Run:
    """Load a run written by :func:`write_run`.

    Parameters
    ----------
    verify : bool
        Recompute the sha256 of the bold data and compare with ``run.json``.
    """
    folder = Path(folder)
    meta_path = folder / "run.json"
    if not meta_path.is_file():
        raise DataError(meta_path, "prepared run metadata not found (run `dvc repro prepare`)")
    info = json.loads(meta_path.read_text())
    data = read_bold(folder / "bold.arrow")
    if data.shape != (info["n_trs"], info["n_targets"]):
        raise DataError(folder / "bold.arrow", f"shape {data.shape} differs from run.json {(info['n_trs'], info['n_targets'])}")
    if verify and _sha256(data) != info["bold_sha256"]:
        raise DataError(folder / "bold.arrow", "sha256 differs from run.json: the file was modified or is corrupt")
    return Run(
        dataset=info["dataset"],
        subject=info["subject"],
        task=info["task"],
        tr=info["tr"],
        space=info["space"],
        data=data,
        confounds=pd.read_parquet(folder / "confounds.parquet"),
        words=pd.read_parquet(folder / "words.parquet"),
        t0=info["t0"],
        target_names=info["target_names"],
        meta=info.get("meta", {}),
    )


def write_store(
    runs: Iterable[Run],
    root: str | Path,
    extra: dict | None = None,
    sidecars: Mapping[str, str | bytes | pd.DataFrame] | None = None,
) -> list[dict]:
    """Write every run plus ``manifest.json`` under ``root``, atomically as a whole.

    Parameters
    ----------
    extra : dict, optional
        Added to the manifest.
    sidecars : mapping of relative path -> text, bytes or DataFrame (written as Parquet)
        Files stored next to the runs (e.g. a dataset's ground truth).

    ``root`` is replaced only when everything was written; on any error it is left as before.
    """
    with atomic_path(root) as tmp:
        return write_store_at(tmp, runs, extra, sidecars)


def write_store_at(
    folder: str | Path,
    runs: Iterable[Run],
    extra: dict | None = None,
    sidecars: Mapping[str, str | bytes | pd.DataFrame] | None = None,
) -> list[dict]:
    """:func:`write_store` into a new ``folder``, not atomically: for a caller that publishes
    the store together with other outputs (:func:`~brainlike._utils.atomic.atomic_paths`)."""
    tmp = Path(folder)
    entries: list[dict] = []
    tmp.mkdir()
    for run in runs:
        if any(e["run_id"] == run.run_id for e in entries):
            raise DataError(None, f"two runs share the id {run.run_id}")
        entries.append(write_run(run, tmp / run.run_id))
    for rel, content in (sidecars or {}).items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, pd.DataFrame):
            content.to_parquet(dest, index=False)
        elif isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            dest.write_text(content)
    manifest = {"format_version": FORMAT_VERSION, "runs": entries} | (extra or {})
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return entries


def read_manifest(root: str | Path) -> dict:
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise DataError(path, "prepared-data manifest not found (run `dvc repro prepare`)")
    return json.loads(path.read_text())


def iter_runs(root: str | Path, run_ids: Iterable[str] | None = None):
    """Yield the prepared runs listed in the manifest (optionally only ``run_ids``)."""
    root = Path(root)
    wanted = None if run_ids is None else set(run_ids)
    for entry in read_manifest(root)["runs"]:
        if wanted is None or entry["run_id"] in wanted:
            yield read_run(root / entry["path"])
