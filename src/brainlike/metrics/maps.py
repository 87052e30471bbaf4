"""Organization metrics of the thresholded maps: cross-subject consistency and redundancy.

Maps are bool, sign axis first (0 '+', 1 '-'); two maps agree by their Dice, signed maps only
where the signs match.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd

from ..errors import DataError
from .links import fbn_couplings


def signed_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two signed maps, each bool (2, n_vertices) (positive row, negative row).

    ``(2 |A+ & B+| + 2 |A- & B-|) / (|A+| + |A-| + |B+| + |B-|)``: vertices count as shared
    only with the same sign. NaN when both maps are empty.
    """
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    den = a.sum() + b.sum()
    if den == 0:
        return float("nan")
    return float(2.0 * ((a[0] & b[0]).sum() + (a[1] & b[1]).sum()) / den)


def cross_subject_consistency(subject_maps: np.ndarray) -> tuple[float, np.ndarray]:
    """``cross_subject_consistency``: mean pairwise Dice of subject-level maps, per atom.

    ``csc_k = mean_{i<j} signedDice(M_ik, M_jk)`` over subject pairs where at least one of the
    two maps is non-empty (:func:`signed_dice`); model value = mean of ``csc_k`` over atoms
    where it is defined.

    Parameters
    ----------
    subject_maps : array of bool, shape (n_subjects, n_atoms, 2, n_vertices)

    Returns
    -------
    value : float
    per_atom : array of float64, shape (n_atoms,) (NaN where undefined)
    """
    m = np.asarray(subject_maps, bool)
    if m.ndim != 4 or m.shape[2] != 2:
        raise DataError(None, f"expected subject maps of shape (n_subjects, n_atoms, 2, V), got {m.shape}", field="subject_maps")
    n_sub, n_atoms = m.shape[:2]
    per = np.full(n_atoms, np.nan)
    if n_sub >= 2:
        for k in range(n_atoms):
            vals = [signed_dice(m[i, k], m[j, k]) for i, j in combinations(range(n_sub), 2)]
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                per[k] = float(np.mean(vals))
    ok = np.isfinite(per)
    return (float(per[ok].mean()) if ok.any() else float("nan")), per


def redundancy(links: pd.DataFrame, maps: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    """``redundancy`` (paper B): atoms linked to the same FBN and how alike their maps are.

    For FBN f with linked atoms k_1..k_m and coupling signs s_k:
    ``n_f = m`` and ``dice_f = mean_{i<j} Dice(M_{k_i, s_i}, M_{k_j, s_j})`` over their
    thresholded group maps (each atom's map of the sign it is linked with); ``dice_f`` is
    None when m < 2.

    Parameters
    ----------
    maps : array of bool, shape (n_atoms, 2, n_vertices)

    Returns
    -------
    dict
        ``{fbn: {'n_atoms': m, 'mean_dice': dice_f}}`` for FBNs with >= 1 link.
    """
    maps = np.asarray(maps, bool)
    out = {}
    for fbn, coupled in fbn_couplings(links).items():
        ids = sorted(coupled)
        vals = []
        for i, j in combinations(ids, 2):
            a, b = maps[i, 0 if coupled[i] > 0 else 1], maps[j, 0 if coupled[j] > 0 else 1]
            den = a.sum() + b.sum()
            vals.append(2.0 * (a & b).sum() / den if den else 0.0)
        out[fbn] = {"n_atoms": len(ids), "mean_dice": float(np.mean(vals)) if vals else None}
    return out
