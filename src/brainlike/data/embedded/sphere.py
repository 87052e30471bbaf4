"""The fsaverage5 sphere and the smooth per-subject variations drawn on it.

Vertex coordinates and mesh adjacency come from nilearn's bundled fsaverage5 spheres; on them a
subject's version of a network moves its border by one vertex ring (:func:`jitter_mask`) and its
planted amplitude varies slowly over the sphere (:func:`smooth_gain`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import DataError


def _sphere_files() -> list[Path]:
    import nilearn.datasets

    root = Path(nilearn.datasets.__file__).parent / "data" / "fsaverage5"
    return [root / f"sphere_{h}.gii.gz" for h in ("left", "right")]


def _sphere_coordinates() -> np.ndarray:
    """Unit-sphere coordinates of the fsaverage5 vertices, shape (20484, 3) (nilearn's files)."""
    import nibabel as nib

    coords = []
    for path in _sphere_files():
        try:
            coords.append(np.asarray(nib.load(path).darrays[0].data, np.float64))
        except (OSError, IndexError, ValueError) as exc:
            raise DataError(path, f"cannot read the fsaverage5 sphere: {exc}") from None
    xyz = np.concatenate(coords)
    return xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


def sphere_adjacency():
    """Vertex adjacency of the fsaverage5 mesh (both hemispheres), a sparse (20484, 20484) bool matrix."""
    import nibabel as nib
    import scipy.sparse as sp

    rows, cols, offset = [], [], 0
    for path in _sphere_files():
        try:
            img = nib.load(path)
            faces = np.asarray(img.darrays[1].data, np.int64) + offset
            offset += len(img.darrays[0].data)
        except (OSError, IndexError, ValueError) as exc:
            raise DataError(path, f"cannot read the fsaverage5 mesh faces: {exc}") from None
        for a, b in ((0, 1), (1, 2), (2, 0)):
            rows += [faces[:, a], faces[:, b]]
            cols += [faces[:, b], faces[:, a]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, bool), (r, c)), shape=(offset, offset))


def jitter_mask(mask: np.ndarray, adjacency, fraction: float, rng: np.random.Generator,
                allowed: np.ndarray | None = None) -> np.ndarray:
    """One subject's version of a network: its border moved at random by one vertex ring.

    Each border vertex (in ``mask``, with a neighbour outside) is dropped with probability
    ``fraction``; each outer neighbour (outside, with a neighbour inside, and ``allowed``) is
    added with probability ``fraction``.

    Parameters
    ----------
    mask : bool array of shape (V,)
    adjacency : sparse (V, V) matrix, e.g. :func:`sphere_adjacency`
    fraction : float in [0, 1]
    rng : Generator
    allowed : bool array of shape (V,), optional
        Vertices that may be added (e.g. not the medial wall).

    Returns
    -------
    bool array of shape (V,)
    """
    m = np.asarray(mask, bool)
    n_out = np.asarray(adjacency @ (~m).astype(np.int32)).ravel()
    n_in = np.asarray(adjacency @ m.astype(np.int32)).ravel()
    border = m & (n_out > 0)
    outer = ~m & (n_in > 0)
    if allowed is not None:
        outer &= np.asarray(allowed, bool)
    u = rng.random((2, m.size))
    return (m & ~(border & (u[0] < fraction))) | (outer & (u[1] < fraction))


def smooth_gain(xyz: np.ndarray, mask: np.ndarray, rng: np.random.Generator, n_waves: int = 4) -> np.ndarray:
    """A smooth positive gain map inside ``mask``.

    Sum of ``n_waves`` plane waves ``cos(2 u_k . x + phi_k)`` over the unit sphere (wavelength
    ~pi radians of arc, so it varies slowly across a network), min-max scaled to [0.5, 1] inside
    the mask and then divided by its root-mean-square there.

    Parameters
    ----------
    xyz : array of shape (V, 3), unit vectors
    mask : bool array of shape (V,)

    Returns
    -------
    array of shape (V,): 0 outside ``mask``, RMS 1 inside, max/min = 2 (unless flat).
    """
    u = rng.standard_normal((n_waves, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    phi = rng.uniform(0.0, 2.0 * np.pi, n_waves)
    field = np.cos(2.0 * xyz[mask] @ u.T + phi).sum(axis=1)
    span = field.max() - field.min()
    g = 0.5 + 0.5 * (field - field.min()) / span if span > 0 else np.ones_like(field)
    out = np.zeros(len(mask))
    out[mask] = g / np.sqrt(np.mean(g**2))
    return out
