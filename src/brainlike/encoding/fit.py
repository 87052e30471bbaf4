"""Per-subject and group drivers: everything the ``encode`` stage computes, as arrays.

Shapes: T = TRs of the run, K = atoms, V = targets (20,484 fsaverage5 vertices or n ROIs),
S = subjects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import EncodingConfig
from ..errors import DataError
from .design import drift_basis, highpass, make_design
from .glm import run_glm_ar1
from .ridge import cross_validated_ridge, permutation_test_r
from .sparse import sparse_fit
from .stats import fdr_bh, group_one_sample


def fit_subject(
    atoms: np.ndarray,
    data: np.ndarray,
    confounds: pd.DataFrame | np.ndarray | None,
    frame_times: np.ndarray,
    cfg: EncodingConfig,
    atom_names: Sequence[str] | None = None,
    glm: bool = True,
) -> dict[str, np.ndarray]:
    """GLM z-maps, cross-validated ridge scores and significance for one subject's run.

    Parameters
    ----------
    atoms : array of shape (T, K)
        Fixed regressors on this run's TR grid (temporal atoms, a random twin's atoms, or
        baseline regressors).
    data : array of shape (T, V)
        Brain data of the run.
    confounds : DataFrame or array of shape (T, n_confounds), or None
        Nuisance regressors (motion...); in the GLM design and removed with the drift basis
        inside every ridge split.
    frame_times : array of shape (T,)
        Acquisition times (s), for the cosine drift basis.
    cfg : EncodingConfig
    atom_names : sequence of K str, optional
    glm : bool
        Fit the GLM (False: ridge only, e.g. for baselines on ROI data).

    Returns
    -------
    dict of arrays:
        ``z``, ``t``, ``beta``, ``p`` (two-sided), ``q`` (BH per atom), ``significant`` (bool):
        (K, V) GLM contrast maps, one per atom (signed: + activation, - deactivation);
        ``rho`` (V,) AR(1) coefficient; ``dof`` ();
        ``r``, ``r2`` (V,) fold-mean held-out Pearson r and R^2 of the ridge model;
        ``alpha`` (n_folds, V) chosen ridge penalties;
        ``r_p``, ``r_q``, ``r_significant`` (V,) permutation p, BH q and decision (when
        ``cfg.n_permutations > 0``);
        ``sparse_codes`` (K, V), ``sparse_r2`` (V,) (when ``cfg.lambda_f`` is set).
    """
    A = np.asarray(atoms, dtype=np.float64)
    Y = np.asarray(data)
    if A.ndim != 2 or Y.ndim != 2 or A.shape[0] != Y.shape[0]:
        raise DataError(None, f"atoms (T, K) and data (T, V) must share T; got {A.shape}, {Y.shape}", "data")
    K = A.shape[1]
    out: dict[str, np.ndarray] = {}
    X, names = make_design(A, frame_times, confounds, cfg.high_pass_s, atom_names)
    conf = _confound_block(X, names, K)  # after make_design dropped constant columns
    if glm:
        g = run_glm_ar1(Y, X, K, bins=cfg.ar_bins, batch_size=cfg.target_batch, device=cfg.device)
        rej, q = fdr_bh(g["p_two_sided"], cfg.fdr_alpha, axis=-1)
        out.update(z=g["z"], t=g["t"], beta=g["effect"], p=g["p_two_sided"], q=q, significant=rej,
                   rho=g["rho"], dof=np.float64(g["dof"]))
    common = dict(n_folds=cfg.n_folds, gap=cfg.gap_trs, frame_times=frame_times, high_pass_s=cfg.high_pass_s,
                  confounds=conf, highpass=cfg.highpass, batch_size=cfg.target_batch, device=cfg.device,
                  dtype=cfg.dtype)
    cv = cross_validated_ridge(A, Y, cfg.alphas, n_inner_folds=cfg.n_inner_folds, **common)
    out.update(r=cv["r"], r2=cv["r2"], alpha=cv["alpha"])
    if cfg.n_permutations > 0:
        perm = permutation_test_r(A, Y, cv["alpha_index"], cfg.alphas, cfg.n_permutations, cfg.seed,
                                  min(cfg.min_shift_trs, Y.shape[0] // 2), **common)
        rej, q = fdr_bh(perm["p"], cfg.fdr_alpha)
        out.update(r_p=perm["p"], r_q=q, r_significant=rej)
    if cfg.lambda_f is not None:
        B = drift_basis(frame_times, cfg.high_pass_s)
        B = B if conf is None else np.column_stack([conf, B])
        sp = sparse_fit(highpass(A, B), highpass(Y, B), cfg.lambda_f, batch_size=cfg.target_batch,
                        device=cfg.device, dtype=cfg.dtype)
        out.update(sparse_codes=sp["codes"], sparse_r2=sp["r2"])
    return out


def _n_conf(names: list[str], K: int) -> int:
    return sum(1 for n in names[K:] if not (n.startswith("drift_") or n == "constant"))


def _confound_block(X: np.ndarray, names: list[str], K: int) -> np.ndarray | None:
    n = _n_conf(names, K)
    return X[:, K:K + n] if n else None


def fit_group(subject_z: Sequence[np.ndarray] | np.ndarray, fdr_alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Group maps: one-sample t-test across subjects per atom and target, with BH-FDR per atom.

    Parameters
    ----------
    subject_z : array of shape (S, K, V) or sequence of S arrays (K, V)
        Subject-level GLM z-maps on a common space.
    fdr_alpha : float

    Returns
    -------
    dict with ``z``, ``t``, ``p`` (two-sided), ``q``, ``mean`` of shape (K, V), ``significant``
    (bool, (K, V)), ``positive`` / ``negative`` (bool, significant with z > 0 / z < 0), ``dof``.
    """
    g = group_one_sample(np.stack(list(subject_z)) if not isinstance(subject_z, np.ndarray) else subject_z)
    rej, q = fdr_bh(g["p"], fdr_alpha, axis=-1)
    g.update(q=q, significant=rej, positive=rej & (g["z"] > 0), negative=rej & (g["z"] < 0))
    return g
