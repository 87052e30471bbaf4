"""Tidy summary frames that the Great Expectations suites validate.

GX evaluates expectations row by row in pandas; a 400 x 20,484 run as a long table would be
8 million rows. Instead each run is summarised once with numpy into small frames -- one row per
TR, one row per target, one row per word -- and every expectation is a statement about those
summaries. All functions here are pure (arrays in, frames out) and need no GX.

The tSNR rule
-------------
tSNR = temporal mean / temporal s.d. is only meaningful when the data keep their baseline
(raw or grand-mean-scaled intensities). After demeaning, z-scoring or conversion to percent
signal change, the mean is ~0 and its ratio to the s.d. says nothing about signal quality (the
embedded default is built on a z-scored run). :func:`has_baseline` decides per run: the data
keep a baseline when at least 95 % of the non-constant targets have a positive temporal mean
*and* the median |mean| / s.d. is above 1e-3 (demeaned float data sit near 1e-7). Otherwise the
``tsnr`` column is left empty (NaN) and the tSNR floor is vacuous for the run; the run summary
records ``tsnr_applicable = False`` so the report says why. Raw intensities are positive by
construction, so a noisy raw run cannot slip through this rule.
"""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pandas as pd

from ..data.run import N_VERTICES_FSAVERAGE5, Run

_HEMI = N_VERTICES_FSAVERAGE5 // 2
BASELINE_POSITIVE_FRACTION = 0.95
BASELINE_MIN_RATIO = 1e-3


def target_labels(n_targets: int, space: str, target_names: list[str] | None = None) -> list[str]:
    """Readable target ids: ROI names, or ``lh:<i>`` / ``rh:<i>`` for fsaverage5 vertices."""
    if target_names is not None:
        return [str(n) for n in target_names]
    if space == "fsaverage5" and n_targets == N_VERTICES_FSAVERAGE5:
        return [f"lh:{i}" for i in range(_HEMI)] + [f"rh:{i}" for i in range(_HEMI)]
    return [str(i) for i in range(n_targets)]


def trs_frame(data: np.ndarray, t0: float = 0.0, tr: float = 1.0) -> pd.DataFrame:
    """One row per TR (volume).

    Parameters
    ----------
    data : array of shape (n_trs, n_targets)
    t0, tr : float
        Stimulus-clock time of row 0 and repetition time (for the ``time`` column).

    Returns
    -------
    DataFrame with n_trs rows and columns
        ``tr`` (row index), ``time``, ``global_mean``, ``global_std`` (over finite targets),
        ``n_nan``, ``n_inf``, ``zero_fraction`` (targets exactly 0) and ``unchanged_fraction``
        (targets equal to the previous volume; NaN for TR 0 -- 1.0 marks a frozen or
        duplicated volume).
    """
    x = np.asarray(data)
    n_t, n_v = x.shape
    finite = np.isfinite(x)
    xf = np.where(finite, x, np.nan).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN volumes give NaN, as they should
        gmean = np.nanmean(xf, axis=1)
        gstd = np.nanstd(xf, axis=1)
    unchanged = np.full(n_t, np.nan)
    if n_t > 1 and n_v:
        unchanged[1:] = (x[1:] == x[:-1]).mean(axis=1)
    return pd.DataFrame(
        {
            "tr": np.arange(n_t),
            "time": t0 + tr * np.arange(n_t),
            "global_mean": gmean,
            "global_std": gstd,
            "n_nan": np.isnan(x).sum(axis=1),
            "n_inf": np.isinf(x).sum(axis=1),
            "zero_fraction": (x == 0).mean(axis=1) if n_v else np.zeros(n_t),
            "unchanged_fraction": unchanged,
        }
    )


def has_baseline(mean: np.ndarray, std: np.ndarray) -> bool:
    """Whether per-target temporal means are a real baseline (see the module's tSNR rule).

    Parameters
    ----------
    mean, std : arrays of shape (n_targets,)
        Temporal mean and s.d. of each target (NaN allowed).
    """
    ok = np.isfinite(mean) & np.isfinite(std) & (std > 0)
    if not ok.any():
        return False
    m, s = mean[ok], std[ok]
    return bool(np.mean(m > 0) >= BASELINE_POSITIVE_FRACTION and np.median(np.abs(m) / s) > BASELINE_MIN_RATIO)


