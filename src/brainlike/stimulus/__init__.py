"""Stimulus layer: word-level values -> the TR grid of each run (HRF, FIR/Lanczos, z-scoring)."""

from .hrf import (
    HRF_MODELS,
    delay_rows,
    frame_times,
    hrf_operator,
    lanczos_operator,
    word_operator,
    zscore_columns,
)

__all__ = [
    "HRF_MODELS",
    "delay_rows",
    "frame_times",
    "hrf_operator",
    "lanczos_operator",
    "word_operator",
    "zscore_columns",
]
