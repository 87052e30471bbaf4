"""Stimulus layer: what runs present (stimulus ids, grouping, the primary stimulus) and word-level
values -> the TR grid of each run (HRF, FIR/Lanczos, z-scoring)."""

from .hrf import (
    HRF_MODELS,
    delay_rows,
    frame_times,
    hrf_operator,
    lanczos_operator,
    word_operator,
    zscore_columns,
)
from .stimuli import (
    EMBEDDED_DATASET,
    Stimulus,
    TrGrid,
    dataset_of,
    group_runs,
    primary_stimulus,
    stimuli_from_runs,
    stimulus_id,
    task_of,
    words_sha256,
)

__all__ = [
    "EMBEDDED_DATASET",
    "Stimulus",
    "TrGrid",
    "dataset_of",
    "group_runs",
    "primary_stimulus",
    "stimuli_from_runs",
    "stimulus_id",
    "task_of",
    "words_sha256",
    "HRF_MODELS",
    "delay_rows",
    "frame_times",
    "hrf_operator",
    "lanczos_operator",
    "word_operator",
    "zscore_columns",
]
