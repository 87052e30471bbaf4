"""Generation trends of subject-level scores (brainlike.metrics.trend)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainlike.config import ModelConfig
from brainlike.metrics.trend import correct_trends, generation_trend, spearman_rows


def _zoo() -> dict[str, ModelConfig]:
    def m(name, order, trained, size=None):
        return ModelConfig(name=name, generation=f"gen{order}", generation_order=order, source="pip:x",
                           trained=trained, size=size)

    return {
        "a": m("a", 1, True), "a-random": m("a-random", 1, False),
        "b": m("b", 2, True, "0.5B"), "b-big": m("b-big", 2, True, "1.5B"), "b-random": m("b-random", 2, False),
        "c": m("c", 3, True), "c-random": m("c-random", 3, False),
    }


def _scores(effect: float, seed: int, n: int = 14) -> dict[str, pd.Series]:
    """Per-subject scores: subject offsets + trained models rising by ``effect`` per generation."""
    rng = np.random.default_rng(seed)
    subj = [f"s{i}" for i in range(n)]
    base = rng.normal(0.15, 0.03, n)
    out = {}
    for name, cfg in _zoo().items():
        gain = effect * cfg.generation_order if cfg.trained else 0.0
        out[name] = pd.Series(base + gain + rng.normal(0, 0.01, n), index=subj)
    return out


def test_spearman_rows_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    order = np.array([1.0, 2.0, 3.0, 4.0])
    vals = np.array([[0.1, 0.3, 0.2, 0.4], [0.5, 0.5, 0.1, 0.0], [1.0, 1.0, 1.0, 1.0]])
    rho = spearman_rows(order, vals)
    assert rho[0] == pytest.approx(spearmanr(order, vals[0]).statistic)
    assert rho[1] == pytest.approx(spearmanr(order, vals[1]).statistic)
    assert rho[2] == 0.0  # a constant row has no order


def test_rising_trained_series_is_found_and_twins_stay_flat():
    tr = generation_trend(_scores(0.02, 0), _zoo(), n_boot=500)
    correct_trends({"score": tr}, 0.05)
    assert tr["n_subjects"] == 14 and [g["generation_order"] for g in tr["generations"]] == [1, 2, 3]
    assert tr["trend"]["trained"]["direction"] == "rises" and tr["trend"]["trained"]["value"] > 0.8
    assert tr["trend"]["trained_minus_twin"]["direction"] == "rises"
    assert tr["trend"]["twin"]["direction"] == "no trend"
    g2 = tr["generations"][1]
    # a size step is averaged into its generation, not counted as a generation of its own
    assert g2["trained"]["models"] == ["b", "b-big"] and g2["trained"]["sizes"] == ["0.5B", "1.5B"]
    assert tr["trend"]["trained"]["n_generations"] == 3
    d = g2["trained_minus_twin"]
    assert d["ci_low"] <= d["mean_difference"] <= d["ci_high"] and d["mean_difference"] == pytest.approx(0.04, abs=0.01)


def test_flat_scores_rarely_give_a_trend():
    found = 0
    for seed in range(40):
        tr = generation_trend(_scores(0.0, seed), _zoo(), n_boot=200)
        found += tr["trend"]["trained"]["p"] < 0.05
    assert found <= 5  # two-sided 5 % test on 40 null draws (binomial 95th percentile: 4)
