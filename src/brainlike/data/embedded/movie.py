"""The embedded image-caption "movie": real photographs, project captions, semi-synthetic fMRI.

Stimulus
    The real photographs shipped as files with ``scikit-image`` (``skimage.data``: astronaut,
    coffee, chelsea, rocket, camera, ...; :data:`MOVIE_IMAGES`), each with three captions written
    for the project (``captions.txt``, 5-17 words). Every (image, caption) pair is one *event*
    shown for ``event_s`` seconds; the 48 events are put in a seeded random order and follow each
    other without gaps after ``lead_in_s`` seconds of blank screen. The caption is also "read":
    its words are timed from 0.5 s after the event onset at one word every 0.3 s (0.28 s each),
    so the run's word table lets text-only models see the same stimulus.

Features (event level, then on the TR grid)
    ``image_edges``: edge density, the mean Sobel gradient magnitude of the grey-level image
    (values in [0, 1]) after the same shortest-edge resize and centre crop to 224 x 224 that a
    CLIP model sees; ``image_contrast``: RMS contrast (s.d. of grey levels) of that view;
    ``caption_length``: the caption's number of words. Each is a block regressor (one block of
    ``event_s`` per event, amplitude = the mean-centred event value) convolved with the SPM HRF
    (nilearn ``compute_regressor``, oversampling 16), sampled at the scan times and z-scored.

Brain data
    Exactly the story's approach (:mod:`brainlike.data.embedded.synth`; the functions of
    :mod:`~brainlike.data.embedded.background` and :mod:`~brainlike.data.embedded.sphere` are
    reused): real brainspace resting-state background, phase-randomised (or segments) per subject
    with its motion, plus each planted feature added into one atlas network at ``cfg.snr`` with
    a smooth gain map. Default layout (:data:`MOVIE_PLANTED`): ``image_edges`` -> Yeo-7 Visual,
    ``caption_length`` -> Cole-Anticevic Language. Semi-synthetic: nobody watched this movie.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import EmbeddedConfig
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
from .sphere import _sphere_coordinates, smooth_gain

# skimage.data function name -> the file it reads (all ship inside the wheel; none is fetched)
MOVIE_IMAGES: dict[str, str] = {
    "astronaut": "astronaut.png", "coffee": "coffee.png", "chelsea": "chelsea.png", "rocket": "rocket.jpg",
    "camera": "camera.png", "moon": "moon.png", "coins": "coins.png", "hubble_deep_field": "hubble_deep_field.jpg",
    "retina": "retina.jpg", "grass": "grass.png", "gravel": "gravel.png", "brick": "brick.png", "page": "page.png",
    "text": "text.png", "immunohistochemistry": "ihc.png", "clock": "clock_motion.png",
}
MOVIE_FEATURES = ("image_edges", "image_contrast", "caption_length")
# (feature, atlas, network): what drives which network in the default movie
MOVIE_PLANTED: tuple[tuple[str, str, str], ...] = (
    ("image_edges", "yeo7", "Visual"),
    ("caption_length", "cole_anticevic12", "Language"),
)
EVENT_COLUMNS = ("onset", "duration", "image", "caption")
VIEW_SIZE = 224  # side of the square view the image features are computed on
WORD_START_S, WORD_STEP_S, WORD_DUR_S = 0.5, 0.3, 0.28
IMAGE_PREFIX = "skimage:"


def captions_path() -> Path:
    return Path(__file__).with_name("captions.txt")


def load_captions(path: str | Path | None = None) -> pd.DataFrame:
    """The caption file as a table with columns ``image`` (skimage name) and ``caption``.

    Raises
    ------
    DataError
        A line without exactly one tab, an empty caption, or an image not in :data:`MOVIE_IMAGES`.
    """
    path = Path(path) if path is not None else captions_path()
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].strip():
            raise DataError(path, f"line {i}: expected '<image name>\\t<caption>', got {line!r}", "caption")
        name, caption = parts[0].strip(), " ".join(parts[1].split())
        if name not in MOVIE_IMAGES:
            raise DataError(path, f"line {i}: unknown image {name!r}; expected one of {sorted(MOVIE_IMAGES)}", "image")
        rows.append((name, caption))
    return pd.DataFrame(rows, columns=["image", "caption"])


def image_file(ref: str) -> Path:
    """The file behind an image reference: ``skimage:<name>`` (a file shipped in skimage.data) or a path."""
    if ref.startswith(IMAGE_PREFIX):
        import skimage.data

        root = Path(skimage.data.__file__).parent
        name = ref[len(IMAGE_PREFIX):]
        if name not in MOVIE_IMAGES or not (root / MOVIE_IMAGES[name]).is_file():
            raise DataError(root / MOVIE_IMAGES.get(name, name), f"image {ref!r} is not a photograph file shipped "
                            f"with scikit-image; known: {sorted(MOVIE_IMAGES)}", "image")
        return root / MOVIE_IMAGES[name]
    p = Path(ref)
    if not p.is_file():
        raise DataError(p, "image file not found", "image")
    return p


def load_image(ref: str) -> np.ndarray:
    """An image as RGB uint8, shape (height, width, 3) (grey levels repeated, alpha dropped)."""
    from PIL import Image, UnidentifiedImageError

    path = image_file(ref)
    try:
        with Image.open(path) as im:
            x = np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(path, f"cannot read the image: {exc}", "image") from None
    return x


def square_view(rgb: np.ndarray, size: int = VIEW_SIZE) -> np.ndarray:
    """Shortest-edge bicubic resize to ``size`` then centre crop: (H, W, 3) uint8 -> (size, size, 3) uint8."""
    from PIL import Image

    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    im = Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BICUBIC)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.asarray(im)[top : top + size, left : left + size]


def image_features(ref: str) -> dict[str, float]:
    """``image_edges`` (mean Sobel magnitude) and ``image_contrast`` (grey-level s.d.) of the square view."""
    from skimage.color import rgb2gray
    from skimage.filters import sobel

    grey = rgb2gray(square_view(load_image(ref)))
    return {"image_edges": float(sobel(grey).mean()), "image_contrast": float(grey.std())}


def movie_events(seed: int = 0, event_s: float = 6.0, lead_in_s: float = 10.0,
                 captions: pd.DataFrame | None = None) -> pd.DataFrame:
    """The event table: every caption once, in a seeded random order, back to back.

    Returns
    -------
    DataFrame of shape (n_events, 7)
        ``onset``, ``duration`` (s, stimulus clock), ``image`` (``skimage:<name>``), ``caption``,
        and the event values of :data:`MOVIE_FEATURES` (not centred).
    """
    caps = load_captions() if captions is None else captions
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x30F1E])).permutation(len(caps))
    ev = caps.iloc[order].reset_index(drop=True)
    if (ev["caption"].str.split().str.len() * WORD_STEP_S + WORD_START_S > event_s).any():
        raise ConfigError(f"embedded movie: event_s={event_s} is too short to read the longest caption")
    feats = {name: image_features(IMAGE_PREFIX + name) for name in sorted(set(ev["image"]))}
    out = pd.DataFrame({
        "onset": lead_in_s + event_s * np.arange(len(ev), dtype=np.float64),
        "duration": np.full(len(ev), float(event_s)),
        "image": IMAGE_PREFIX + ev["image"],
        "caption": ev["caption"],
    })
    for f in ("image_edges", "image_contrast"):
        out[f] = [feats[n][f] for n in ev["image"]]
    out["caption_length"] = ev["caption"].str.split().str.len().astype(np.float64)
    return out


def caption_words(events: pd.DataFrame) -> pd.DataFrame:
    """The captions' words, timed from each event's onset (module docstring); columns word, onset, duration."""
    rows = []
    for onset, caption in zip(events["onset"], events["caption"], strict=True):
        for j, w in enumerate(caption.split()):
            rows.append((w, onset + WORD_START_S + j * WORD_STEP_S, WORD_DUR_S))
    return pd.DataFrame(rows, columns=["word", "onset", "duration"])


def block_regressor(onsets: np.ndarray, durations: np.ndarray, amplitudes: np.ndarray,
                    frame_times: np.ndarray) -> np.ndarray:
    """Blocks convolved with the SPM HRF (nilearn) at ``frame_times``, z-scored; shape (n_trs,)."""
    from nilearn.glm.first_level import compute_regressor

    cond = np.vstack([onsets, durations, amplitudes]).astype(np.float64)
    reg = compute_regressor(cond, "spm", np.asarray(frame_times, np.float64), oversampling=16)[0][:, 0]
    sd = reg.std()
    return (reg - reg.mean()) / sd if sd > 0 else reg - reg.mean()


def movie_features(events: pd.DataFrame, frame_times: np.ndarray) -> pd.DataFrame:
    """The :data:`MOVIE_FEATURES` on the TR grid, shape (n_trs, 3), each z-scored."""
    on, dur = events["onset"].to_numpy(np.float64), events["duration"].to_numpy(np.float64)
    return pd.DataFrame({
        f: block_regressor(on, dur, (v := events[f].to_numpy(np.float64)) - v.mean(), frame_times)
        for f in MOVIE_FEATURES
    })


def movie_design(
    cfg: EmbeddedConfig, event_s: float = 6.0
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Events, caption words, scan times and TR-level features shared by every subject.

    Returns
    -------
    events : DataFrame (n_events rows, see :func:`movie_events`)
    words : DataFrame (n_words rows: word, onset, duration)
    frame_times : array of shape (n_trs,), ``tr * arange(n_trs)``
    features : DataFrame of shape (n_trs, 3)
    """
    events = movie_events(cfg.seed, event_s, cfg.lead_in_s)
    end = float(events["onset"].iloc[-1] + events["duration"].iloc[-1])
    frame_times = cfg.tr * np.arange(math.ceil((end + cfg.tail_s) / cfg.tr))
    return events, caption_words(events), frame_times, movie_features(events, frame_times)


