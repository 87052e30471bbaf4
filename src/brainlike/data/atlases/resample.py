"""Nearest-neighbour resampling of labels between meshes registered to one sphere (pure)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _unit(xyz: np.ndarray) -> np.ndarray:
    xyz = np.asarray(xyz, dtype=np.float64)
    return xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


def nearest_on_sphere(source_xyz: np.ndarray, target_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest source vertex of every target vertex on a common (registered) sphere.

    Both point sets are projected onto the unit sphere first, so spheres of different radii
    (fs_LR and fsaverage both use 100 mm, but nothing relies on it) compare directly.

    Parameters
    ----------
    source_xyz : array of shape (n_source, 3)
    target_xyz : array of shape (n_target, 3)

    Returns
    -------
    index : array of int64, shape (n_target,)
        Row of ``source_xyz`` nearest to each target vertex.
    angle_deg : array of float64, shape (n_target,)
        Great-circle distance to it, in degrees.
    """
    chord, index = cKDTree(_unit(source_xyz)).query(_unit(target_xyz), k=1)
    angle = np.degrees(2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0)))
    return index.astype(np.int64), angle


def resample_labels(source_labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Labels of the target mesh: ``source_labels[index]``.

    Parameters
    ----------
    source_labels : array of int, shape (n_source,)
    index : array of int, shape (n_target,)
        From :func:`nearest_on_sphere`.

    Returns
    -------
    array of int16, shape (n_target,)
    """
    out = np.asarray(source_labels)[index]
    if out.size and (out.min() < np.iinfo(np.int16).min or out.max() > np.iinfo(np.int16).max):
        raise ValueError("labels do not fit in int16")
    return out.astype(np.int16)
