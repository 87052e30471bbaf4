"""Semi-synthetic fsaverage5 runs: real resting-state background + planted stimulus responses.

Background
    Per subject, a phase-randomised surrogate or a segment of one real resting-state run, with its
    motion parameters as confounds (:mod:`~brainlike.data.embedded.background`).
    Vertices constant over the source run (the medial wall, exactly 0) are copied unchanged and
    never receive planted signal.

Planted responses (calibrated, and different in every subject)
    For each ``cfg.planted`` entry (feature, atlas, network) and subject ``s``, the feature time
    course computed with *that subject's* HRF is added at every vertex ``v`` of that subject's
    version of the network with amplitude ``g_v = gain_v x planted_gain(r_s, sd_f, sd_v)``
    (:func:`~brainlike.data.embedded.calibrate.planted_gain`): ``sd_f`` and ``sd_v`` are the s.d.
    of the feature and of the subject's background at ``v`` after the 128 s cosine high-pass,
    so at ``gain_v = 1`` the expected per-vertex r after high-pass is ``r_s``. Per subject
    (seeded by ``cfg.seed`` and the subject index; ``cfg.subjects`` sets the spreads):

    - ``r_s = target_r[kind] x strength_s``, ``strength_s = exp(strength_log_sd x z)``;
    - HRF: the SPM gamma difference with peak-delay and undershoot parameters drawn around
      6 s and 16 s (:func:`~brainlike.data.embedded.features.gamma_hrf`). Analysts' regressors
      (``features.parquet``, the oracle) keep the canonical HRF, so they fit a little worse;
    - network: the atlas mask with a random share ``boundary_jitter`` of its border vertices
      dropped and the same share of its outer neighbours added
      (:func:`~brainlike.data.embedded.sphere.jitter_mask`);
    - gain map: a smooth map over the sphere (:func:`~brainlike.data.embedded.sphere.smooth_gain`,
      2:1 range, RMS 1 inside).

    ``z`` draws are clipped at 2 s.d. Masks of different planted entries may overlap; there the
    signals add.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import FEATURE_KINDS, EmbeddedConfig
from ...errors import ConfigError, DataError
from ..run import N_VERTICES_FSAVERAGE5, Run
from .background import (
    BRAINSPACE_RUN,
    CONFOUND_NAMES,
    N_SOURCE_FRAMES,
    background_files,
    load_background,
    phase_randomise,
    segment,
)
from .calibrate import HIGH_PASS_S, cosine_highpass, highpassed_r, planted_gain
from .features import (
    NUISANCE_FEATURE,
    SPM_DELAY_S,
    SPM_UNDERSHOOT_S,
    feature_correlations,
    nuisance_onsets,
    stimulus_features,
)
from .sphere import _sphere_coordinates, jitter_mask, smooth_gain, sphere_adjacency
from .timing import speech_stats, story_path, story_words


def _check_masks(cfg: EmbeddedConfig, network_masks: Mapping[tuple[str, str], np.ndarray]) -> list[np.ndarray]:
    masks = []
    for p in cfg.planted:
        key = (p.atlas, p.network)
        if key not in network_masks:
            known = sorted(n for a, n in network_masks if a == p.atlas)
            raise ConfigError(
                f"embedded.planted: network {p.network!r} of atlas {p.atlas!r} (driven by {p.feature}) "
                f"is not among the atlas networks supplied: {known or 'none for this atlas'}"
            )
        m = np.asarray(network_masks[key])
        if m.shape != (N_VERTICES_FSAVERAGE5,) or m.dtype != bool:
            raise DataError(
                None,
                f"mask of {p.atlas}/{p.network} must be a bool array of shape ({N_VERTICES_FSAVERAGE5},), "
                f"got {m.dtype} {m.shape}",
                "network_masks",
            )
        masks.append(m)
    return masks


def embedded_design(cfg: EmbeddedConfig) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Words, scan times and stimulus features shared by every subject.

    Returns
    -------
    words : DataFrame (n_words rows; see :func:`~brainlike.data.embedded.story_words`)
    frame_times : array of shape (n_trs,)
        ``tr * arange(n_trs)`` with ``n_trs = ceil((last word end + tail_s) / tr)``.
    features : DataFrame of shape (n_trs, 6)
        z-scored features with the canonical HRF (the five story features and
        ``nuisance_events``; :func:`~brainlike.data.embedded.stimulus_features`); row i is at
        ``frame_times[i]``. These are the regressors an analyst (and the oracle) uses; the table
        to save as ``features.parquet``.
    """
    words = story_words(cfg.speech, cfg.lead_in_s, cfg.seed)
    end = float(words["onset"].iloc[-1] + words["duration"].iloc[-1])
    n_trs = math.ceil((end + cfg.tail_s) / cfg.tr)
    frame_times = cfg.tr * np.arange(n_trs)
    return words, frame_times, stimulus_features(words, frame_times, nuisance=embedded_nuisance(cfg, n_trs))


