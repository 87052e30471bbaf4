"""Significance: Benjamini-Hochberg FDR, and the group-level one-sample test per atom."""

from __future__ import annotations

import numpy as np
from scipy import special

from ..errors import ConfigError, DataError
from .glm import t_to_z, two_sided_p

__all__ = ["fdr_bh", "group_one_sample", "two_sided_p"]


def fdr_bh(p: np.ndarray, alpha: float = 0.05, axis: int | None = -1) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini-Hochberg step-up procedure.

    Parameters
    ----------
    p : array of p-values, any shape
    alpha : float
        False discovery rate.
    axis : int or None
        Axis holding the tests of one family (``-1``: one family per row of a (K, V) map,
        i.e. per atom); None: all values form one family.

    Returns
    -------
    reject : bool array like ``p``
    q : array like ``p``
        BH-adjusted p-values (``scipy.stats.false_discovery_control(p, method="bh")``).
    """
    if not 0 < alpha < 1:
        raise ConfigError(f"fdr_alpha must be in (0, 1), got {alpha}")
    p = np.asarray(p, dtype=np.float64)
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise DataError(None, "p-values must lie in [0, 1]", "p")
    if axis is None:
        rej, q = fdr_bh(p.reshape(-1), alpha, -1)
        return rej.reshape(p.shape), q.reshape(p.shape)
    pm = np.moveaxis(p, axis, -1)
    m = pm.shape[-1]
    order = np.argsort(pm, axis=-1, kind="stable")
    ps = np.take_along_axis(pm, order, -1)
    qs = ps * m / np.arange(1, m + 1)
    qs = np.minimum.accumulate(qs[..., ::-1], axis=-1)[..., ::-1]
    q = np.empty_like(pm)
    np.put_along_axis(q, order, np.minimum(qs, 1.0), -1)
    q = np.moveaxis(q, -1, axis)
    return q <= alpha, q


def group_one_sample(maps: np.ndarray) -> dict[str, np.ndarray]:
    """One-sample t-test across subjects, per atom and per target.

    Parameters
    ----------
    maps : array of shape (n_subjects, n_atoms, n_targets)
        Subject-level maps (GLM z or betas) on a common space.

    Returns
    -------
    dict with ``t``, ``p`` (two-sided), ``z`` (signed z with the same two-sided p, from the
    one-sided tail as nilearn's ``z_score``), ``mean``, all (n_atoms, n_targets); ``dof`` = n_subjects - 1.
    """
    M = np.asarray(maps, dtype=np.float64)
    if M.ndim != 3:
        raise DataError(None, f"maps must be (n_subjects, n_atoms, n_targets), got shape {M.shape}", "maps")
    S = M.shape[0]
    if S < 2:
        raise DataError(None, f"a group test needs at least 2 subjects, got {S}", "subjects")
    mean = M.mean(0)
    sd = M.std(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > 0, mean / (sd / np.sqrt(S)), 0.0)
    dof = S - 1
    p = 2 * special.stdtr(dof, -np.abs(t))
    _, z = t_to_z(t, dof)
    return {"t": t, "p": p, "z": z, "mean": mean, "dof": float(dof)}
