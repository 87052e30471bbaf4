"""Word-level values -> TR grid: HRF convolution or Lanczos resampling with FIR delays.

Every transform here is linear in the word values, so each is built once per (stimulus, TR
grid) as an operator matrix ``M`` of shape (n_trs, n_words) and applied to any number of
artificial neurons (ANs) as ``M @ values``. That is what lets one stimulus feed every AN of
every layer at the cost of a matrix product.

- ``spm`` / ``glover``: each word is an impulse event at its onset; the operator reproduces
  nilearn's :func:`~nilearn.glm.first_level.compute_regressor` exactly (event sampled on the
  oversampled grid, convolved with nilearn's kernel, linearly interpolated at the frame times);
  ``tests/test_stimulus.py`` checks this column by column against nilearn itself.
- ``fir``: Lanczos resampling of the word values onto the TR grid (as in the HuthLab
  pipeline, Huth et al. 2016) followed by copies delayed by whole TRs.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

HRF_MODELS = ("spm", "glover", "fir")


def frame_times(t0: float, tr: float, n_trs: int) -> np.ndarray:
    """Stimulus-clock acquisition times ``t0 + tr * arange(n_trs)``, shape (n_trs,)."""
    if not tr > 0 or n_trs < 1:
        raise DataError(None, f"a TR grid needs tr > 0 and n_trs >= 1, got tr={tr}, n_trs={n_trs}", "tr")
    return float(t0) + float(tr) * np.arange(int(n_trs), dtype=np.float64)


def _check_inputs(onsets: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    onsets = np.asarray(onsets, dtype=np.float64).reshape(-1)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if onsets.size == 0:
        raise DataError(None, "the stimulus has no words (empty word table)", "onset")
    if not np.isfinite(onsets).all():
        raise DataError(None, "word onsets must be finite", "onset")
    if times.size < 2 or not (np.diff(times) > 0).all():
        raise DataError(None, "frame times must be at least 2 strictly increasing values", "frame_times")
    return onsets, times


def hrf_operator(
    onsets: np.ndarray,
    times: np.ndarray,
    hrf: str = "spm",
    oversampling: int = 16,
    min_onset: float = -24.0,
) -> np.ndarray:
    """Operator mapping word values to HRF-convolved values sampled at ``times``.

    Parameters
    ----------
    onsets : array of shape (n_words,)
        Word onsets on the stimulus clock (seconds); each word is an impulse (duration 0).
    times : array of shape (n_trs,)
        Frame times, equally spaced (``t0 + tr * arange(n_trs)``).
    hrf : {"spm", "glover"}
        nilearn's canonical HRF model.
    oversampling : int
        Fine-grid points per TR (nilearn's ``oversampling``).
    min_onset : float
        Words earlier than ``times[0] + min_onset`` are ignored, as in nilearn.

    Returns
    -------
    M : array of shape (n_trs, n_words), float64
        ``M @ v`` equals ``compute_regressor([onsets, 0, v], hrf, times, oversampling)``.
    """
    onsets, times = _check_inputs(onsets, times)
    if hrf not in ("spm", "glover"):
        raise DataError(None, f"unknown HRF model {hrf!r}; expected 'spm' or 'glover' (or 'fir')", "hrf")
    oversampling = int(oversampling)
    n = times.size
    t_r = float(np.min(np.diff(times)))
    # nilearn's high-resolution grid (_sample_condition / _compute_n_frames_high_res)
    mini, maxi = times.min(), times.max()
    n_hr = (n - 1) / (maxi - mini) * (maxi * (1 + 1.0 / (n - 1)) - mini - min_onset) * oversampling + 1
    hr_times = np.linspace(mini + min_onset, maxi * (1 + 1.0 / (n - 1)), int(np.rint(n_hr)))
    n_fine = hr_times.size
    # imported here: nilearn.glm takes ~0.6 s to import, which stages that never convolve skip
    from nilearn.glm.first_level.hemodynamic_models import glover_hrf, spm_hrf

    kernel = (spm_hrf if hrf == "spm" else glover_hrf)(t_r, oversampling)
    # each impulse lands on one fine bin; its convolved regressor is the kernel shifted there
    bins = np.minimum(np.searchsorted(hr_times, onsets), n_fine - 1)
    # nilearn drops events before the grid start, and an impulse on the last fine bin cancels
    # itself (its offset falls on the same bin)
    kept = (onsets >= times[0] + min_onset) & (bins < n_fine - 1)
    # linear interpolation of the fine regressor at each frame time (nilearn uses interp1d)
    right = np.clip(np.searchsorted(hr_times, times, side="right"), 1, n_fine - 1)
    left = right - 1
    w = (times - hr_times[left]) / (hr_times[right] - hr_times[left])
    k_ext = np.concatenate([kernel, [0.0]])

    def fine_value(idx: np.ndarray) -> np.ndarray:
        lag = idx[:, None] - bins[None, :]
        ok = (lag >= 0) & (lag < kernel.size)
        return np.where(ok, k_ext[np.clip(lag, 0, kernel.size)], 0.0)

    M = (1 - w)[:, None] * fine_value(left) + w[:, None] * fine_value(right)
    M[:, ~kept] = 0.0
    return M


def lanczos_operator(onsets: np.ndarray, times: np.ndarray, window: int = 3, cutoff_mult: float = 1.0) -> np.ndarray:
    """Lanczos resampling operator from word onsets to frame times (HuthLab ``lanczosinterp2D``).

    Parameters
    ----------
    onsets : array of shape (n_words,)
    times : array of shape (n_trs,)
    window : int
        Number of lobes of the Lanczos kernel.
    cutoff_mult : float
        Cut-off frequency as a multiple of the TR sampling rate ``1 / mean(diff(times))``.

    Returns
    -------
    L : array of shape (n_trs, n_words), float64
    """
    onsets, times = _check_inputs(onsets, times)
    cutoff = cutoff_mult / float(np.mean(np.diff(times)))
    t = (times[:, None] - onsets[None, :]) * cutoff
    with np.errstate(divide="ignore", invalid="ignore"):
        val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi**2 * t**2)
    val[t == 0] = 1.0
    val[np.abs(t) > window] = 0.0
    return val


def delay_rows(Y: np.ndarray, delays: list[int] | tuple[int, ...]) -> np.ndarray:
    """FIR delays: copies of ``Y`` shifted down by each delay (in TRs), zero-filled.

    Parameters
    ----------
    Y : array of shape (n_trs, n_features)
    delays : sequence of int >= 0

    Returns
    -------
    array of shape (len(delays), n_trs, n_features)
    """
    out = np.zeros((len(delays), *Y.shape), dtype=Y.dtype)
    for i, d in enumerate(delays):
        d = int(d)
        if d < 0:
            raise DataError(None, f"FIR delays must be >= 0 TRs, got {d}", "fir_delays")
        if d == 0:
            out[i] = Y
        elif d < Y.shape[0]:
            out[i, d:] = Y[:-d]
    return out


def word_operator(
    onsets: np.ndarray,
    times: np.ndarray,
    hrf: str = "spm",
    oversampling: int = 16,
    lanczos_window: int = 3,
    lanczos_cutoff: float = 1.0,
) -> np.ndarray:
    """The (n_trs, n_words) operator of ``hrf`` ("spm"/"glover": HRF; "fir": Lanczos only)."""
    if hrf == "fir":
        return lanczos_operator(onsets, times, lanczos_window, lanczos_cutoff)
    return hrf_operator(onsets, times, hrf, oversampling)


def zscore_columns(Y: np.ndarray, rel_tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Z-score each column over time and flag the constant ones.

    Parameters
    ----------
    Y : array of shape (n_trs, n_features)
    rel_tol : float
        A column is constant when its s.d. is below ``rel_tol`` times its largest |value|
        (or exactly zero).

    Returns
    -------
    Z : array of shape (n_trs, n_features), float32
        Z-scored columns (population s.d.); constant columns are set to 0.
    constant : bool array of shape (n_features,)
    """
    Y = np.asarray(Y, dtype=np.float64)
    mean = Y.mean(axis=0)
    sd = Y.std(axis=0)
    scale = np.abs(Y).max(axis=0) if Y.size else np.zeros(Y.shape[1])
    constant = (sd <= rel_tol * scale) | (sd == 0) | ~np.isfinite(sd)
    Z = np.zeros_like(Y)
    ok = ~constant
    Z[:, ok] = (Y[:, ok] - mean[ok]) / sd[ok]
    return Z.astype(np.float32), constant
