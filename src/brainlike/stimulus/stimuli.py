"""Stimuli: what a group of runs heard or saw, its id, and the primary stimulus of a model.

A *stimulus* is one (dataset, task) pair: every run of that pair presents the same word (or
event) table, possibly on different TR grids. Its id is ``<dataset>_task-<task>``
(``embedded_task-story``, ``alice_task-alice``); every stage names its per-stimulus outputs by
this id, and :func:`dataset_of` / :func:`task_of` read it back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from .hrf import frame_times

EMBEDDED_DATASET = "embedded"
STORY_TASK = "story"
_SEP = "_task-"


def stimulus_id(dataset: str, task: str) -> str:
    """``("embedded", "story")`` -> ``embedded_task-story``."""
    return f"{dataset}{_SEP}{task}"


def dataset_of(stimulus: str) -> str:
    """``embedded_task-story`` -> ``embedded`` (an id without ``_task-`` is its own dataset)."""
    return stimulus.split(_SEP)[0]


def task_of(stimulus: str) -> str:
    """``embedded_task-story`` -> ``story`` (an id without ``_task-`` is its own task)."""
    return stimulus.split(_SEP, 1)[1] if _SEP in stimulus else stimulus


def primary_stimulus(stimuli: Iterable[str]) -> str | None:
    """The stimulus that stands for a model when one must: the one its headline metrics describe.

    Rule: the embedded story (``embedded_task-story``) if present, else the first other embedded
    stimulus in sorted order, else the first stimulus in sorted order; None when there is none.
    """
    stims = sorted(set(stimuli))
    story = stimulus_id(EMBEDDED_DATASET, STORY_TASK)
    if story in stims:
        return story
    embedded = [s for s in stims if dataset_of(s) == EMBEDDED_DATASET]
    return (embedded or stims or [None])[0]


@dataclass(frozen=True)
class TrGrid:
    """A TR grid shared by some runs of a stimulus: row i at ``t0 + i * tr``."""

    tr: float
    t0: float
    n_trs: int
    run_ids: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"tr{self.tr:g}_t0{self.t0:+g}_n{self.n_trs}"

    def frame_times(self) -> np.ndarray:
        return frame_times(self.t0, self.tr, self.n_trs)


@dataclass
class Stimulus:
    """One stimulus (a (dataset, task) pair) and the TR grids of the runs that heard it."""

    id: str
    words: pd.DataFrame
    grids: list[TrGrid]
    source: str | None = None
    meta: dict = field(default_factory=dict)


def words_sha256(words: pd.DataFrame) -> str:
    """Identity of a word table: its words and onsets (rounded to the microsecond)."""
    blob = json.dumps(
        [words["word"].astype(str).tolist(), np.round(words["onset"].to_numpy(float), 6).tolist()]
    ).encode()
    return hashlib.sha256(blob).hexdigest()


def group_runs(
    runs: Iterable,
    table_of: Callable[[Any], tuple[pd.DataFrame, str | None] | None],
    sha_of: Callable[[pd.DataFrame], str],
    what: str = "words",
    noun: str = "word table",
    field_name: str = "word",
) -> list[tuple[str, pd.DataFrame, list[TrGrid], str | None, dict]]:
    """Group runs by (dataset, task), one TR grid per distinct (tr, t0, n_trs).

    Parameters
    ----------
    runs : iterable of Run
    table_of : callable(run) -> (table, source) or None
        The stimulus table a run presents and the file it came from; None skips the run.
    sha_of : callable(table) -> str
        Identity of a table: runs of one (dataset, task) must agree on it.
    what, noun, field_name : str
        Wording of the error (``other words``, ``one word table``) and the field it names.

    Returns
    -------
    list of (stimulus id, table, grids, source, meta)
        Sorted by (dataset, task); ``meta`` is ``{"dataset": ..., "task": ...}``.

    Raises
    ------
    DataError
        If two runs of the same (dataset, task) present different tables.
    """
    groups: dict[tuple[str, str], dict] = {}
    for run in runs:
        got = table_of(run)
        if got is None:
            continue
        table, src = got
        key = (run.dataset, run.task)
        g = groups.setdefault(key, {"table": table, "sha": sha_of(table), "src": src, "grids": {}})
        if sha_of(table) != g["sha"]:
            raise DataError(src, f"run {run.run_id} has other {what} than the first run of {key}; "
                            f"expected one {noun} per (dataset, task)", field_name)
        g["grids"].setdefault((float(run.tr), float(run.t0), int(run.n_trs)), []).append(run.run_id)
    return [
        (stimulus_id(d, t), g["table"],
         [TrGrid(tr, t0, n, tuple(ids)) for (tr, t0, n), ids in sorted(g["grids"].items())],
         g["src"], {"dataset": d, "task": t})
        for (d, t), g in sorted(groups.items())
    ]


def stimuli_from_runs(runs: Iterable) -> list[Stimulus]:
    """Group runs by (dataset, task): same words -> one stimulus, one grid per distinct (tr, t0, n_trs).

    Raises
    ------
    DataError
        If two runs of the same (dataset, task) have different word tables.
    """
    def words_of(run) -> tuple[pd.DataFrame, str | None]:
        return run.words, run.meta.get("words_source", run.meta.get("source"))

    return [Stimulus(*g) for g in group_runs(runs, words_of, words_sha256)]
