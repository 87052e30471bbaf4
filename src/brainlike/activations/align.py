"""Tokens <-> words and long-stimulus windows of the text extractor.

The stimulus text is the words joined by single spaces; a fast tokenizer's offset mapping
then says which word each token belongs to. Windows cover the token sequence with overlap;
each token is *owned* by one window: for causal models the one giving it the most left
context (the earliest window containing it), for bidirectional encoders the one where it
sits most centrally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenAlignment:
    """The tokenised stimulus.

    input_ids : array of shape (n_tokens,), int64 (no special tokens)
    word_of_token : array of shape (n_tokens,), int64; -1 for tokens of no word (whitespace)
    prefix_ids, suffix_ids : special tokens put around every window (e.g. [CLS] ... [SEP], <bos>)
    """

    text: str
    input_ids: np.ndarray
    word_of_token: np.ndarray
    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    n_words: int

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.size)

    def tokens_per_word(self) -> np.ndarray:
        """Number of tokens of each word, shape (n_words,)."""
        w = self.word_of_token
        return np.bincount(w[w >= 0], minlength=self.n_words)


def join_words(words: list[str]) -> tuple[str, np.ndarray, np.ndarray]:
    """Join words with single spaces; return (text, starts, ends) character spans of each word."""
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]) if len(words) else np.zeros(0, np.int64)
    return " ".join(words), starts, starts + lengths


class AlignmentError(ValueError):
    """Words and tokenizer offsets disagree (carries the first offending word index)."""

    def __init__(self, index: int, word: str, problem: str):
        self.index, self.word = index, word
        super().__init__(f"word {index} ({word!r}): {problem}")


def special_tokens(tokenizer) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Special tokens the tokenizer puts before and after a text (e.g. [CLS]/[SEP], <bos>)."""
    probe = "hello world"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for i in range(len(full) - len(bare) + 1):
        if full[i : i + len(bare)] == bare:
            return tuple(full[:i]), tuple(full[i + len(bare) :])
    return (), ()


def align_tokens(words: list[str], tokenizer) -> TokenAlignment:
    """Tokenise the words and map every token to its word through offsets.

    Raises
    ------
    AlignmentError
        If a word is empty or contains whitespace only, if a word gets no token, or if its
        tokens do not cover all its non-space characters (the tokenizer dropped or altered
        text, so its offsets cannot be trusted for this word).
    TypeError
        If the tokenizer is not a fast tokenizer (no offset mapping).
    """
    for i, w in enumerate(words):
        if not w.strip():
            raise AlignmentError(i, w, "empty or whitespace-only word")
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"{type(tokenizer).__name__} is not a fast tokenizer: no offset mapping")
    text, starts, ends = join_words(words)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    char_word = np.full(len(text) + 1, -1, dtype=np.int64)
    for i, (s, e) in enumerate(zip(starts, ends)):
        char_word[s:e] = i
    is_space = np.array([c.isspace() for c in text] + [True])
    covered = np.zeros(len(text) + 1, dtype=bool)
    word_of_token = np.full(ids.size, -1, dtype=np.int64)
    for t, (a, b) in enumerate(offsets):
        if b <= a:
            continue
        hit = char_word[a:b]
        hit = hit[hit >= 0]
        if hit.size:
            word_of_token[t] = hit[0]
            covered[a:b] = True
    counts = np.bincount(word_of_token[word_of_token >= 0], minlength=len(words))
    for i in np.flatnonzero(counts == 0):
        raise AlignmentError(int(i), words[i], "no token of the tokenizer covers this word's text")
    missing = (~covered) & (~is_space) & (char_word >= 0)
    if missing.any():
        i = int(char_word[np.flatnonzero(missing)[0]])
        raise AlignmentError(i, words[i], "the tokenizer offsets do not cover all characters of this word")
    pre, suf = special_tokens(tokenizer)
    return TokenAlignment(text, ids, word_of_token, pre, suf, len(words))


@dataclass(frozen=True)
class WindowPlan:
    """Windows over the token sequence.

    starts, stops : arrays of shape (n_windows,): window w holds tokens [starts[w], stops[w])
    owner : array of shape (n_tokens,): the window each token's activation is taken from
    """

    starts: np.ndarray
    stops: np.ndarray
    owner: np.ndarray

    @property
    def n_windows(self) -> int:
        return int(self.starts.size)

    def kept(self, w: int) -> np.ndarray:
        """Token indices (global) owned by window ``w``."""
        lo, hi = self.starts[w], self.stops[w]
        return lo + np.flatnonzero(self.owner[lo:hi] == w)


def plan_windows(n_tokens: int, capacity: int, stride: int, causal: bool) -> WindowPlan:
    """Cover ``n_tokens`` with windows of ``capacity`` tokens starting every ``stride`` tokens.

    The last window is aligned to the end of the sequence. A causal model's token is owned by
    the earliest window containing it (most left context); a bidirectional model's token by the
    window whose centre is nearest (ties: the earlier window).

    Returns
    -------
    WindowPlan
    """
    if capacity < 1 or stride < 1 or stride > capacity:
        raise ValueError(f"need 1 <= stride <= capacity, got stride={stride}, capacity={capacity}")
    if n_tokens <= capacity:
        starts = np.array([0], dtype=np.int64)
    else:
        starts = np.arange(0, n_tokens - capacity, stride, dtype=np.int64)
        starts = np.append(starts, n_tokens - capacity)
    stops = np.minimum(starts + capacity, n_tokens)
    pos = np.arange(n_tokens)
    inside = (pos[None, :] >= starts[:, None]) & (pos[None, :] < stops[:, None])
    if causal:
        owner = np.argmax(inside, axis=0)
    else:
        centre = (starts + stops - 1) / 2.0
        dist = np.where(inside, np.abs(pos[None, :] - centre[:, None]), np.inf)
        owner = np.argmin(dist, axis=0)
    return WindowPlan(starts, stops, owner.astype(np.int64))