def embedded_nuisance(cfg: EmbeddedConfig, n_trs: int) -> np.ndarray:
    """Onsets (s) of the stimulus-independent event train over a run of ``n_trs`` scans."""
    return nuisance_onsets(n_trs * cfg.tr, cfg.nuisance_interval_s, cfg.seed)


def embedded_features(cfg: EmbeddedConfig) -> pd.DataFrame:
    """Feature time courses of the embedded dataset, shape (n_trs, 6) (see :func:`embedded_design`)."""
    return embedded_design(cfg)[2]


def oracle_regressors(features: pd.DataFrame, planted: Sequence[Mapping]) -> np.ndarray:
    """The planted features themselves as regressors (canonical HRF): the oracle's "atoms".

    Parameters
    ----------
    features : DataFrame of shape (n_trs, n_features)
        ``features.parquet`` (:func:`embedded_design`).
    planted : sequence of dict
        ``ground_truth.json``'s ``planted`` entries (``feature`` keys).

    Returns
    -------
    array of shape (n_trs, n_planted), unit-norm columns in the order of ``planted``.
    """
    names = [str(p["feature"]) for p in planted]
    missing = [n for n in names if n not in features.columns]
    if missing:
        raise DataError(None, f"features table lacks planted feature(s) {missing}; has {list(features.columns)}",
                        "features")
    a = features[names].to_numpy(np.float64)
    a = a - a.mean(0)
    return a / np.linalg.norm(a, axis=0)


def circular_shift_null(regressors: np.ndarray, min_shift: int, seed: int) -> np.ndarray:
    """Each column circularly shifted by its own random lag in ``[min_shift, T - min_shift]``.

    The null bound: the same time courses (spectra, autocorrelation) with their timing relative
    to the stimulus destroyed.

    Parameters
    ----------
    regressors : array of shape (T, K)
    min_shift : int
        Smallest shift in TRs either way (e.g. 20 TRs, beyond the HRF's reach).
    seed : int

    Returns
    -------
    array of shape (T, K)
    """
    a = np.asarray(regressors)
    T = a.shape[0]
    if not 0 < min_shift < T // 2:
        raise DataError(None, f"min_shift must lie in (0, {T // 2}) TRs for {T} TRs, got {min_shift}", "min_shift")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x9E11]))
    shifts = rng.integers(min_shift, T - min_shift + 1, a.shape[1])
    return np.column_stack([np.roll(a[:, k], int(sh)) for k, sh in enumerate(shifts)])


def _clipped_normal(rng: np.random.Generator, n: int | None = None):
    return np.clip(rng.standard_normal(n), -2.0, 2.0)


