"""Shared-response encoding: leave-one-subject-out fits, noise ceilings, banded ridge, unique variance.

Naturalistic data are noisy per subject; what a stimulus model can predict is the response the
subjects share. For S subjects whose runs share one space and one TR grid (ROI sets, network
means on fsaverage5), with ``Y_s`` of shape (T, V):

- **leave-one-subject-out (LOSO)**: for every subject s, ridge models are fitted on the mean of
  the *other* subjects' data over the training blocks and scored on subject s's test blocks;
  the **group-average** fit trains and scores on the mean of all subjects;
- **noise ceiling** of subject s: Pearson r between s and the mean of the others on the same
  test blocks (fold mean, like the model's r), and the Spearman-Brown corrected split-half
  reliability of the group mean (random halves of the subjects);
- **banded ridge**: one penalty per feature band (``[baseline | atoms]``), searched as a grid of
  band scales times the usual alpha grid (scaling band b by ``g`` is ridge with the penalty
  ``alpha / g^2`` on that band), chosen per target by the inner contiguous-block CV;
- **unique variance** of the atoms over a baseline: held-out ``R^2(joint) - R^2(baseline)`` per
  left-out subject and target. Its null: the atoms band circularly shifted in time (the
  baseline kept aligned), refitted with the hyper-parameters chosen on the real data, the same
  shifts for every left-out subject, so the mean over subjects of the null differences is the
  null of the mean (``p = (1 + #{null >= observed}) / (1 + n_permutations)``).

Every array entering these functions is already filtered with :func:`prefilter`: the run's
fixed cosine drift basis (and any confounds) is removed from the *whole* run, design and data
alike, before the run is cut into blocks, so training and test rows are filtered by the same
data-independent filter, true to its cut-off. Each split is then centred on its training means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ._backend import check_device, to_numpy, to_tensor, torch_dtype
from .design import drift_basis, highpass
from .ridge import (_Decomp, _pearson, _predict, _predict_batch, _Prep, _r2, _shift_batch, _Split, block_folds,
                    inner_folds)
from .stats import bootstrap_ci

DEFAULT_BAND_SCALES = (0.1, 0.316, 1.0, 3.16, 10.0)


def prefilter(A: np.ndarray, frame_times: np.ndarray, high_pass_s: float | None,
              confounds: np.ndarray | None = None) -> np.ndarray:
    """Residuals of ``A`` on the run's cosine drift basis (+ confounds + constant), whole run.

    Parameters
    ----------
    A : array of shape (T, n_columns)
    frame_times : array of shape (T,)
    high_pass_s : float or None
        Cut-off period (s) of the cosine basis (None: constant only).
    confounds : array of shape (T, n_confounds), optional

    Returns
    -------
    array of shape (T, n_columns), float64
    """
    B = drift_basis(frame_times, high_pass_s)
    if confounds is not None:
        C = np.asarray(confounds, dtype=np.float64)
        B = np.column_stack([C[:, None] if C.ndim == 1 else C, B])
    A = np.asarray(A, dtype=np.float64)
    return highpass(A[:, None] if A.ndim == 1 else A, B)


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
                ytr, yte = d.prep(Yb)
                pred = torch.einsum("nr,ar,rv->anv", d.XV, d.factors(self.at), d.U.T @ ytr)
                sc += _r2(yte[None], pred)
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


def loso_targets(Ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit and score matrices of every LOSO split plus the group-average fit.

    Parameters
    ----------
    Ys : array of shape (S, T, V)

    Returns
    -------
    fit, score : arrays of shape (T, (S + 1) V)
        Block s (columns ``s V .. (s + 1) V``) = mean of the others / subject s; the last block
        = the mean of all subjects, twice.
    """
    Ys = np.asarray(Ys, dtype=np.float64)
    S, T, V = Ys.shape
    if S < 2:
        raise DataError(None, f"shared-response fits need at least 2 subjects, got {S}", "subjects")
    total = Ys.sum(0)
    others = (total[None] - Ys) / (S - 1)  # (S, T, V)
    mean = total / S
    fit = np.concatenate([others.transpose(1, 0, 2).reshape(T, S * V), mean], axis=1)
    score = np.concatenate([Ys.transpose(1, 0, 2).reshape(T, S * V), mean], axis=1)
    return fit, score


