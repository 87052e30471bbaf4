"""How a subject-level score changes across model generations: values, twins and a rank trend.

The unit of every test is the left-out subject (the shared-response fits of a dataset whose
subjects share a space), so the trend has the subjects' power rather than the handful of
models'. For one score (e.g. LOSO held-out r averaged over ROIs) and the models of one stimulus:

- per generation and series (``trained``, ``twin``): the score averaged over the generation's
  models of that series, per subject, then its mean with a bootstrap CI over subjects;
- per generation, ``trained_minus_twin``: the paired difference over subjects (bootstrap CI,
  one-sided sign-flip p of trained > twin);
- ``trend`` per series (and for trained minus twin): per subject, Spearman's rho between the
  generation order and the generation values; the mean rho over subjects with a bootstrap CI and
  a two-sided sign-flip p. With G generations a subject's rho takes few values (G = 2: +1, 0 or
  -1, i.e. a sign test of the later generation against the earlier one).

A size step within a family (``size``) shares its generation: its models are averaged into the
generation, never counted as another one.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ..encoding.stats import bootstrap_ci, fdr_bh, paired_comparison, sign_flip_p

SERIES = ("trained", "twin")


def spearman_rows(order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Spearman's rho of ``order`` (G,) with each row of ``values`` (S, G); 0 for a constant row."""
    ro = rankdata(np.asarray(order, dtype=np.float64))
    ro = ro - ro.mean()
    rv = rankdata(np.asarray(values, dtype=np.float64), axis=1)  # average ranks: ties share theirs
    rv = rv - rv.mean(1, keepdims=True)
    den = np.sqrt((ro * ro).sum() * (rv * rv).sum(1))
    return np.where(den > 0, rv @ ro / np.where(den > 0, den, 1.0), 0.0)


def _two_sided(d: np.ndarray) -> float:
    return float(min(1.0, 2 * min(sign_flip_p(d), sign_flip_p(-d))))


def _summary(values: np.ndarray, n_boot: int, ci: float) -> dict:
    bc = bootstrap_ci(values, n_boot=n_boot, ci=ci)
    return {"value": float(bc["value"]), "ci_low": float(bc["ci_low"]), "ci_high": float(bc["ci_high"]),
            "n": int(np.isfinite(values).sum())}


def generation_trend(scores: Mapping[str, pd.Series], models: Mapping, n_boot: int = 2000,
                     ci: float = 0.95) -> dict:
    """The trend of one subject-level score across generations (module docstring).

    Parameters
    ----------
    scores : {model: Series indexed by subject}
        The score of every model; models missing from ``models`` are ignored.
    models : {name: ModelConfig}
        ``generation``, ``generation_order``, ``trained`` and ``size`` of each model.

    Returns
    -------
    dict with ``generations`` (one entry per generation order: label, models and sizes per
    series, the series' values and ``trained_minus_twin``), ``trend`` ({series or
    ``trained_minus_twin``: mean rho, CI, two-sided p, n subjects, n generations} where at
    least 2 generations have the series) and ``n_subjects`` (subjects every model has).
    """
    names = [m for m in scores if m in models]
    if not names:
        return {"generations": [], "trend": {}, "n_subjects": 0}
    subjects = sorted(set.intersection(*(set(scores[m].dropna().index) for m in names)))
    orders = sorted({models[m].generation_order for m in names})
    gens, per = [], {s: {} for s in (*SERIES, "trained_minus_twin")}
    for g in orders:
        entry: dict = {"generation_order": int(g)}
        labels = sorted({models[m].generation for m in names if models[m].generation_order == g})
        entry["generation"] = " / ".join(labels)
        for series in SERIES:
            ms = sorted(m for m in names if models[m].generation_order == g and bool(models[m].trained) == (series == "trained"))
            if not ms:
                continue
            v = np.mean([scores[m].reindex(subjects).to_numpy(np.float64) for m in ms], axis=0)
            per[series][g] = v
            entry[series] = {"models": ms, "sizes": sorted({models[m].size for m in ms if models[m].size})} | \
                _summary(v, n_boot, ci)
        if g in per["trained"] and g in per["twin"]:
            per["trained_minus_twin"][g] = per["trained"][g] - per["twin"][g]
            entry["trained_minus_twin"] = paired_comparison(per["trained"][g], per["twin"][g], n_boot, ci)
        gens.append(entry)
    trend = {}
    for series, by_g in per.items():
        if len(by_g) < 2 or len(subjects) < 2:
            continue
        gs = sorted(by_g)
        rho = spearman_rows(np.array(gs, dtype=np.float64), np.column_stack([by_g[g] for g in gs]))
        trend[series] = _summary(rho, n_boot, ci) | {"p": _two_sided(rho), "n_generations": len(gs)}
    return {"generations": gens, "trend": trend, "n_subjects": len(subjects)}


def correct_trends(trends: Mapping[str, dict], alpha: float) -> None:
    """BH over every trend test of one stimulus (scores x series), in place: ``q`` and ``rises``/``falls``."""
    tests = [t for tr in trends.values() for t in tr["trend"].values() if t.get("p") is not None]
    if not tests:
        return
    q = fdr_bh(np.array([t["p"] for t in tests]), alpha)[1]
    for t, qi in zip(tests, q):
        t["q"] = float(qi)
        t["direction"] = ("rises" if t["value"] > 0 else "falls") if qi < alpha else "no trend"