def draw_subject(cfg: EmbeddedConfig, s: int) -> dict[str, float]:
    """Subject ``s``'s HRF parameters and strength (seeded by ``cfg.seed`` and ``s``)."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5B7, s]))
    z = _clipped_normal(rng, 3)
    v = cfg.subjects
    return {
        "hrf_delay_s": float(SPM_DELAY_S + v.hrf_delay_sd_s * z[0]),
        "hrf_undershoot_s": float(SPM_UNDERSHOOT_S + v.hrf_undershoot_sd_s * z[1]),
        "strength": float(np.exp(v.strength_log_sd * z[2])),
    }


def _usable_planted(cfg: EmbeddedConfig, masks: list[np.ndarray], constant: np.ndarray) -> list[tuple]:
    """``(entry, usable mask, kind, target r)`` per planted entry: its mask less the constant vertices."""
    planted = []
    for p, m in zip(cfg.planted, masks, strict=True):
        usable = m & ~constant
        if not usable.any():
            raise DataError(
                None, f"mask of {p.atlas}/{p.network} has no vertex with signal in the background", "network_masks"
            )
        kind = FEATURE_KINDS[p.feature]
        planted.append((p, usable, kind, float(cfg.target_r[kind])))
    return planted


def _subject_backgrounds(
    cfg: EmbeddedConfig, source: np.ndarray, motion: np.ndarray, constant: np.ndarray, n_trs: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Each subject's background, in subject order: data (n_trs, 20484) float32, motion (n_trs, 6).

    A phase-randomised surrogate or a segment of the source run (``cfg.background``); the
    constant vertices keep their source value.
    """
    period = 2 * N_SOURCE_FRAMES
    offset = int(np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x5E6])).integers(period))
    # Data and motion share one surrogate so that their relation survives.
    joint = None
    if cfg.background == "phase_randomised":
        joint = np.concatenate([source, motion.astype(np.float32)], axis=1)
    for s in range(cfg.n_subjects):
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0xB6, s]))
        if cfg.background == "phase_randomised":
            sur = phase_randomise(joint, n_trs, rng)
            data = np.ascontiguousarray(sur[:, :N_VERTICES_FSAVERAGE5])
            conf = sur[:, N_VERTICES_FSAVERAGE5:].astype(np.float64)
            data[:, constant] = source[0, constant]
        else:
            start = (offset + (s * period) // cfg.n_subjects) % period
            data, conf = segment(source, n_trs, start), segment(motion, n_trs, start)
        yield data, conf


def _plant_responses(
    cfg: EmbeddedConfig,
    s: int,
    data: np.ndarray,
    strength: float,
    own: pd.DataFrame,
    features: pd.DataFrame,
    frame_times: np.ndarray,
    planted: list[tuple],
    constant: np.ndarray,
    xyz: np.ndarray,
    adjacency,
) -> dict[str, dict]:
    """Add subject ``s``'s planted responses to its background ``data`` (in place).

    ``own``: the features with the subject's HRF (what is planted); ``features``: the canonical
    ones (what analysts fit). Returns, per planted feature, the vertices used, the subject's
    target r and the median per-vertex r after high-pass with either feature (for the truth).
    """
    bg_sd = np.zeros(N_VERTICES_FSAVERAGE5)
    live = np.flatnonzero(~constant)
    bg_sd[live] = cosine_highpass(data[:, live], frame_times, HIGH_PASS_S).std(axis=0)
    srng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x6A1, s]))
    out = {}
    for p, usable, _kind, target in planted:
        m = jitter_mask(usable, adjacency, cfg.subjects.boundary_jitter, srng, ~constant)
        if not m.any():
            m = usable
        gain = smooth_gain(xyz, m, srng)[m]
        f = own[p.feature].to_numpy(np.float64)
        f_sd = float(cosine_highpass(f, frame_times, HIGH_PASS_S).std())
        r_s = min(target * strength, 0.9)
        amp = gain * planted_gain(r_s, f_sd, bg_sd[m])
        data[:, m] += (f[:, None] * amp[None, :]).astype(np.float32)
        canonical = features[p.feature].to_numpy(np.float64)
        out[p.feature] = {
            "n_vertices": int(m.sum()),
            "target_r": round(r_s, 4),
            "median_r_own_hrf": round(float(np.median(highpassed_r(f, data[:, m], frame_times))), 4),
            "median_r_canonical": round(float(np.median(highpassed_r(canonical, data[:, m], frame_times))), 4),
        }
    return out


def _subject_run(
    cfg: EmbeddedConfig, s: int, data: np.ndarray, conf: np.ndarray, words: pd.DataFrame, files: Mapping[str, Path]
) -> Run:
    """Subject ``s``'s run of the story, with its provenance (``files``: :func:`background_files`)."""
    return Run(
        dataset="embedded",
        subject=f"{s + 1:02d}",
        task="story",
        tr=cfg.tr,
        space="fsaverage5",
        data=data,
        confounds=pd.DataFrame(conf, columns=list(CONFOUND_NAMES)),
        words=words[["word", "onset", "duration"]],
        t0=0.0,
        meta={
            "source": str(files["lh"]),
            "source_rh": str(files["rh"]),
            "words_source": story_path(),
            "confounds_source": str(files["confounds"]),
            "semi_synthetic": True,
            "background": cfg.background,
        },
    )


