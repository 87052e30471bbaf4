"""Strict recovery scoring, the oracle / null bounds, and a reduced calibrated benchmark.

The benchmark builds a small embedded dataset at the calibrated strength (real resting-state
background, subject-specific HRF, borders, gains and strength), fits the oracle (the planted
features themselves, canonical HRF) and a null (the same regressors circularly shifted) with the
project's own encoding (``fit_subject`` -> ``fit_group``) and network matching
(``match_networks``, spin test), and scores both with :func:`score_planted`.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from brainlike.metrics.recovery import (
    kind_difference,
    near_equivalents,
    recovery_bounds,
    score_planted,
)
from brainlike.networks import network_set

PLANTED = [
    {"feature": "word_rate", "kind": "timing", "atlas": "cole_anticevic12", "network": "Auditory"},
    {"feature": "sentence_end", "kind": "timing", "atlas": "yeo7", "network": "Frontoparietal"},
    {"feature": "semantic_1", "kind": "semantic", "atlas": "cole_anticevic12", "network": "Language"},
    {"feature": "semantic_2", "kind": "semantic", "atlas": "yeo7", "network": "Visual"},
    {"feature": "nuisance_events", "kind": "nuisance", "atlas": "yeo7", "network": "Dorsal Attention"},
]


@pytest.fixture(scope="module")
def nets(atlas_root):
    return network_set(["yeo7", "yeo17", "cole_anticevic12"], atlas_root)


def _table(nets, maps: dict[tuple[int, str], np.ndarray], linked: dict | None = None, q: bool = True) -> pd.DataFrame:
    """A link table of (atom, sign) maps against every network; ``linked`` overrides the rule."""
    rows = []
    size = nets.masks.sum(1)
    for (atom, sign), m in maps.items():
        inter = nets.masks[:, m].sum(1)
        dice = 2 * inter / (size + m.sum())
        for a, n, d in zip(nets.atlas, nets.network, dice, strict=True):
            lk = (linked or {}).get((atom, sign, a, n), d >= 0.5)
            rows.append({"atom": atom, "sign": sign, "atlas": a, "network": n, "dice": float(d),
                         "p": 0.001 if lk else 0.5, "q": 0.01 if lk else 0.9, "linked": bool(lk)})
    t = pd.DataFrame(rows)
    return t if q else t.drop(columns="q")


def test_near_equivalents_are_few_and_documented(nets):
    near = near_equivalents(nets, PLANTED)
    assert near["yeo7/Frontoparietal"] == ["cole_anticevic12/Frontoparietal"]
    assert near["yeo7/Visual"] == ["cole_anticevic12/Visual2", "yeo17/network_1"]
    assert near["yeo7/Dorsal Attention"] == []
    # a finer parcel covers too little of the planted network (Cole's Visual1: 1/4 of Yeo-7 Visual)
    assert "cole_anticevic12/Visual1" not in near["yeo7/Visual"]
    assert near["cole_anticevic12/Auditory"] == [] and near["cole_anticevic12/Language"] == []


def test_strict_scoring_counts_exact_and_near_links_only(nets):
    vis = nets.mask("yeo7", "Visual")
    fp_cole = nets.mask("cole_anticevic12", "Frontoparietal")
    som = nets.mask("cole_anticevic12", "Dorsal-attention")  # a parcel of the nuisance network
    dmn = nets.mask("yeo7", "Default")
    lang = nets.mask("cole_anticevic12", "Language")
    maps = {(0, "+"): vis, (1, "+"): fp_cole, (2, "-"): som, (3, "+"): dmn, (4, "+"): lang}
    # atom 4 overlaps Language perfectly but its link did not survive the corrected test
    linked = {(4, "+", a, n): False for a, n in nets.keys}
    s = score_planted(_table(nets, maps, linked), PLANTED, nets)
    best = {e["network"]: e for e in s["planted"]}
    assert best["Visual"]["best_dice"] == pytest.approx(1.0) and best["Visual"]["best_atom"] == 0
    # linked to Cole's Frontoparietal (a near-equivalent), scored by its Dice with Yeo's
    fp_yeo = nets.mask("yeo7", "Frontoparietal")
    d = 2 * (fp_cole & fp_yeo).sum() / (fp_cole.sum() + fp_yeo.sum())
    assert best["Frontoparietal"]["best_dice"] == pytest.approx(d) and best["Frontoparietal"]["linked"]
    assert best["Language"]["best_dice"] == 0.0 and best["Language"]["best_dice_any"] == pytest.approx(1.0)
    assert best["Auditory"]["best_dice"] == 0.0 and not best["Auditory"]["linked"]
    assert s["n_nuisance_links"] >= 1 and all(r["atom"] == 2 for r in s["nuisance_links"])
    assert s["n_false_links"] >= 1  # Default is not planted
    assert s["by_kind"]["semantic"]["mean_best_dice"] == pytest.approx(0.5)
    assert s["min_best_dice"] == 0.0 and s["link_test"] == "q"
    assert score_planted(_table(nets, maps, linked, q=False), PLANTED, nets)["link_test"] == "linked"
    with pytest.raises(Exception, match="linked"):
        score_planted(_table(nets, maps).drop(columns="linked"), PLANTED, nets)


def test_bounds_and_kind_difference(nets):
    full = {(k, "+"): nets.mask(p["atlas"], p["network"]) for k, p in enumerate(PLANTED)}
    empty = {(k, "+"): np.zeros(nets.masks.shape[1], bool) for k in range(len(PLANTED))}
    b = recovery_bounds(_table(nets, full), _table(nets, empty), PLANTED, nets)
    assert b["oracle"]["min_best_dice"] == pytest.approx(1.0) and b["null"]["max_best_dice"] == 0.0
    assert b["met"] and b["null"]["n_links"] == 0
    worse = dict(full)
    worse[(0, "+")] = np.zeros(nets.masks.shape[1], bool)  # the oracle misses Auditory
    b2 = recovery_bounds(_table(nets, worse), _table(nets, full), PLANTED, nets)
    assert not b2["met"] and b2["oracle"]["min_best_dice"] == 0.0 and b2["null"]["max_best_dice"] == pytest.approx(1.0)
    t = score_planted(_table(nets, full), PLANTED, nets)
    w = score_planted(_table(nets, worse), PLANTED, nets)
    diff = kind_difference(t, w)
    assert diff["timing"] == pytest.approx(0.5) and diff["semantic"] == pytest.approx(0.0)


# ---------------------------------------------------------------- reduced calibrated benchmark

N_BENCH_SUBJECTS = 4  # the embedded default; with the plain t-test the oracle needed 10-12 (README)


@pytest.fixture(scope="module")
def bench(nets):
    """Oracle and null link tables on a calibrated embedded dataset (defaults: 4 subjects, seed 0,
    the moderated t across subjects).

    Reduced cost against the pipeline: 2 outer / 2 inner ridge folds, one alpha, no permutation
    test (none of which enters the GLM z-maps that the networks stage thresholds), 1000 spins
    (the links are BH-corrected over each table's family, as in the pipeline: 1/101 would be too coarse).
    """
    import torch

    from brainlike.config import EmbeddedConfig, EncodingConfig
    from brainlike.data.embedded import make_embedded
    from brainlike.data.embedded.synth import oracle_regressors
    from brainlike.encoding.regressors import null_regressors
    from brainlike.encoding.fit import fit_group, fit_subject
    from brainlike.networks.match import match_networks
    from brainlike.networks.spin import spin_permutations

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny design matrices: more threads only spin-wait on a busy machine
    try:
        cfg = EmbeddedConfig(n_subjects=N_BENCH_SUBJECTS)
        masks = {(p.atlas, p.network): nets.mask(p.atlas, p.network) for p in cfg.planted}
        runs, truth = make_embedded(cfg, masks)
        from brainlike.data.embedded import embedded_features

        oracle = oracle_regressors(embedded_features(cfg), truth["planted"])
        ft = cfg.tr * np.arange(truth["n_trs"])
        null = null_regressors(oracle, ft, 20, cfg.seed, 128.0)
        enc = EncodingConfig(alphas=[10.0], n_folds=2, n_inner_folds=2, n_permutations=0)
        valid = runs[0].data.std(axis=0) > 0
        perms = spin_permutations(1000, 0, valid=nets.cortex)
        tables = {}
        for name, X in (("oracle", oracle), ("null", null)):
            z = np.stack([fit_subject(X, r.data, r.confounds, ft, enc)["z"] for r in runs])
            g = fit_group(z, 0.05, test=enc.group_test)
            tables[name], _ = match_networks(g["z"], nets, perms, valid=valid, model=name)
    finally:
        torch.set_num_threads(threads)
    return truth, tables


@pytest.mark.slow
def test_oracle_reaches_and_null_stays_under_the_bounds(bench, nets):
    truth, tables = bench
    b = recovery_bounds(tables["oracle"], tables["null"], truth["planted"], nets)
    assert b["oracle"]["min_best_dice"] >= 0.8, b["oracle"]
    assert b["null"]["max_best_dice"] <= 0.1, b["null"]
    assert b["met"]
    o = score_planted(tables["oracle"], truth["planted"], nets)
    # the oracle's own nuisance regressor finds the nuisance network; the null finds nothing there
    nuis = [e for e in o["planted"] if e["kind"] == "nuisance"][0]
    assert nuis["linked"] and nuis["best_atom"] == len(truth["planted"]) - 1
    assert score_planted(tables["null"], truth["planted"], nets)["n_nuisance_links"] == 0
    # every oracle regressor's best map is its own planted network, with the positive sign
    assert [e["best_atom"] for e in o["planted"]] == list(range(len(truth["planted"])))
    assert {e["best_sign"] for e in o["planted"]} == {"+"}


def test_bootstrap_over_subjects_and_paired_difference(nets):
    from brainlike.metrics.recovery import bootstrap_best_dice, bootstrap_indices, paired_kind_difference

    rng = np.random.default_rng(0)
    S, V = 6, nets.masks.shape[1]
    vis = nets.mask("yeo7", "Visual")
    z_trained = rng.standard_normal((S, 2, V))
    z_trained[:, 0, vis] += 4.0 + rng.standard_normal((S, 1))  # atom 0 drives Visual in every subject
    z_twin = rng.standard_normal((S, 2, V))
    trained = score_planted(_table(nets, {(0, "+"): vis}), PLANTED, nets)
    twin = score_planted(_table(nets, {(0, "+"): np.zeros(V, bool)}), PLANTED, nets)
    idx = bootstrap_indices(S, 30, 0)
    assert idx.shape == (30, S) and idx.max() < S
    bt = bootstrap_best_dice(z_trained, trained, nets, idx)
    bw = bootstrap_best_dice(z_twin, twin, nets, idx)
    j = [e["network"] for e in trained["planted"]].index("Visual")
    assert bt.shape == (30, len(PLANTED)) and np.median(bt[:, j]) > 0.8
    assert (np.delete(bt, j, axis=1) == 0).all() and (bw == 0).all()  # nothing linked -> 0
    d = paired_kind_difference(bt, bw, [e["kind"] for e in trained["planted"]], trained, twin)
    assert d["semantic"]["difference"] == pytest.approx(0.5)
    assert 0.3 < d["semantic"]["lo"] <= d["semantic"]["hi"] <= 0.5
    assert d["timing"] == {"difference": 0.0, "lo": 0.0, "hi": 0.0, "n_networks": 2}


def test_null_regressors_keep_no_planted_signal_inside_the_glm():
    """The null is orthogonal to the oracle after the high-pass and after any AR(1) prewhitening
    (lags -1, 0, +1 are projected out), where a circular shift alone keeps some overlap."""
    from brainlike.data.embedded.synth import circular_shift_null
    from brainlike.encoding.design import drift_basis, highpass
    from brainlike.encoding.regressors import null_regressors
    from brainlike.errors import DataError

    rng = np.random.default_rng(5)
    T = 400
    ft = 1.5 * np.arange(T)
    # slow, autocorrelated "features" (smoothed noise), like the planted semantic ones
    k = np.exp(-0.5 * (np.arange(-30, 31) / 8.0) ** 2)
    oracle = np.column_stack([np.convolve(rng.standard_normal(T + 60), k, "valid")[:T] for _ in range(4)])
    null = null_regressors(oracle, ft, 20, 0, 128.0)
    assert null.shape == oracle.shape
    np.testing.assert_allclose(np.linalg.norm(null, axis=0), 1.0)
    hp = highpass(oracle, drift_basis(ft, 128.0))

    def corr(a, b):
        return np.abs(np.corrcoef(a.T, b.T)[: a.shape[1], a.shape[1]:]).max()

    assert corr(null, hp) < 1e-10
    for rho in (0.2, 0.5, 0.8):  # what the GLM sees at a vertex with AR(1) coefficient rho
        w = np.eye(T) - rho * np.eye(T, k=-1)
        assert corr(w @ null, w @ hp) < 0.03  # not 0: the high-pass and the edges do not commute with lags
    shifted = highpass(circular_shift_null(oracle, 20, 0), drift_basis(ft, 128.0))
    assert corr(shifted, hp) > 0.05  # what the projection removes
    # a sinusoid shifted is a sinusoid of the same period: nothing is left after the projection
    with pytest.raises(DataError, match="span of the planted"):
        null_regressors(np.sin(2 * np.pi * np.arange(T) / 40)[:, None], ft, 20, 0, 128.0)
