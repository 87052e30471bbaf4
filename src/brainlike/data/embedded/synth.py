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

Planted responses
    For each ``cfg.planted`` entry (feature, atlas, network), the z-scored feature time course
    (:func:`~brainlike.data.embedded.features.stimulus_features`) is added at every non-constant
    vertex ``v`` of the network mask with amplitude ``snr x gain_v x sd_v``: ``sd_v`` is the
    temporal s.d. of that subject's background at ``v`` and ``gain_v`` a smooth map over the
    sphere (a few random low-frequency plane waves, seeded by ``cfg.seed``, shared by subjects),
    scaled to span a 2:1 range and normalised to root-mean-square 1 inside the mask. So ``snr``
    is the root-mean-square over the network of (planted s.d. / background s.d.). Masks of
    different planted entries may overlap; there the signals add.

Confounds
    The brainspace confounds file lines up frame by frame with the run; columns 7-12 are the six
    rigid-body motion parameters in FSL mcflirt order (3 rotations in rad, 3 translations in mm,
    inferred from their scales) and are returned under fMRIPrep names. They undergo exactly the
    same extension and segment choice / phase randomisation as the data, so data and motion keep
    their real relation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import EmbeddedConfig
from ...errors import ConfigError, DataError
from ..run import N_VERTICES_FSAVERAGE5, Run
from .features import feature_correlations, stimulus_features
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


def _sphere_coordinates() -> np.ndarray:
    """Unit-sphere coordinates of the fsaverage5 vertices, shape (20484, 3) (nilearn's files)."""
    import nibabel as nib
    import nilearn.datasets

    root = Path(nilearn.datasets.__file__).parent / "data" / "fsaverage5"
    coords = []
    for h in ("left", "right"):
        path = root / f"sphere_{h}.gii.gz"
        try:
            coords.append(np.asarray(nib.load(path).darrays[0].data, np.float64))
        except (OSError, IndexError, ValueError) as exc:
            raise DataError(path, f"cannot read the fsaverage5 sphere: {exc}") from None
    xyz = np.concatenate(coords)
    return xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


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
    features : DataFrame of shape (n_trs, 5)
        z-scored features (:func:`~brainlike.data.embedded.stimulus_features`); row i is at
        ``frame_times[i]``. This is the table to save as ``features.parquet``.
    """
    words = story_words(cfg.speech, cfg.lead_in_s, cfg.seed)
    end = float(words["onset"].iloc[-1] + words["duration"].iloc[-1])
    n_trs = math.ceil((end + cfg.tail_s) / cfg.tr)
    frame_times = cfg.tr * np.arange(n_trs)
    return words, frame_times, stimulus_features(words, frame_times)


def embedded_features(cfg: EmbeddedConfig) -> pd.DataFrame:
    """Feature time courses of the embedded dataset, shape (n_trs, 5) (see :func:`embedded_design`)."""
    return embedded_design(cfg)[2]


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
        JSON-ready ground truth: ``semi_synthetic``, ``seed``, ``snr``, ``tr``, ``n_trs``,
        ``planted`` (feature, atlas, network, n_vertices), ``feature_correlations``,
        ``description`` and provenance.

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
    source, motion = load_background()
    constant = source.std(axis=0) == 0
    xyz = _sphere_coordinates()

    planted = []
    for k, (p, m) in enumerate(zip(cfg.planted, masks, strict=True)):
        usable = m & ~constant
        if not usable.any():
            raise DataError(
                None, f"mask of {p.atlas}/{p.network} has no vertex with signal in the background", "network_masks"
            )
        gain = smooth_gain(xyz, usable, np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x6A1, k])))
        planted.append((p, usable, gain))

    files = background_files()
    runs = []
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
        sd = data.std(axis=0)
        for p, usable, gain in planted:
            amp = (cfg.snr * gain[usable] * sd[usable]).astype(np.float32)
            data[:, usable] += features[p.feature].to_numpy(np.float32)[:, None] * amp[None, :]
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
            "original story added into chosen atlas networks at a set SNR; no one listened to the story."
        ),
        "seed": cfg.seed,
        "snr": cfg.snr,
        "tr": cfg.tr,
        "n_trs": n_trs,
        "n_subjects": cfg.n_subjects,
        "subjects": [r.subject for r in runs],
        "background": cfg.background,
        "background_source": BRAINSPACE_RUN,
        "n_constant_vertices": int(constant.sum()),
        "planted": [
            {"feature": p.feature, "atlas": p.atlas, "network": p.network, "n_vertices": int(u.sum())}
            for p, u, _ in planted
        ],
        "feature_correlations": feature_correlations(features),
        "story": {
            "n_words": stats["n_words"],
            "duration_s": round(stats["duration_s"], 3),
            "wpm": round(stats["wpm"], 2),
        },
    }
    return runs, truth
