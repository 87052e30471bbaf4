"""Encoding statistics: the drift filter, shared-response fits, ceilings, unique variance, CIs, link FDR."""

import numpy as np
import pytest
from scipy import stats

from brainlike.encoding import block_folds, cross_validated_ridge, fold_arrays
from brainlike.encoding.banded import banded_ridge_cv
from brainlike.encoding.design import drift_basis
from brainlike.encoding.shared import (
    noise_ceiling,
    prefilter,
    shared_encoding,
    shared_report,
    split_half_reliability,
)
from brainlike.encoding.stats import bootstrap_ci, paired_comparison, sign_flip_p
from brainlike.networks.match import link_q

TR = 2.0
T = 360  # 12 min at TR 2 s, like the Alice run


def _residual_share(period_s: float, mode: str, phase: float = 0.3) -> float:
    """Share of a sinusoid's variance kept in the test blocks (pooled), through the ridge's own
    split preparation (:func:`fold_arrays`): ``run`` filters the whole run first, ``fold`` each
    block on its own rows (the old default)."""
    ft = np.arange(T) * TR
    x = np.sin(2 * np.pi * ft / period_s + phase)[:, None]
    basis = drift_basis(ft, 128.0)
    xin = prefilter(x, ft, 128.0) if mode == "run" else x  # "run": X arrives filtered
    kept = raw = 0.0
    for train, test in block_folds(T, 5, 5):
        xte = fold_arrays(xin, x, train, test, basis, highpass=mode)[2]
        kept += xte.var() * test.size
        raw += x[test].var() * test.size
    return kept / raw


@pytest.mark.parametrize("period", [30.0, 60.0, 100.0])
def test_run_filter_keeps_slow_signal_in_test_blocks(period):
    for phase in (0.0, 0.3, 1.0, 2.0):
        assert _residual_share(period, "run", phase) >= 0.9


def test_run_filter_is_true_to_its_cutoff():
    assert _residual_share(150.0, "run") < 0.1  # slower than 128 s: removed


def test_per_block_filter_was_removing_slow_signal():
    # what the per-split filter did: a 60 s component all but vanished from the test blocks
    assert _residual_share(60.0, "fold") < 0.2


def test_slow_and_fast_planted_signals_score_alike():
    rng = np.random.default_rng(1)
    ft = np.arange(T) * TR
    rs = {}
    for period in (60.0, 12.0):
        x = np.sin(2 * np.pi * ft[:, None] / period + rng.uniform(0, 2 * np.pi, 8))  # 8 phases: 8 targets
        X = np.column_stack([np.sin(2 * np.pi * ft / period), np.cos(2 * np.pi * ft / period)])
        Y = x + rng.standard_normal((T, 8)) * 2.0
        cv = cross_validated_ridge(X, Y, [0.1, 1, 10, 100, 1000], frame_times=ft, highpass="run")
        rs[period] = float(cv["r"].mean())
    assert rs[60.0] > 0.2
    assert abs(rs[60.0] - rs[12.0]) < 0.05, rs


def test_no_coupling_gives_no_spurious_r_with_run_filter():
    rng = np.random.default_rng(2)
    ft = np.arange(T) * TR
    drift = np.linspace(-1, 1, T)[:, None] ** 2
    rs = []
    for _ in range(20):  # independent designs: one design's chance alignment is not a bias
        X = rng.standard_normal((T, 6)).cumsum(0) * 0.1 + drift
        Y = rng.standard_normal((T, 20)) + 3 * drift
        rs.append(cross_validated_ridge(X, Y, [1, 10, 100, 1000, 1e5], frame_times=ft, highpass="run")["r"].mean())
    assert abs(np.mean(rs)) < 0.02, np.mean(rs)


def _shared_data(S, sigma, V=6, seed=0, K=8):
    rng = np.random.default_rng(seed)
    ft = np.arange(T) * TR
    feats = prefilter(rng.standard_normal((T, 3)), ft, 128.0)
    W = rng.standard_normal((3, V))
    sig = feats @ W
    sig /= sig.std(0)
    Ys = np.stack([prefilter(sig + sigma * rng.standard_normal((T, V)), ft, 128.0) for _ in range(S)])
    atoms = np.column_stack([feats, prefilter(rng.standard_normal((T, K - 3)), ft, 128.0)])
    return Ys, atoms, ft, rng


