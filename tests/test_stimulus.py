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


# --- stimuli: ids, grouping, the primary stimulus --------------------------------------------------
def test_stimulus_id_round_trip():
    from brainlike.stimulus import dataset_of, stimulus_id, task_of

    sid = stimulus_id("alice", "alice")
    assert sid == "alice_task-alice"
    assert (dataset_of(sid), task_of(sid)) == ("alice", "alice")
    assert (dataset_of("embedded_task-movie"), task_of("embedded_task-movie")) == ("embedded", "movie")
    assert (dataset_of("plain"), task_of("plain")) == ("plain", "plain")


@pytest.mark.parametrize("stimuli, expected", [
    (["alice_task-alice", "embedded_task-movie", "embedded_task-story"], "embedded_task-story"),
    (["embedded_task-story"], "embedded_task-story"),
    (["alice_task-alice", "embedded_task-zoo", "embedded_task-movie"], "embedded_task-movie"),
    (["zeta_task-b", "alice_task-story", "alice_task-alice"], "alice_task-alice"),
    ([], None),
])
def test_primary_stimulus_rule(stimuli, expected):
    from brainlike.stimulus import primary_stimulus

    assert primary_stimulus(stimuli) == expected
    assert primary_stimulus(reversed(stimuli)) == expected  # order of the input does not matter


def _run(run_id, dataset, task, words, tr=2.0, t0=0.0, n_trs=10):
    from types import SimpleNamespace

    return SimpleNamespace(run_id=run_id, dataset=dataset, task=task, words=words, tr=tr, t0=t0, n_trs=n_trs,
                           meta={"words_source": f"{dataset}/{task}.tsv"})


def test_stimuli_from_runs_groups_by_dataset_task_and_grid():
    import pandas as pd

    from brainlike.activations.extract import stimuli_from_runs as via_activations
    from brainlike.stimulus import stimuli_from_runs

    assert via_activations is stimuli_from_runs
    words = pd.DataFrame({"word": ["a", "b"], "onset": [0.5, 1.0]})
    other = pd.DataFrame({"word": ["c"], "onset": [0.2]})
    runs = [_run("s1", "ds", "t", words), _run("s2", "ds", "t", words, n_trs=12), _run("s3", "ds", "t", words),
            _run("s4", "ab", "x", other)]
    stims = stimuli_from_runs(runs)
    assert [s.id for s in stims] == ["ab_task-x", "ds_task-t"]
    ds = stims[1]
    assert ds.meta == {"dataset": "ds", "task": "t"} and ds.source == "ds/t.tsv"
    assert [(g.n_trs, g.run_ids) for g in ds.grids] == [(10, ("s1", "s3")), (12, ("s2",))]
    assert ds.grids[0].id == "tr2_t0+0_n10"
    with pytest.raises(DataError, match="other words than the first run"):
        stimuli_from_runs([_run("s1", "ds", "t", words), _run("s2", "ds", "t", other)])
