"""The embedded default dataset: story, speech-rate timings, features, semi-synthetic runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from brainlike.config import FEATURE_KINDS, EmbeddedConfig, PlantedResponse, SpeechRateConfig, SubjectVariabilityConfig
from brainlike.data.embedded import (
    FEATURE_NAMES,
    count_syllables,
    embedded_features,
    load_story,
    make_embedded,
    speech_stats,
    stimulus_features,
    story_words,
)
from brainlike.data.embedded.background import _periodic, load_background, phase_randomise, segment
from brainlike.data.embedded.calibrate import (
    alice_feature_r,
    cosine_highpass,
    expected_r,
    highpassed_r,
    planted_gain,
    summarise_feature_r,
)
from brainlike.data.embedded.features import gamma_hrf, nuisance_onsets, semantic_scores
from brainlike.data.embedded.sphere import _sphere_coordinates, jitter_mask, sphere_adjacency
from brainlike.data.embedded.synth import embedded_nuisance
from brainlike.data.embedded.timing import tokenize
from brainlike.errors import ConfigError, DataError

N_V = 20484


@pytest.fixture(scope="module")
def masks() -> dict[tuple[str, str], np.ndarray]:
    """Geometric stand-ins for the default planted networks: caps of the fsaverage5 sphere."""
    xyz = _sphere_coordinates()
    lh = np.arange(N_V) < N_V // 2
    return {
        ("cole_anticevic12", "Auditory"): (xyz[:, 2] > 0.6) & lh,
        ("yeo7", "Frontoparietal"): (xyz[:, 0] > 0.6) & ~lh,
        ("cole_anticevic12", "Language"): (xyz[:, 1] > 0.6) & lh,
        ("yeo7", "Visual"): xyz[:, 1] < -0.6,
        ("yeo7", "Dorsal Attention"): (xyz[:, 0] < -0.6) & ~lh,  # the nuisance network
        ("yeo7", "Default"): (xyz[:, 0] < -0.6) & lh,  # supplied but not planted
    }


@pytest.fixture(scope="module")
def source():
    data, motion = load_background()
    return data, motion, data.std(axis=0) == 0


@pytest.fixture(scope="module")
def built(masks):
    cfg = EmbeddedConfig(n_subjects=2, seed=3)
    runs, truth = make_embedded(cfg, masks)
    return cfg, runs, truth


@pytest.fixture(scope="module")
def built_segments(masks):
    cfg = EmbeddedConfig(n_subjects=2, seed=3, background="segments")
    return cfg, *make_embedded(cfg, masks)


# ---------------------------------------------------------------- story and timings


def test_story_is_long_prose_in_paragraphs():
    text = load_story()
    tokens = tokenize(text)
    assert len(tokens) >= 1500
    assert tokens["paragraph_end"].sum() >= 10
    assert tokens["sentence_end"].sum() >= 60
    assert not any(ch.isdigit() for ch in text)  # numbers would defeat the syllable heuristic
    assert "Daniel's" in set(tokens["word"])  # apostrophes stay inside the word


def test_syllable_heuristic():
    cases = {"the": 1, "stone": 1, "little": 2, "times": 1, "faces": 2, "turned": 1, "wanted": 2,
             "lighthouse": 2, "paraffin": 3, "keeper's": 2, "responsibility": 6, "a": 1, "rhythm": 1}
    assert {w: count_syllables(w) for w in cases} == cases


def test_timings_monotonic_and_plausible_pace():
    cfg = EmbeddedConfig()
    w = story_words(cfg.speech, cfg.lead_in_s, cfg.seed)
    on, dur = w["onset"].to_numpy(), w["duration"].to_numpy()
    assert on[0] == cfg.lead_in_s
    assert np.all(dur > 0)
    gaps = on[1:] - (on[:-1] + dur[:-1])
    assert np.all(gaps >= cfg.speech.word_gap_s - 1e-9)
    # Pauses follow punctuation: sentence ends get the longer silence.
    se = w["sentence_end"].to_numpy()[:-1] & ~w["paragraph_end"].to_numpy()[:-1]
    assert np.allclose(gaps[se], cfg.speech.word_gap_s + cfg.speech.sentence_pause_s)
    assert gaps[w["paragraph_end"].to_numpy()[:-1]].min() > gaps[se].max()
    stats = speech_stats(w)
    assert 130 <= stats["wpm"] <= 200
    # Slower syllables, slower speech.
    slow = speech_stats(story_words(SpeechRateConfig(syllable_s=0.25), cfg.lead_in_s, cfg.seed))
    assert slow["wpm"] < stats["wpm"]


def test_timings_depend_on_seed_only_through_jitter():
    a, b, c = story_words(seed=1), story_words(seed=1), story_words(seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert list(a["word"]) == list(c["word"])
    assert not np.allclose(a["duration"], c["duration"])
    none = story_words(SpeechRateConfig(jitter=0.0), seed=1)
    assert np.allclose(none["duration"], none["n_syllables"] * SpeechRateConfig().syllable_s)


# ---------------------------------------------------------------- features


def test_semantic_axes_read_as_named():
    s = semantic_scores(["mother", "engine", "red", "loud", "the"])
    assert s.loc[0, "semantic_1"] > s.loc[1, "semantic_1"]  # social > physical
    assert s.loc[2, "semantic_2"] > s.loc[3, "semantic_2"]  # visual > other senses
    assert (s.loc[4] == 0).all()  # function words carry no semantic score


def test_features_z_scored_and_decorrelated(built):
    cfg, runs, truth = built
    f = embedded_features(cfg)
    assert list(f.columns) == list(FEATURE_NAMES)
    assert len(f) == truth["n_trs"]
    assert np.allclose(f.mean(), 0, atol=1e-9) and np.allclose(f.std(ddof=0), 1)
    c = f.corr().to_numpy()
    assert abs(c[3, 4]) < 1e-9  # semantic_2 orthogonalised against semantic_1
    planted = [FEATURE_NAMES.index(p.feature) for p in cfg.planted]
    off = c[np.ix_(planted, planted)][~np.eye(len(planted), dtype=bool)]
    assert np.abs(off).max() < 0.5
    assert truth["feature_correlations"]["semantic_1"]["semantic_2"] == pytest.approx(0, abs=1e-4)


def test_features_follow_events():
    words = pd.DataFrame({"word": ["red", "mother"], "onset": [10.0, 40.0], "duration": [0.3, 0.4],
                          "n_syllables": [1, 2], "sentence_end": [False, True]})
    f = stimulus_features(words, np.arange(0, 80, 1.0))
    # Word-rate HRF peaks ~5 s after each onset; the sentence end only after the second word.
    assert 13 <= int(np.argmax(f["word_rate"][:30])) <= 17
    assert 43 <= int(np.argmax(f["sentence_end"])) <= 47
    with pytest.raises(DataError, match="n_syllables"):
        stimulus_features(words.drop(columns="n_syllables"), np.arange(10.0))


# ---------------------------------------------------------------- semi-synthetic runs


def test_runs_shapes_and_identity(built):
    cfg, runs, truth = built
    words = story_words(cfg.speech, cfg.lead_in_s, cfg.seed)
    end = words["onset"].iloc[-1] + words["duration"].iloc[-1]
    n_trs = math.ceil((end + cfg.tail_s) / cfg.tr)
    assert truth["n_trs"] == n_trs
    assert [r.subject for r in runs] == ["01", "02"]
    for r in runs:
        assert (r.dataset, r.task, r.space, r.tr, r.t0) == ("embedded", "story", "fsaverage5", cfg.tr, 0.0)
        assert r.data.shape == (n_trs, N_V) and r.data.dtype == np.float32
        assert np.isfinite(r.data).all()
        assert r.confounds.shape == (n_trs, 6) and np.isfinite(r.confounds.to_numpy()).all()
        assert list(r.words["word"]) == list(words["word"])
        r.check_words_within_scan()
        assert r.meta["words_source"].endswith("story.txt")
    assert not np.allclose(runs[0].data, runs[1].data)


def test_deterministic_per_seed(built, masks):
    cfg, runs, _ = built
    again, _ = make_embedded(cfg, masks)
    for a, b in zip(runs, again, strict=True):
        assert np.array_equal(a.data, b.data)
        pd.testing.assert_frame_equal(a.words, b.words)
        pd.testing.assert_frame_equal(a.confounds, b.confounds)
    other, _ = make_embedded(cfg.model_copy(update={"seed": 4, "n_subjects": 1}), masks)
    n = min(other[0].n_trs, runs[0].n_trs)  # jitter changes the story's length a little
    assert not np.allclose(other[0].data[:n], runs[0].data[:n])
    assert not np.allclose(other[0].words["duration"], runs[0].words["duration"])


def test_planted_signal_present_where_planted_only(built, masks, source):
    cfg, runs, truth = built
    f = embedded_features(cfg)
    _, _, constant = source
    outside = ~np.any([m for m in masks.values()], axis=0) & ~constant
    ft = cfg.tr * np.arange(truth["n_trs"])
    for p in cfg.planted:
        m = masks[(p.atlas, p.network)] & ~constant
        feat = f[p.feature].to_numpy()
        # Calibrated, weak effects (r ~ 0.15-0.2 per vertex): compare over subjects, not per vertex.
        r_in = np.mean([np.median(highpassed_r(feat, r.data[:, m], ft)) for r in runs])
        r_out = np.mean([np.median(highpassed_r(feat, r.data[:, outside], ft)) for r in runs])
        target = cfg.target_r[FEATURE_KINDS[p.feature]]
        assert 0.4 * target < r_in < 2.5 * target, (p.feature, r_in)
        assert abs(r_out) < 0.5 * target, (p.feature, r_out)


def test_strength_follows_target_r(masks, source):
    """Without subject variability the median per-vertex r after high-pass is the target."""
    _, _, constant = source
    p = EmbeddedConfig().planted[0]
    m = masks[(p.atlas, p.network)] & ~constant
    flat = SubjectVariabilityConfig(hrf_delay_sd_s=0, hrf_undershoot_sd_s=0, boundary_jitter=0, strength_log_sd=0)
    medians = []
    for r_target in (0.1, 0.3, 0.6):
        cfg = EmbeddedConfig(n_subjects=1, seed=5, subjects=flat,
                             target_r={"timing": r_target, "semantic": 0.1, "nuisance": 0.1})
        runs, truth = make_embedded(cfg, masks)
        feat = embedded_features(cfg)[p.feature].to_numpy()
        medians.append(np.median(highpassed_r(feat, runs[0].data[:, m], cfg.tr * np.arange(truth["n_trs"]))))
    assert medians[0] < medians[1] < medians[2]
    # chance correlation of the (spatially correlated) background with the feature moves the
    # whole network together: one subject is within ~0.1
    assert medians[2] == pytest.approx(0.6, abs=0.1)


def test_subjects_differ(built, masks, source):
    cfg, runs, truth = built
    _, _, constant = source
    d = truth["subject_draws"]
    assert len(d) == cfg.n_subjects == 2
    assert d[0]["hrf_delay_s"] != d[1]["hrf_delay_s"] and d[0]["strength"] != d[1]["strength"]
    for s in d:
        assert 6 - 2 * 0.75 - 1e-9 <= s["hrf_delay_s"] <= 6 + 2 * 0.75 + 1e-9
        assert 16 - 2 * 1.5 - 1e-9 <= s["hrf_undershoot_s"] <= 16 + 2 * 1.5 + 1e-9
    for p in cfg.planted:
        sizes = [s["planted"][p.feature]["n_vertices"] for s in d]
        base = int((masks[(p.atlas, p.network)] & ~constant).sum())
        assert sizes[0] != sizes[1] or sizes[0] != base  # borders jittered per subject
        assert all(abs(n - base) < 0.2 * base for n in sizes)


def test_jitter_mask_moves_the_border_only(masks, source):
    _, _, constant = source
    adj = sphere_adjacency()
    assert adj.shape == (N_V, N_V) and (adj != adj.T).nnz == 0
    assert 5 <= np.median(np.diff(adj.indptr)) <= 6  # an icosahedral mesh
    m = masks[("cole_anticevic12", "Language")] & ~constant
    rng = np.random.default_rng(0)
    assert np.array_equal(jitter_mask(m, adj, 0.0, rng), m)
    j = jitter_mask(m, adj, 0.3, rng, ~constant)
    near_in = np.asarray(adj @ (~m).astype(int)).ravel() > 0
    near_out = np.asarray(adj @ m.astype(int)).ravel() > 0
    changed = j != m
    assert changed.any() and np.all((m & near_in) | (~m & near_out) | ~changed)
    assert not (j & constant).any()


def test_subject_hrf_default_is_the_canonical_spm():
    from nilearn.glm.first_level import compute_regressor

    cond = np.array([[10.0, 31.0, 50.0], [0, 0, 0], [1.0, 0.5, 1.0]])
    ft = np.arange(0, 90, 1.5)
    ref = compute_regressor(cond, "spm", ft, oversampling=16)[0][:, 0]
    mine = compute_regressor(cond, gamma_hrf(), ft, oversampling=16)[0][:, 0]
    np.testing.assert_allclose(mine, ref, atol=1e-12)
    late = compute_regressor(cond[:, :1], gamma_hrf(7.5, 16.0), ft, oversampling=16)[0][:, 0]
    assert np.argmax(late) > np.argmax(ref[:20])  # a later peak delay peaks later
    with pytest.raises(DataError, match="delay"):
        gamma_hrf(20.0, 16.0)


def test_nuisance_train_is_independent_of_the_story(built):
    cfg, _, truth = built
    a = nuisance_onsets(600.0, 12.0, 3)
    assert np.array_equal(a, nuisance_onsets(600.0, 12.0, 3))
    assert not np.array_equal(a[:5], nuisance_onsets(600.0, 12.0, 4)[:5])
    assert np.all(np.diff(a) > 0) and 0 <= a[0] and a[-1] < 600 and 30 < a.size < 70
    # a different story pace changes the words, not the nuisance train
    slow = cfg.model_copy(update={"speech": SpeechRateConfig(syllable_s=0.3)})
    assert np.array_equal(embedded_nuisance(slow, 100), embedded_nuisance(cfg, 100))
    c = truth["feature_correlations"]["nuisance_events"]
    assert max(abs(v) for k, v in c.items() if k != "nuisance_events") < 0.3
    assert truth["nuisance"]["n_events"] > 20


def test_constant_source_vertices_stay_unchanged(built, built_segments, source):
    data, _, constant = source
    assert 1000 < constant.sum() < 3000  # the medial walls
    for runs in (built[1], built_segments[1]):
        for r in runs:
            assert np.array_equal(r.data[:, constant], np.broadcast_to(data[0, constant], (r.n_trs, constant.sum())))


def test_ground_truth(built, masks, source):
    cfg, _, truth = built
    _, _, constant = source
    assert truth["semi_synthetic"] is True
    assert "semi-synthetic" in truth["description"].lower()
    assert (truth["seed"], truth["target_r"], truth["tr"]) == (cfg.seed, cfg.target_r, cfg.tr)
    assert [(p["feature"], p["atlas"], p["network"]) for p in truth["planted"]] == [
        (p.feature, p.atlas, p.network) for p in cfg.planted
    ]
    assert [p["kind"] for p in truth["planted"]] == ["timing", "timing", "semantic", "semantic", "nuisance"]
    for p in truth["planted"]:
        assert p["n_vertices"] == int((masks[(p["atlas"], p["network"])] & ~constant).sum()) > 0
        assert p["target_r"] == cfg.target_r[p["kind"]]
    assert set(truth["feature_correlations"]) == set(FEATURE_NAMES)
    assert json.loads(json.dumps(truth)) == truth  # saved as JSON by the pipeline


def test_segments_are_contiguous_pieces_of_the_real_run(built_segments, masks, source):
    cfg, runs, truth = built_segments
    data, motion, _ = source
    inside = np.any([m for m in masks.values()], axis=0)
    # subjects' borders move by one vertex ring: stay clear of it
    outside = ~(inside | (np.asarray(sphere_adjacency() @ inside.astype(int)).ravel() > 0))
    period = 2 * len(data)
    starts = []
    for r in runs:
        # Locate the start by matching the first frames against the time-reversal extension
        # (two frames: the extension repeats a frame where it turns around).
        ext = np.concatenate([data, data[::-1]])[:, outside]
        cost = np.abs(ext - r.data[0, outside]).sum(1) + np.abs(np.roll(ext, -1, 0) - r.data[1, outside]).sum(1)
        start = int(np.argmin(cost))
        assert np.array_equal(r.data[:, outside], segment(data, r.n_trs, start)[:, outside])
        assert np.allclose(r.confounds.to_numpy(), segment(motion, r.n_trs, start))
        starts.append(start)
    assert starts[0] != starts[1] and (starts[1] - starts[0]) % period == period // 2


def test_phase_randomisation_keeps_spectrum_and_covariance(source):
    data, _, constant = source
    x = data[:, np.flatnonzero(~constant)[:300]].astype(np.float64)
    ext = _periodic(x, len(x))
    rng = np.random.default_rng(0)
    sur = phase_randomise(x, len(ext), rng)
    # Over one full period the surrogate has the same power spectrum and covariance ...
    assert np.allclose(np.abs(np.fft.rfft(sur, axis=0)), np.abs(np.fft.rfft(ext, axis=0)), atol=1e-8)
    assert np.allclose(np.cov(sur.T), np.cov(ext.T), atol=1e-10)
    # ... but not the same time course.
    assert np.median(np.abs(np.diag(np.corrcoef(sur.T, ext.T)[:300, 300:]))) < 0.2
    # Longer than the extension: still finite and the right length.
    assert phase_randomise(x[:, :5], 3000, rng).shape == (3000, 5)


def test_bad_masks_are_reported(masks):
    cfg = EmbeddedConfig(n_subjects=1)
    missing = {k: v for k, v in masks.items() if k != ("yeo7", "Visual")}
    with pytest.raises(ConfigError, match="Visual.*yeo7"):
        make_embedded(cfg, missing)
    bad = dict(masks)
    bad[("yeo7", "Visual")] = np.ones(100, bool)
    with pytest.raises(DataError, match="yeo7/Visual"):
        make_embedded(cfg, bad)
    only_wall = dict(masks)
    only_wall[("yeo7", "Visual")] = load_background()[0].std(0) == 0
    with pytest.raises(DataError, match="no vertex"):
        make_embedded(cfg, only_wall)


def test_single_planted_entry(masks):
    planted = [PlantedResponse(feature="word_length", atlas="yeo7", network="Default")]
    cfg = EmbeddedConfig(n_subjects=1, planted=planted)
    runs, truth = make_embedded(cfg, masks)
    assert [(p["feature"], p["kind"]) for p in truth["planted"]] == [("word_length", "timing")]
    m = masks[("yeo7", "Default")]
    feat = embedded_features(cfg)["word_length"].to_numpy()
    r = np.median(highpassed_r(feat, runs[0].data[:, m], cfg.tr * np.arange(truth["n_trs"])))
    assert 0.3 * cfg.target_r["timing"] < r < 3 * cfg.target_r["timing"]
    # a nuisance planted alone needs its own target_r
    with pytest.raises(ValueError, match="target_r lacks"):
        EmbeddedConfig(planted=[PlantedResponse(feature="nuisance_events", atlas="yeo7", network="Default")],
                       target_r={"timing": 0.2})


# ---------------------------------------------------------------- calibration


def test_cosine_highpass_is_the_encoding_models_filter():
    from brainlike.encoding.design import drift_basis, highpass

    rng = np.random.default_rng(0)
    ft = 1.5 * np.arange(300)
    x = rng.standard_normal((300, 4)) + np.linspace(0, 3, 300)[:, None]
    np.testing.assert_allclose(cosine_highpass(x, ft, 128.0), highpass(x, drift_basis(ft, 128.0)), atol=1e-10)
    assert cosine_highpass(x[:, 0], ft).shape == (300,)


def test_planted_gain_inverts_expected_r():
    r = np.array([0.0, 0.1, 0.2, 0.5, 0.9])
    g = planted_gain(r, 0.7, np.array([1.0, 2.0, 0.5, 3.0, 1.0]))
    np.testing.assert_allclose(expected_r(g, 0.7, np.array([1.0, 2.0, 0.5, 3.0, 1.0])), r, atol=1e-12)
    with pytest.raises(DataError, match="target r"):
        planted_gain(1.0, 1.0, 1.0)


@pytest.mark.parametrize("target", [0.1, 0.2, 0.35])
def test_calibration_reproduces_a_known_r_on_simulated_data(target):
    """Gain set by planted_gain from high-passed s.d.s: the realised per-vertex r after the
    high-pass matches the target (slow AR(1) backgrounds, an HRF-convolved event feature)."""
    rng = np.random.default_rng(int(target * 100))
    T, V, tr = 400, 3000, 1.5
    ft = tr * np.arange(T)
    e = rng.standard_normal((T, V))
    bg = np.empty_like(e)
    bg[0] = e[0]
    for t in range(1, T):  # AR(1), rho 0.6: resting-state-like slow noise
        bg[t] = 0.6 * bg[t - 1] + e[t]
    bg *= rng.uniform(0.5, 3.0, V)  # vertices of different variance
    words = story_words(seed=0)
    feat = stimulus_features(words, ft)["word_rate"].to_numpy()
    sd_f = cosine_highpass(feat, ft).std()
    sd_b = cosine_highpass(bg, ft).std(axis=0)
    y = bg + feat[:, None] * planted_gain(target, sd_f, sd_b)[None, :]
    assert np.mean(highpassed_r(feat, y, ft)) == pytest.approx(target, abs=0.03)


def test_embedded_subjects_reach_their_calibrated_r(built):
    """make_embedded's own bookkeeping: the realised median r per subject and planted network
    (own HRF, after high-pass) scatters around the subject's target r, not above or below it."""
    _, _, truth = built
    diffs = [v["median_r_own_hrf"] - v["target_r"] for s in truth["subject_draws"] for v in s["planted"].values()]
    assert abs(np.mean(diffs)) < 0.05, diffs
    # the canonical regressors (what analysts use) fit no better than the subject's own HRF, on average
    own = [v["median_r_own_hrf"] for s in truth["subject_draws"] for v in s["planted"].values()]
    can = [v["median_r_canonical"] for s in truth["subject_draws"] for v in s["planted"].values()]
    assert np.mean(can) <= np.mean(own) + 0.01


def test_alice_effect_sizes_and_the_default_targets(alice_path):
    """The defaults are the measurement: word rate ~ median |r| over subjects x ROIs, semantic
    axes ~ median over subjects of the best ROI's |r| (see the embedded README)."""
    table = alice_feature_r(alice_path)
    assert set(table["feature"]) == {"word_rate", "semantic_1", "semantic_2"}
    assert table["r"].notna().all() and table["subject"].nunique() >= 10
    summ = summarise_feature_r(table)
    target = EmbeddedConfig().target_r
    assert target["timing"] == pytest.approx(summ["timing"]["median_abs_r"], abs=0.01)
    assert target["semantic"] == pytest.approx(summ["semantic"]["median_best_roi_abs_r"], abs=0.01)
    assert 0.05 < summ["timing"]["min_r"] + 0.1 and summ["timing"]["max_r"] < 0.5
    assert EmbeddedConfig().subjects.strength_log_sd == pytest.approx(summ["timing"]["subject_log_sd"], abs=0.05)