def test_loso_noise_ceiling_matches_analytic_value():
    S, sigma = 12, 1.5
    Ys, _, _, _ = _shared_data(S, sigma, V=40)
    c = noise_ceiling(Ys).mean()
    # r(subject, mean of S-1 others) for unit signal variance and noise sd sigma
    analytic = 1 / np.sqrt((1 + sigma ** 2) * (1 + sigma ** 2 / (S - 1)))
    assert abs(c - analytic) < 0.05, (c, analytic)
    rel = split_half_reliability(Ys).mean()
    rho1 = 1 / (1 + sigma ** 2)  # single-subject reliability; SB for the full group of S
    assert abs(rel - S * rho1 / (1 + (S - 1) * rho1)) < 0.08


def test_shared_fit_recovers_shared_signal_and_reports():
    Ys, atoms, ft, rng = _shared_data(8, 2.0)
    base = {"rate": prefilter(rng.standard_normal((T, 2)), ft, 128.0)}
    res = shared_encoding(Ys, atoms, base, [0.1, 1, 10, 100, 1e3, 1e5], n_permutations=40, n_boot=500)
    assert res["r"].shape == (8, 6) and res["ceiling"].shape == (8, 6)
    assert res["r"].mean() > 0.3 and res["group_r"].mean() > res["r"].mean()
    b = res["baselines"]["rate"]
    assert b["delta_r2"].mean() > 0.05 and (b["p"] < 0.05).all()
    rep = shared_report(res | {"status": "ok", "kind": "roi", "targets": list("abcdef"), "subjects": list("12345678")})
    t = rep["per_target"]["a"]
    assert t["ci_low"] <= t["r"] <= t["ci_high"] and t["r_ceiled"] > 0
    assert rep["unique_over_baseline"]["rate"]["mean"]["p"] < 0.05


def test_unique_variance_of_a_noise_band_is_null():
    ps, deltas = [], []
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        ft = np.arange(T) * TR
        B = prefilter(rng.standard_normal((T, 2)), ft, 128.0)
        Ys = np.stack([prefilter(B @ rng.standard_normal((2, 25)) * 0.5 + rng.standard_normal((T, 25)), ft, 128.0)
                       for _ in range(5)])
        noise_atoms = prefilter(rng.standard_normal((T, 6)), ft, 128.0)
        res = shared_encoding(Ys, noise_atoms, {"b": B}, [1, 10, 100, 1e3, 1e5], band_scales=[0.3, 1, 3],
                              n_permutations=30, seed=seed, n_boot=200)
        ps.append(res["baselines"]["b"]["p"])
        deltas.append(res["baselines"]["b"]["delta_r2"].mean())
    p = np.concatenate(ps)
    assert abs(np.mean(deltas)) < 0.01
    # discrete permutation p-values (steps of 1/31): jitter within a step before the KS test
    u = p - np.random.default_rng(0).uniform(0, 1 / 31, p.size)
    assert stats.kstest(u, "uniform").pvalue > 0.01


def test_banded_ridge_prefers_the_informative_band():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((T, 4))
    N = rng.standard_normal((T, 40))
    Y = A @ rng.standard_normal((4, 10)) + rng.standard_normal((T, 10))
    one = banded_ridge_cv([np.column_stack([N, A])], Y, [0.1, 1, 10, 100, 1e3], band_scales=[1.0])
    banded = banded_ridge_cv([N, A], Y, [0.1, 1, 10, 100, 1e3], band_scales=[0.01, 0.1, 1, 10])
    assert banded["r2"].mean() > one["r2"].mean()


def test_bootstrap_ci_covers_the_mean():
    rng = np.random.default_rng(4)
    hits = 0
    for i in range(300):
        x = rng.normal(0.3, 1.0, 15)
        ci = bootstrap_ci(x, n_boot=1000, seed=i)
        hits += ci["ci_low"] <= 0.3 <= ci["ci_high"]
    assert 0.88 <= hits / 300 <= 0.99


def test_paired_comparison_and_sign_flip():
    rng = np.random.default_rng(5)
    a = rng.normal(0.1, 0.05, 14)
    out = paired_comparison(a + 0.05, a)
    assert out["p"] < 0.001 and out["ci_low"] > 0
    null = [float(sign_flip_p(rng.standard_normal(10))) for _ in range(400)]
    assert stats.kstest(null, "uniform").pvalue > 0.001


def test_bh_over_links_controls_false_links_under_the_null():
    rng = np.random.default_rng(6)
    n_spins, m, any_false = 1000, 300, 0
    for _ in range(400):
        # spin p under the null: rank of the observed Dice among the spins, uniform on 1/1001..1
        p = (1 + rng.integers(0, n_spins + 1, m)) / (1 + n_spins)
        q = link_q(p, np.ones(m, bool), "bh", 0.05)
        any_false += (q < 0.05).any()
        assert (link_q(p, np.zeros(m, bool)) == 1).all()
    # under the full null BH's FDR equals its family-wise error: at most alpha on average
    assert any_false / 400 <= 0.05 + 0.03
