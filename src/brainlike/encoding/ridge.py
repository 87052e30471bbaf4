"""Cross-validated ridge encoding models: contiguous-block CV, per-target alpha, all targets at once.

Numerical cores (``himalaya.ridge._solvers`` style): one SVD of the training design per split
serves every alpha and every target (``coef = V diag(s / (s^2 + alpha_v)) U^T y_v``); targets
are processed in batches of ``batch_size`` columns to bound memory.

Cross-validation never shuffles TRs. The run is cut into ``n_folds`` contiguous test blocks;
training rows closer than ``gap`` TRs to the test block are dropped (the BOLD response and slow
noise leak across block edges). The per-target alpha is chosen on the training rows alone by an
inner contiguous-block CV (same gap), maximising the mean inner R^2.

Slow drifts (``highpass``):

- ``"fold"`` (default): inside every split the same nuisance basis (cosine drift up to
  ``1 / high_pass_s`` Hz, optional confounds, constant) is regressed out of the training rows
  of X and Y using the training rows only, and out of the test rows of X and Y using the test
  rows only; nothing of the test block enters the training data or the reverse.
- ``"run"``: the basis is regressed out of X and Y once over the whole run, then each split is
  centred on its training means.
- ``"none"``: only centring on the training means (an intercept); kept to show the failure
  mode: with slow drifts in both X and Y, held-out r comes out biased negative.

Building blocks: :mod:`.folds` (contiguous blocks), :mod:`.splits` (per-split nuisance handling,
:func:`~brainlike.encoding.splits.fold_arrays`), :mod:`.solvers` (SVD, predictions, scores).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ..errors import ConfigError, DataError
from ._backend import check_device, to_numpy, to_tensor, torch_dtype
from .design import drift_basis
from .folds import block_folds, inner_folds
from .solvers import _Decomp, _pearson, _predict, _predict_batch, _r2, _select_alpha, _shift_batch
from .splits import Highpass, _Prep, _residualise, _Split


def _setup(X, Y, frame_times, high_pass_s, confounds, highpass, device, dtype):
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    Y = np.asarray(Y)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise DataError(None, f"X (n_trs, n_features) and Y (n_trs, n_targets) must share n_trs; "
                        f"got X {X.shape}, Y {Y.shape}", "data")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise DataError(None, "X or Y contains NaN/inf", "data")
    if highpass not in ("fold", "run", "none"):
        raise ConfigError(f"highpass = {highpass!r}: expected 'fold', 'run' or 'none'")
    T = X.shape[0]
    ft = np.arange(T, dtype=np.float64) if frame_times is None else np.asarray(frame_times, np.float64)
    if ft.size != T:
        raise DataError(None, f"frame_times has {ft.size} values for {T} TRs", "frame_times")
    parts = [drift_basis(ft, high_pass_s if highpass != "none" else None)]
    if confounds is not None:
        C = np.asarray(confounds, dtype=np.float64)
        parts.insert(0, C[:, None] if C.ndim == 1 else C)
    basis = np.column_stack(parts)
    dev = check_device(device)
    dt = torch_dtype(dtype)
    if highpass == "run":
        Bt = to_tensor(basis, dev, torch.float64)
        X = to_numpy(_residualise(to_tensor(X, dev, torch.float64), Bt))
        Y = to_numpy(_residualise(to_tensor(Y, dev, torch.float64), Bt))
    return X, Y, basis, dev, dt


def cross_validated_ridge(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    n_folds: int = 5,
    gap: int = 5,
    n_inner_folds: int = 4,
    frame_times: np.ndarray | None = None,
    high_pass_s: float | None = 128.0,
    confounds: np.ndarray | None = None,
    highpass: Highpass = "fold",
    batch_size: int = 8192,
    device: str = "cpu",
    dtype: str = "float64",
    return_predictions: bool = False,
) -> dict[str, np.ndarray]:
    """Held-out performance of ridge encoding models with a per-target alpha.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
        Regressors (atoms, or baseline regressors), on the TR grid.
    Y : array of shape (n_trs, n_targets)
        Brain data.
    alphas : array of shape (n_alphas,)
        Grid of ridge penalties; each target gets one per outer fold by inner CV.
    n_folds, gap, n_inner_folds : int
        Outer contiguous blocks, TRs dropped at block edges, inner blocks for alpha selection.
    frame_times : array of shape (n_trs,), optional
        Acquisition times (s) for the cosine basis; default ``arange(n_trs)`` (TR = 1 s).
    high_pass_s : float or None
        Cosine drift cut-off period in seconds.
    confounds : array of shape (n_trs, n_confounds), optional
        Nuisance regressors removed together with the drift basis.
    highpass : {"fold", "run", "none"}
        See the module docstring.
    batch_size : int
        Targets per batch.
    device, dtype : str
        Torch device; "float64" (reference precision) or "float32".
    return_predictions : bool
        Also return the held-out predictions and data.

    Returns
    -------
    dict with
        ``r``, ``r2`` : arrays of shape (n_targets,) -- Pearson r and R^2 of the held-out
        predictions, averaged over the outer folds. The fold mean is the score to report: under
        no coupling each fold's r has expectation exactly 0, whereas r of the concatenated
        predictions carries a ratio bias (about -0.04 for 5 folds of 80 TRs and 8 regressors);
        ``r_concat``, ``r2_concat`` : arrays of shape (n_targets,), the same on all held-out
        rows concatenated (each TR predicted once);
        ``r_folds``, ``r2_folds`` : arrays of shape (n_folds, n_targets);
        ``alpha`` : array of shape (n_folds, n_targets), the alpha chosen in each fold;
        ``alpha_index`` : same, as indices into ``alphas``;
        ``test_index`` : array of shape (n_test_total,), the TR of each held-out row;
        ``prediction``, ``held_out`` : arrays of shape (n_test_total, n_targets) (if asked).
    """
    X, Y, basis, dev, dt = _setup(X, Y, frame_times, high_pass_s, confounds, highpass, device, dtype)
    a = np.asarray(alphas, dtype=np.float64).reshape(-1)
    if a.size == 0 or not (a > 0).all():
        raise ConfigError(f"alphas must be a non-empty list of positive values, got {a.tolist()}")
    T, V = Y.shape
    mode = "fold" if highpass == "fold" else "none"
    Bt = to_tensor(basis, dev, dt)
    Xt = to_tensor(X, dev, dt)
    at = to_tensor(a, dev, dt)
    outer = []
    for train, test in block_folds(T, n_folds, gap):
        inner = [_Decomp(_Prep(mode, Bt, _Split(tr, te)), Xt) for tr, te in inner_folds(train, n_inner_folds, gap)]
        outer.append((_Decomp(_Prep(mode, Bt, _Split(train, test)), Xt), inner))
    test_index = np.concatenate([d.prep.split.test for d, _ in outer])
    nt = test_index.size
    out = {k: np.empty((n_folds, V)) for k in ("r_folds", "r2_folds", "alpha")}
    out["alpha_index"] = np.empty((n_folds, V), dtype=np.int64)
    rc, r2c = np.empty(V), np.empty(V)
    pred_all = np.empty((nt, V)) if return_predictions else None
    held_all = np.empty((nt, V)) if return_predictions else None
    for s in range(0, V, batch_size):
        e = min(V, s + batch_size)
        Yb = to_tensor(Y[:, s:e], dev, dt)
        preds, helds = [], []
        for f, (d, inner) in enumerate(outer):
            ytr, yte = d.prep(Yb)
            # inner splits hold raw rows of the outer training set; each is processed on its own
            idx = _select_alpha(inner, Yb, at)
            p = _predict(d, ytr, at[idx])
            preds.append(p)
            helds.append(yte)
            out["alpha_index"][f, s:e] = to_numpy(idx)
            out["r_folds"][f, s:e] = to_numpy(_pearson(yte, p))
            out["r2_folds"][f, s:e] = to_numpy(_r2(yte, p))
        P, H = torch.cat(preds), torch.cat(helds)
        rc[s:e] = to_numpy(_pearson(H, P))
        r2c[s:e] = to_numpy(_r2(H, P))
        if return_predictions:
            pred_all[:, s:e], held_all[:, s:e] = to_numpy(P), to_numpy(H)
    out["alpha"] = a[out["alpha_index"]]
    out.update(r=out["r_folds"].mean(0), r2=out["r2_folds"].mean(0), r_concat=rc, r2_concat=r2c,
               test_index=test_index)
    if return_predictions:
        out.update(prediction=pred_all, held_out=held_all)
    return out


def permutation_test_r(
    X: np.ndarray,
    Y: np.ndarray,
    alpha_index: np.ndarray,
    alphas: np.ndarray,
    n_permutations: int = 1000,
    seed: int = 0,
    min_shift: int = 20,
    n_folds: int = 5,
    gap: int = 5,
    frame_times: np.ndarray | None = None,
    high_pass_s: float | None = 128.0,
    confounds: np.ndarray | None = None,
    highpass: Highpass = "fold",
    batch_size: int = 8192,
    device: str = "cpu",
    dtype: str = "float64",
    return_null: bool = False,
) -> dict[str, np.ndarray]:
    """Block-permutation p-values of held-out r: circular shifts of the design in time.

    Each permutation rolls the rows of ``X`` by a random shift in ``[min_shift, n_trs -
    min_shift]`` (keeping its autocorrelation, breaking its alignment with ``Y``) and redoes
    the outer cross-validation with the alphas chosen on the real data (``alpha_index`` from
    :func:`cross_validated_ridge`; re-selecting alphas per permutation would cost
    ``n_inner_folds`` times more for a negligible change of the null).

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    Y : array of shape (n_trs, n_targets)
    alpha_index : int array of shape (n_folds, n_targets)
    alphas : array of shape (n_alphas,)
    n_permutations, seed, min_shift : int
    Other parameters as in :func:`cross_validated_ridge` (use the same values).

    Returns
    -------
    dict with ``r`` (n_targets,) fold-mean held-out r of the real design, ``p`` (n_targets,)
    ``(1 + #{null r >= r}) / (1 + n_permutations)``, ``shifts`` (n_permutations,), and
    ``null`` (n_permutations, n_targets) if ``return_null``.
    """
    X, Y, basis, dev, dt = _setup(X, Y, frame_times, high_pass_s, confounds, highpass, device, dtype)
    T, V = Y.shape
    if not 1 <= min_shift <= T // 2:
        raise ConfigError(f"min_shift must be in [1, n_trs / 2 = {T // 2}], got {min_shift}")
    alpha_index = np.asarray(alpha_index)
    if alpha_index.shape != (n_folds, V):
        raise DataError(None, f"alpha_index has shape {alpha_index.shape}, expected (n_folds, n_targets) "
                        f"= {(n_folds, V)}", "alpha_index")
    rng = np.random.default_rng(seed)
    shifts = rng.integers(min_shift, T - min_shift + 1, size=int(n_permutations))
    mode = "fold" if highpass == "fold" else "none"
    Bt = to_tensor(basis, dev, dt)
    at = to_tensor(np.asarray(alphas, dtype=np.float64), dev, dt)
    preps = [_Prep(mode, Bt, _Split(tr, te)) for tr, te in block_folds(T, n_folds, gap)]
    Xt = to_tensor(X, dev, dt)
    r = np.empty(V)
    count = np.zeros(V, dtype=np.int64)
    null = np.empty((len(shifts), V)) if return_null else None
    for s in range(0, V, batch_size):
        e = min(V, s + batch_size)
        Yb = to_tensor(Y[:, s:e], dev, dt)
        ys = [p(Yb) for p in preps]  # Y is the same in every permutation: process once
        av = [at[to_tensor(alpha_index[f, s:e], dev, torch.int64)] for f in range(n_folds)]
        r[s:e] = sum(to_numpy(_pearson(yte, _predict(_Decomp(p, Xt), ytr, av[f])))
                     for f, (p, (ytr, yte)) in enumerate(zip(preps, ys))) / n_folds
        step = _shift_batch(T, e - s)
        for c in range(0, len(shifts), step):
            ks = shifts[c:c + step]
            ri = np.zeros((len(ks), e - s))
            for f, (p, (ytr, yte)) in enumerate(zip(preps, ys)):
                xtr, xte = p.rolled(Xt, ks)
                ri += to_numpy(_pearson(yte, _predict_batch(xtr, xte, ytr, av[f])))
            ri /= n_folds
            count[s:e] += (ri >= r[s:e]).sum(0)
            if return_null:
                null[c:c + ri.shape[0], s:e] = ri
    out = {"r": r, "p": (1.0 + count) / (1.0 + len(shifts)), "shifts": shifts}
    if return_null:
        out["null"] = null
    return out


def ridge_loo(
    X: np.ndarray,
    Y: np.ndarray,
    alphas: np.ndarray,
    batch_size: int = 8192,
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Ridge with a per-target alpha chosen by efficient leave-one-out (GCV), with intercept.

    The same estimator as scikit-learn's ``RidgeCV(alphas, alpha_per_target=True)`` (``cv=None``,
    no sample weights): X and Y centred, one SVD, LOO residuals ``e / (1 - h_ii - 1/n)``, alpha
    maximising minus the mean squared LOO error (first one on ties). Leave-one-out ignores
    temporal autocorrelation, so this is **not** for held-out scores on fMRI time series (use
    :func:`cross_validated_ridge`); it exists to pin the solver to scikit-learn.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets)
    alphas : array of shape (n_alphas,)

    Returns
    -------
    dict with ``alpha`` (n_targets,), ``coef`` (n_features, n_targets), ``intercept``
    (n_targets,), ``best_score`` (n_targets,) = minus the mean squared LOO error.
    """
    dev, dt = check_device(device), torch.float64
    Xn = np.asarray(X, dtype=np.float64)
    Yn = np.asarray(Y, dtype=np.float64)
    Yn = Yn[:, None] if Yn.ndim == 1 else Yn
    n, V = Yn.shape
    xm = Xn.mean(0)
    Xt = to_tensor(Xn - xm, dev, dt)
    U, s, Vh = torch.linalg.svd(Xt, full_matrices=False)
    a = np.asarray(alphas, dtype=np.float64).reshape(-1)
    at = to_tensor(a, dev, dt)
    H = (U ** 2) @ (s[:, None] ** 2 / (s[:, None] ** 2 + at[None, :]))  # (n, n_alphas) leverage
    denom = 1.0 - H - 1.0 / n
    out = {k: np.empty(V) for k in ("alpha", "intercept", "best_score")}
    out["coef"] = np.empty((Xn.shape[1], V))
    for b in range(0, V, batch_size):
        e = min(V, b + batch_size)
        Yb = to_tensor(Yn[:, b:e], dev, dt)
        ym = Yb.mean(0)
        Yc = Yb - ym
        UtY = U.T @ Yc
        shrink = s[None, :] ** 2 / (s[None, :] ** 2 + at[:, None])  # (n_alphas, rank)
        fitted = torch.einsum("nr,ar,rv->anv", U, shrink, UtY)
        loo = (Yc[None] - fitted) / denom.T[:, :, None]
        score = -(loo ** 2).mean(1)  # (n_alphas, Vb)
        best = torch.argmax(score, dim=0)
        F = s[:, None] / (s[:, None] ** 2 + at[best][None, :])
        coef = Vh.T @ (F * UtY)
        out["alpha"][b:e] = a[to_numpy(best)]
        out["best_score"][b:e] = to_numpy(score.max(0).values)
        out["coef"][:, b:e] = to_numpy(coef)
        out["intercept"][b:e] = to_numpy(ym) - xm @ to_numpy(coef)
    return out


class RidgeEncoder(RegressorMixin, BaseEstimator):
    """Ridge encoding model with block-CV scores and per-target alphas (scikit-learn API).

    ``fit`` runs :func:`cross_validated_ridge` (held-out scores in ``cv_r_``, ``cv_r2_``) and
    then refits every target on the whole run with the alpha it chose most often across the
    outer folds. ``predict`` applies the run-level nuisance removal to X only when
    ``highpass != "none"``: predictions are of the filtered data.

    Parameters
    ----------
    alphas : sequence of float
    n_folds, gap, n_inner_folds : int
    tr : float
        Repetition time (s), for the cosine drift basis.
    high_pass_s : float or None
    highpass : {"fold", "run", "none"}
    batch_size : int
    device, dtype : str

    Attributes
    ----------
    coef_ : array of shape (n_features, n_targets)
    intercept_ : array of shape (n_targets,)
    alpha_ : array of shape (n_targets,)
    cv_r_, cv_r2_ : arrays of shape (n_targets,)
    cv_alpha_ : array of shape (n_folds, n_targets)
    """

    def __init__(self, alphas=(1.0, 10.0, 100.0, 1000.0, 10000.0), n_folds=5, gap=5, n_inner_folds=4,
                 tr=1.0, high_pass_s=128.0, highpass="fold", batch_size=8192, device="cpu", dtype="float64"):
        self.alphas = alphas
        self.n_folds = n_folds
        self.gap = gap
        self.n_inner_folds = n_inner_folds
        self.tr = tr
        self.high_pass_s = high_pass_s
        self.highpass = highpass
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype

    def _basis(self, n: int) -> np.ndarray:
        return drift_basis(np.arange(n) * float(self.tr), self.high_pass_s if self.highpass != "none" else None)

    def fit(self, X, Y):
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        Y2 = Y[:, None] if Y.ndim == 1 else Y
        cv = cross_validated_ridge(X, Y2, self.alphas, self.n_folds, self.gap, self.n_inner_folds,
                                   np.arange(X.shape[0]) * float(self.tr), self.high_pass_s, None,
                                   self.highpass, self.batch_size, self.device, self.dtype)
        a = np.asarray(self.alphas, dtype=np.float64)
        counts = np.stack([(cv["alpha_index"] == i).sum(0) for i in range(a.size)])
        alpha = a[np.argmax(counts, axis=0)]
        B = self._basis(X.shape[0])
        dev, dt = check_device(self.device), torch.float64
        Bt = to_tensor(B, dev, dt)
        Xf = _residualise(to_tensor(X, dev, dt), Bt)
        U, s, Vh = torch.linalg.svd(Xf, full_matrices=False)
        coef = np.empty((X.shape[1], Y2.shape[1]))
        for b in range(0, Y2.shape[1], self.batch_size):
            e = min(Y2.shape[1], b + self.batch_size)
            Yf = _residualise(to_tensor(Y2[:, b:e], dev, dt), Bt)
            F = s[:, None] / (s[:, None] ** 2 + to_tensor(alpha[b:e], dev, dt)[None, :])
            coef[:, b:e] = to_numpy(Vh.T @ (F * (U.T @ Yf)))
        self.coef_ = coef
        self.intercept_ = np.zeros(Y2.shape[1])
        self.alpha_ = alpha
        self.cv_r_, self.cv_r2_, self.cv_alpha_ = cv["r"], cv["r2"], cv["alpha"]
        self.n_features_in_ = X.shape[1]
        self._y_1d = Y.ndim == 1
        return self

    def predict(self, X):
        check_is_fitted(self, "coef_")
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise DataError(None, f"X has {X.shape[1]} features, the model was fitted on {self.n_features_in_}", "X")
        Xf = X - self._basis(X.shape[0]) @ np.linalg.lstsq(self._basis(X.shape[0]), X, rcond=None)[0]
        out = Xf @ self.coef_ + self.intercept_
        return out[:, 0] if self._y_1d else out
