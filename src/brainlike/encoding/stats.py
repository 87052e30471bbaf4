"""Significance: z and p of t statistics, Benjamini-Hochberg FDR, the group-level one-sample
test per atom, bootstrap CIs and paired sign-flip tests (numpy and scipy only: no torch)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import special

from ..errors import ConfigError, DataError

_DOFMAX = 1e10  # nilearn DEF_DOFMAX

__all__ = ["bootstrap_ci", "fdr_bh", "group_moderated", "group_one_sample", "paired_comparison", "sign_flip_p",
           "squeeze_var", "t_to_z", "two_sided_p"]


def t_to_z(t: np.ndarray, dof: float) -> tuple[np.ndarray, np.ndarray]:
    """One-sided p and z of t statistics as nilearn's ``Contrast.z_score`` computes them.

    Parameters
    ----------
    t : array of any shape
    dof : float

    Returns
    -------
    p : array like ``t``
        ``P(T > t)`` (one-sided, nilearn's ``p_value``).
    z : array like ``t``
        Signed z with the same one-sided tail probability.
    """
    df = min(float(dof), _DOFMAX)
    t = np.asarray(t, dtype=np.float64)
    # One Student-t tail per value, the smaller one: scipy computes stdtr(df, x) for x > 0 as
    # 1 - stdtr(df, -x), so p = stdtr(df, -t) (= scipy.stats.t.sf(t, df)) is `small` or
    # 1 - `small` bit for bit, and the lower tail nilearn takes below is `small` itself.
    small = np.asarray(special.stdtr(df, -np.abs(t)))
    p = np.where(t > 0, small, 1 - small)
    z = np.asarray(-special.ndtri(np.clip(p, 1e-300, 1 - 1e-16)))  # = norm.isf
    # where the upper tail is > 0.5, z comes from the lower one (t.cdf, norm.ppf), as in nilearn
    lower = z < 0
    z[lower] = special.ndtri(np.clip(small[lower], 1e-300, 1 - 1e-16))
    return p, z


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided normal p-values ``2 * Phi(-|z|)`` of z statistics (any shape)."""
    return 2.0 * special.ndtr(-np.abs(np.asarray(z, dtype=np.float64)))


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


def _subject_maps(maps: np.ndarray) -> np.ndarray:
    """``maps`` as float64 (n_subjects >= 2, n_atoms, n_targets), or a DataError naming the shape."""
    M = np.asarray(maps, dtype=np.float64)
    if M.ndim != 3:
        raise DataError(None, f"maps must be (n_subjects, n_atoms, n_targets), got shape {M.shape}", "maps")
    if M.shape[0] < 2:
        raise DataError(None, f"a group test needs at least 2 subjects, got {M.shape[0]}", "subjects")
    return M


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
    M = _subject_maps(maps)
    S = M.shape[0]
    mean = M.mean(0)
    sd = M.std(0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > 0, mean / (sd / np.sqrt(S)), 0.0)
    dof = S - 1
    p = 2 * special.stdtr(dof, -np.abs(t))
    _, z = t_to_z(t, dof)
    return {"t": t, "p": p, "z": z, "mean": mean, "dof": float(dof)}


def _trigamma_inverse(x: float) -> float:
    """``y`` with ``trigamma(y) = x`` (x > 0), by Smyth's Newton iteration (limma's ``trigammaInverse``)."""
    if x > 1e7:
        return 1.0 / np.sqrt(x)
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = special.polygamma(1, y)
        dif = tri * (1 - tri / x) / special.polygamma(2, y)
        y += dif
        if -dif / y < 1e-8:
            break
    return float(y)


def squeeze_var(s2: np.ndarray, dof: float) -> tuple[np.ndarray, float, float]:
    """Empirical-Bayes variances (Smyth 2004, limma's ``fitFDist`` + ``squeezeVar``).

    Each target's sample variance ``s2`` (``dof`` degrees of freedom) is taken to come from a
    scaled inverse chi-square prior ``s0^2 * d0 / chi2(d0)`` shared by all targets; ``d0`` and
    ``s0^2`` are fitted by the moments of ``log s2``, and each variance is replaced by its
    posterior mean ``(d0 s0^2 + dof s2) / (d0 + dof)``.

    Parameters
    ----------
    s2 : array of shape (n,)
        Sample variances; targets with ``s2 <= 0`` or non-finite are not used for the prior
        (their posterior is ``s0^2`` weighted the same way).
    dof : float
        Residual degrees of freedom of every ``s2`` (> 0).

    Returns
    -------
    post : array of shape (n,)
        Posterior variances.
    d0 : float
        Prior degrees of freedom (``inf`` when the variances are no more spread than chi-square
        sampling alone explains: every target then gets ``s0^2``).
    s02 : float
        Prior variance.
    """
    s2 = np.asarray(s2, dtype=np.float64)
    ok = np.isfinite(s2) & (s2 > 0)
    if ok.sum() < 3:
        raise DataError(None, f"the variance prior needs at least 3 targets with a positive variance, got {ok.sum()}",
                        "targets")
    e = np.log(s2[ok]) - special.digamma(dof / 2) + np.log(dof / 2)
    emean = float(e.mean())
    evar = float(e.var(ddof=1)) - float(special.polygamma(1, dof / 2))
    if evar <= 0:
        s02 = float(np.exp(emean))
        return np.full(s2.shape, s02), np.inf, s02
    d0 = 2 * _trigamma_inverse(evar)
    s02 = float(np.exp(emean + special.digamma(d0 / 2) - np.log(d0 / 2)))
    post = (d0 * s02 + dof * np.where(ok, s2, 0.0)) / (d0 + dof)
    return post, float(d0), s02


def group_moderated(maps: np.ndarray, min_targets: int = 100) -> dict[str, np.ndarray]:
    """One-sample moderated t across subjects, per atom and target (empirical-Bayes variance).

    The random-effects test of :func:`group_one_sample` with each target's across-subject
    variance shrunk towards a prior fitted over all targets of the same atom
    (:func:`squeeze_var`). With few subjects a target's own variance rests on S - 1 degrees of
    freedom and the t-test's heavy tails leave BH over thousands of vertices no power; the
    moderated t has ``d0 + S - 1`` (limma's statistic; in neuroimaging the same idea as pooling
    or smoothing the variance). Its p-values are exact under the prior's model, and the test
    stays across subjects: a map that is not consistent over subjects is not significant.

    Parameters
    ----------
    maps : array of shape (n_subjects, n_atoms, n_targets)
    min_targets : int
        Fewest targets with a positive variance to fit the prior on; below (a handful of ROIs)
        there is nothing to borrow from and the test is the plain t (``prior_dof`` 0).

    Returns
    -------
    dict with ``t``, ``p`` (two-sided), ``z`` (signed z with the same tail), ``mean``, all
    (n_atoms, n_targets); ``dof`` (n_atoms,), ``prior_dof`` (n_atoms,) and ``prior_var`` (n_atoms,).
    """
    M = _subject_maps(maps)
    S = M.shape[0]
    mean = M.mean(0)
    s2 = M.var(0, ddof=1)
    d = S - 1
    t, p, z = (np.zeros_like(mean) for _ in range(3))
    dof, d0s, s02s = (np.zeros(M.shape[1]) for _ in range(3))
    for k in range(M.shape[1]):
        if (s2[k] > 0).sum() >= max(min_targets, 3):
            post, d0, s02 = squeeze_var(s2[k], d)
        else:
            post, d0, s02 = s2[k], 0.0, np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            t[k] = np.where(post > 0, mean[k] / np.sqrt(post / S), 0.0)
        dof[k], d0s[k], s02s[k] = d0 + d, d0, s02
        df = min(dof[k], _DOFMAX)
        tail = special.stdtr(df, -np.abs(t[k]))  # one tail, computed once for p and z
        p[k] = 2 * tail
        # = t_to_z(t[k], df)[1], bit for bit: the upper tail of |t| gives -|z|'s quantile
        q = np.clip(tail, 1e-300, 1 - 1e-16)
        z[k] = np.where(t[k] < 0, special.ndtri(q), -special.ndtri(q))
    return {"t": t, "p": p, "z": z, "mean": mean, "dof": dof, "prior_dof": d0s, "prior_var": s02s}


def bootstrap_ci(
    values: np.ndarray,
    n_boot: int = 2000,
    ci: float = 0.95,
    seed: int = 0,
    denominator: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Percentile bootstrap CI of a mean over the first axis (the resampling unit, e.g. subjects).

    Parameters
    ----------
    values : array of shape (n_units, ...)
        One value per unit (subject) and target; NaN units are left out of each mean.
    n_boot : int
        Resamples (units drawn with replacement, seeded: the same draws for every target).
    ci : float
        Coverage of the interval (0.95: the 2.5th and 97.5th percentiles).
    denominator : array like ``values``, optional
        When given the statistic is the ratio of means ``mean(values) / mean(denominator)``,
        units resampled as pairs (e.g. r over the noise ceiling).

    Returns
    -------
    dict with ``value`` (the statistic on the data), ``ci_low``, ``ci_high``, each of shape
    ``values.shape[1:]``; NaN where fewer than 2 units are finite.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(None, "bootstrap needs at least one unit", "values")
    if not 0 < ci < 1:
        raise ConfigError(f"ci must be in (0, 1), got {ci}")
    d = None if denominator is None else np.asarray(denominator, dtype=np.float64)
    if d is not None and d.shape != x.shape:
        raise DataError(None, f"denominator shape {d.shape} differs from values {x.shape}", "denominator")

    def stat(idx):
        """The statistic of the draws ``idx`` (..., n): a batch of draws at once (axis -1 of idx)."""
        axis = idx.ndim - 1
        with warnings.catch_warnings():  # all-NaN columns: NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            m = np.nanmean(x[idx], axis=axis)
            if d is None:
                return m
            dm = np.nanmean(d[idx], axis=axis)
            return np.where(dm != 0, m / np.where(dm != 0, dm, 1.0), np.nan)

    n = x.shape[0]
    value = stat(np.arange(n))
    idx = np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))
    # draws in batches (one call per batch instead of per draw), memory bounded
    per = max(1, int(x[0].size) * n)
    step = max(1, min(len(idx), (1 << 22) // per))
    boots = np.concatenate([stat(idx[i:i + step]) for i in range(0, len(idx), step)])
    lo, hi = np.nanpercentile(boots, [50 * (1 - ci), 50 * (1 + ci)], axis=0) if n >= 2 else (np.nan, np.nan)
    finite = np.isfinite(x).sum(0) >= 2
    return {"value": value, "ci_low": np.where(finite, lo, np.nan), "ci_high": np.where(finite, hi, np.nan)}


def sign_flip_p(d: np.ndarray, n_max_exact: int = 16, n_random: int = 20000, seed: int = 0) -> np.ndarray:
    """One-sided sign-flip permutation p of ``mean(d) > 0`` over the first axis (paired units).

    Exact (all 2^n sign patterns) for n <= ``n_max_exact`` units, else ``n_random`` seeded
    patterns. ``p = #{flipped mean >= observed mean} / #patterns`` (the identity included).

    Parameters
    ----------
    d : array of shape (n_units, ...)
        Paired differences (e.g. model minus twin per subject); NaN units are dropped per column
        only when the whole column's units are finite (else p is NaN).

    Returns
    -------
    array of shape ``d.shape[1:]``
    """
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    flat = d.reshape(n, -1)
    if n <= n_max_exact:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(n_random, n))
        signs[0] = 1
    null = signs @ np.nan_to_num(flat) / n
    obs = np.nan_to_num(flat).mean(0)
    p = ((null >= obs[None, :] - 1e-12).sum(0)) / signs.shape[0]
    p = np.where(np.isfinite(flat).all(0), p, np.nan)
    return p.reshape(d.shape[1:])


def paired_comparison(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, ci: float = 0.95, seed: int = 0) -> dict:
    """Paired comparison of two fits scored on the same units (subjects): a - b.

    Returns
    -------
    dict with ``mean_difference``, ``ci_low``, ``ci_high`` (bootstrap over units), ``p``
    (one-sided sign-flip test of a > b), ``n`` (units).
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return {"mean_difference": float(d.mean()) if d.size else None, "ci_low": None, "ci_high": None,
                "p": None, "n": int(d.size)}
    bc = bootstrap_ci(d, n_boot=n_boot, ci=ci, seed=seed)
    return {"mean_difference": float(bc["value"]), "ci_low": float(bc["ci_low"]), "ci_high": float(bc["ci_high"]),
            "p": float(sign_flip_p(d, seed=seed)), "n": int(d.size)}