def targets_frame(data: np.ndarray, labels: list[str]) -> tuple[pd.DataFrame, bool]:
    """One row per target (vertex or ROI).

    Parameters
    ----------
    data : array of shape (n_trs, n_targets)
    labels : list of str, length n_targets

    Returns
    -------
    frame : DataFrame with n_targets rows
        ``target``, ``mean``, ``std`` (temporal, over finite values), ``max_abs``,
        ``nonfinite_fraction`` (NaN or Inf share of the target's TRs), ``is_constant`` (1.0 when
        the finite values never change, or none is finite), ``tsnr`` (mean / std; NaN for
        constant targets and for runs without a baseline).
    tsnr_applicable : bool
        :func:`has_baseline` of the run.
    """
    x = np.asarray(data)
    finite = np.isfinite(x)
    xf = np.where(finite, x, np.nan).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN targets give NaN statistics
        mean = np.nanmean(xf, axis=0)
        std = np.nanstd(xf, axis=0)
        ptp = np.nanmax(xf, axis=0) - np.nanmin(xf, axis=0)
        max_abs = np.nanmax(np.abs(xf), axis=0)
    # exact comparison on purpose: medial-wall vertices are exact constants (usually 0)
    constant = ~(ptp > 0)
    applicable = has_baseline(np.where(constant, np.nan, mean), std)
    tsnr = np.full(mean.shape, np.nan)
    if applicable:
        live = ~constant
        tsnr[live] = mean[live] / std[live]
    frame = pd.DataFrame(
        {
            "target": labels,
            "mean": mean,
            "std": std,
            "max_abs": np.nan_to_num(max_abs, nan=0.0),
            "nonfinite_fraction": 1.0 - finite.mean(axis=0) if x.shape[0] else np.zeros(x.shape[1]),
            "is_constant": constant.astype(np.float64),
            "tsnr": tsnr,
        }
    )
    return frame, applicable


def words_frame(words: pd.DataFrame) -> pd.DataFrame:
    """One row per word: ``i``, ``word``, ``onset``, ``duration``, ``end`` (stimulus clock, s)."""
    onset = pd.to_numeric(words["onset"], errors="coerce").to_numpy(np.float64)
    duration = pd.to_numeric(words["duration"], errors="coerce").to_numpy(np.float64)
    return pd.DataFrame(
        {
            "i": np.arange(len(words)),
            "word": words["word"].astype("string").fillna("").to_numpy(dtype=object),
            "onset": onset,
            "duration": duration,
            "end": onset + duration,
        }
    )


def expected_n_trs(words: pd.DataFrame, t0: float, tr: float) -> int | None:
    """Volumes the stimulus needs: ``ceil((last word end - t0) / tr)``; None without words."""
    if len(words) == 0:
        return None
    end = float(np.nanmax(pd.to_numeric(words["onset"]) + pd.to_numeric(words["duration"])))
    # a word ending exactly on a volume boundary needs no extra volume (guard float noise)
    return max(0, math.ceil((end - t0) / tr - 1e-6))


def speech_span_s(words: pd.DataFrame) -> float:
    """Seconds from the first onset to the last word end (0 without words)."""
    if len(words) == 0:
        return 0.0
    onset = pd.to_numeric(words["onset"]).to_numpy(np.float64)
    end = onset + pd.to_numeric(words["duration"]).to_numpy(np.float64)
    return float(np.nanmax(end) - np.nanmin(onset))


