"""Word timings from the three formats story-listening datasets use.

``read_words(path)`` dispatches on the file name:

- ``*.tsv`` -- BIDS events: columns ``onset``, ``duration`` and the word in the first of
  ``word``, ``words``, ``text``, ``stim``, ``stimulus``, ``trial_type`` that exists. When a
  ``trial_type`` column is present beside another word column and some rows have
  ``trial_type == "word"``, only those rows are kept (mixed events files).
- ``*.TextGrid`` -- Praat text TextGrid, long ("ooTextFile" with ``key = value`` lines) or
  short format, UTF-8 or UTF-16; parsed here, no extra dependency. The tier named ``word`` or
  ``words`` (any case) is used, else the first IntervalTier.
- ``*.json`` -- Gentle alignment as in Narratives (``align.json``): ``{"transcript": ...,
  "words": [{"word", "case", "start", "end", ...}]}``. Words Gentle could not place
  (``case != "success"``, e.g. ``"not-found-in-audio"``) have no timing: they are dropped and
  counted in ``attrs["n_unaligned"]``; interpolating a time for them would invent data.

Silence marks (``sp``, ``sil``, ``<sil>``, ``{SL}``, empty or blank text, ``n/a``; any case)
are dropped. Times are returned as in the file (the stimulus clock); see
:mod:`brainlike.data.loaders.bids` for how they meet the scan clock.

The returned table is validated with :func:`brainlike.data.run.check_words`, so decreasing or
overlapping times raise :class:`DataError` naming the file. ``DataFrame.attrs`` carries
``source`` (the path), ``format`` and the counts of dropped rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ..run import check_words

SILENCE_MARKS = frozenset({"", "sp", "sil", "<sil>", "{sl}", "n/a"})
WORD_COLUMN_CANDIDATES = ("word", "words", "text", "stim", "stimulus", "trial_type")
# Tolerance for interval boundaries that should coincide (TextGrid times are float text).
_EPS_S = 1e-3


def is_silence(text: str) -> bool:
    """True for silence / pause marks that are not words."""
    return str(text).strip().lower() in SILENCE_MARKS


def read_words(path: str | Path) -> pd.DataFrame:
    """Read word timings from an events TSV, a Praat TextGrid or a Gentle ``align.json``.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    DataFrame with columns word (str), onset (float, s), duration (float, s)
        One row per word, in file order, silences dropped; ``attrs`` holds provenance.

    Raises
    ------
    DataError
        Missing or unreadable file, unknown format, missing column, decreasing or
        overlapping times; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "word timing file not found")
    name = path.name.lower()
    if name.endswith(".tsv"):
        words, attrs = _read_events_tsv(path)
    elif name.endswith(".textgrid"):
        words, attrs = _read_textgrid_words(path)
    elif name.endswith(".json"):
        words, attrs = _read_gentle(path)
    else:
        raise DataError(path, "unknown word timing format; expected an events .tsv, a Praat .TextGrid or a Gentle align .json")
    out = check_words(words, str(path))
    out.attrs.update({"source": str(path)} | attrs)
    return out


# --------------------------------------------------------------------------- events TSV
def _read_events_tsv(path: Path) -> tuple[pd.DataFrame, dict]:
    try:
        ev = pd.read_csv(path, sep="\t", na_values=["n/a"], keep_default_na=False, dtype={"word": str})
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(path, f"cannot read as a tab-separated events table: {exc}") from None
    for col in ("onset", "duration"):
        if col not in ev.columns:
            raise DataError(path, f"events table lacks column {col!r}; columns are {list(ev.columns)}", col)
    word_col = next((c for c in WORD_COLUMN_CANDIDATES if c in ev.columns), None)
    if word_col is None:
        raise DataError(
            path, f"no word column: expected one of {list(WORD_COLUMN_CANDIDATES)}, columns are {list(ev.columns)}", "word"
        )
    n_other = 0
    if word_col != "trial_type" and "trial_type" in ev.columns:
        is_word = ev["trial_type"].astype(str).str.lower().eq("word")
        if is_word.any():
            n_other = int((~is_word).sum())
            ev = ev[is_word]
    text = ev[word_col].fillna("").astype(str)
    keep = ~text.map(is_silence)
    words = pd.DataFrame({"word": text[keep].str.strip(), "onset": ev["onset"][keep], "duration": ev["duration"][keep]})
    return words.reset_index(drop=True), {
        "format": "events_tsv",
        "word_column": word_col,
        "n_silence": int((~keep).sum()),
        "n_other_events": n_other,
    }


# --------------------------------------------------------------------------- TextGrid
_STRING = re.compile(r'"(?:[^"]|"")*"')  # "" inside a string is an escaped quote
_TOKEN = re.compile(
    r"(<exists>|<absent>)"  # flag
    r"|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"  # number
)
# Long-format labels carry indices in brackets ("item [1]:", "intervals [3]:"): not data.
_BRACKETS = re.compile(r"\[\s*\d*\s*\]")


