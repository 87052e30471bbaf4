"""Baseline regressors: what low-level stimulus properties alone predict.

- from a words table: ``word_rate`` (every word onset an impulse, HRF-convolved) and
  ``envelope`` (the same events weighted by syllable count, or by word duration: a sound
  envelope proxy when no audio is at hand);
- from a dataset: its own nuisance regressors (Alice ships HRF-convolved ``rate`` and
  ``sndpwr`` columns in its confounds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ..data.embedded.timing import count_syllables
from ..errors import DataError
from ..stimulus import hrf_operator


def word_baseline(
    words: pd.DataFrame,
    frame_times: np.ndarray,
    hrf: Literal["spm", "glover"] = "spm",
    weight: Literal["syllables", "duration"] = "syllables",
    oversampling: int = 16,
) -> pd.DataFrame:
    """Word-rate and envelope-proxy regressors on the TR grid.

    Parameters
    ----------
    words : DataFrame with columns ``word``, ``onset`` (stimulus clock, s), ``duration``;
        ``n_syllables`` is used when present, else counted from ``word``.
    frame_times : array of shape (n_trs,)
        Stimulus-clock acquisition times (``run.t0 + tr * arange(n_trs)``).
    hrf : {"spm", "glover"}
    weight : {"syllables", "duration"}
        Event weight of the envelope proxy.

    Returns
    -------
    DataFrame of shape (n_trs, 2), columns ``word_rate``, ``envelope``.
    """
    for col in ("word", "onset", "duration"):
        if col not in words.columns:
            raise DataError(None, f"words table lacks column {col!r}", col)
    M = hrf_operator(words["onset"].to_numpy(np.float64), frame_times, hrf, oversampling)
    if weight == "syllables":
        w = (words["n_syllables"].to_numpy(np.float64) if "n_syllables" in words.columns
             else np.array([count_syllables(str(x)) for x in words["word"]], dtype=np.float64))
    elif weight == "duration":
        w = words["duration"].to_numpy(np.float64)
    else:
        raise DataError(None, f"weight {weight!r}: expected 'syllables' or 'duration'", "weight")
    return pd.DataFrame({"word_rate": M @ np.ones(len(words)), "envelope": M @ w})


def dataset_baseline(confounds: pd.DataFrame, columns: Sequence[str] = ("rate", "sndpwr"),
                     source: str | None = None) -> pd.DataFrame | None:
    """The dataset's own stimulus nuisance regressors, or None if it has none of ``columns``.

    Parameters
    ----------
    confounds : DataFrame of shape (n_trs, n_confounds)
    columns : names to take (all that are present)
    source : file named in errors

    Returns
    -------
    DataFrame of shape (n_trs, n_found) or None
    """
    have = [c for c in columns if c in confounds.columns]
    if not have:
        return None
    out = confounds[have].astype(np.float64)
    if not np.isfinite(out.to_numpy()).all():
        raise DataError(source, f"baseline column(s) {have} hold NaN/inf", have[0])
    return out.reset_index(drop=True)
