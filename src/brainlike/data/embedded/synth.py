"""Semi-synthetic fsaverage5 runs: real resting-state background + planted stimulus responses.

Background
    The one real resting-state run shipped with the ``brainspace`` package
    (``sub-010188_ses-02_task-rest_acq-AP_run-01``, fsaverage5, 10,242 vertices x 652 frames per
    hemisphere, already confound-regressed). Its frames are treated as TRs of ``cfg.tr`` (the
    source TR does not enter: only the temporal structure in samples is reused). The series is
    extended by time reversal, ``[x, x reversed]``, into a seamless periodic signal of 1,304 frames
    (no jump where it wraps), tiled again if a run needs more.

    ``phase_randomised``: per subject, the Fourier phases of that periodic signal are replaced by
    random ones, the *same* phases at every vertex, then the first ``n_trs`` frames are kept. This
    keeps each vertex's power spectrum and the cross-spectra between vertices (so the spatial
    covariance of resting-state networks), and destroys the original time course.
    ``segments``: subject ``s`` gets ``n_trs`` contiguous frames of the periodic signal starting at
    ``(offset + s * 1304 / n_subjects) mod 1304`` (``offset`` seeded); segments past the end of the
    original continue into its time reversal, and runs longer than 1,304 frames repeat it.

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
      dropped and the same share of its outer neighbours added (:func:`jitter_mask`);
    - gain map: a smooth map over the sphere (:func:`smooth_gain`, 2:1 range, RMS 1 inside).

    ``z`` draws are clipped at 2 s.d. Masks of different planted entries may overlap; there the
    signals add.

Confounds
    The brainspace confounds file lines up frame by frame with the run; columns 7-12 are the six
    rigid-body motion parameters in FSL mcflirt order (3 rotations in rad, 3 translations in mm,
    inferred from their scales) and are returned under fMRIPrep names. They undergo exactly the
    same extension and segment choice / phase randomisation as the data, so data and motion keep
    their real relation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import FEATURE_KINDS, EmbeddedConfig
from ...errors import ConfigError, DataError
from ..run import N_VERTICES_FSAVERAGE5, Run
from .calibrate import HIGH_PASS_S, cosine_highpass, highpassed_r, planted_gain
from .features import (
    NUISANCE_FEATURE,
    SPM_DELAY_S,
    SPM_UNDERSHOOT_S,
    feature_correlations,
    nuisance_onsets,
    stimulus_features,
)
from .timing import speech_stats, story_path, story_words

BRAINSPACE_RUN = "sub-010188_ses-02_task-rest_acq-AP_run-01"
N_SOURCE_FRAMES = 652
# Columns 6..11 (0-based) of the confounds txt, mcflirt order, -> fMRIPrep names.
MOTION_COLUMNS = {"rot_x": 6, "rot_y": 7, "rot_z": 8, "trans_x": 9, "trans_y": 10, "trans_z": 11}
CONFOUND_NAMES = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_CHUNK = 4096  # vertices per FFT batch: bounds the surrogate's working memory (~40 MB)


def background_files() -> dict[str, Path]:
    """Paths of the brainspace resting-state run: keys ``lh``, ``rh``, ``confounds``."""
    import brainspace

    root = Path(brainspace.__file__).parent / "datasets" / "preprocessing"
    return {
        "lh": root / f"{BRAINSPACE_RUN}.fsa5.lh.mgz",
        "rh": root / f"{BRAINSPACE_RUN}.fsa5.rh.mgz",
        "confounds": root / f"{BRAINSPACE_RUN}_confounds.txt",
    }


def load_background() -> tuple[np.ndarray, np.ndarray]:
    """The real resting-state run and its motion parameters.

    Returns
    -------
    data : array of shape (652, 20484), float32
        Left hemisphere vertices then right.
    motion : array of shape (652, 6), float64
        Columns :data:`CONFOUND_NAMES`.
    """
    import nibabel as nib

    files = background_files()
    hemis = []
    for h in ("lh", "rh"):
        try:
            x = np.asarray(nib.load(files[h]).dataobj, dtype=np.float32).reshape(-1, N_SOURCE_FRAMES)
        except (OSError, ValueError) as exc:
            raise DataError(files[h], f"cannot read the resting-state background: {exc}") from None
        hemis.append(x)
    data = np.ascontiguousarray(np.concatenate(hemis).T)
    if data.shape != (N_SOURCE_FRAMES, N_VERTICES_FSAVERAGE5):
        raise DataError(
            files["lh"],
            f"expected {N_VERTICES_FSAVERAGE5} vertices x {N_SOURCE_FRAMES} frames, got {data.shape[::-1]}",
        )
    try:
        conf = np.loadtxt(files["confounds"], ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(files["confounds"], f"cannot read the confounds: {exc}") from None
    if conf.shape[0] != N_SOURCE_FRAMES or conf.shape[1] <= max(MOTION_COLUMNS.values()):
        raise DataError(files["confounds"], f"expected {N_SOURCE_FRAMES} rows and >= 12 columns, got {conf.shape}")
    motion = conf[:, [MOTION_COLUMNS[c] for c in CONFOUND_NAMES]]
    return data, motion


def _periodic(x: np.ndarray, n: int) -> np.ndarray:
    """Time-reversal extension ``[x, x[::-1]]`` tiled to a multiple of its period that is >= n.

    x : array of shape (T, ...) -> array of shape (2 T k, ...), k = ceil(n / 2T).
    """
    period = np.concatenate([x, x[::-1]])
    return np.concatenate([period] * math.ceil(n / len(period)))


def phase_randomise(x: np.ndarray, n: int, rng: np.random.Generator, chunk: int = _CHUNK) -> np.ndarray:
    """Phase-randomised surrogate of a multichannel series, cropped to n frames.

    The time-reversal periodic extension of ``x`` (:func:`_periodic`, length L) is Fourier
    transformed, every frequency's phase is shifted by one random angle shared by all columns
    (0 at DC and at Nyquist, so the result is real), and the inverse transform is cropped.

    Parameters
    ----------
    x : array of shape (T, V)
    n : int
        Frames wanted.
    rng : Generator
        Source of the phases; draws L // 2 + 1 numbers.

    Returns
    -------
    array of shape (n, V), dtype of ``x``
    """
    import scipy.fft

    length = 2 * len(x) * math.ceil(n / (2 * len(x)))
    n_freq = length // 2 + 1
    phases = rng.uniform(0.0, 2.0 * np.pi, n_freq)
    phases[0] = 0.0
    if length % 2 == 0:
        phases[-1] = 0.0
    rot = np.exp(1j * phases)[:, None].astype(np.result_type(x.dtype, np.complex64))
    out = np.empty((n, x.shape[1]), dtype=x.dtype)
    for start in range(0, x.shape[1], chunk):
        block = _periodic(x[:, start : start + chunk], n)
        spec = scipy.fft.rfft(block, axis=0)
        out[:, start : start + chunk] = scipy.fft.irfft(spec * rot, n=length, axis=0)[:n]
    return out


def segment(x: np.ndarray, n: int, start: int) -> np.ndarray:
    """``n`` contiguous frames of the periodic extension of ``x`` from ``start`` (wrapping).

    x : array of shape (T, ...) -> array of shape (n, ...).
    """
    period = np.concatenate([x, x[::-1]])
    return period[(start + np.arange(n)) % len(period)]


def _sphere_files() -> list[Path]:
    import nilearn.datasets

    root = Path(nilearn.datasets.__file__).parent / "data" / "fsaverage5"
    return [root / f"sphere_{h}.gii.gz" for h in ("left", "right")]


def _sphere_coordinates() -> np.ndarray:
    """Unit-sphere coordinates of the fsaverage5 vertices, shape (20484, 3) (nilearn's files)."""
    import nibabel as nib

    coords = []
    for path in _sphere_files():
        try:
            coords.append(np.asarray(nib.load(path).darrays[0].data, np.float64))
        except (OSError, IndexError, ValueError) as exc:
            raise DataError(path, f"cannot read the fsaverage5 sphere: {exc}") from None
    xyz = np.concatenate(coords)
    return xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


def sphere_adjacency():
    """Vertex adjacency of the fsaverage5 mesh (both hemispheres), a sparse (20484, 20484) bool matrix."""
    import nibabel as nib
    import scipy.sparse as sp

    rows, cols, offset = [], [], 0
    for path in _sphere_files():
        try:
            img = nib.load(path)
            faces = np.asarray(img.darrays[1].data, np.int64) + offset
            offset += len(img.darrays[0].data)
        except (OSError, IndexError, ValueError) as exc:
            raise DataError(path, f"cannot read the fsaverage5 mesh faces: {exc}") from None
        for a, b in ((0, 1), (1, 2), (2, 0)):
            rows += [faces[:, a], faces[:, b]]
            cols += [faces[:, b], faces[:, a]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sp.csr_matrix((np.ones(r.size, bool), (r, c)), shape=(offset, offset))


def jitter_mask(mask: np.ndarray, adjacency, fraction: float, rng: np.random.Generator,
                allowed: np.ndarray | None = None) -> np.ndarray:
    """One subject's version of a network: its border moved at random by one vertex ring.

    Each border vertex (in ``mask``, with a neighbour outside) is dropped with probability
    ``fraction``; each outer neighbour (outside, with a neighbour inside, and ``allowed``) is
    added with probability ``fraction``.

    Parameters
    ----------
    mask : bool array of shape (V,)
    adjacency : sparse (V, V) matrix, e.g. :func:`sphere_adjacency`
    fraction : float in [0, 1]
    rng : Generator
    allowed : bool array of shape (V,), optional
        Vertices that may be added (e.g. not the medial wall).

    Returns
    -------
    bool array of shape (V,)
    """
    m = np.asarray(mask, bool)
    n_out = np.asarray(adjacency @ (~m).astype(np.int32)).ravel()
    n_in = np.asarray(adjacency @ m.astype(np.int32)).ravel()
    border = m & (n_out > 0)
    outer = ~m & (n_in > 0)
    if allowed is not None:
        outer &= np.asarray(allowed, bool)
    u = rng.random((2, m.size))
    return (m & ~(border & (u[0] < fraction))) | (outer & (u[1] < fraction))


def smooth_gain(xyz: np.ndarray, mask: np.ndarray, rng: np.random.Generator, n_waves: int = 4) -> np.ndarray:
    """A smooth positive gain map inside ``mask``.

    Sum of ``n_waves`` plane waves ``cos(2 u_k . x + phi_k)`` over the unit sphere (wavelength
    ~pi radians of arc, so it varies slowly across a network), min-max scaled to [0.5, 1] inside
    the mask and then divided by its root-mean-square there.

    Parameters
    ----------
    xyz : array of shape (V, 3), unit vectors
    mask : bool array of shape (V,)

    Returns
    -------
    array of shape (V,): 0 outside ``mask``, RMS 1 inside, max/min = 2 (unless flat).
    """
    u = rng.standard_normal((n_waves, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    phi = rng.uniform(0.0, 2.0 * np.pi, n_waves)
    field = np.cos(2.0 * xyz[mask] @ u.T + phi).sum(axis=1)
    span = field.max() - field.min()
    g = 0.5 + 0.5 * (field - field.min()) / span if span > 0 else np.ones_like(field)
    out = np.zeros(len(mask))
    out[mask] = g / np.sqrt(np.mean(g**2))
    return out


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

    planted = []
    for p, m in zip(cfg.planted, masks, strict=True):
        usable = m & ~constant
        if not usable.any():
            raise DataError(
                None, f"mask of {p.atlas}/{p.network} has no vertex with signal in the background", "network_masks"
            )
        kind = FEATURE_KINDS[p.feature]
        planted.append((p, usable, kind, float(cfg.target_r[kind])))

    files = background_files()
    runs, draws = [], []
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
        sub = draw_subject(cfg, s)
        own = stimulus_features(words, frame_times, (sub["hrf_delay_s"], sub["hrf_undershoot_s"]), nuisance)
        bg_sd = np.zeros(N_VERTICES_FSAVERAGE5)
        live = np.flatnonzero(~constant)
        bg_sd[live] = cosine_highpass(data[:, live], frame_times, HIGH_PASS_S).std(axis=0)
        srng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x6A1, s]))
        sub["planted"] = {}
        for p, usable, _kind, target in planted:
            m = jitter_mask(usable, adjacency, cfg.subjects.boundary_jitter, srng, ~constant)
            if not m.any():
                m = usable
            gain = smooth_gain(xyz, m, srng)[m]
            f = own[p.feature].to_numpy(np.float64)
            f_sd = float(cosine_highpass(f, frame_times, HIGH_PASS_S).std())
            r_s = min(target * sub["strength"], 0.9)
            amp = gain * planted_gain(r_s, f_sd, bg_sd[m])
            data[:, m] += (f[:, None] * amp[None, :]).astype(np.float32)
            canonical = features[p.feature].to_numpy(np.float64)
            sub["planted"][p.feature] = {
                "n_vertices": int(m.sum()),
                "target_r": round(r_s, 4),
                "median_r_own_hrf": round(float(np.median(highpassed_r(f, data[:, m], frame_times))), 4),
                "median_r_canonical": round(float(np.median(highpassed_r(canonical, data[:, m], frame_times))), 4),
            }
        draws.append({"subject": f"{s + 1:02d}", **{k: (round(v, 4) if isinstance(v, float) else v)
                                                    for k, v in sub.items()}})
        runs.append(
            Run(
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
        )

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
    return runs, truth