def _movie_masks(planted: Sequence[tuple[str, str, str]], network_masks: Mapping) -> list[np.ndarray]:
    masks = []
    for feature, atlas, network in planted:
        if feature not in MOVIE_FEATURES:
            raise ConfigError(f"embedded movie: unknown planted feature {feature!r}; expected one of {MOVIE_FEATURES}")
        if (atlas, network) not in network_masks:
            known = sorted(n for a, n in network_masks if a == atlas)
            raise ConfigError(f"embedded movie: network {network!r} of atlas {atlas!r} (driven by {feature}) is not "
                              f"among the atlas networks supplied: {known or 'none for this atlas'}")
        m = np.asarray(network_masks[(atlas, network)])
        if m.shape != (N_VERTICES_FSAVERAGE5,) or m.dtype != bool:
            raise DataError(None, f"mask of {atlas}/{network} must be a bool array of shape "
                            f"({N_VERTICES_FSAVERAGE5},), got {m.dtype} {m.shape}", "network_masks")
        masks.append(m)
    return masks


def make_embedded_movie(
    cfg: EmbeddedConfig,
    network_masks: Mapping[tuple[str, str], np.ndarray],
    planted: Sequence[tuple[str, str, str]] = MOVIE_PLANTED,
    event_s: float = 6.0,
) -> tuple[list[Run], dict]:
    """Build the semi-synthetic image-caption movie dataset (module docstring).

    Parameters
    ----------
    cfg : EmbeddedConfig
        Its seed, n_subjects, tr, snr, lead_in_s, tail_s and background are used.
    network_masks : mapping (atlas, network) -> bool array of shape (20484,)
        Must hold every network named in ``planted``.
    planted : sequence of (feature, atlas, network)
        Feature names from :data:`MOVIE_FEATURES`.
    event_s : float
        Display time of one image-caption event (s).

    Returns
    -------
    runs : list of Run, one per subject
        dataset 'embedded', task 'movie', space 'fsaverage5', words = the caption words;
        ``meta['events']``: the event table as a list of records (onset, duration, image,
        caption and the event feature values), ``meta['stimulus_type'] = 'image_caption'``.
    truth : dict
        JSON-ready ground truth as :func:`~brainlike.data.embedded.make_embedded`'s.
    """
    masks = _movie_masks(planted, network_masks)
    events, words, frame_times, features = movie_design(cfg, event_s)
    n_trs = len(frame_times)
    source, motion = load_background()
    constant = source.std(axis=0) == 0
    xyz = _sphere_coordinates()
    gains = []
    for k, ((feature, atlas, network), m) in enumerate(zip(planted, masks, strict=True)):
        usable = m & ~constant
        if not usable.any():
            raise DataError(None, f"mask of {atlas}/{network} has no vertex with signal in the background",
                            "network_masks")
        gains.append((feature, usable, smooth_gain(xyz, usable, np.random.default_rng(
            np.random.SeedSequence([cfg.seed, 0x30F1E, 0x6A1, k])))))
    files = background_files()
    period = 2 * N_SOURCE_FRAMES
    offset = int(np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x30F1E, 0x5E6])).integers(period))
    joint = None
    if cfg.background == "phase_randomised":  # data and motion share one surrogate
        joint = np.concatenate([source, motion.astype(np.float32)], axis=1)
    runs = []
    for s in range(cfg.n_subjects):
        # another seed stream than the story's: the movie is another session of the same subjects
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x30F1E, 0xB6, s]))
        if joint is not None:
            sur = phase_randomise(joint, n_trs, rng)
            data = np.ascontiguousarray(sur[:, :N_VERTICES_FSAVERAGE5])
            conf = sur[:, N_VERTICES_FSAVERAGE5:].astype(np.float64)
            data[:, constant] = source[0, constant]
        else:
            start = (offset + (s * period) // cfg.n_subjects) % period
            data, conf = segment(source, n_trs, start), segment(motion, n_trs, start)
        sd = data.std(axis=0)
        for feature, usable, gain in gains:
            amp = (cfg.snr * gain[usable] * sd[usable]).astype(np.float32)
            data[:, usable] += features[feature].to_numpy(np.float32)[:, None] * amp[None, :]
        runs.append(Run(
            dataset="embedded", subject=f"{s + 1:02d}", task="movie", tr=cfg.tr, space="fsaverage5", data=data,
            confounds=pd.DataFrame(conf, columns=list(CONFOUND_NAMES)), words=words, t0=0.0,
            meta={
                "source": str(files["lh"]), "source_rh": str(files["rh"]), "words_source": str(captions_path()),
                "events_source": str(captions_path()), "confounds_source": str(files["confounds"]),
                "semi_synthetic": True, "background": cfg.background, "stimulus_type": "image_caption",
                "events": events.to_dict(orient="records"),
            },
        ))
    c = features.corr()
    truth = {
        "semi_synthetic": True,
        "description": (
            "Semi-synthetic data: each subject's fsaverage5 run is a "
            + ("phase-randomised surrogate" if cfg.background == "phase_randomised" else "segment")
            + " of one real resting-state run (brainspace sub-010188) plus features of an image-caption movie "
            "(real scikit-image photographs, captions written for the project) added into chosen atlas networks "
            "at a set SNR; no one watched the movie."
        ),
        "seed": cfg.seed, "snr": cfg.snr, "tr": cfg.tr, "n_trs": n_trs, "n_subjects": cfg.n_subjects,
        "subjects": [r.subject for r in runs], "background": cfg.background, "background_source": BRAINSPACE_RUN,
        "n_constant_vertices": int(constant.sum()),
        "planted": [{"feature": f, "atlas": a, "network": n, "n_vertices": int(u.sum())}
                    for (f, a, n), (_, u, _) in zip(planted, gains, strict=True)],
        "feature_correlations": {a: {b: round(float(c.loc[a, b]), 4) for b in c.columns} for a in c.index},
        "movie": {"n_events": len(events), "event_s": event_s, "n_images": int(events["image"].nunique()),
                  "n_words": len(words)},
    }
    return runs, truth