def _ground_truth(
    cfg: EmbeddedConfig,
    words: pd.DataFrame,
    features: pd.DataFrame,
    nuisance: np.ndarray,
    constant: np.ndarray,
    planted: list[tuple],
    runs: list[Run],
    draws: list[dict],
    n_trs: int,
) -> dict:
    """The JSON-ready ground truth of the dataset (see :func:`make_embedded`)."""
    stats = speech_stats(words)
    truth = {
        "semi_synthetic": True,
        "description": (
            "Semi-synthetic data: each subject's fsaverage5 run is a "
            + ("phase-randomised surrogate" if cfg.background == "phase_randomised" else "segment")
            + " of one real resting-state run (brainspace sub-010188) plus stimulus features of an "
            "original story (and one stimulus-independent event train) added into chosen atlas networks, "
            "at a strength calibrated on real story-listening data, with a different HRF, network border, "
            "gain map and strength per subject; no one listened to the story."
        ),
        "seed": cfg.seed,
        "target_r": dict(cfg.target_r),
        "calibration": (
            "target_r = expected single-subject per-vertex Pearson r of the planted feature after a 128 s "
            "cosine high-pass (gain 1, strength 1, the subject's own HRF); set from the Alice ROI data"
        ),
        "tr": cfg.tr,
        "n_trs": n_trs,
        "n_subjects": cfg.n_subjects,
        "subjects": [r.subject for r in runs],
        "subject_variability": cfg.subjects.model_dump(),
        "subject_draws": draws,
        "background": cfg.background,
        "background_source": BRAINSPACE_RUN,
        "n_constant_vertices": int(constant.sum()),
        "planted": [
            {"feature": p.feature, "kind": kind, "atlas": p.atlas, "network": p.network,
             "n_vertices": int(u.sum()), "target_r": target}
            for p, u, kind, target in planted
        ],
        "nuisance": {"feature": NUISANCE_FEATURE, "n_events": int(len(nuisance)),
                     "mean_interval_s": cfg.nuisance_interval_s},
        "feature_correlations": feature_correlations(features),
        "story": {
            "n_words": stats["n_words"],
            "duration_s": round(stats["duration_s"], 3),
            "wpm": round(stats["wpm"], 2),
        },
    }
    return truth


def make_embedded(
    cfg: EmbeddedConfig, network_masks: Mapping[tuple[str, str], np.ndarray]
) -> tuple[list[Run], dict]:
    """Build the semi-synthetic story-listening dataset (module docstring).

    Parameters
    ----------
    cfg : EmbeddedConfig
    network_masks : mapping (atlas, network) -> bool array of shape (20484,)
        Must hold every ``(atlas, network)`` named in ``cfg.planted``.

    Returns
    -------
    runs : list of Run, one per subject ('01', '02', ...)
        dataset 'embedded', task 'story', space 'fsaverage5', data (n_trs, 20484) float32,
        confounds (n_trs, 6) motion, words of the story, t0 = 0.
    truth : dict
        JSON-ready ground truth: ``semi_synthetic``, ``seed``, ``target_r``, ``tr``, ``n_trs``,
        ``planted`` (feature, kind, atlas, network, n_vertices, target_r), ``subject_draws``
        (per subject: HRF, strength, and per planted feature the vertices used and the median
        per-vertex r after high-pass with its own and with the canonical feature),
        ``feature_correlations``, ``description`` and provenance.

    Raises
    ------
    ConfigError
        A planted network is missing from ``network_masks``.
    DataError
        A mask is malformed or holds no usable vertex; a source file is unreadable.
    """
    masks = _check_masks(cfg, network_masks)
    words, frame_times, features = embedded_design(cfg)
    n_trs = len(frame_times)
    nuisance = embedded_nuisance(cfg, n_trs)
    source, motion = load_background()
    constant = source.std(axis=0) == 0
    xyz = _sphere_coordinates()
    adjacency = sphere_adjacency()
    planted = _usable_planted(cfg, masks, constant)

    files = background_files()
    runs, draws = [], []
    for s, (data, conf) in enumerate(_subject_backgrounds(cfg, source, motion, constant, n_trs)):
        sub = draw_subject(cfg, s)
        own = stimulus_features(words, frame_times, (sub["hrf_delay_s"], sub["hrf_undershoot_s"]), nuisance)
        sub["planted"] = _plant_responses(cfg, s, data, sub["strength"], own, features, frame_times, planted,
                                          constant, xyz, adjacency)
        draws.append({"subject": f"{s + 1:02d}", **{k: (round(v, 4) if isinstance(v, float) else v)
                                                    for k, v in sub.items()}})
        runs.append(_subject_run(cfg, s, data, conf, words, files))
    return runs, _ground_truth(cfg, words, features, nuisance, constant, planted, runs, draws, n_trs)