def activation_frames(acts: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summaries of an artificial-neuron (AN) response matrix.

    Parameters
    ----------
    acts : array of shape (n_trs, n_units)

    Returns
    -------
    rows : DataFrame with n_trs rows
        ``row``, ``n_nonfinite``.
    units : DataFrame with n_units rows
        ``unit`` (column index), ``n_nonfinite``, ``std`` (over finite rows), ``is_constant``.
    """
    a = np.asarray(acts)
    if a.ndim != 2:
        raise ValueError(f"activations must be 2-D (n_trs, n_units), got shape {a.shape}")
    finite = np.isfinite(a)
    af = np.where(finite, a, np.nan).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        std = np.nanstd(af, axis=0)
        ptp = np.nanmax(af, axis=0) - np.nanmin(af, axis=0)
    rows = pd.DataFrame({"row": np.arange(a.shape[0]), "n_nonfinite": (~finite).sum(axis=1)})
    units = pd.DataFrame(
        {
            "unit": np.arange(a.shape[1]),
            "n_nonfinite": (~finite).sum(axis=0),
            "std": std,
            "is_constant": (~(ptp > 0)).astype(np.float64),
        }
    )
    return rows, units


def run_summary(run: Run) -> dict:
    """Identity and shape of a run (one row of the dataset-consistency frame)."""
    names = run.target_names
    if names is None:
        target_set = f"{run.space}:{run.n_targets}"
    elif len(names) <= 32:
        target_set = "|".join(map(str, names))
    else:  # long name lists (named vertices) compared by digest
        target_set = "sha1:" + hashlib.sha1("\n".join(map(str, names)).encode()).hexdigest()[:12]
    return {
        "run_id": run.run_id,
        "dataset": run.dataset,
        "subject": run.subject,
        "task": run.task,
        "space": run.space,
        "n_targets": run.n_targets,
        "target_set": target_set,
    }


FINGERPRINT_TARGETS = 2048  # targets kept per run for the duplicate check (evenly spaced)


def fingerprint(data: np.ndarray) -> np.ndarray | None:
    """Per-target z-scored time courses of a run, for the duplicate-subject check.

    Each target is centred and scaled over its finite TRs (non-finite values and constant
    targets become 0), so baselines, which differ by ROI and dominate raw values, do not make
    two different subjects look alike. At most :data:`FINGERPRINT_TARGETS` evenly spaced targets
    are kept: the same ones for every run of a shape, so a copied run stays identical.

    Parameters
    ----------
    data : array of shape (n_trs, n_targets)

    Returns
    -------
    array of shape (n_trs * min(n_targets, FINGERPRINT_TARGETS),), float32, unit norm; None
    when nothing varies (an all-constant run correlates with nothing).
    """
    x = np.asarray(data)
    if x.shape[1] > FINGERPRINT_TARGETS:
        x = x[:, np.linspace(0, x.shape[1] - 1, FINGERPRINT_TARGETS).round().astype(int)]
    x = np.where(np.isfinite(x), x, np.nan).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = (x - np.nanmean(x, axis=0)) / np.nanstd(x, axis=0)
    z = np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0).ravel()
    norm = float(np.linalg.norm(z))
    return None if norm == 0 else (z / norm).astype(np.float32)


def pairs_frame(fingerprints: dict[str, np.ndarray | None]) -> pd.DataFrame:
    """One row per pair of runs with fingerprints of the same length.

    Parameters
    ----------
    fingerprints : dict
        Run id -> :func:`fingerprint` (None: skipped).

    Returns
    -------
    DataFrame with columns ``pair`` (``"<run a> ~ <run b>"``), ``run_a``, ``run_b`` and
    ``correlation`` (the dot product of the two fingerprints: for runs without constant
    targets, the mean over targets of the correlation of the two time courses; 1.0 for a copy).
    """
    ids = [k for k, v in fingerprints.items() if v is not None]
    rows = []
    for i, a in enumerate(ids):
        fa = fingerprints[a]
        for b in ids[i + 1:]:
            fb = fingerprints[b]
            if fb.shape == fa.shape:
                c = float(np.dot(fa.astype(np.float64), fb.astype(np.float64)))
                rows.append({"pair": f"{a} ~ {b}", "run_a": a, "run_b": b, "correlation": round(c, 6)})
    return pd.DataFrame(rows, columns=["pair", "run_a", "run_b", "correlation"])
