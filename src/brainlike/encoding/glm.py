"""Batched GLM with AR(1) prewhitening: nilearn's ``run_glm(noise_model="ar1")`` + t contrasts.

nilearn's algorithm, reproduced step by step (``nilearn/glm/first_level/first_level.py`` and
``nilearn/glm/regression.py``, 0.14):

1. OLS fit with ``pinv(X)``; residuals ``R = Y - X beta``.
2. Yule-Walker AR(1) coefficient per target from the residuals minus their *global* mean
   (``_yule_walker``: ``rho = r1 / r0`` with ``r0 = sum y^2 / T^2``, ``r1 = sum y_t y_{t+1} /
   ((T - 1) T)``).
3. Binning: ``rho_b = trunc(rho * bins) / bins``.
4. Per bin: whiten design and data (``w[1:] = x[1:] - rho_b x[:-1]``, first row kept),
   ``pinv`` of the whitened design, beta, whitened residuals, dispersion ``SSE / (T - P)``,
   ``cov = pinv pinv^T``.
5. t contrast ``c``: ``t = c beta / sqrt(max(c cov c^T * dispersion, 1e-50))`` with
   ``dof = T - rank(X)``; one-sided ``p = t.sf(t, dof)``; ``z`` from ``p`` (``isf``) or from
   ``1 - p`` (``ppf``) whichever is stable, with nilearn's clipping.

One departure, for designs that are not of full column rank. nilearn takes the rank, and its
``pinv`` keeps directions, down to ``max(T, P)`` float64 eps of the largest singular value; the
atoms come from float32 activations, so a direction that small is their rounding, not signal
(a vision model's 64 atoms over a 210-TR movie of ~52 images have rank 48: 16 singular values
at 1e-8 of the largest). Here the rank is that of the column-scaled design at
``_RANK_RTOL`` (1e-6, ~8 float32 eps): a full-rank design is fitted exactly as before; a
rank-deficient one keeps its ``rank`` directions (of the column-scaled whitened design, so
that a column's units do not decide which), takes ``dof = T - rank``, and a contrast outside
the design's row space -- whose minimum-norm estimate is set by rounding -- is *not tested*:
its effect, t, p and z are NaN (:func:`glm_contrasts`, ``estimable``).

Where nilearn loops (one ``ARModel`` per bin, then one masked pass per bin *per contrast*),
this computes one pseudo-inverse per bin and handles every target of a bin and every contrast
with matrix products, on CPU or CUDA. Agreement with nilearn: z within 1e-8 in float64 (see
``tests/test_encoding.py``); a target whose ``rho * bins`` lies within rounding error (~1e-13)
of an integer could fall in the neighbouring bin in one of the two codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from ._backend import check_device, to_numpy, to_tensor
from .stats import t_to_z, two_sided_p  # statistics without torch, used here

_TINY = 1e-50  # nilearn DEF_TINY
_SPAN_RTOL = 1e-10  # share of an atom's whitened norm outside the nuisance span below which it has none
# singular values of the column-scaled design below this share of the largest are the float32
# rounding of the atoms (~8 eps), not directions of the data: they do not count in the rank
_RANK_RTOL = 1e-6
# a (column-scaled) contrast with more than this share of its norm outside the row space is not estimable
_ESTIMABLE_RTOL = 1e-3


@dataclass
class GLMResult:
    """Fitted AR(1) GLM for V targets and a design with P columns.

    Attributes
    ----------
    beta : array of shape (P, V)
    dispersion : array of shape (V,)
        Whitened residual variance ``SSE / (T - P)``.
    rho : array of shape (V,)
        Binned AR(1) coefficient used to whiten each target.
    bin_index : array of shape (V,), int
        Index of each target's bin in ``bin_values``.
    bin_values : array of shape (n_bins,)
    bin_cov : array of shape (n_bins, P, P)
        ``pinv(Xw) pinv(Xw)^T`` of each bin's whitened design.
    dof : float
        Residual degrees of freedom ``T - rank(X)``.
    rank : int
        Rank of the column-scaled design at ``_RANK_RTOL`` (``P`` for a full-rank design).
    row_basis : array of shape (rank, P) or None
        Orthonormal basis of the column-scaled design's row space (None at full rank: every
        contrast is estimable).
    col_scale : array of shape (P,) or None
        The column norms that scale it.
    marginal_t : array of shape (n_marginal, V) or None
        t of each of the first ``n_marginal`` columns fitted *alone* with the nuisance columns
        (``X[:, n_marginal:]``), whitened with the same ``rho`` (:func:`ar1_glm` ``marginal``).
    marginal_dof : float or None
        ``T - rank(X[:, n_marginal:]) - 1``.
    """

    beta: np.ndarray
    dispersion: np.ndarray
    rho: np.ndarray
    bin_index: np.ndarray
    bin_values: np.ndarray
    bin_cov: np.ndarray
    dof: float
    marginal_t: np.ndarray | None = None
    marginal_dof: float | None = None
    rank: int | None = None
    row_basis: np.ndarray | None = None
    col_scale: np.ndarray | None = None

    def estimable(self, contrasts: np.ndarray) -> np.ndarray:
        """Whether each contrast row (P entries) lies in the design's row space, (n_contrasts,) bool."""
        C = np.atleast_2d(np.asarray(contrasts, dtype=np.float64))
        if self.row_basis is None:
            return np.ones(C.shape[0], dtype=bool)
        Cs = C / self.col_scale  # the contrast of the scaled design's coefficients
        out = Cs - (Cs @ self.row_basis.T) @ self.row_basis
        norm = np.linalg.norm(Cs, axis=1)
        return np.linalg.norm(out, axis=1) <= _ESTIMABLE_RTOL * np.where(norm > 0, norm, 1.0)


