"""fsaverage5 geometry and the two ways data reach it: fsaverage6 decimation, volume projection.

Vertex order everywhere: left hemisphere (vertices 0..10,241) then right (10,242..20,483).

The meshes are the ones nilearn ships inside its wheel (``nilearn/datasets/data/fsaverage5``);
:func:`load_fsaverage5` checks that it read those files, so nothing is ever downloaded.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

from ..errors import DataError

N_FSAVERAGE5_HEMI = 10242
N_FSAVERAGE6_HEMI = 40962
N_FSAVERAGE5 = 2 * N_FSAVERAGE5_HEMI  # 20,484
N_FSAVERAGE6 = 2 * N_FSAVERAGE6_HEMI  # 81,924
HEMIS = ("left", "right")


@lru_cache(maxsize=1)
def load_fsaverage5():
    """fsaverage5 meshes of both hemispheres, as nilearn ships them.

    Returns
    -------
    Bunch
        ``pial``, ``white_matter``, ``inflated``, ``sphere``, ``flat``: nilearn ``PolyMesh``
        with parts ``left`` and ``right`` of 10,242 vertices each.

    Raises
    ------
    DataError
        If nilearn resolved a mesh to a file outside its own package data (which would mean a
        download location), or a mesh does not have 10,242 vertices.
    """
    import nilearn
    from nilearn import datasets

    shipped = Path(nilearn.__file__).parent / "datasets" / "data" / "fsaverage5"
    mesh = datasets.load_fsaverage("fsaverage5")
    for surf in ("pial", "white_matter"):
        for hemi in HEMIS:
            part = mesh[surf].parts[hemi]
            fp = Path(getattr(part, "file_path", shipped))
            if shipped not in fp.parents:
                raise DataError(fp, f"fsaverage5 {surf} mesh is not nilearn's shipped copy ({shipped})")
            if part.n_vertices != N_FSAVERAGE5_HEMI:
                raise DataError(fp, f"expected {N_FSAVERAGE5_HEMI} vertices, got {part.n_vertices}")
    return mesh


def fsaverage6_to_5(data: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """Decimate fsaverage6 data to fsaverage5 by the icosahedral nesting.

    FreeSurfer's icosahedral surfaces are nested: the first 10,242 vertices of each fsaverage6
    hemisphere (40,962 vertices) are the fsaverage5 vertices, in the same order. So decimation
    is a selection, not an interpolation.

    Parameters
    ----------
    data : array of shape (..., 81924) or (..., 40962)
        Both hemispheres (left then right) or one hemisphere, along the last axis.
    source : str or Path, optional
        File named in the error message.

    Returns
    -------
    array of shape (..., 20484) or (..., 10242)
        Same dtype as ``data``.
    """
    data = np.asarray(data)
    n = data.shape[-1] if data.ndim else 0
    if n == N_FSAVERAGE6:
        return np.concatenate(
            [data[..., :N_FSAVERAGE5_HEMI], data[..., N_FSAVERAGE6_HEMI : N_FSAVERAGE6_HEMI + N_FSAVERAGE5_HEMI]],
            axis=-1,
        )
    if n == N_FSAVERAGE6_HEMI:
        return data[..., :N_FSAVERAGE5_HEMI].copy()
    raise DataError(
        source,
        f"expected fsaverage6 data with {N_FSAVERAGE6} (both hemispheres) or {N_FSAVERAGE6_HEMI} "
        f"(one hemisphere) vertices on the last axis, got shape {data.shape}",
    )


def nan_vertices(data: np.ndarray) -> np.ndarray:
    """Indices of the columns of ``data`` (shape (n_trs, n_vertices)) that hold any NaN."""
    return np.flatnonzero(np.isnan(np.asarray(data)).any(axis=0))


def project_volume_to_fsaverage5(img, *, warn: bool = True) -> np.ndarray:
    """Project a volume in MNI space onto fsaverage5 with nilearn's ``vol_to_surf``.

    Each vertex is the mean of trilinear samples taken at regular depths on the segment
    between its pial and white-matter positions (nilearn's ``kind="depth"`` with
    ``inner_mesh``), hemisphere by hemisphere, left then right. fsaverage coordinates are in
    MNI305 space; fMRIPrep's MNI152 outputs are used as they are (the usual approximation).

    Parameters
    ----------
    img : str, Path or nibabel image
        3-D or 4-D NIfTI in MNI space (any voxel size).
    warn : bool
        Warn when vertices come out NaN (all their samples fell outside the image, or the
        image holds NaN there); they are left NaN so the caller can decide.

    Returns
    -------
    array of shape (n_trs, 20484), float32
        ``n_trs`` is 1 for a 3-D image.
    """
    from nilearn.surface import vol_to_surf

    src = img if isinstance(img, (str, Path)) else getattr(img, "get_filename", lambda: None)()
    if isinstance(img, (str, Path)):
        img = nib.load(str(img))
    if img.ndim not in (3, 4):
        raise DataError(src, f"expected a 3-D or 4-D volume, got {img.ndim} dimensions, shape {img.shape}")
    mesh = load_fsaverage5()
    parts = []
    for hemi in HEMIS:
        with warnings.catch_warnings():
            # nilearn warns about samples outside the image; counted below instead
            warnings.simplefilter("ignore", RuntimeWarning)
            tex = vol_to_surf(img, mesh.pial.parts[hemi], inner_mesh=mesh.white_matter.parts[hemi])
        parts.append(np.asarray(tex, dtype=np.float32).reshape(N_FSAVERAGE5_HEMI, -1))
    out = np.ascontiguousarray(np.concatenate(parts, axis=0).T)
    bad = nan_vertices(out)
    if warn and bad.size:
        n_left = int((bad < N_FSAVERAGE5_HEMI).sum())
        warnings.warn(
            f"{src or 'volume'}: {bad.size} of {N_FSAVERAGE5} fsaverage5 vertices came out NaN "
            f"({n_left} left, {bad.size - n_left} right): outside the image's field of view",
            stacklevel=2,
        )
    return out
