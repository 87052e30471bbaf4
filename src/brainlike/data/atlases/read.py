"""Readers of the atlas folder written by :func:`~brainlike.data.atlases.build_atlases`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError

N_VERTICES = 20484
_HINT = "run `dvc repro atlases` to build it"


@dataclass(frozen=True, eq=False)
class Atlas:
    """One functional-network atlas on fsaverage5.

    Attributes
    ----------
    name : str
    labels : array of int16, shape (20484,)
        Network id per vertex (left hemisphere 0..10241, then right); 0 = no network.
    names : dict of int to str
        Network name of each non-zero id.
    rgba : dict of int to tuple of 4 float
        Colour of each non-zero id (0..1).
    source : str
        Where the atlas came from.
    """

    name: str
    labels: np.ndarray
    names: dict[int, str]
    rgba: dict[int, tuple[float, float, float, float]]
    source: str = ""

    @property
    def networks(self) -> list[str]:
        """Network names in id order."""
        return [self.names[i] for i in sorted(self.names)]

    def network_id(self, network: str | int) -> int:
        """Id of a network given by name (case-sensitive) or id."""
        if isinstance(network, (int, np.integer)) and int(network) in self.names:
            return int(network)
        for i, n in self.names.items():
            if n == network:
                return i
        raise DataError(
            None,
            f"atlas {self.name!r} has no network {network!r}; valid names: {', '.join(self.networks)}",
            field="network",
        )

    def mask(self, network: str | int) -> np.ndarray:
        """Boolean mask of one network's vertices, shape (20484,).

        Raises
        ------
        DataError
            If the atlas has no such network; the message lists the valid names.
        """
        return self.labels == self.network_id(network)


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataError(path, f"atlas file not found; {_HINT}")
    return path


def _read_meta(root: Path) -> dict:
    path = _need(root / "networks.json")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc}); {_HINT}") from None
    if not isinstance(meta, dict):
        raise DataError(path, f"expected a mapping atlas -> metadata; {_HINT}")
    return meta


def list_networks(root: str | Path) -> dict[str, list[str]]:
    """Network names of every atlas built into ``root``, in id order."""
    meta = _read_meta(Path(root))
    return {a: [m["labels"][k] for k in sorted(m["labels"], key=int)] for a, m in meta.items()}


def load_atlas(name: str, root: str | Path) -> Atlas:
    """Read one atlas from the folder ``root`` (``paths.atlases``).

    Raises
    ------
    DataError
        If a file is missing or malformed, or ``name`` was not built (lists the ones that were).
    """
    root = Path(root)
    meta = _read_meta(root)
    path = _need(root / "networks.parquet")
    if name not in meta:
        raise DataError(
            root / "networks.json",
            f"atlas {name!r} was not built; available: {sorted(meta)} (set atlases.names and {_HINT})",
            field=name,
        )
    try:
        col = pd.read_parquet(path, columns=[name])[name].to_numpy()
    except Exception as exc:  # pyarrow raises several types for a missing column / bad file
        raise DataError(path, f"cannot read column: {exc}; {_HINT}", field=name) from None
    if col.shape != (N_VERTICES,):
        raise DataError(path, f"expected {N_VERTICES} fsaverage5 vertices, got {col.shape[0]}", field=name)
    m = meta[name]
    names = {int(k): str(v) for k, v in m["labels"].items()}
    unknown = set(np.unique(col).tolist()) - set(names) - {0}
    if unknown:
        raise DataError(path, f"ids {sorted(unknown)} are not in networks.json labels", field=name)
    rgba = {int(k): tuple(float(c) for c in v) for k, v in m["rgba"].items()}
    labels = col.astype(np.int16)
    labels.flags.writeable = False
    return Atlas(name, labels, names, rgba, str(m.get("source", "")))


def load_seitzman(root: str | Path) -> pd.DataFrame:
    """Seitzman-2018 ROI table: roi, x, y, z (MNI mm), network, region, radius_mm, source_radius_mm."""
    path = _need(Path(root) / "seitzman2018.parquet")
    table = pd.read_parquet(path)
    missing = {"roi", "x", "y", "z", "network", "radius_mm"} - set(table.columns)
    if missing:
        raise DataError(path, f"columns {sorted(missing)} missing; {_HINT}")
    return table
