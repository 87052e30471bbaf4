"""Words -> TR: operators checked against nilearn and a direct HuthLab-style Lanczos loop."""

from __future__ import annotations

import numpy as np
import pytest
from nilearn.glm.first_level import compute_regressor

from brainlike.errors import DataError
from brainlike.stimulus import delay_rows, frame_times, hrf_operator, lanczos_operator, zscore_columns


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(1)
    times = frame_times(4.0, 1.5, 120)
    onsets = np.sort(rng.uniform(-3.0, 185.0, 400))
    return onsets, times, rng.normal(size=(onsets.size, 5))


@pytest.mark.parametrize("hrf", ["spm", "glover"])
@pytest.mark.parametrize("oversampling", [1, 16, 50])
def test_hrf_operator_equals_nilearn(events, hrf, oversampling):
    onsets, times, values = events
    M = hrf_operator(onsets, times, hrf, oversampling)
    assert M.shape == (times.size, onsets.size)
    for j in range(values.shape[1]):
        ref, _ = compute_regressor([onsets, np.zeros_like(onsets), values[:, j]], hrf, times, oversampling=oversampling)
        np.testing.assert_allclose(M @ values[:, j], ref[:, 0], rtol=0, atol=1e-12)


def test_hrf_operator_peaks_after_onset():
    times = frame_times(0.0, 0.5, 80)
    M = hrf_operator(np.array([5.0]), times, "spm", 16)
    peak = times[np.argmax(M[:, 0])]
    assert 9.0 <= peak <= 11.0  # canonical SPM HRF peaks ~5 s after the event
    assert np.all(M[times < 5.0, 0] == 0)


def _lanczos_reference(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    out = np.zeros((newtime.size, data.shape[1]))
    for i, t in enumerate(newtime):
        x = (t - oldtime) * cutoff
        k = np.where(
            np.abs(x) > window, 0.0,
            np.where(x == 0, 1.0, window * np.sin(np.pi * x) * np.sin(np.pi * x / window) / (np.pi**2 * np.where(x == 0, 1, x) ** 2)),
        )
        out[i] = k @ data
    return out


def test_lanczos_operator_matches_direct_loop(events):
    onsets, times, values = events
    L = lanczos_operator(onsets, times, 3, 1.0)
    np.testing.assert_allclose(L @ values, _lanczos_reference(values, onsets, times), atol=1e-12)


def test_delay_rows():
    Y = np.arange(12.0).reshape(6, 2)
    D = delay_rows(Y, [0, 2])
    np.testing.assert_array_equal(D[0], Y)
    np.testing.assert_array_equal(D[1, :2], 0)
    np.testing.assert_array_equal(D[1, 2:], Y[:-2])
    with pytest.raises(DataError, match="delays"):
        delay_rows(Y, [-1])


def test_zscore_and_constant_columns():
    rng = np.random.default_rng(0)
    Y = np.column_stack([rng.normal(3, 2, 50), np.full(50, 7.0), rng.normal(size=50)])
    Z, const = zscore_columns(Y)
    assert const.tolist() == [False, True, False]
    np.testing.assert_allclose(Z[:, [0, 2]].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(Z[:, [0, 2]].std(0), 1, atol=1e-5)
    assert np.all(Z[:, 1] == 0) and Z.dtype == np.float32


def test_bad_inputs():
    times = frame_times(0, 2.0, 10)
    with pytest.raises(DataError, match="no words"):
        hrf_operator(np.array([]), times)
    with pytest.raises(DataError, match="HRF model"):
        hrf_operator(np.array([1.0]), times, "canonical")
    with pytest.raises(DataError, match="tr > 0"):
        frame_times(0, 0.0, 10)
    with pytest.raises(DataError, match="finite"):
        lanczos_operator(np.array([np.nan]), times)