def _decode(raw: bytes, path: Path) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    if b"\x00" in raw[:200]:  # UTF-16 without BOM (Praat on some systems)
        return raw.decode("utf-16-be" if raw[0] == 0 else "utf-16-le")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_textgrid(path: str | Path) -> list[dict]:
    """Parse a Praat text TextGrid (long or short format).

    Both formats carry the same sequence of strings, numbers and flags; the long one adds
    ``key =`` labels and bracketed indices, which hold no digits or quotes once the brackets
    are removed. So one tokenizer reads both.

    Returns
    -------
    list of dict
        One per tier: ``class`` ("IntervalTier" or "TextTier"), ``name``, ``xmin``, ``xmax``
        and ``items``: list of (xmin, xmax, text) for interval tiers, (time, mark) for text
        tiers.

    Raises
    ------
    DataError
        Binary or malformed file, or an interval tier whose intervals end before they start,
        overlap or go back in time.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "TextGrid file not found")
    raw = path.read_bytes()
    if raw.startswith(b"ooBinaryFile"):
        raise DataError(path, "binary TextGrid is not supported; save it from Praat as a text file")
    text = _decode(raw, path)
    # strings first, so brackets inside words are kept
    tokens: list = []
    pos = 0
    for m in _STRING.finditer(text):
        tokens += _tokens(_BRACKETS.sub(" ", text[pos : m.start()]))
        tokens.append(("s", m.group(0)[1:-1].replace('""', '"')))
        pos = m.end()
    tokens += _tokens(_BRACKETS.sub(" ", text[pos:]))

    it = iter(tokens)

    def take(kind: str, what: str):
        try:
            k, v = next(it)
        except StopIteration:
            raise DataError(path, f"TextGrid ends early: expected {what}") from None
        if k != kind:
            raise DataError(path, f"malformed TextGrid: expected {what}, found {v!r}")
        return v

    # old short files say "ooTextFile short"
    if not take("s", "'File type'").startswith("ooTextFile") or take("s", "'Object class'") != "TextGrid":
        raise DataError(path, 'not a Praat text TextGrid (expected File type = "ooTextFile", Object class = "TextGrid")')
    take("n", "xmin"), take("n", "xmax")
    if take("f", "tiers? flag") == "<absent>":
        return []
    tiers = []
    for t in range(int(take("n", "number of tiers"))):
        cls = take("s", f"class of tier {t + 1}")
        name = take("s", f"name of tier {t + 1}")
        txmin, txmax = take("n", "tier xmin"), take("n", "tier xmax")
        n = int(take("n", f"size of tier {name!r}"))
        if cls == "IntervalTier":
            items = [(take("n", "interval xmin"), take("n", "interval xmax"), take("s", "interval text")) for _ in range(n)]
            _check_intervals(items, name, path)
        elif cls == "TextTier":
            items = [(take("n", "point time"), take("s", "point mark")) for _ in range(n)]
        else:
            raise DataError(path, f"tier {name!r} has unknown class {cls!r}; expected IntervalTier or TextTier")
        tiers.append({"class": cls, "name": name, "xmin": txmin, "xmax": txmax, "items": items})
    return tiers


def _tokens(chunk: str) -> list:
    out = []
    for m in _TOKEN.finditer(chunk):
        if m.group(1):
            out.append(("f", m.group(1)))
        else:
            out.append(("n", float(m.group(2))))
    return out


def _check_intervals(items: list, tier: str, path: Path) -> None:
    for i, (a, b, txt) in enumerate(items):
        if b < a:
            raise DataError(
                path, f"tier {tier!r} interval {i + 1} ({txt!r}) ends at {b:.3f} s before it starts at {a:.3f} s", "xmax"
            )
        if i:
            prev_a, prev_b, prev_txt = items[i - 1]
            if a < prev_a:
                raise DataError(
                    path,
                    f"tier {tier!r} times decrease: interval {i + 1} ({txt!r}) starts at {a:.3f} s, "
                    f"before interval {i} ({prev_txt!r}) at {prev_a:.3f} s",
                    "xmin",
                )
            if a < prev_b - _EPS_S:
                raise DataError(
                    path,
                    f"tier {tier!r} intervals overlap: interval {i + 1} ({txt!r}) starts at {a:.3f} s, "
                    f"before interval {i} ({prev_txt!r}) ends at {prev_b:.3f} s",
                    "xmin",
                )


def _read_textgrid_words(path: Path) -> tuple[pd.DataFrame, dict]:
    tiers = [t for t in read_textgrid(path) if t["class"] == "IntervalTier"]
    if not tiers:
        raise DataError(path, "TextGrid has no IntervalTier holding words")
    tier = next((t for t in tiers if t["name"].strip().lower() in ("word", "words")), tiers[0])
    rows = [(txt.strip(), a, b - a) for a, b, txt in tier["items"] if not is_silence(txt)]
    words = pd.DataFrame(rows, columns=["word", "onset", "duration"])
    return words, {
        "format": "textgrid",
        "tier": tier["name"],
        "n_intervals": len(tier["items"]),
        "n_silence": len(tier["items"]) - len(rows),
    }


# --------------------------------------------------------------------------- Gentle
def _read_gentle(path: Path) -> tuple[pd.DataFrame, dict]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("words"), list):
        raise DataError(path, 'expected a Gentle alignment: {"transcript": ..., "words": [...]}', "words")
    rows, n_unaligned, n_silence = [], 0, 0
    for i, w in enumerate(doc["words"]):
        if not isinstance(w, dict) or "word" not in w:
            raise DataError(path, f"words[{i}] is not an object with a 'word' key", "words")
        if w.get("case", "success") != "success" or w.get("start") is None or w.get("end") is None:
            n_unaligned += 1
            continue
        if is_silence(w["word"]):
            n_silence += 1
            continue
        start, end = float(w["start"]), float(w["end"])
        if not (np.isfinite(start) and np.isfinite(end)) or end < start:
            raise DataError(path, f"words[{i}] ({w['word']!r}) has start {start} and end {end}", "words")
        rows.append((str(w["word"]), start, end - start))
    words = pd.DataFrame(rows, columns=["word", "onset", "duration"])
    return words, {"format": "gentle", "n_unaligned": n_unaligned, "n_silence": n_silence, "n_entries": len(doc["words"])}
