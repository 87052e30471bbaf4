"""Binary maps from z-maps: Benjamini-Hochberg FDR or top fraction, positive and negative apart.

README "Matching atoms to brain networks". Every function is pure on arrays. Vertices outside ``valid``
(the medial wall, constant vertices) and non-finite z are never tested: they are neither
counted in the FDR's number of tests nor ever set in an output map.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

from ..errors import DataError

SIGNS = ("+", "-")


def p_from_z(z: np.ndarray) -> np.ndarray:
    """Two-sided p-values of standard-normal z: ``p = 2 * (1 - Phi(|z|))``.

    Parameters
    ----------
    z : array of any shape

    Returns
    -------
    array of float64, same shape (NaN where ``z`` is NaN)
    """
    z = np.asarray(z, dtype=np.float64)
    return 2.0 * ndtr(-np.abs(z))


def bh_reject(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg step-up procedure.

    Sort the m p-values, find the largest k with ``p_(k) <= alpha * k / m`` and reject the
    k smallest. NaN p-values are not tests (they do not count in m and are never rejected).

    Parameters
    ----------
    p : array of shape (n,)
    alpha : float in (0, 1)
        False discovery rate.

    Returns
    -------
    array of bool, shape (n,)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    p = np.asarray(p, dtype=np.float64)
    out = np.zeros(p.shape, dtype=bool)
    tested = np.flatnonzero(np.isfinite(p))
    m = tested.size
    if m == 0:
        return out
    pt = p[tested]
    order = np.argsort(pt, kind="stable")
    below = pt[order] <= alpha * np.arange(1, m + 1) / m
    if below.any():
        k = int(np.flatnonzero(below)[-1]) + 1
        out[tested[order[:k]]] = True
    return out


def threshold_map(
    z: np.ndarray,
    *,
    method: str = "fdr",
    fdr_alpha: float = 0.05,
    top_fraction: float = 0.05,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Positive and negative binary maps of one z-map.

    Parameters
    ----------
    z : array of shape (n_vertices,)
        Group (or subject) z-map of one atom.
    method : {'fdr', 'top_fraction'}
        ``fdr``: BH-FDR at ``fdr_alpha`` on two-sided p-values from z over the valid vertices
        (one family for both signs), then split by the sign of z.
        ``top_fraction``: the ``ceil(top_fraction * n_valid)`` valid vertices with the largest
        z among those with z > 0 form the positive map; the same on -z for the negative map.
    fdr_alpha, top_fraction : float
    valid : array of bool, shape (n_vertices,), optional
        Vertices that may be tested (cortex, non-constant). Default: all finite vertices.

    Returns
    -------
    array of bool, shape (2, n_vertices)
        Row 0: positive map ('+'), row 1: negative map ('-'); the rows are disjoint.
    """
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 1:
        raise DataError(None, f"expected one z-map of shape (n_vertices,), got shape {z.shape}", field="z")
    ok = np.isfinite(z)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != z.shape:
            raise DataError(None, f"valid mask shape {valid.shape} != z-map shape {z.shape}", field="valid")
        ok &= valid
    out = np.zeros((2, z.size), dtype=bool)
    if method == "fdr":
        p = np.where(ok, p_from_z(z), np.nan)
        sig = bh_reject(p, fdr_alpha)
        out[0] = sig & (z > 0)
        out[1] = sig & (z < 0)
    elif method == "top_fraction":
        if not 0 < top_fraction < 1:
            raise ValueError(f"top_fraction must be in (0, 1), got {top_fraction}")
        n_keep = int(np.ceil(top_fraction * ok.sum()))
        for row, signed in enumerate((z, -z)):
            cand = np.flatnonzero(ok & (signed > 0))
            if cand.size and n_keep:
                keep = cand[np.argsort(-signed[cand], kind="stable")[:n_keep]]
                out[row, keep] = True
    else:
        raise ValueError(f"method must be 'fdr' or 'top_fraction', got {method!r}")
    return out


def threshold_maps(
    z: np.ndarray,
    *,
    method: str = "fdr",
    fdr_alpha: float = 0.05,
    top_fraction: float = 0.05,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`threshold_map` for every map along the leading axes.

    Parameters
    ----------
    z : array of shape (..., n_vertices)
        E.g. (n_atoms, n_vertices) group maps or (n_subjects, n_atoms, n_vertices).

    Returns
    -------
    array of bool, shape (..., 2, n_vertices)
        Sign axis second to last: 0 = '+', 1 = '-'.
    """
    z = np.asarray(z)
    flat = z.reshape(-1, z.shape[-1])
    out = np.stack(
        [threshold_map(r, method=method, fdr_alpha=fdr_alpha, top_fraction=top_fraction, valid=valid) for r in flat]
    ) if flat.shape[0] else np.zeros((0, 2, z.shape[-1]), dtype=bool)
    return out.reshape(*z.shape[:-1], 2, z.shape[-1])
