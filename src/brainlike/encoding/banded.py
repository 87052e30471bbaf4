"""Banded ridge on prefiltered data: one penalty per feature band, and its shifted-band null.

Bands ``[b_1 | ... | b_n]``: every band but the last is scaled by each of ``band_scales``
(scaling band b by ``g`` is ridge with the penalty ``alpha / g^2`` on that band), so the search is
a grid of band scales times the usual alpha grid, chosen per target by the inner contiguous-block
CV. The null of what the last band adds refits the chosen models with that band circularly
shifted in time. Arrays are already filtered over the whole run
(:func:`~brainlike.encoding.shared.prefilter`); each split is centred on its training means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import DataError
from ._backend import check_device, to_numpy, to_tensor, torch_dtype
from .folds import block_folds, inner_folds
from .solvers import _Decomp, _inner_r2, _pearson, _predict, _predict_batch, _r2, _shift_batch
from .splits import _Prep, _Split

DEFAULT_BAND_SCALES = (0.1, 0.316, 1.0, 3.16, 10.0)


class _Folds:
    """Outer contiguous blocks (with gaps) and their inner blocks, shared by every fit."""

    def __init__(self, T: int, n_folds: int, gap: int, n_inner_folds: int):
        self.outer = [(_Split(tr, te), [_Split(a, b) for a, b in inner_folds(tr, n_inner_folds, gap)])
                      for tr, te in block_folds(T, n_folds, gap)]

    def __len__(self) -> int:
        return len(self.outer)


def _designs(bands: Sequence[np.ndarray], scales: Sequence[float]) -> list[np.ndarray]:
    """Candidate designs: the first bands scaled by each factor, the last band as it is."""
    bands = [np.asarray(b, dtype=np.float64).reshape(b.shape[0], -1) for b in bands]
    if len(bands) == 1:
        return [bands[0]]
    return [np.column_stack([g * b for b in bands[:-1]] + [bands[-1]]) for g in scales]


class _Fitter:
    """Decompositions of every candidate design in every split (reused for all targets)."""

    def __init__(self, designs: Sequence[np.ndarray], folds: _Folds, alphas, device: str, dtype: str,
                 inner: bool = True):
        self.dev, self.dt = check_device(device), torch_dtype(dtype)
        self.folds = folds
        self.at = to_tensor(np.asarray(alphas, dtype=np.float64).reshape(-1), self.dev, self.dt)
        Xs = [to_tensor(d, self.dev, self.dt) for d in designs]
        self.dec = [[(_Decomp(_Prep("none", None, sp), X),
                      [_Decomp(_Prep("none", None, isp), X) for isp in inn] if inner else [])
                     for X in Xs] for sp, inn in folds.outer]

    def select(self, f: int, Yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(candidate index, alpha index) per target maximising the mean inner R^2 of fold ``f``."""
        A = self.at.numel()
        scores = []
        for _, inner in self.dec[f]:
            sc = torch.zeros(A, Yb.shape[1], dtype=Yb.dtype, device=Yb.device)
            for d in inner:
                sc += _inner_r2(d, *d.prep(Yb), self.at)
            scores.append(sc)
        best = torch.argmax(torch.cat(scores), dim=0)  # first maximum: smallest scale, then alpha
        return best // A, best % A

    def predict(self, f: int, ytr: torch.Tensor, cand: torch.Tensor, aidx: torch.Tensor) -> torch.Tensor:
        """Held-out predictions of fold ``f`` with a (candidate, alpha) per target."""
        out = torch.empty(self.dec[f][0][0].XV.shape[0], ytr.shape[1], dtype=ytr.dtype, device=ytr.device)
        for c in torch.unique(cand).tolist():
            m = cand == c
            out[:, m] = _predict(self.dec[f][c][0], ytr[:, m], self.at[aidx[m]])
        return out


def banded_ridge_cv(
    bands: Sequence[np.ndarray],
    Y: np.ndarray,
    alphas: Sequence[float],
    band_scales: Sequence[float] = DEFAULT_BAND_SCALES,
    Y_score: np.ndarray | None = None,
    n_folds: int = 5,
    gap: int = 5,
    n_inner_folds: int = 4,
    batch_size: int = 8192,
    device: str = "cpu",
    dtype: str = "float64",
) -> dict[str, np.ndarray]:
    """Held-out scores of a (banded) ridge model on prefiltered data.

    Parameters
    ----------
    bands : sequence of arrays of shape (T, P_b)
        Feature bands (prefiltered). With one band this is plain ridge with a per-target alpha;
        with several, every band but the last is scaled by each of ``band_scales``.
    Y : array of shape (T, V)
        Data the models are fitted on (prefiltered), e.g. the mean of the other subjects.
    alphas : sequence of float
    band_scales : sequence of float
    Y_score : array of shape (T, V), optional
        Data the held-out predictions are scored against (default ``Y``), e.g. the left-out
        subject. Hyper-parameters are chosen on ``Y``'s training rows only.
    n_folds, gap, n_inner_folds, batch_size, device, dtype
        As in :func:`~brainlike.encoding.ridge.cross_validated_ridge`.

    Returns
    -------
    dict with ``r``, ``r2`` (V,) fold means; ``r_folds``, ``r2_folds`` (n_folds, V);
    ``candidate``, ``alpha_index`` (n_folds, V) int, the chosen band scale and alpha per fold.
    """
    Y = _check(bands, Y, Y_score)
    S = Y if Y_score is None else np.asarray(Y_score, dtype=np.float64)
    T, V = Y.shape
    folds = _Folds(T, n_folds, gap, n_inner_folds)
    fit = _Fitter(_designs(bands, band_scales), folds, alphas, device, dtype)
    out = {k: np.empty((n_folds, V)) for k in ("r_folds", "r2_folds")}
    out |= {k: np.empty((n_folds, V), dtype=np.int64) for k in ("candidate", "alpha_index")}
    for s in range(0, V, batch_size):
        e = min(V, s + batch_size)
        Yb, Sb = to_tensor(Y[:, s:e], fit.dev, fit.dt), to_tensor(S[:, s:e], fit.dev, fit.dt)
        for f, (sp, _) in enumerate(folds.outer):
            c, a = fit.select(f, Yb)
            ytr, _ = fit.dec[f][0][0].prep(Yb)
            _, ste = fit.dec[f][0][0].prep(Sb)
            p = fit.predict(f, ytr, c, a)
            out["candidate"][f, s:e], out["alpha_index"][f, s:e] = to_numpy(c), to_numpy(a)
            out["r_folds"][f, s:e] = to_numpy(_pearson(ste, p))
            out["r2_folds"][f, s:e] = to_numpy(_r2(ste, p))
    out.update(r=out["r_folds"].mean(0), r2=out["r2_folds"].mean(0))
    return out


