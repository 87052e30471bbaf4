"""Organization metrics of the temporal atoms: within-FBN consistency, diversity and their balance.

Each compares the time courses D_k of atoms (Pearson r over TRs), over the atoms linked to one
FBN (consistency, signed by the coupling) or over all linked atoms (diversity).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from .links import fbn_couplings, linked_atoms


def _corr(atoms: np.ndarray, ids) -> np.ndarray:
    x = np.asarray(atoms, dtype=np.float64)[:, list(ids)]
    x = x - x.mean(0)
    norm = np.linalg.norm(x, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = x / norm
    return x.T @ x


def within_fbn_consistency(atoms: np.ndarray, links: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """``within_fbn_consistency``: how alike the atoms linked to one FBN behave over time.

    For FBN f with linked atoms k_1..k_m (m >= 2) and coupling signs s_k (+1 / -1, see
    :func:`fbn_couplings`): ``c_f = mean_{i<j} s_i s_j r(D_i, D_j)`` with r the Pearson
    correlation of the temporal atoms. The sign flip makes an atom that deactivates the
    network count as its negative (so two atoms that drive f the same way score +).
    Model value: ``mean_f c_f`` over FBNs with m >= 2 (NaN when there is none).

    Parameters
    ----------
    atoms : array of shape (n_trs, n_atoms)

    Returns
    -------
    value : float
    per_fbn : dict of str to float
    """
    return fbn_pair_means(atoms, fbn_couplings(links))[0]


def within_fbn_consistency_unsigned(atoms: np.ndarray, links: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """The same without the coupling signs: ``c_f = mean_{i<j} r(D_i, D_j)`` over the atoms
    linked to f with either sign -- do the atoms that land on one network share a time course?

    Returns
    -------
    value : float
    per_fbn : dict of str to float
    """
    return fbn_pair_means(atoms, fbn_couplings(links))[1]


@lru_cache(maxsize=64)
def _upper(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.triu_indices(n, 1)``, built once per size (the time bootstrap asks thousands of times)."""
    return np.triu_indices(n, 1)


def fbn_pair_means(atoms: np.ndarray, couplings: dict[str, dict[int, int]]) -> tuple[tuple, tuple]:
    """Signed and unsigned ``(value, per_fbn)``: the mean over FBNs with >= 2 linked atoms of the
    mean pairwise r, times s_i s_j for the signed one, from the couplings of :func:`fbn_couplings`
    (computed once when the atoms are resampled, links fixed)."""
    signed, unsigned = {}, {}
    for fbn, coupled in couplings.items():
        if len(coupled) < 2:
            continue
        ids = sorted(coupled)
        r = _corr(atoms, ids)
        upper = _upper(len(ids))
        s = np.array([coupled[k] for k in ids], dtype=np.float64)
        signed[fbn] = float(np.mean((r * np.outer(s, s))[upper]))
        unsigned[fbn] = float(np.mean(r[upper]))

    def model(per):
        return float(np.mean(list(per.values()))) if per else float("nan")

    return (model(signed), signed), (model(unsigned), unsigned)


def diversity(atoms: np.ndarray, links: pd.DataFrame) -> float:
    """``diversity = 1 - mean_{i<j} |r(D_i, D_j)|`` over pairs of linked atoms (any FBN, any sign).

    1: linked atoms are uncorrelated; 0: they are all the same time course up to sign.
    NaN with fewer than two linked atoms.
    """
    return diversity_of(atoms, linked_atoms(links))


def diversity_of(atoms: np.ndarray, ids: list[int]) -> float:
    """:func:`diversity` over the atoms ``ids`` (see :func:`linked_atoms`)."""
    if len(ids) < 2:
        return float("nan")
    r = _corr(atoms, ids)
    return float(1.0 - np.mean(np.abs(r[_upper(len(ids))])))


def balance(diversity_value: float, consistency_value: float) -> float:
    """``balance = 2 d c+ / (d + c+)``: harmonic mean of diversity d and consistency c+ = max(c, 0).

    Negative consistency counts as 0 (a harmonic mean of a negative number is meaningless);
    0 when d + c+ = 0; NaN when either is undefined.
    """
    d, c = float(diversity_value), float(consistency_value)
    if not (math.isfinite(d) and math.isfinite(c)):
        return float("nan")
    c = max(c, 0.0)
    return 0.0 if d + c <= 0 else 2.0 * d * c / (d + c)
