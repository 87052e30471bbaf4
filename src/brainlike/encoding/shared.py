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
- **banded ridge** (:mod:`.banded`): one penalty per feature band (``[baseline | atoms]``),
  searched as a grid of band scales times the usual alpha grid (scaling band b by ``g`` is ridge
  with the penalty ``alpha / g^2`` on that band), chosen per target by the inner contiguous-block CV;
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

from ..errors import ConfigError, DataError
from .banded import DEFAULT_BAND_SCALES, banded_ridge_cv, banded_ridge_shifted
from .design import drift_basis, highpass
from .folds import block_folds
from .stats import bootstrap_ci


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
