"""Word timings of the embedded story from a documented speech-rate model.

No one read the story aloud, so its word timings come from a small model of read speech
(constants in :class:`brainlike.config.SpeechRateConfig`):

- the story is split into words; ``word`` is the bare word as written (``keeper's``, ``sea-glass``),
  and the punctuation between a word and the next one decides the pause after it;
- a word lasts ``n_syllables x syllable_s x (1 + jitter x e)``, ``e`` standard normal (seeded), the
  factor clipped to [0.5, 1.5] so no word is absurdly short or long;
- after each word comes ``word_gap_s`` of silence, plus ``comma_pause_s`` after ``, ; :`` or a dash,
  ``sentence_pause_s`` after ``. ! ?`` and ``paragraph_pause_s`` at a paragraph end (the largest
  applicable pause, not their sum);
- the first word starts at ``lead_in_s``.

Syllables are counted by a heuristic (:func:`count_syllables`): groups of consecutive vowels
(``a e i o u y``), minus one for a silent final ``e`` / ``-es`` / ``-ed`` (``stone``, ``times``,
``turned``; not ``little``, ``faces``, ``wanted``, ``the``), at least one per word. It is right
for most common English words and off by one on some (``tired``, ``loyalty``); only the relative
rhythm matters here.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pandas as pd

from ...config import SpeechRateConfig

STORY_FILE = "story.txt"

# A word: letters/digits, optionally joined by an apostrophe or a single hyphen ("keeper's", "sea-glass").
_WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019-][A-Za-z0-9]+)*")
_SENTENCE_END = re.compile(r"[.!?]")
_CLAUSE = re.compile(r"[,;:]|--|\u2014|\u2013")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_VOWEL_GROUP = re.compile(r"[aeiouy]+")


def story_path() -> str:
    """Path of the packaged story text (for provenance: ``Run.meta['words_source']``)."""
    return str(resources.files(__package__).joinpath(STORY_FILE))


def load_story() -> str:
    """The embedded story: original prose written for this project, ~1,750 words, paragraphs
    separated by blank lines."""
    return resources.files(__package__).joinpath(STORY_FILE).read_text(encoding="utf-8")


def count_syllables(word: str) -> int:
    """Syllables of an English word by the vowel-group heuristic.

    Counts groups of consecutive vowels (``y`` counts as a vowel) and subtracts one for a silent
    final ``e`` when the word has another vowel group: ``-e`` after a consonant except consonant +
    ``le`` (``stone`` but not ``little``), ``-es`` after a consonant other than s x z c g h
    (``times`` but not ``faces``), ``-ed`` after a consonant other than t d (``turned`` but not
    ``wanted``). Returns at least 1. Possessive ``'s`` and non-letters are ignored.

    >>> [count_syllables(w) for w in ["the", "lighthouse", "stone", "little", "times", "faces",
    ...                               "turned", "wanted", "paraffin", "keeper's"]]
    [1, 2, 1, 2, 1, 2, 1, 2, 3, 2]
    """
    w = re.sub(r"['\u2019]s$", "", word.lower())
    w = re.sub(r"[^a-z]", "", w)
    if not w:
        return 1
    n = len(_VOWEL_GROUP.findall(w))
    if n > 1 and (
        (w.endswith("e") and w[-2] not in "aeiouy" and not re.search(r"[^aeiouy]le$", w))
        or re.search(r"[^aeiouysxzcgh]es$", w)  # times, stones; not faces, boxes
        or re.search(r"[^aeiouytd]ed$", w)  # turned, poured; not wanted, faded
    ):
        n -= 1
    return max(n, 1)


def tokenize(text: str) -> pd.DataFrame:
    """Split prose into words with the punctuation that follows each.

    Returns
    -------
    DataFrame with one row per word (n_words rows) and columns
        ``word`` (str, as written), ``sentence_end``, ``clause_end``, ``paragraph_end`` (bool:
        what the text between this word and the next holds; the last word ends its sentence and
        paragraph), ``n_syllables`` (int).
    """
    matches = list(_WORD.finditer(text))
    rows = []
    for i, m in enumerate(matches):
        after = text[m.end() : matches[i + 1].start()] if i + 1 < len(matches) else "\n\n."
        para = bool(_PARAGRAPH.search(after))
        rows.append(
            {
                "word": m.group(0),
                "sentence_end": bool(_SENTENCE_END.search(after)) or para,
                "clause_end": bool(_CLAUSE.search(after)),
                "paragraph_end": para,
                "n_syllables": count_syllables(m.group(0)),
            }
        )
    return pd.DataFrame(rows, columns=["word", "sentence_end", "clause_end", "paragraph_end", "n_syllables"])


def time_words(tokens: pd.DataFrame, speech: SpeechRateConfig, lead_in_s: float, seed: int) -> pd.DataFrame:
    """Onsets and durations of tokenised words under the speech-rate model (module docstring).

    Parameters
    ----------
    tokens : DataFrame from :func:`tokenize` (n_words rows)
    speech : SpeechRateConfig
    lead_in_s : float
        Onset of the first word (seconds of silence before the story).
    seed : int
        Seed of the duration jitter; same seed, same timings.

    Returns
    -------
    DataFrame with n_words rows and columns ``word, onset, duration`` (seconds, stimulus clock)
    then ``n_syllables, sentence_end, paragraph_end``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x57_0E]))
    n_syl = tokens["n_syllables"].to_numpy(np.int64)
    factor = np.clip(1.0 + speech.jitter * rng.standard_normal(len(tokens)), 0.5, 1.5)
    duration = n_syl * speech.syllable_s * factor
    # The largest applicable pause follows each word; the last word's pause is irrelevant.
    pause = np.select(
        [tokens["paragraph_end"], tokens["sentence_end"], tokens["clause_end"]],
        [speech.paragraph_pause_s, speech.sentence_pause_s, speech.comma_pause_s],
        0.0,
    )
    step = duration + speech.word_gap_s + pause
    onset = lead_in_s + np.concatenate([[0.0], np.cumsum(step[:-1])])
    return pd.DataFrame(
        {
            "word": tokens["word"].to_numpy(),
            "onset": onset,
            "duration": duration,
            "n_syllables": n_syl,
            "sentence_end": tokens["sentence_end"].to_numpy(bool),
            "paragraph_end": tokens["paragraph_end"].to_numpy(bool),
        }
    )


def story_words(
    speech: SpeechRateConfig | None = None,
    lead_in_s: float = 10.0,
    seed: int = 0,
    text: str | None = None,
) -> pd.DataFrame:
    """Timed words of the embedded story (or of ``text``).

    Returns
    -------
    DataFrame with n_words rows: ``word, onset, duration, n_syllables, sentence_end, paragraph_end``
    (see :func:`time_words`).
    """
    return time_words(tokenize(load_story() if text is None else text), speech or SpeechRateConfig(), lead_in_s, seed)


def speech_stats(words: pd.DataFrame) -> dict[str, float]:
    """Words per minute (first onset to last offset) and total story duration in seconds."""
    start = float(words["onset"].iloc[0])
    end = float(words["onset"].iloc[-1] + words["duration"].iloc[-1])
    return {"n_words": len(words), "duration_s": end - start, "wpm": 60.0 * len(words) / (end - start)}