def noise_ceiling(Ys: np.ndarray, n_folds: int = 5, gap: int = 5) -> np.ndarray:
    """LOSO noise ceiling: r(subject s, mean of the others) on the test blocks, fold mean.

    Parameters
    ----------
    Ys : array of shape (S, T, V), prefiltered

    Returns
    -------
    array of shape (S, V)
    """
    fit, score = loso_targets(Ys)
    S, T, V = np.shape(Ys)
    r = np.zeros(fit.shape[1])
    for _, te in block_folds(T, n_folds, gap):
        a, b = fit[te] - fit[te].mean(0), score[te] - score[te].mean(0)
        den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
        r += np.where(den > 0, (a * b).sum(0) / np.where(den > 0, den, 1.0), 0.0) / n_folds
    return r[: S * V].reshape(S, V)


def split_half_reliability(Ys: np.ndarray, n_splits: int = 100, seed: int = 0) -> np.ndarray:
    """Spearman-Brown corrected split-half reliability of the group mean, per target.

    Subjects are split into two random halves ``n_splits`` times (seeded); ``rho = 2 r / (1 + r)``
    with r the Pearson correlation of the two half means over the whole run, averaged over splits.

    Returns
    -------
    array of shape (V,)
    """
    Ys = np.asarray(Ys, dtype=np.float64)
    S = Ys.shape[0]
    if S < 2:
        return np.full(Ys.shape[2], np.nan)
    rng = np.random.default_rng(seed)
    out = np.zeros(Ys.shape[2])
    for _ in range(n_splits):
        perm = rng.permutation(S)
        a, b = Ys[perm[: S // 2]].mean(0), Ys[perm[S // 2:]].mean(0)
        a, b = a - a.mean(0), b - b.mean(0)
        den = np.sqrt((a * a).sum(0) * (b * b).sum(0))
        r = np.where(den > 0, (a * b).sum(0) / np.where(den > 0, den, 1.0), 0.0)
        out += 2 * r / (1 + r) / n_splits
    return out


def shared_encoding(
    Ys: np.ndarray,
    atoms: np.ndarray,
    baselines: Mapping[str, np.ndarray],
    alphas: Sequence[float],
    band_scales: Sequence[float] = DEFAULT_BAND_SCALES,
    n_folds: int = 5,
    gap: int = 5,
    n_inner_folds: int = 4,
    n_permutations: int = 200,
    min_shift: int = 20,
    seed: int = 0,
    n_boot: int = 2000,
    ci: float = 0.95,
    device: str = "cpu",
    dtype: str = "float64",
) -> dict:
    """LOSO shared-response scores, ceilings and unique variance over each baseline.

    Parameters
    ----------
    Ys : array of shape (S, T, V)
        Prefiltered data of S subjects on one grid (runs of a subject averaged first).
    atoms : array of shape (T, K)
        Prefiltered model regressors.
    baselines : mapping name -> array of shape (T, P)
        Prefiltered baseline regressors (e.g. word rate + sound power).
    alphas, band_scales, n_folds, gap, n_inner_folds
        CV settings (:func:`banded_ridge_cv`).
    n_permutations, min_shift, seed
        Circular shifts of the atoms band for the unique-variance null (0: no p-values).
    n_boot, ci
        Bootstrap over subjects for the confidence intervals.

    Returns
    -------
    dict of arrays (S = left-out subjects, V = targets):
        ``r``, ``r2`` (S, V) LOSO scores of the atoms alone; ``group_r``, ``group_r2`` (V,)
        the group-average fit; ``ceiling`` (S, V); ``reliability`` (V,) split-half
        (Spearman-Brown); per baseline b, ``baselines[b]`` = dict with ``r2_baseline``,
        ``r2_joint``, ``delta_r2`` (S, V), ``p`` (V,) permutation p of the subject mean
        (NaN without permutations), ``null`` (n_permutations, V) mean null differences;
        ``summary``: per target, the subject means with bootstrap CIs (see :func:`summarise_shared`).
    """
    Ys = np.asarray(Ys, dtype=np.float64)
    if Ys.ndim != 3:
        raise DataError(None, f"Ys must be (S, T, V), got shape {Ys.shape}", "data")
    S, T, V = Ys.shape
    fit, score = loso_targets(Ys)
    common = dict(n_folds=n_folds, gap=gap, device=device, dtype=dtype)
    res = banded_ridge_cv([atoms], fit, alphas, Y_score=score, n_inner_folds=n_inner_folds, **common)
    out: dict = {"r": res["r"][: S * V].reshape(S, V), "r2": res["r2"][: S * V].reshape(S, V),
                 "group_r": res["r"][S * V:], "group_r2": res["r2"][S * V:],
                 "ceiling": noise_ceiling(Ys, n_folds, gap), "reliability": split_half_reliability(Ys, seed=seed),
                 "baselines": {}}
    if n_permutations > 0 and not 1 <= min_shift <= T // 2:
        raise ConfigError(f"min_shift must be in [1, n_trs / 2 = {T // 2}], got {min_shift}")
    shifts = np.random.default_rng(seed).integers(min_shift, T - min_shift + 1, size=int(n_permutations))
    for name, B in baselines.items():
        base = banded_ridge_cv([B], fit, alphas, Y_score=score, n_inner_folds=n_inner_folds, **common)
        joint = banded_ridge_cv([B, atoms], fit, alphas, band_scales, Y_score=score, n_inner_folds=n_inner_folds,
                                **common)
        delta = joint["r2"] - base["r2"]
        entry = {"r2_baseline": base["r2"][: S * V].reshape(S, V), "r2_joint": joint["r2"][: S * V].reshape(S, V),
                 "r_baseline": base["r"][: S * V].reshape(S, V),
                 "delta_r2": delta[: S * V].reshape(S, V), "group_delta_r2": delta[S * V:]}
        if n_permutations > 0:
            obs = entry["delta_r2"].mean(0)
            null_r2 = banded_ridge_shifted([B, atoms], fit, joint["candidate"], joint["alpha_index"], shifts, alphas,
                                           band_scales, Y_score=score, **common)
            null = (null_r2 - base["r2"][None, :])[:, : S * V].reshape(len(shifts), S, V).mean(1)
            entry["null"] = null
            entry["p"] = (1.0 + (null >= obs[None, :] - 1e-12).sum(0)) / (1.0 + len(shifts))
        else:
            entry["p"] = np.full(V, np.nan)
        out["baselines"][name] = entry
    out["summary"] = summarise_shared(out, n_boot=n_boot, ci=ci, seed=seed)
    return out


def summarise_shared(res: Mapping, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Per-target subject means with bootstrap CIs over subjects.

    ``r`` (mean LOSO r), ``ceiling`` (mean ceiling), ``r_ceiled`` (mean r / mean ceiling, a
    ratio of means resampled as a pair), and per baseline ``delta_r2`` with ``p``. Each value is
    ``{"value", "ci_low", "ci_high"}`` arrays of shape (V,).
    """
    r, ceil = np.asarray(res["r"]), np.asarray(res["ceiling"])
    out = {"r": bootstrap_ci(r, n_boot=n_boot, ci=ci, seed=seed),
           "ceiling": bootstrap_ci(ceil, n_boot=n_boot, ci=ci, seed=seed),
           "r_ceiled": bootstrap_ci(r, n_boot=n_boot, ci=ci, seed=seed, denominator=ceil),
           "baselines": {}}
    for name, b in res["baselines"].items():
        out["baselines"][name] = bootstrap_ci(b["delta_r2"], n_boot=n_boot, ci=ci, seed=seed) | {"p": b["p"]}
    return out


def _f(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def shared_report(res: Mapping, fdr_alpha: float = 0.05, n_boot: int = 2000, ci: float = 0.95) -> dict:
    """JSON-ready summary of :func:`~brainlike.encoding.fit.shared_fit`'s result.

    Per target: ``r`` (mean LOSO r over subjects) with ``ci_low`` / ``ci_high``, ``ceiling``
    (with CI), ``r_ceiled`` = mean r / mean ceiling (with CI), ``reliability`` (split-half,
    Spearman-Brown) and ``group_r`` (the group-average fit). Per baseline: per target
    ``delta_r2`` with CI, permutation ``p`` and BH ``q`` over the targets; and ``mean`` over
    targets (p from the same shifts). Per subject: r, ceiling and delta_r2 per target (the
    paired comparisons between models use them).
    """
    if res.get("status") != "ok":
        return {"status": res.get("status")}
    from .stats import fdr_bh

    targets, sm = res["targets"], res["summary"]
    per_target = {}
    for j, t in enumerate(targets):
        e = {"r": _f(sm["r"]["value"][j]), "ci_low": _f(sm["r"]["ci_low"][j]), "ci_high": _f(sm["r"]["ci_high"][j]),
             "ceiling": _f(sm["ceiling"]["value"][j]), "ceiling_ci_low": _f(sm["ceiling"]["ci_low"][j]),
             "ceiling_ci_high": _f(sm["ceiling"]["ci_high"][j]), "r_ceiled": _f(sm["r_ceiled"]["value"][j]),
             "r_ceiled_ci_low": _f(sm["r_ceiled"]["ci_low"][j]), "r_ceiled_ci_high": _f(sm["r_ceiled"]["ci_high"][j]),
             "reliability": _f(res["reliability"][j]), "group_r": _f(res["group_r"][j])}
        per_target[t] = e
    out = {"status": "ok", "kind": res["kind"], "targets": list(targets), "subjects": list(res["subjects"]),
           "per_target": per_target, "unique_over_baseline": {},
           "subject": {"r": np.round(res["r"], 10).tolist(), "ceiling": np.round(res["ceiling"], 10).tolist()}}
    for name, b in res["baselines"].items():
        s = sm["baselines"][name]
        p = np.asarray(b["p"], dtype=np.float64)
        q = fdr_bh(p, fdr_alpha)[1] if np.isfinite(p).all() else np.full(p.shape, np.nan)
        d = np.asarray(b["delta_r2"])
        mean = bootstrap_ci(np.nanmean(d, axis=1), n_boot=n_boot, ci=ci, seed=0)
        pm = None
        if "null" in b:
            null = np.asarray(b["null"]).mean(1)
            pm = float((1.0 + (null >= np.nanmean(d) - 1e-12).sum()) / (1.0 + null.size))
        out["unique_over_baseline"][name] = {
            "per_target": {t: {"delta_r2": _f(s["value"][j]), "ci_low": _f(s["ci_low"][j]), "ci_high": _f(s["ci_high"][j]),
                               "p": _f(p[j]), "q": _f(q[j]), "r2_baseline": _f(np.nanmean(b["r2_baseline"][:, j])),
                               "r2_joint": _f(np.nanmean(b["r2_joint"][:, j])),
                               "group_delta_r2": _f(b["group_delta_r2"][j])}
                           for j, t in enumerate(targets)},
            "mean": {"delta_r2": _f(mean["value"]), "ci_low": _f(mean["ci_low"]), "ci_high": _f(mean["ci_high"]), "p": pm},
            "subject_delta_r2": np.round(d, 10).tolist(),
        }
    return out
