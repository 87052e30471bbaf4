"""Activation storage: one folder per (model, stimulus), one Arrow IPC file per (grid, layer).

Layout of ``<output>/<model>/<stimulus>/``::

    activations.json            sidecar (written last: its presence means complete)
    <grid>/L000.arrow ...       one row per AN: tower, layer, unit, delay,
                                values = fixed_size_list<float32>[n_trs]

Rows are ANs so a reader streams chunks of ANs (record batches of ``chunk_ans`` rows) without
loading the T x N matrix; every file is written atomically and its sha256 kept, so a resumed
extraction can tell a complete layer file from a corrupt one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from .._utils.hashing import sha256_file  # noqa: F401  (re-exported)
from ..errors import DataError

SIDECAR = "activations.json"
FORMAT_VERSION = 1


def layer_filename(tower: str, layer: int) -> str:
    return f"L{layer:03d}.arrow" if tower == "text" else f"{tower}-L{layer:03d}.arrow"


def _schema(n_trs: int) -> pa.Schema:
    return pa.schema(
        [
            ("tower", pa.string()),
            ("layer", pa.int16()),
            ("unit", pa.int32()),
            ("delay", pa.int16()),
            ("values", pa.list_(pa.float32(), n_trs)),
        ]
    )


class LayerWriter:
    """Append AN chunks of one layer to an Arrow IPC file (one record batch per chunk)."""

    def __init__(self, path: Path, n_trs: int):
        self.path, self.n_trs, self.n_rows = Path(path), int(n_trs), 0
        self._sink = pa.OSFile(str(self.path), "wb")
        self._writer = ipc.new_file(self._sink, _schema(self.n_trs))

    def write(self, tower: str, layer: int, units: np.ndarray, delays: np.ndarray, values: np.ndarray) -> None:
        """values : array of shape (n_trs, n_units) -- stored transposed, one row per AN."""
        n = int(units.size)
        if n == 0:
            return
        flat = pa.array(np.ascontiguousarray(values.T, dtype=np.float32).reshape(-1))
        batch = pa.record_batch(
            [
                pa.array([tower] * n, pa.string()),
                pa.array(np.full(n, layer, np.int16)),
                pa.array(units.astype(np.int32)),
                pa.array(delays.astype(np.int16)),
                pa.FixedSizeListArray.from_arrays(flat, self.n_trs),
            ],
            schema=_schema(self.n_trs),
        )
        self._writer.write_batch(batch)
        self.n_rows += n

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


def check_layer_file(path: Path, n_rows: int, n_trs: int, sha256: str | None = None) -> bool:
    """True if ``path`` is a readable layer file with ``n_rows`` ANs of ``n_trs`` values."""
    try:
        if sha256 is not None and sha256_file(path) != sha256:
            return False
        with pa.memory_map(str(path), "r") as src:
            reader = ipc.open_file(src)
            rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
            return rows == n_rows and reader.schema.field("values").type.list_size == n_trs
    except (OSError, pa.ArrowInvalid, KeyError):
        return False


@dataclass
class AnChunk:
    """A chunk of ANs: values of shape (n_trs, n) and each AN's tower, layer, unit, delay."""

    values: np.ndarray
    tower: np.ndarray
    layer: np.ndarray
    unit: np.ndarray
    delay: np.ndarray


def _batch_chunk(batch: pa.RecordBatch, n_trs: int) -> AnChunk:
    vals = batch.column("values").flatten().to_numpy(zero_copy_only=False).reshape(-1, n_trs).T
    return AnChunk(
        vals,
        np.asarray(batch.column("tower").to_pylist(), dtype=object),
        batch.column("layer").to_numpy(),
        batch.column("unit").to_numpy(),
        batch.column("delay").to_numpy(),
    )


class ActivationSet:
    """Reader of one (model, stimulus) folder written by the extraction.

    Parameters
    ----------
    folder : path
        ``<output>/<model>/<stimulus>``; must hold a complete ``activations.json``.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        side = self.folder / SIDECAR
        if not side.is_file():
            raise DataError(side, "activation sidecar not found: the extraction did not complete (run `dvc repro extract`)")
        self.sidecar = json.loads(side.read_text())
        self.grids = {g["id"]: g for g in self.sidecar["grids"]}

    def grid(self, grid: str | None = None, run_id: str | None = None) -> dict:
        """The TR grid by id, by run id, or the only one."""
        if run_id is not None:
            for g in self.grids.values():
                if run_id in g["run_ids"]:
                    return g
            raise DataError(self.folder / SIDECAR, f"no TR grid for run {run_id!r}", "grids")
        if grid is None:
            if len(self.grids) != 1:
                raise DataError(self.folder / SIDECAR, f"several TR grids {sorted(self.grids)}; name one", "grids")
            return next(iter(self.grids.values()))
        if grid not in self.grids:
            raise DataError(self.folder / SIDECAR, f"unknown grid {grid!r}; have {sorted(self.grids)}", "grids")
        return self.grids[grid]

    def frame_times(self, grid: str | None = None) -> np.ndarray:
        g = self.grid(grid)
        return g["t0"] + g["tr"] * np.arange(g["n_trs"])

    def iter_layers(self, grid: str | None = None, run_id: str | None = None) -> Iterator[AnChunk]:
        """Yield one :class:`AnChunk` per layer (values of shape (n_trs, n_ans_of_layer))."""
        g = self.grid(grid, run_id)
        for f in g["files"]:
            chunks = list(self._iter_file(self.folder / g["id"] / f["file"], g["n_trs"]))
            yield AnChunk(*(np.concatenate([getattr(c, k) for c in chunks], axis=1 if k == "values" else 0)
                            for k in ("values", "tower", "layer", "unit", "delay")))

    def iter_chunks(self, grid: str | None = None, run_id: str | None = None) -> Iterator[AnChunk]:
        """Yield chunks of at most ``chunk_ans`` ANs (one record batch each), layer by layer."""
        g = self.grid(grid, run_id)
        for f in g["files"]:
            yield from self._iter_file(self.folder / g["id"] / f["file"], g["n_trs"])

    def _iter_file(self, path: Path, n_trs: int) -> Iterator[AnChunk]:
        try:
            with pa.memory_map(str(path), "r") as src:
                reader = ipc.open_file(src)
                for i in range(reader.num_record_batches):
                    yield _batch_chunk(reader.get_batch(i), n_trs)
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(path, f"cannot read activation layer file: {exc}") from None

    def matrix(self, grid: str | None = None, run_id: str | None = None) -> tuple[np.ndarray, dict]:
        """The whole (n_trs, N) matrix and the AN index (tower, layer, unit, delay) -- small models only."""
        chunks = list(self.iter_chunks(grid, run_id))
        X = np.concatenate([c.values for c in chunks], axis=1)
        index = {k: np.concatenate([getattr(c, k) for c in chunks]) for k in ("tower", "layer", "unit", "delay")}
        return X, index
