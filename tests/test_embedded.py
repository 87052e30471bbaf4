"""The embedded default dataset: story, speech-rate timings, features, semi-synthetic runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from brainlike.config import EmbeddedConfig, PlantedResponse, SpeechRateConfig
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
from brainlike.data.embedded.features import semantic_scores
from brainlike.data.embedded.synth import (
    _periodic,
    _sphere_coordinates,
    load_background,
    phase_randomise,
    segment,
)
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


def _corr_with(x: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Pearson r of each column of x (T, V) with f (T,); NaN-free for constant columns -> 0."""
    xc = x - x.mean(0)
    fc = f - f.mean()
    den = np.linalg.norm(xc, axis=0) * np.linalg.norm(fc)
    return np.divide(fc @ xc, den, out=np.zeros(x.shape[1]), where=den > 0)


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
    for r in runs:
        for p in cfg.planted:
            m = masks[(p.atlas, p.network)] & ~constant
            feat = f[p.feature].to_numpy()
            r_mean = _corr_with(r.data[:, m].mean(1, keepdims=True), feat)[0]
            r_in = _corr_with(r.data[:, m], feat)
            r_out = _corr_with(r.data[:, outside], feat)
            r_out_mean = _corr_with(r.data[:, outside].mean(1, keepdims=True), feat)[0]
            assert r_mean > 0.7 and abs(r_out_mean) < 0.4, (p.feature, r_mean, r_out_mean)
            # snr 1 -> per-vertex r ~ 1/sqrt(2) inside; outside only chance correlations of two
            # slow series (~0.1, 95th percentile < 0.4).
            assert np.median(r_in) > 0.5, p.feature
            assert np.median(r_in) > np.percentile(np.abs(r_out), 95), p.feature
            assert np.median(np.abs(r_out)) < 0.2, p.feature


def test_signal_grows_with_snr(masks, source):
    _, _, constant = source
    p = EmbeddedConfig().planted[0]
    m = masks[(p.atlas, p.network)] & ~constant
    medians = []
    for snr in (0.25, 1.0, 3.0):
        cfg = EmbeddedConfig(n_subjects=1, seed=5, snr=snr)
        runs, _ = make_embedded(cfg, masks)
        feat = embedded_features(cfg)[p.feature].to_numpy()
        medians.append(np.median(_corr_with(runs[0].data[:, m], feat)))
    assert medians[0] < medians[1] < medians[2]
    # r = snr / sqrt(1 + snr^2) when the background is uncorrelated with the feature.
    assert medians[2] == pytest.approx(3 / math.sqrt(10), abs=0.08)


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
    assert (truth["seed"], truth["snr"], truth["tr"]) == (cfg.seed, cfg.snr, cfg.tr)
    assert [(p["feature"], p["atlas"], p["network"]) for p in truth["planted"]] == [
        (p.feature, p.atlas, p.network) for p in cfg.planted
    ]
    for p in truth["planted"]:
        assert p["n_vertices"] == int((masks[(p["atlas"], p["network"])] & ~constant).sum()) > 0
    assert set(truth["feature_correlations"]) == set(FEATURE_NAMES)
    assert json.loads(json.dumps(truth)) == truth  # saved as JSON by the pipeline


def test_segments_are_contiguous_pieces_of_the_real_run(built_segments, masks, source):
    cfg, runs, truth = built_segments
    data, motion, _ = source
    outside = ~np.any([m for m in masks.values()], axis=0)
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
    assert [p["feature"] for p in truth["planted"]] == ["word_length"]
    m = masks[("yeo7", "Default")]
    feat = embedded_features(cfg)["word_length"].to_numpy()
    assert np.median(_corr_with(runs[0].data[:, m], feat)) > 0.45
