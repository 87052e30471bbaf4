"""Reading the data of a BIDS func run: GIfTI pairs and NIfTI volumes, brought to fsaverage5.

fsaverage6 GIfTIs are decimated, volumes projected; vertices without signal are handled as
:func:`~brainlike.data.loaders.bids.load_bids_run` documents.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from ...errors import DataError
from ..surfaces import (
    N_FSAVERAGE5_HEMI,
    N_FSAVERAGE6_HEMI,
    fsaverage6_to_5,
    nan_vertices,
    project_volume_to_fsaverage5,
)
from .bids_files import parse_bids_name

MAX_NAN_FRACTION = 0.5  # more vertices outside the field of view than this: wrong space
_GIFTI_SPACES = {"fsaverage5": N_FSAVERAGE5_HEMI, "fsaverage6": N_FSAVERAGE6_HEMI}


def read_gifti_pair(left: str | Path, right: str | Path) -> tuple[np.ndarray, str]:
    """Read both hemispheres of a GIfTI func run, returning fsaverage5 data.

    Returns
    -------
    data : array of shape (n_trs, 20484), float32
    native : {"fsaverage5", "fsaverage6"}
        The mesh the files were on.
    """
    hemis = []
    for path in (Path(left), Path(right)):
        arr = _read_gifti(path)
        n = arr.shape[1]
        if n not in _GIFTI_SPACES.values():
            raise DataError(
                path,
                f"GIfTI has {n} vertices; expected {N_FSAVERAGE5_HEMI} (fsaverage5) or {N_FSAVERAGE6_HEMI} "
                "(fsaverage6) per hemisphere",
                "vertices",
            )
        b = parse_bids_name(path)
        declared = b.get("space") if b is not None else None
        if declared in _GIFTI_SPACES and _GIFTI_SPACES[declared] != n:
            raise DataError(path, f"file name says space-{declared} ({_GIFTI_SPACES[declared]} vertices) but it holds {n}", "space")
        hemis.append((path, arr))
    (lp, la), (rp, ra) = hemis
    if la.shape != ra.shape:
        raise DataError(rp, f"right hemisphere has shape {ra.shape} (time x vertices) but the left one {lp} has {la.shape}")
    native = "fsaverage6" if la.shape[1] == N_FSAVERAGE6_HEMI else "fsaverage5"
    if native == "fsaverage6":
        la, ra = fsaverage6_to_5(la, lp), fsaverage6_to_5(ra, rp)
    return np.ascontiguousarray(np.concatenate([la, ra], axis=1), dtype=np.float32), native


def _read_gifti(path: Path) -> np.ndarray:
    """(n_trs, n_vertices) from one darray per volume, or one 2-D darray."""
    if not path.is_file():
        raise DataError(path, "GIfTI func file not found")
    try:
        img = nib.load(str(path))
        arrays = [np.asarray(d.data) for d in img.darrays]
    except Exception as exc:  # nibabel raises many types on corrupt XML / encodings
        raise DataError(path, f"cannot read GIfTI: {exc}") from None
    if not arrays:
        raise DataError(path, "GIfTI holds no data arrays")
    if len(arrays) == 1 and arrays[0].ndim == 2:
        a = arrays[0]
        # vertices x time is the usual layout; accept time x vertices when unambiguous
        return a.T if a.shape[0] in _GIFTI_SPACES.values() or a.shape[1] not in _GIFTI_SPACES.values() else a
    if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
        raise DataError(path, f"expected one 1-D data array per volume, got shapes {sorted({a.shape for a in arrays})}")
    return np.stack(arrays, axis=0)


def _load_volume(path: Path):
    if not path.is_file():
        raise DataError(path, "func file not found")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, OSError, EOFError...
        raise DataError(path, f"cannot read NIfTI: {exc}") from None
    if img.ndim != 4:
        raise DataError(path, f"expected a 4-D (x, y, z, time) volume, got shape {img.shape}")
    return img


def _split_nan_vertices(img, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split NaN vertices of a projected volume into outside-the-field-of-view and NaN-voxel ones.

    The mask of NaN voxels (1 where a voxel is NaN in any volume, else 0) is finite, so its
    projection is NaN exactly where the vertex lies outside the image; a vertex that is NaN in
    the data but finite in the mask projection got its NaN from NaN voxels inside the image.

    Parameters
    ----------
    img : nibabel image, 3-D or 4-D
    bad : array of int
        Indices of vertices holding NaN in the projected data.

    Returns
    -------
    outside, in_brain : arrays of int
        A partition of ``bad``.
    """
    vox = np.asanyarray(img.dataobj)
    nan_vox = np.isnan(vox).any(axis=-1) if vox.ndim == 4 else np.isnan(vox)
    if not nan_vox.any():
        return bad, np.array([], dtype=np.int64)
    mask = nib.Nifti1Image(nan_vox.astype(np.float32), img.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        proj = project_volume_to_fsaverage5(mask, warn=False)[0]
    inside = np.isfinite(proj[bad])
    return bad[~inside], bad[inside]


def _surface_data(func: Path, left: Path | None, img, data: np.ndarray | None, meta: dict) -> np.ndarray:
    """The run's fsaverage5 data: a volume (``left`` None) projected, or the GIfTI ``data``.

    Vertices outside a volume's field of view, or holding NaN in a GIfTI, are set to 0 (with a
    warning); more than :data:`MAX_NAN_FRACTION` outside is an error. Vertices NaN from NaN voxels
    inside the field of view stay NaN (with a warning and an entry in ``meta["warnings"]``).
    ``meta`` gets ``nan_vertices`` and ``nan_in_brain_vertices``. The warnings name the caller of
    :func:`~brainlike.data.loaders.bids.load_bids_run` (``stacklevel=3``).
    """
    in_brain = np.array([], dtype=np.int64)
    if left is None:
        data = project_volume_to_fsaverage5(img, warn=False)
        bad = nan_vertices(data)
        if bad.size:
            bad, in_brain = _split_nan_vertices(img, bad)
    else:
        bad = nan_vertices(data)
    if left is None and bad.size > MAX_NAN_FRACTION * data.shape[1]:
        raise DataError(
            func,
            f"{bad.size} of {data.shape[1]} fsaverage5 vertices fall outside the volume's field of view; "
            "expected a volume in MNI space (space- entity) covering the cortex",
            "space",
        )
    if bad.size:
        # a vertex without signal stays a constant 0 column, which the validation gates count
        why = "outside the field of view" if left is None else "holding NaN"
        warnings.warn(f"{func}: {bad.size} fsaverage5 vertices {why} were set to 0", stacklevel=3)
        data[:, bad] = 0.0
    if in_brain.size:
        # NaN voxels inside the field of view are broken data, not missing coverage: they stay
        # NaN so that the data gates (no_nan / no_nonfinite) reject the run
        n_tr = int(np.isnan(data[:, in_brain]).any(axis=1).sum())
        msg = (
            f"{in_brain.size} fsaverage5 vertices inside the field of view hold NaN from NaN voxels of the "
            f"volume (in {n_tr} of {data.shape[0]} volumes); left NaN, so the data gates reject this run"
        )
        warnings.warn(f"{func}: {msg}", stacklevel=3)
        meta.setdefault("warnings", []).append(msg)
    meta["nan_vertices"] = bad.tolist()
    meta["nan_in_brain_vertices"] = in_brain.tolist()
    return data
