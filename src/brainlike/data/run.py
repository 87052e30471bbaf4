"""One in-memory representation of an fMRI run, shared by every loader and stage.

Time convention: word onsets are on the *stimulus clock*; ``t0`` is the stimulus-clock time at
which row 0 of ``data`` was acquired, so row ``i`` is at ``t0 + i * tr``. A run whose first
volumes were discarded (Alice: 10 volumes at TR 2 s) has ``t0 = 20``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ..errors import DataError

Space = Literal["fsaverage5", "roi"]
N_VERTICES_FSAVERAGE5 = 20484  # 2 x 10,242
WORD_COLUMNS = ("word", "onset", "duration")


def check_words(words: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate and normalise a words table (columns word, onset, duration; seconds).

    Rows are kept in order. Raises :class:`DataError` naming ``source`` on missing columns,
    non-finite or negative times, decreasing onsets or overlapping words.
    """
    missing = [c for c in WORD_COLUMNS if c not in words.columns]
    if missing:
        raise DataError(source, f"words table lacks column(s) {missing}; expected {list(WORD_COLUMNS)}")
    out = pd.DataFrame(
        {
            "word": words["word"].astype(str).to_numpy(),
            "onset": pd.to_numeric(words["onset"], errors="coerce").to_numpy(np.float64),
            "duration": pd.to_numeric(words["duration"], errors="coerce").to_numpy(np.float64),
        }
    )
    bad = ~np.isfinite(out[["onset", "duration"]].to_numpy()).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(source, f"row {i} ({out.word[i]!r}) has a non-numeric onset or duration", "onset")
    if (out.duration < 0).any():
        i = int(np.flatnonzero(out.duration < 0)[0])
        raise DataError(source, f"row {i} ({out.word[i]!r}) has negative duration {out.duration[i]:.3f} s", "duration")
    dec = np.flatnonzero(np.diff(out.onset.to_numpy()) < 0)
    if dec.size:
        i = int(dec[0]) + 1
        raise DataError(
            source,
            f"onsets decrease at row {i} ({out.word[i]!r}: {out.onset[i]:.3f} s after {out.onset[i - 1]:.3f} s); "
            "expected non-decreasing onsets",
            "onset",
        )
    ends = (out.onset + out.duration).to_numpy()
    ov = np.flatnonzero(ends[:-1] - out.onset.to_numpy()[1:] > 1e-3)
    if ov.size:
        i = int(ov[0])
        raise DataError(
            source,
            f"word {i} ({out.word[i]!r}, {out.onset[i]:.3f}-{ends[i]:.3f} s) overlaps the next one "
            f"starting at {out.onset[i + 1]:.3f} s",
            "onset",
        )
    return out


@dataclass(frozen=True)
class LoadFailure:
    """A run that could not be read, recorded so that the rest of its dataset goes on.

    The data gates turn it into a failed run (check ``load/readable``): ``on_invalid: exclude``
    leaves it out, ``on_invalid: fail`` stops the ``validate`` stage naming it.

    Attributes
    ----------
    dataset, subject, task : str
        Identity, as the run would have had it.
    source : str or None
        The offending file.
    problem : str
        The loader's message (what is wrong, what was expected).
    """

    dataset: str
    subject: str
    task: str
    source: str | None
    problem: str

    @property
    def run_id(self) -> str:
        return f"{self.dataset}_sub-{self.subject}_task-{self.task}"

    @classmethod
    def from_error(cls, exc: DataError, dataset: str, subject: str, task: str) -> LoadFailure:
        return cls(dataset, subject, task, exc.path, exc.problem if exc.field is None else f"[{exc.field}] {exc.problem}")

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "dataset": self.dataset, "subject": self.subject, "task": self.task,
                "source": self.source, "problem": self.problem}


@dataclass
class Run:
    """One fMRI run with its stimulus.

    Parameters
    ----------
    dataset, subject, task : str
        Identity; ``task`` names the stimulus, shared by every subject who heard it.
    tr : float
        Repetition time in seconds.
    space : {"fsaverage5", "roi"}
        ``fsaverage5``: V = 20,484 vertices (left then right hemisphere); ``roi``: named targets.
    data : array of shape (n_trs, n_targets), float32
    confounds : DataFrame with n_trs rows
        Nuisance regressors (fMRIPrep names where they exist).
    words : DataFrame with columns word, onset, duration
        On the stimulus clock (seconds).
    t0 : float
        Stimulus-clock time of row 0 of ``data``.
    target_names : list of str, optional
        Names of ROI targets (required for ``space="roi"``).
    meta : dict
        Free provenance (source files, notes); JSON-serialisable.
    """

    dataset: str
    subject: str
    task: str
    tr: float
    space: Space
    data: np.ndarray
    confounds: pd.DataFrame
    words: pd.DataFrame
    t0: float = 0.0
    target_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.meta.get("source")
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim != 2:
            raise DataError(src, f"expected a 2-D (time x targets) array, got shape {self.data.shape}", "data")
        n_t, n_v = self.data.shape
        if not (self.tr > 0):
            raise DataError(src, f"TR must be positive, got {self.tr}", "tr")
        if self.space == "fsaverage5" and n_v != N_VERTICES_FSAVERAGE5:
            raise DataError(src, f"fsaverage5 data must have {N_VERTICES_FSAVERAGE5} vertices, got {n_v}", "data")
        if self.space == "roi":
            if self.target_names is None or len(self.target_names) != n_v:
                raise DataError(src, f"roi data needs one target name per column ({n_v})", "target_names")
        if self.confounds is None or self.confounds.shape[1] == 0:
            self.confounds = pd.DataFrame(index=range(n_t))
        if len(self.confounds) != n_t:
            raise DataError(
                self.meta.get("confounds_source", src),
                f"confounds have {len(self.confounds)} rows but the run has {n_t} volumes",
                "confounds",
            )
        self.confounds = self.confounds.reset_index(drop=True)
        self.words = check_words(self.words, self.meta.get("words_source", src))

    @property
    def n_trs(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_targets(self) -> int:
        return int(self.data.shape[1])

    @property
    def run_id(self) -> str:
        return f"{self.dataset}_sub-{self.subject}_task-{self.task}"

    @property
    def frame_times(self) -> np.ndarray:
        """Stimulus-clock acquisition time of every row, shape (n_trs,)."""
        return self.t0 + self.tr * np.arange(self.n_trs)

    @property
    def scan_end(self) -> float:
        """Stimulus-clock time at which the last volume ends."""
        return self.t0 + self.tr * self.n_trs

    def check_words_within_scan(self, tolerance_s: float = 0.0) -> None:
        """Raise :class:`DataError` if any word ends after the last volume (or starts before t0)."""
        src = self.meta.get("words_source", self.meta.get("source"))
        ends = self.words.onset + self.words.duration
        late = np.flatnonzero(ends.to_numpy() > self.scan_end + tolerance_s)
        if late.size:
            i = int(late[0])
            raise DataError(
                src,
                f"{late.size} word(s) run past the end of the scan ({self.n_trs} volumes x TR {self.tr} s "
                f"from t0 = {self.t0} s ends at {self.scan_end:.2f} s); first: {self.words.word[i]!r} "
                f"ending at {ends[i]:.2f} s",
                "onset",
            )
        early = np.flatnonzero(self.words.onset.to_numpy() < self.t0 - tolerance_s)
        if early.size:
            i = int(early[0])
            raise DataError(
                src,
                f"{early.size} word(s) start before the first kept volume (t0 = {self.t0} s); "
                f"first: {self.words.word[i]!r} at {self.words.onset[i]:.2f} s",
                "onset",
            )
