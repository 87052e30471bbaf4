"""Effect-size calibration of the planted responses against real story-listening data.

Measure
    :func:`alice_feature_r`: on the real Alice ROI data (Brennan et al. 2016, 6 mm spheres), the
    Pearson r of an HRF-convolved stimulus feature with every subject's ROI signal, both put
    through the same cosine high-pass as the encoding models (128 s). Features: the dataset's own
    word-rate regressor (``sNN-rate.txt``) and the two GloVe semantic axes of the embedded story
    (:data:`~brainlike.data.embedded.features.SEMANTIC_AXES`) scored on Alice's words and
    convolved with the SPM canonical HRF.

Plant
    For a planted signal ``g f(t)`` added to a background ``b(t)`` uncorrelated with ``f``, the
    expected correlation after high-pass is ``r = g sd_f / sqrt(g^2 sd_f^2 + sd_b^2)`` (s.d. of
    the high-passed series). :func:`planted_gain` inverts it: the gain that gives a target r at
    each vertex, ``g = r / sqrt(1 - r^2) * sd_b / sd_f``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError

HIGH_PASS_S = 128.0


def cosine_highpass(x: np.ndarray, frame_times: np.ndarray, high_pass_s: float = HIGH_PASS_S) -> np.ndarray:
    """Residual of ``x`` after least squares on a DCT-II drift basis below ``1 / high_pass_s`` + a constant.

    The basis is the one of the encoding models (nilearn's cosine drift, orders
    ``1 .. floor(2 n dt / high_pass_s)``), so a feature filtered here is filtered as analysts'
    regressors are.

    Parameters
    ----------
    x : array of shape (T,) or (T, V)
    frame_times : array of shape (T,), equally spaced seconds
    high_pass_s : float

    Returns
    -------
    array of the shape of ``x``, float64
    """
    ft = np.asarray(frame_times, np.float64).reshape(-1)
    a = np.asarray(x, np.float64)
    if a.shape[0] != ft.size or ft.size < 2:
        raise DataError(None, f"x has {a.shape[0]} rows but frame_times has {ft.size} values (need >= 2)",
                        "frame_times")
    if not high_pass_s > 0:
        raise DataError(None, f"high_pass_s must be > 0 seconds, got {high_pass_s}", "high_pass_s")
    n = ft.size
    dt = (ft[-1] - ft[0]) / (n - 1)
    order = int(min(n - 1, np.floor(2 * n * dt / high_pass_s)))
    k = np.arange(1, order + 1)
    basis = np.sqrt(2.0 / n) * np.cos((np.pi / n) * (np.arange(n)[:, None] + 0.5) * k[None, :])
    basis = np.column_stack([basis, np.ones(n)])
    a2 = a.reshape(n, -1)
    coef, *_ = np.linalg.lstsq(basis, a2, rcond=None)
    return (a2 - basis @ coef).reshape(a.shape)


def highpassed_r(feature: np.ndarray, data: np.ndarray, frame_times: np.ndarray,
                 high_pass_s: float = HIGH_PASS_S) -> np.ndarray:
    """Pearson r of one feature with every column of ``data``, both cosine high-passed.

    Parameters
    ----------
    feature : array of shape (T,)
    data : array of shape (T, V)
    frame_times : array of shape (T,)

    Returns
    -------
    array of shape (V,); NaN where a column is constant after the high-pass.
    """
    f = cosine_highpass(np.asarray(feature, np.float64), frame_times, high_pass_s)
    y = cosine_highpass(np.asarray(data, np.float64).reshape(len(f), -1), frame_times, high_pass_s)
    den = np.linalg.norm(y, axis=0) * np.linalg.norm(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-12 * max(float(den.max(initial=0.0)), 1e-300), (f @ y) / den, np.nan)


def planted_gain(target_r: np.ndarray | float, feature_sd: float, background_sd: np.ndarray | float) -> np.ndarray:
    """Gain of a planted feature that gives an expected correlation ``target_r``.

    ``g = r / sqrt(1 - r^2) * background_sd / feature_sd``, the inverse of :func:`expected_r`.
    Pass the s.d. of the *high-passed* feature and background to calibrate the r that an
    analyst sees after the encoding model's high-pass.

    Parameters
    ----------
    target_r : float or array of shape (V,), in [0, 1)
    feature_sd : float, > 0
    background_sd : float or array of shape (V,)

    Returns
    -------
    array (broadcast of ``target_r`` and ``background_sd``), float64
    """
    r = np.asarray(target_r, np.float64)
    if np.any((r < 0) | (r >= 1)) or not np.all(np.isfinite(r)):
        raise DataError(None, f"target r must lie in [0, 1), got {np.unique(r)[:5]}", "target_r")
    if not feature_sd > 0:
        raise DataError(None, f"feature s.d. must be > 0, got {feature_sd}", "feature_sd")
    return r / np.sqrt(1.0 - r**2) * np.asarray(background_sd, np.float64) / float(feature_sd)


def expected_r(gain: np.ndarray | float, feature_sd: float, background_sd: np.ndarray | float) -> np.ndarray:
    """``g sd_f / sqrt(g^2 sd_f^2 + sd_b^2)``: the expected r of ``g f + b`` with ``f`` (``b`` independent of ``f``)."""
    s = np.asarray(gain, np.float64) * float(feature_sd)
    return s / np.sqrt(s**2 + np.asarray(background_sd, np.float64) ** 2)


def alice_feature_r(path: str | Path, high_pass_s: float = HIGH_PASS_S) -> pd.DataFrame:
    """Correlation of stimulus features with every subject's Alice ROI signals.

    Parameters
    ----------
    path : str or Path
        The ``alice-brennan2016`` folder (``roi_6mm``, ``regressors``, ``stimulus``).
    high_pass_s : float
        Cosine high-pass applied to features and ROI signals alike.

    Returns
    -------
    DataFrame
        Long table: subject, feature (``word_rate`` = the dataset's ``sNN-rate.txt``;
        ``semantic_1``, ``semantic_2`` = the GloVe axes on Alice's words, SPM HRF), kind
        (timing | semantic), roi, r. Subjects whose ROI signals are constant (no usable data)
        are left out.
    """
    from ..loaders.alice import load_alice
    from .features import _convolve, semantic_scores

    runs = load_alice(path)
    words = runs[0].words
    onsets = words["onset"].to_numpy(np.float64)
    sem = semantic_scores(list(words["word"]))
    rows = []
    for run in runs:
        if not np.all(run.data.std(axis=0) > 0):
            continue  # a subject without signal (constant ROI) says nothing about effect size
        ft = run.t0 + run.tr * np.arange(run.n_trs)
        feats = {
            "word_rate": run.confounds["rate"].to_numpy(np.float64),
            "semantic_1": _convolve(onsets, sem["semantic_1"].to_numpy(), ft),
            "semantic_2": _convolve(onsets, sem["semantic_2"].to_numpy(), ft),
        }
        for name, f in feats.items():
            r = highpassed_r(f, run.data, ft, high_pass_s)
            for roi, v in zip(run.target_names, r, strict=True):
                rows.append((run.subject, name, "timing" if name == "word_rate" else "semantic", roi, float(v)))
    if not rows:
        raise DataError(Path(path) / "roi_6mm", "no subject with non-constant ROI signals")
    return pd.DataFrame(rows, columns=["subject", "feature", "kind", "roi", "r"])


def summarise_feature_r(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per feature kind: the numbers the planted strength is set from.

    Parameters
    ----------
    table : DataFrame from :func:`alice_feature_r`

    Returns
    -------
    dict kind -> {``median_abs_r`` (over subjects x ROIs x features of that kind),
    ``median_best_roi_abs_r`` (per subject and feature the ROI of largest |r|, median over those),
    ``min_r``, ``max_r``, ``subject_log_sd`` (s.d. over subjects of log median |r|: how much
    subjects differ in strength), ``n_subjects``}
    """
    out = {}
    for kind, g in table.groupby("kind", sort=True):
        a = g.assign(abs_r=g["r"].abs())
        best = a.groupby(["subject", "feature"])["abs_r"].max()
        per_subject = a.groupby("subject")["abs_r"].median()
        out[str(kind)] = {
            "median_abs_r": round(float(a["abs_r"].median()), 4),
            "median_best_roi_abs_r": round(float(best.median()), 4),
            "min_r": round(float(a["r"].min()), 4),
            "max_r": round(float(a["r"].max()), 4),
            "subject_log_sd": round(float(np.log(per_subject).std(ddof=1)), 4),
            "n_subjects": int(a["subject"].nunique()),
        }
    return out
