"""The prepared-run store: round trip, integrity, atomic replacement."""

import json

import numpy as np
import pandas as pd
import pytest

from brainlike.data import Run, iter_runs, read_manifest, read_run, write_store
from brainlike.errors import DataError


def _run(subject="01", n_t=12, n_v=3, seed=0):
    rng = np.random.default_rng(seed)
    words = pd.DataFrame({"word": ["one", "two", "three"], "onset": [1.0, 2.0, 3.5], "duration": [0.4, 0.5, 0.3]})
    conf = pd.DataFrame({"trans_x": rng.normal(size=n_t)})
    return Run("toy", subject, "story", 2.0, "roi", rng.normal(size=(n_t, n_v)), conf, words,
               t0=0.0, target_names=[f"r{i}" for i in range(n_v)], meta={"source": "memory"})


def test_round_trip(tmp_path):
    runs = [_run("01"), _run("02", seed=1)]
    entries = write_store(runs, tmp_path / "prep", sidecars={"toy/truth.json": "{}", "toy/f.parquet": pd.DataFrame({"a": [1]})})
    assert [e["run_id"] for e in entries] == ["toy_sub-01_task-story", "toy_sub-02_task-story"]
    back = list(iter_runs(tmp_path / "prep"))
    for a, b in zip(runs, back, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        pd.testing.assert_frame_equal(a.words, b.words)
        pd.testing.assert_frame_equal(a.confounds, b.confounds)
        assert (a.tr, a.t0, a.target_names) == (b.tr, b.t0, b.target_names)
    assert (tmp_path / "prep/toy/truth.json").is_file()
    assert read_manifest(tmp_path / "prep")["runs"][1]["subject"] == "02"


def test_failed_write_leaves_previous_store(tmp_path):
    root = tmp_path / "prep"
    write_store([_run("01")], root)
    before = sorted(p.name for p in root.iterdir())

    def runs():
        yield _run("03")
        raise DataError("bad.nii.gz", "simulated loader failure half-way")

    with pytest.raises(DataError, match="half-way"):
        write_store(runs(), root)
    assert sorted(p.name for p in root.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["prep"], "temporary folder left behind"


def test_duplicate_run_ids_rejected(tmp_path):
    with pytest.raises(DataError, match="share the id"):
        write_store([_run("01"), _run("01")], tmp_path / "prep")
    assert not (tmp_path / "prep").exists()


def test_corruption_detected(tmp_path):
    write_store([_run("01")], tmp_path / "prep")
    folder = tmp_path / "prep" / "toy_sub-01_task-story"
    info = json.loads((folder / "run.json").read_text())
    info["bold_sha256"] = "0" * 64
    (folder / "run.json").write_text(json.dumps(info))
    read_run(folder)  # without verification it loads
    with pytest.raises(DataError, match="sha256"):
        read_run(folder, verify=True)
    (folder / "bold.arrow").write_bytes(b"not arrow")
    with pytest.raises(DataError, match="bold.arrow"):
        read_run(folder)


def test_missing_store_names_the_file(tmp_path):
    with pytest.raises(DataError, match="manifest.json"):
        read_manifest(tmp_path)


def test_run_rejects_bad_shapes():
    with pytest.raises(DataError, match="20484 vertices"):
        Run("x", "01", "t", 1.5, "fsaverage5", np.zeros((5, 100)), None, pd.DataFrame(columns=["word", "onset", "duration"]))
    with pytest.raises(DataError, match="confounds have 4 rows"):
        Run("x", "01", "t", 1.5, "roi", np.zeros((5, 1)), pd.DataFrame({"a": range(4)}),
            pd.DataFrame(columns=["word", "onset", "duration"]), target_names=["a"])


def test_words_past_scan_end_named():
    run = _run(n_t=1)  # 1 volume x 2 s ends at 2 s: "three" (3.5-3.8 s) runs past it
    with pytest.raises(DataError, match="past the end of the scan"):
        run.check_words_within_scan()
