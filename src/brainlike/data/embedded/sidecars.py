"""Where the prepared store keeps an embedded stimulus's planted answer.

Each embedded task writes, beside its runs, the ground truth (``planted`` networks, draws) and
the planted feature time courses with the canonical HRF (the oracle's regressors):
``embedded/ground_truth.json`` + ``embedded/features.parquet`` for the story,
``embedded/<task>_ground_truth.json`` + ``embedded/<task>_features.parquet`` for the others.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = "embedded"
STORY = "story"


def sidecar_names(task: str) -> tuple[str, str]:
    """(ground truth, features) of ``task``, relative to the prepared store."""
    prefix = "" if task == STORY else f"{task}_"
    return f"{FOLDER}/{prefix}ground_truth.json", f"{FOLDER}/{prefix}features.parquet"


def sidecar_paths(prepared: str | Path, task: str) -> tuple[Path, Path]:
    """:func:`sidecar_names` under the prepared store ``prepared``."""
    truth, features = sidecar_names(task)
    return Path(prepared) / truth, Path(prepared) / features