def banded_ridge_shifted(
    bands: Sequence[np.ndarray],
    Y: np.ndarray,
    candidate: np.ndarray,
    alpha_index: np.ndarray,
    shifts: Sequence[int],
    alphas: Sequence[float],
    band_scales: Sequence[float] = DEFAULT_BAND_SCALES,
    Y_score: np.ndarray | None = None,
    n_folds: int = 5,
    gap: int = 5,
    device: str = "cpu",
    dtype: str = "float64",
) -> np.ndarray:
    """Held-out R^2 of :func:`banded_ridge_cv`'s model with the *last* band circularly shifted.

    The permutation null of what the last band adds: each shift rolls that band's rows
    (keeping its autocorrelation, breaking its alignment with the data), the other bands stay
    aligned, and every (fold, target) keeps the band scale and alpha chosen on the real data.

    Returns
    -------
    array of shape (n_shifts, V): fold-mean held-out R^2 per shift.
    """
    Y = _check(bands, Y, Y_score)
    S = Y if Y_score is None else np.asarray(Y_score, dtype=np.float64)
    T, V = Y.shape
    dev, dt = check_device(device), torch_dtype(dtype)
    at = to_tensor(np.asarray(alphas, dtype=np.float64).reshape(-1), dev, dt)
    splits = [_Split(tr, te) for tr, te in block_folds(T, n_folds, gap)]
    preps = [_Prep("none", None, sp) for sp in splits]
    Yt, St = to_tensor(Y, dev, dt), to_tensor(S, dev, dt)
    ys = [(p(Yt)[0], p(St)[1]) for p in preps]  # the data are the same in every shift
    cand = [to_numpy(torch.as_tensor(candidate[f])) for f in range(n_folds)]
    used = [np.unique(c) for c in cand]
    fixed = [np.asarray(b, dtype=np.float64).reshape(T, -1) for b in bands[:-1]]
    last = np.asarray(bands[-1], dtype=np.float64).reshape(T, -1)
    scales = list(band_scales) if fixed else [1.0]
    out = np.zeros((len(shifts), V))
    step = _shift_batch(T, V)
    lt = to_tensor(last, dev, dt)
    for f, p in enumerate(preps):
        ytr, ste = ys[f]
        # per candidate c (targets that chose it, their alphas, the fixed bands scaled by
        # band_scales[c] on this split): the same for every shift, so prepared once
        cands = []
        for c in used[f]:
            m = cand[f] == c
            mt = torch.as_tensor(m, device=dev)
            a = at[to_tensor(alpha_index[f][m], dev, torch.int64)]
            fx = p(to_tensor(np.column_stack([scales[c] * b for b in fixed]), dev, dt)) if fixed else None
            cands.append((m, mt, a, fx))
        for b0 in range(0, len(shifts), step):
            ks = shifts[b0:b0 + step]
            ltr, lte = p.rolled(lt, ks)  # the shifted band, (B, n, K)
            for m, mt, a, fx in cands:
                xtr, xte = ltr, lte
                if fx is not None:
                    xtr = torch.cat([fx[0].expand(len(ks), -1, -1), ltr], dim=2)
                    xte = torch.cat([fx[1].expand(len(ks), -1, -1), lte], dim=2)
                pred = _predict_batch(xtr, xte, ytr[:, mt], a)
                out[b0:b0 + len(ks), m] += to_numpy(_r2(ste[:, mt], pred)) / n_folds
    return out


def _check(bands, Y, Y_score) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise DataError(None, f"Y must be (T, V), got shape {Y.shape}", "data")
    for b in bands:
        if np.asarray(b).shape[0] != Y.shape[0]:
            raise DataError(None, f"a band has {np.asarray(b).shape[0]} rows, the data {Y.shape[0]}", "n_trs")
    if Y_score is not None and np.shape(Y_score) != Y.shape:
        raise DataError(None, f"Y_score has shape {np.shape(Y_score)}, Y {Y.shape}", "data")
    if not np.isfinite(Y).all() or not all(np.isfinite(b).all() for b in bands):
        raise DataError(None, "bands or data hold NaN/inf", "data")
    return Y
