"""Artifact files of a fit: atom maps as GIfTI (fsaverage5 surfaces) or Parquet (ROIs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._utils.atomic import atomic_path
from ..errors import DataError

N_FSAVERAGE5 = 20484
N_HEMI = 10242


def write_atom_gifti(zmaps: np.ndarray, out_dir: str | Path, atom_names: Sequence[str] | None = None,
                     stem: str = "atoms") -> list[Path]:
    """Write atom z-maps on fsaverage5 as two GIfTI func files (one data array per atom).

    Parameters
    ----------
    zmaps : array of shape (n_atoms, 20484)
        Left hemisphere vertices 0..10241, then right.
    out_dir : path
    atom_names : sequence of str, length n_atoms, optional
        Stored as each data array's ``Name`` meta-data (default ``atom_000``...).

    Returns
    -------
    list of Path
        ``<stem>.hemi-L.func.gii`` and ``<stem>.hemi-R.func.gii``.
    """
    import nibabel as nib

    z = np.asarray(zmaps, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != N_FSAVERAGE5:
        raise DataError(None, f"atom maps must have shape (n_atoms, {N_FSAVERAGE5}), got {z.shape}", field="zmaps")
    names = list(atom_names) if atom_names is not None else [f"atom_{k:03d}" for k in range(z.shape[0])]
    if len(names) != z.shape[0]:
        raise DataError(None, f"{len(names)} atom names for {z.shape[0]} maps", field="atom_names")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for hemi, sl, structure in (("L", slice(0, N_HEMI), "CortexLeft"), ("R", slice(N_HEMI, None), "CortexRight")):
        img = nib.GiftiImage(meta=nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary": structure}))
        for name, row in zip(names, z[:, sl]):
            img.add_gifti_data_array(nib.gifti.GiftiDataArray(
                np.ascontiguousarray(row), intent="NIFTI_INTENT_ZSCORE", datatype="NIFTI_TYPE_FLOAT32",
                meta=nib.gifti.GiftiMetaData({"Name": name}),
            ))
        path = out_dir / f"{stem}.hemi-{hemi}.func.gii"
        with atomic_path(path) as tmp:
            nib.save(img, str(tmp))
        paths.append(path)
    return paths


def read_atom_gifti(left: str | Path, right: str | Path) -> np.ndarray:
    """Inverse of :func:`write_atom_gifti`: array of shape (n_atoms, 20484)."""
    import nibabel as nib

    lh, rh = nib.load(str(left)), nib.load(str(right))
    return np.concatenate([np.stack([d.data for d in lh.darrays]), np.stack([d.data for d in rh.darrays])], axis=1)


def write_atom_parquet(zmaps: np.ndarray, target_names: Sequence[str], path: str | Path,
                       atom_names: Sequence[str] | None = None) -> Path:
    """ROI-level atom maps as a long Parquet table ``(atom, target, z)``.

    Parameters
    ----------
    zmaps : array of shape (n_atoms, n_targets)
    target_names : sequence of str, length n_targets
    """
    import pandas as pd

    z = np.asarray(zmaps, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != len(target_names):
        raise DataError(None, f"maps of shape {z.shape} do not match {len(target_names)} target names", field="zmaps")
    names = list(atom_names) if atom_names is not None else [f"atom_{k:03d}" for k in range(z.shape[0])]
    df = pd.DataFrame({
        "atom": np.repeat(names, z.shape[1]),
        "target": np.tile(np.asarray(target_names, dtype=object), z.shape[0]),
        "z": z.ravel(),
    })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path