def pinv(A: torch.Tensor, rank: int | None = None) -> torch.Tensor:
    """Moore-Penrose pseudo-inverse as ``scipy.linalg.pinv`` (SVD, ``rtol = max(M, N) eps``).

    ``torch.linalg.pinv`` gives the same matrix but is an order of magnitude slower on CPU for
    the tall, thin designs used here. ``rank``: keep that many leading directions instead.
    """
    U, s, Vh = torch.linalg.svd(A, full_matrices=False)
    if rank is not None:
        return (Vh[:rank].T / s[:rank]) @ U[:, :rank].T
    tol = s.max() * max(A.shape) * torch.finfo(A.dtype).eps
    keep = s > tol
    return (Vh[keep].T / s[keep]) @ U[:, keep].T


def design_rank(X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Rank of ``X`` with its columns scaled to unit norm, at ``_RANK_RTOL``.

    Returns
    -------
    rank : int
    row_basis : array of shape (rank, P)
        Orthonormal basis of the scaled design's row space.
    col_scale : array of shape (P,)
        The column norms (1 for an all-zero column, which then adds nothing to the rank).
    """
    scale = np.sqrt((X * X).sum(0))
    scale = np.where(scale > 0, scale, 1.0)
    _, s, Vh = np.linalg.svd(X / scale, full_matrices=False)
    rank = int((s > s[0] * _RANK_RTOL).sum()) if s.size and s[0] > 0 else 0
    return rank, Vh[:rank], scale


def _whiten(A: torch.Tensor, rho: float) -> torch.Tensor:
    out = A.clone()
    out[1:] -= rho * A[:-1]
    return out


def ar1_glm(
    Y: np.ndarray,
    X: np.ndarray,
    bins: int = 100,
    batch_size: int = 16384,
    device: str = "cpu",
    marginal: int = 0,
) -> GLMResult:
    """Fit ``Y ~ X`` with AR(1) prewhitening for every column of ``Y`` (nilearn's ``run_glm``).

    Parameters
    ----------
    Y : array of shape (n_trs, n_targets)
        Brain data (vertices or ROIs).
    X : array of shape (n_trs, n_regressors)
        Design matrix (see :func:`~brainlike.encoding.design.make_design`).
    bins : int
        Number of AR(1) bins per unit (nilearn's ``bins``).
    batch_size : int
        Targets processed at once (bounds memory: about ``3 * n_trs * batch_size`` floats).
    device : str
        Torch device.
    marginal : int
        Also fit each of the first ``marginal`` columns (the atoms) *alone* with the remaining
        columns (confounds, drift, constant): the marginal model ``Y ~ x_k + X[:, marginal:]``,
        whose t is the atom's whole effect rather than its unique one. By Frisch-Waugh-Lovell,
        residualising the whitened atoms and data on the whitened nuisance columns once per
        AR bin gives every atom's marginal t with one (marginal, T) x (T, V) product. The noise
        model is the joint fit's: each target is whitened with the same binned ``rho`` (the
        marginal residuals still hold the other atoms' signal, which would bias an AR estimate).

    Returns
    -------
    GLMResult
    """
    Y = np.asarray(Y)
    X = np.asarray(X, dtype=np.float64)
    if Y.ndim != 2 or X.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise DataError(None, f"Y (n_trs, n_targets) and X (n_trs, n_regressors) must share n_trs; "
                        f"got Y {Y.shape}, X {X.shape}", "data")
    if not np.isfinite(Y).all():
        raise DataError(None, "brain data contain NaN/inf", "data")
    T, P = X.shape
    V = Y.shape[1]
    if T <= P:
        raise DataError(None, f"{T} TRs cannot fit {P} regressors (need n_trs > n_regressors)", "design")
    rank, row_basis, scale = design_rank(X)
    if rank == 0:
        raise DataError(None, "the design has no column with a non-zero value", "design")
    full = rank == P
    dev = check_device(device)
    f64 = torch.float64
    Xt = to_tensor(X, dev, f64)
    scale_t = to_tensor(scale, dev, f64)

    def _pinv(A: torch.Tensor) -> torch.Tensor:
        # full rank: nilearn's pinv. Otherwise the rank leading directions of the column-scaled
        # design, mapped back to the coefficients of X (same fitted values; for an estimable
        # contrast the same estimate as any generalised inverse)
        return pinv(A) if full else pinv(A / scale_t, rank) / scale_t[:, None]

    pinv0 = _pinv(Xt)

    # pass 1: OLS residual moments per target (global-mean correction done afterwards, exactly
    # as nilearn's ``y = x - x.mean()`` over the whole residual matrix)
    s1, s2, s01, s_head, s_tail = (np.empty(V) for _ in range(5))
    for a in range(0, V, batch_size):
        b = min(V, a + batch_size)
        Yb = to_tensor(Y[:, a:b], dev, f64)
        R = Yb - Xt @ (pinv0 @ Yb)
        s1[a:b] = to_numpy(R.sum(0))
        s2[a:b] = to_numpy((R * R).sum(0))
        s01[a:b] = to_numpy((R[:-1] * R[1:]).sum(0))
        s_head[a:b] = to_numpy(R[:-1].sum(0))
        s_tail[a:b] = to_numpy(R[1:].sum(0))
    m = s1.sum() / (V * T)
    r0 = (s2 - 2 * m * s1 + T * m * m) / (T * T)
    r1 = (s01 - m * (s_head + s_tail) + (T - 1) * m * m) / ((T - 1) * T)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = r1 / r0
    rho = np.where(np.isfinite(rho), rho, 0.0)  # all-constant residuals: no AR structure
    rho = np.trunc(rho * bins) / bins

    bin_values, bin_index = np.unique(rho, return_inverse=True)
    K = int(marginal)
    if not 0 <= K < P:
        raise DataError(None, f"marginal = {K}: expected 0 <= marginal < {P} design columns", "marginal")
    eps = np.abs(X).sum() * np.finfo(np.float64).eps
    mdof = float(T - np.linalg.matrix_rank(X[:, K:], eps) - 1) if K else None
    mt = np.empty((K, V)) if K else None
    beta = np.empty((P, V))
    disp = np.empty(V)
    covs = np.empty((len(bin_values), P, P))
    order = np.argsort(bin_index, kind="stable")
    bounds = np.searchsorted(bin_index[order], np.arange(len(bin_values) + 1))
    for j, r in enumerate(bin_values):
        Xw = _whiten(Xt, float(r))
        pw = _pinv(Xw)
        covs[j] = to_numpy(pw @ pw.T)
        if K:  # the whitened atoms without their nuisance part, and their squared norms
            Cw = Xw[:, K:]
            pc = pinv(Cw)
            Ar = Xw[:, :K] - Cw @ (pc @ Xw[:, :K])
            den = (Ar * Ar).sum(0)[:, None]
            # an atom inside the nuisance span has no marginal effect (t = 0); what is left of it
            # then is rounding, ~1e-30 of its norm, so the test is relative to that norm
            live = den > _SPAN_RTOL * (Xw[:, :K] * Xw[:, :K]).sum(0)[:, None]
            den = torch.where(live, den, torch.ones_like(den))
        idx_all = order[bounds[j]:bounds[j + 1]]
        for a in range(0, idx_all.size, batch_size):
            idx = idx_all[a:a + batch_size]
            Yw = _whiten(to_tensor(Y[:, idx], dev, f64), float(r))
            B = pw @ Yw
            W = Yw - Xw @ B
            beta[:, idx] = to_numpy(B)
            disp[idx] = to_numpy((W * W).sum(0)) / (T - rank)
            if K:
                Yr = Yw - Cw @ (pc @ Yw)
                num = Ar.T @ Yr  # (K, Vb)
                sse = ((Yr * Yr).sum(0)[None] - num * num / den).clamp_min(0)
                var = sse / mdof / den
                mt[:, idx] = to_numpy(torch.where(live, num / den / torch.sqrt(var.clamp_min(_TINY)), 0.0))
    dof = float(T - rank)
    return GLMResult(beta, disp, rho, bin_index, bin_values, covs, dof, mt, mdof, rank,
                     None if full else row_basis, None if full else scale)


def glm_contrasts(fit: GLMResult, contrasts: np.ndarray) -> dict[str, np.ndarray]:
    """t contrasts of a fitted GLM, all contrasts and targets at once.

    Parameters
    ----------
    fit : GLMResult
    contrasts : array of shape (n_contrasts, P)
        One row per t contrast (shorter rows are zero-padded, as nilearn does).

    Returns
    -------
    dict with arrays of shape (n_contrasts, V): ``effect``, ``variance``, ``t``, ``p``
    (one-sided, nilearn's), ``p_two_sided``, ``z`` (signed), all NaN in the rows of a contrast
    that is not estimable (outside the design's row space: not tested); ``estimable``
    (n_contrasts,) bool; and ``dof`` (float).
    """
    C = np.atleast_2d(np.asarray(contrasts, dtype=np.float64))
    P = fit.beta.shape[0]
    if C.shape[1] > P:
        raise DataError(None, f"contrast has {C.shape[1]} entries for a {P}-column design", "contrasts")
    if C.shape[1] < P:
        C = np.pad(C, ((0, 0), (0, P - C.shape[1])))
    effect = C @ fit.beta
    cvc = np.einsum("cp,bpq,cq->cb", C, fit.bin_cov, C)  # (n_contrasts, n_bins)
    variance = cvc[:, fit.bin_index] * fit.dispersion[None, :]
    # nilearn: sd = sqrt(var); Contrast stores sd**2 and divides by sqrt(max(var, tiny))
    variance = np.sqrt(variance) ** 2
    t = effect / np.sqrt(np.maximum(variance, _TINY))
    ok = fit.estimable(C)
    if not ok.all():
        effect, variance, t = (np.where(ok[:, None], a, np.nan) for a in (effect, variance, t))
    p, z = t_to_z(t, fit.dof)
    return {
        "effect": effect,
        "variance": variance,
        "t": t,
        "p": p,
        "p_two_sided": two_sided_p(z),
        "z": z,
        "estimable": ok,
        "dof": fit.dof,
    }


def run_glm_ar1(
    Y: np.ndarray,
    X: np.ndarray,
    n_atoms: int,
    bins: int = 100,
    batch_size: int = 16384,
    device: str = "cpu",
    marginal: bool = False,
) -> dict[str, np.ndarray]:
    """AR(1) GLM and one t contrast per atom (the first ``n_atoms`` design columns).

    Parameters
    ----------
    Y : array of shape (n_trs, n_targets)
    X : array of shape (n_trs, P)
        Design with the atoms first.
    n_atoms : int
    marginal : bool
        Also each atom's marginal fit (the atom alone with the nuisance columns; :func:`ar1_glm`).

    Returns
    -------
    dict with ``z``, ``t``, ``p`` (one-sided), ``p_two_sided``, ``effect`` (= beta of the atom),
    ``variance``, all of shape (n_atoms, n_targets); ``beta`` (P, n_targets); ``rho``
    (n_targets,); ``dof``; with ``marginal``: ``marginal_t``, ``marginal_z`` (n_atoms,
    n_targets) and ``marginal_dof``.
    """
    fit = ar1_glm(Y, X, bins=bins, batch_size=batch_size, device=device, marginal=n_atoms if marginal else 0)
    out = glm_contrasts(fit, np.eye(n_atoms, X.shape[1]))
    out["beta"] = fit.beta
    out["rho"] = fit.rho
    if marginal:
        out["marginal_t"] = fit.marginal_t
        out["marginal_z"] = t_to_z(fit.marginal_t, fit.marginal_dof)[1]
        out["marginal_dof"] = fit.marginal_dof
    return out
