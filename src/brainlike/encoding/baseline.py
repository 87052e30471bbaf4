"""Baseline regressors: what low-level stimulus properties alone predict.

- from a words table: ``word_rate`` (every word onset an impulse, HRF-convolved) and
  ``envelope`` (the same events weighted by syllable count, or by word duration: a sound
  envelope proxy when no audio is at hand);
- from a dataset: its own nuisance regressors (Alice ships HRF-convolved ``rate`` and
  ``sndpwr`` columns in its confounds).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ..config import EncodingConfig
from ..data.embedded.timing import count_syllables
from ..data.run import Run
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


def _is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def _matching(columns, patterns: Sequence[str]) -> list[str]:
    return [c for c in columns if any(fnmatch.fnmatchcase(str(c), p) for p in patterns)]


def stimulus_columns(cfg: EncodingConfig) -> list[str]:
    """Every confound column name or pattern that is a stimulus regressor, not nuisance."""
    return list(dict.fromkeys(list(cfg.baseline_columns) + [p for v in cfg.baselines.values() for p in v]))


def baseline_bands(run: Run, cfg: EncodingConfig) -> dict[str, np.ndarray]:
    """The named baseline bands of ``cfg.baselines`` for one run, unit-norm columns.

    A band is the run's confound columns matching its names or patterns; the first band falls
    back to word rate + envelope from the words when the dataset has none of its columns; other
    bands without columns are left out.

    Returns
    -------
    dict name -> array of shape (n_trs, n_columns)
    """
    out = {}
    conf = run.confounds
    for i, (name, pats) in enumerate(cfg.baselines.items()):
        cols = [] if conf is None else _matching(conf.columns, pats)
        if cols:
            B = conf[cols].to_numpy(np.float64)
            if not np.isfinite(B).all():
                raise DataError(run.meta.get("confounds_source"), f"baseline band {name} holds NaN/inf", cols[0])
        elif i == 0:
            B = word_baseline(run.words, run.frame_times).to_numpy(np.float64)
        else:
            continue
        norm = np.linalg.norm(B, axis=0)
        out[name] = B / np.where(norm > 0, norm, 1.0)
    return out


def split_confounds(run: Run, baseline_columns: Sequence[str]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(nuisance confounds, the dataset's own baseline regressors) of a run; either may be None.

    ``baseline_columns`` are names or glob patterns (``psy_*``): every matching column is
    excluded from the nuisance set; the named (non-pattern) ones form the baseline returned.
    """
    conf = run.confounds
    if conf is None or conf.shape[1] == 0:
        return None, None
    src = run.meta.get("confounds_source", run.meta.get("source"))
    base = dataset_baseline(conf, [c for c in baseline_columns if not _is_pattern(c)], source=src)
    # stimulus regressors (any baseline band) are never nuisance: they are what a model is compared with
    nuis = conf.drop(columns=_matching(conf.columns, baseline_columns)).reset_index(drop=True)
    if nuis.shape[1] == 0:
        return None, base
    if not np.isfinite(nuis.to_numpy(np.float64)).all():
        raise DataError(src, f"confounds of run {run.run_id} hold NaN/inf", str(nuis.columns[0]))
    return nuis, base


def baseline_regressors(run: Run, cfg: EncodingConfig) -> tuple[pd.DataFrame, str]:
    """Baseline regressors of one run and where they came from.

    The dataset's own ``cfg.baseline_columns`` when its confounds hold any of them (Alice:
    ``rate``, ``sndpwr``), else word rate + syllable-weighted envelope proxy from the words.
    Columns are scaled to unit norm, as the atoms are.

    Returns
    -------
    DataFrame of shape (n_trs, n_regressors), and ``"dataset:<cols>"`` or ``"words:<cols>"``.
    """
    _, base = split_confounds(run, stimulus_columns(cfg))
    if base is not None:
        b, src = base, "dataset:" + ",".join(base.columns)
    else:
        b = word_baseline(run.words, run.frame_times)
        src = "words:" + ",".join(b.columns)
    # unit-norm columns, like the atoms, so that one alpha grid means the same for both
    norm = np.linalg.norm(b.to_numpy(np.float64), axis=0)
    return b / np.where(norm > 0, norm, 1.0), src
