"""Data gates: each bad input on data the test builds, the stage, the CLI, real Alice
data, and the offline Data Docs rendered in headless Chromium."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlike.config import ValidationConfig
from brainlike.data.run import N_VERTICES_FSAVERAGE5, Run
from brainlike.data.store import write_store
from brainlike.errors import DataError
from brainlike.validation import (
    Gates,
    ValidationFailed,
    read_valid_runs,
    run_validation,
    validate_activations,
)
from brainlike.validation.cli import validate_main
from brainlike.validation.frames import run_summary

REPO = Path(__file__).resolve().parents[1]
ALICE = Path(os.environ.get("BRAINLIKE_ALICE", REPO / "data" / "raw" / "alice-brennan2016"))
V = N_VERTICES_FSAVERAGE5
TR = 1.5
N_TRS = 200
MEDIAL_WALL = 0.12  # fsaverage5's medial wall: ~10-15 % constant vertices


def story_words(n_trs: int = N_TRS, tr: float = TR, t0: float = 0.0, tail_s: float = 6.0, wpm: float = 150.0) -> pd.DataFrame:
    """Words from 2 s into the scan to ``tail_s`` before its end at ``wpm`` words per minute."""
    start, end = t0 + 2.0, t0 + n_trs * tr - tail_s
    n = int(wpm * (end - start) / 60)
    onset = np.linspace(start, end - 0.3, n)
    return pd.DataFrame({"word": [f"w{i}" for i in range(n)], "onset": onset, "duration": np.full(n, 0.25)})


@pytest.fixture(scope="module")
def gates() -> Gates:
    return Gates(ValidationConfig())


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    """Demeaned noise on fsaverage5 with a constant (zero) medial wall, shape (N_TRS, V)."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((N_TRS, V), dtype=np.float32)
    wall = rng.choice(V, int(MEDIAL_WALL * V), replace=False)
    data[:, wall] = 0.0
    return data


def fs_run(data: np.ndarray, subject: str = "01", words: pd.DataFrame | None = None) -> Run:
    return Run("synthetic", subject, "story", TR, "fsaverage5", data, None,
               story_words(N_TRS) if words is None else words, 0.0, meta={"source": f"built-by-test-{subject}"})


def checks(result) -> set[str]:
    return {f.check for f in result.failures}


def only(result, check: str):
    found = [f for f in result.failures if f.check == check]
    assert found, f"{check} did not fail; failures: {[f.message() for f in result.failures]}"
    return found[0]


# -- clean data ------------------------------------------------------------------------------
def test_clean_fsaverage5_run_with_medial_wall_passes(gates, background):
    res = gates.validate_run(fs_run(background.copy()))
    assert res.passed, [f.message() for f in res.failures]
    s = res.summary
    assert s["constant_fraction"] == pytest.approx(MEDIAL_WALL, abs=1e-3)
    assert s["expected_n_trs"] == math.ceil((story_words().eval("onset + duration").max()) / TR)
    # demeaned data: no baseline, so tSNR is not applicable (documented rule)
    assert s["tsnr_applicable"] is False and s["median_tsnr"] is None


def test_embedded_default_generator_output_passes(gates):
    """The real embedded generator (z-scored brainspace background + planted responses)."""
    from brainlike.config import EmbeddedConfig
    from brainlike.data.embedded import make_embedded

    cfg = EmbeddedConfig(n_subjects=1)
    masks = {}
    for k, p in enumerate(cfg.planted):  # any vertex sets will do for the gates
        m = np.zeros(V, bool)
        m[k * 3000 : k * 3000 + 2500] = True
        masks[(p.atlas, p.network)] = m
    runs, _ = make_embedded(cfg, masks)
    res = gates.validate_run(runs[0])
    assert res.passed, [f.message() for f in res.failures]
    assert 0.05 < res.summary["constant_fraction"] < 0.15  # the medial wall
    assert 120 < res.summary["words_per_minute"] < 220


def test_tsnr_floor_applies_to_data_with_a_baseline(gates, background):
    good = (500.0 + 5.0 * background).astype(np.float32)  # tSNR ~ 100 (medial wall stays 500: constant)
    res = gates.validate_run(fs_run(good, "raw"))
    assert res.passed and res.summary["tsnr_applicable"] and res.summary["median_tsnr"] > 90
    noisy = (20.0 + 5.0 * background).astype(np.float32)  # tSNR ~ 4 < 10
    res = gates.validate_run(fs_run(noisy, "noisy"))
    f = only(res, "tsnr_floor")
    assert checks(res) == {"tsnr_floor"}
    assert f.observed["unexpected_count"] > 0.9 * (1 - MEDIAL_WALL) * V
    assert "synthetic_sub-noisy_task-story" in f.message() and "tsnr" in f.message()


# -- bad inputs ------------------------------------------------------------------------------
def test_all_zero_run_fails(gates):
    res = gates.validate_run(fs_run(np.zeros((N_TRS, V), np.float32), "zero"))
    assert {"not_all_zero", "not_all_constant", "constant_fraction", "no_zero_volume"} <= checks(res)
    msg = only(res, "not_all_zero").message()
    assert msg.startswith("synthetic_sub-zero_task-story: fmri_run.targets/not_all_zero")
    assert "expect_column_max_to_be_between" in msg and "observed 0" in msg and "max(max_abs) > 0" in msg


def test_thirty_percent_constant_vertices_fail(gates, background):
    data = background.copy()
    live = np.flatnonzero(data.std(axis=0) > 0)
    extra = int(0.30 * V) - (V - live.size)
    data[:, live[:extra]] = 1.0  # constant but not zero
    res = gates.validate_run(fs_run(data, "const30"))
    assert checks(res) == {"constant_fraction"}
    f = only(res, "constant_fraction")
    assert f.observed == pytest.approx(0.30, abs=1e-3)
    msg = f.message()
    assert "synthetic_sub-const30_task-story" in msg and "expect_column_mean_to_be_between" in msg
    assert "observed 0.3" in msg and "<= 0.25" in msg


def test_nan_block_after_projection_fails(gates, background):
    data = background.copy()
    data[50:60, 1000:2000] = np.nan
    res = gates.validate_run(fs_run(data, "nan"))
    assert checks(res) == {"no_nan", "no_nonfinite"}
    per_tr = only(res, "no_nan")
    assert per_tr.observed["unexpected_count"] == 10
    assert per_tr.observed["first"][0] == {"tr": 50, "n_nan": 1000}
    assert "synthetic_sub-nan_task-story: fmri_run.trs/no_nan" in per_tr.message() and "tr=50 n_nan=1000" in per_tr.message()
    per_target = only(res, "no_nonfinite")
    assert per_target.observed["unexpected_count"] == 1000
    assert per_target.observed["first"][0]["target"] == "lh:1000"


def test_one_volume_fewer_than_the_words_need_fails(gates, background):
    words = story_words(N_TRS, tail_s=0.5)  # last word ends inside the last volume
    need = math.ceil(words.eval("onset + duration").max() / TR)
    assert need == N_TRS
    res = gates.validate_run(fs_run(background[: need - 1].copy(), "short", words))
    f = only(res, "tr_count")
    assert f.observed == need - 1 and f.expectation == "expect_table_row_count_to_be_between"
    assert f"observed {need - 1}; expected row count >= {need}" in f.message()
    assert "synthetic_sub-short_task-story" in f.message()
    assert checks(res) == {"tr_count", "ends_in_scan"}  # and the last words overrun the scan
    # the full run passes
    assert gates.validate_run(fs_run(background.copy(), "full", words)).passed


def test_non_monotonic_onsets_fail_in_the_words_suite(gates):
    words = story_words()
    bad = words.copy()
    bad.loc[100, "onset"] = bad.loc[98, "onset"] - 0.5
    # layering: a Run refuses decreasing onsets when it is built (check_words)...
    with pytest.raises(DataError, match="onsets decrease at row 100"):
        fs_run(np.zeros((N_TRS, V), np.float32), "x", bad)
    # ...and the words suite, which holds for any words table, names the row
    failures, _ = gates.validate_words(bad, run_id="words-test", t0=0.0, scan_end=N_TRS * TR)
    f = next(f for f in failures if f.check == "onsets_non_decreasing")
    assert f.observed["first"][0]["i"] == 100
    assert "words-test: words/onsets_non_decreasing (expect_column_values_to_be_increasing on onset)" in f.message()
    assert "expected onset non-decreasing" in f.message()


def test_words_suite_catches_what_check_words_lets_through(gates):
    words = story_words()
    words.loc[5, "duration"] = 0.0
    words.loc[7, "word"] = "  "
    failures, _ = gates.validate_words(words, run_id="w", t0=0.0, scan_end=N_TRS * TR)
    assert {f.check for f in failures} == {"positive_durations", "no_empty_tokens"}
    # timings in milliseconds read as seconds: the scan overrun and the speech rate both fail
    ms = story_words().assign(onset=lambda d: d.onset * 1000, duration=lambda d: d.duration * 1000)
    failures, summary = gates.validate_words(ms, run_id="ms", t0=0.0, scan_end=N_TRS * TR)
    rate = next(f for f in failures if f.check == "speech_rate")
    assert rate.observed["words_per_minute"] < 1 and summary["words_per_minute"] < 1
    assert "ends_in_scan" in {f.check for f in failures}


def test_activation_matrix_with_a_nan_column_fails():
    rng = np.random.default_rng(1)
    acts = rng.standard_normal((N_TRS, 300))
    assert validate_activations(acts, N_TRS, "clean") == []
    acts[:, 7] = np.nan
    failures = validate_activations(acts, N_TRS, "minilm/ffn_out")
    assert [f.check for f in failures] == ["finite"]
    f = failures[0]
    assert f.observed["first"] == [{"unit": 7, "n_nonfinite": N_TRS}]
    assert "minilm/ffn_out: activations.units/finite" in f.message() and "unit=7" in f.message()
    # one row too many, and too many constant ANs
    acts = rng.standard_normal((N_TRS + 1, 300))
    acts[:, :100] = 0.5
    got = {f.check: f for f in validate_activations(acts, N_TRS, "m")}
    assert set(got) == {"row_count", "constant_an_fraction"}
    assert got["row_count"].observed == N_TRS + 1 and got["constant_an_fraction"].observed == pytest.approx(1 / 3)


def test_dataset_consistency_names_the_odd_run(gates):
    rng = np.random.default_rng(2)
    words = story_words(100, tr=2.0)
    runs = [
        Run("roi_ds", s, "story", 2.0, "roi", rng.standard_normal((100, n)) + 100, None, words,
            target_names=[f"R{i}" for i in range(n)])
        for s, n in (("a", 6), ("b", 6), ("c", 5))
    ]
    rows = [run_summary(r) for r in runs]
    failures = gates.validate_dataset(rows, "roi_ds")
    assert {f.run for f in failures} == {"roi_ds_sub-c_task-story"}
    assert {f.check for f in failures} == {"same_shape", "same_targets"}
    assert "observed value=5" in next(f for f in failures if f.check == "same_shape").message()


# -- the stage ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory, background) -> Path:
    """A prepared store with two clean runs and one all-zero run."""
    root = tmp_path_factory.mktemp("prepared") / "prepared"
    runs = [fs_run(background.copy(), "01"), fs_run(np.roll(background, 3, axis=0), "02"),
            fs_run(np.zeros((N_TRS, V), np.float32), "03")]
    write_store(runs, root)
    return root


def test_exclude_policy_drops_and_records(store, tmp_path):
    cfg = ValidationConfig(on_invalid="exclude")
    report = run_validation(store, cfg, tmp_path / "metrics" / "validation.json", tmp_path / "docs")
    assert report["valid_runs"] == ["synthetic_sub-01_task-story", "synthetic_sub-02_task-story"]
    assert [e["run_id"] for e in report["excluded"]] == ["synthetic_sub-03_task-story"]
    assert any("not_all_zero: observed 0" in r for r in report["excluded"][0]["reasons"])
    on_disk = json.loads((tmp_path / "metrics" / "validation.json").read_text())
    assert on_disk["runs"]["synthetic_sub-03_task-story"]["passed"] is False
    assert on_disk["runs"]["synthetic_sub-01_task-story"]["failures"] == []
    assert read_valid_runs(tmp_path / "metrics" / "validation.json") == report["valid_runs"]
    assert (tmp_path / "docs" / "index.html").is_file() and report["docs"]["offline"] is False
    assert list(store.iterdir())  # nothing deleted


def test_fail_policy_raises_after_writing_the_report(store, tmp_path):
    out = tmp_path / "validation.json"
    with pytest.raises(ValidationFailed) as info:
        run_validation(store, ValidationConfig(on_invalid="fail"), out, tmp_path / "docs")
    assert isinstance(info.value, DataError)
    msg = str(info.value)
    assert "1 of 3 run(s) failed" in msg
    assert "synthetic_sub-03_task-story  fmri_run.targets/not_all_zero" in msg
    assert read_valid_runs(out) == ["synthetic_sub-01_task-story", "synthetic_sub-02_task-story"]


def test_read_valid_runs_errors(tmp_path):
    with pytest.raises(DataError, match="validation report not found"):
        read_valid_runs(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text(json.dumps({"valid_runs": "x"}))
    with pytest.raises(DataError, match="valid_runs"):
        read_valid_runs(tmp_path / "bad.json")


def test_cli_exit_codes_and_table(store, capsys):
    assert validate_main([str(store / "synthetic_sub-01_task-story")]) == 0
    assert "synthetic_sub-01_task-story  PASS" in capsys.readouterr().out
    assert validate_main([str(store)]) == 1
    out = capsys.readouterr().out
    assert "synthetic_sub-03_task-story  FAIL" in out and "1 of 3 run(s) failed" in out
    assert validate_main([str(store / "missing")]) == 1
    assert "not found" in capsys.readouterr().err


# -- real data: Alice ---------------------------------------------------------------------------
@pytest.mark.skipif(not ALICE.is_dir(), reason=f"Alice data not found at {ALICE} (set BRAINLIKE_ALICE)")
def test_alice_verdicts(gates):
    from brainlike.data.loaders import load_alice

    runs = load_alice(ALICE)
    results = {r.subject: gates.validate_run(r) for r in runs}
    assert len(results) == 15
    failed = {s for s, r in results.items() if not r.passed}
    # s33's ROI file is all zeros (362 x 6); every other subject has real, finite, varying
    # time courses (ROI tSNR 52-363), 362 TRs = ceil((743.34 s - 20 s) / 2 s), ~176 words/min
    assert failed == {"s33"}
    raw = np.loadtxt(ALICE / "roi_6mm" / "s33-timecourses.txt")
    assert not raw.any()  # the rejection is in the data, not in the thresholds
    assert {"not_all_zero", "not_all_constant", "constant_fraction", "no_zero_volume"} <= checks(results["s33"])
    for s, r in results.items():
        if s != "s33":
            assert r.summary["tsnr_applicable"] and r.summary["median_tsnr"] > 50
            assert r.summary["expected_n_trs"] == r.summary["n_trs"] == 362


@pytest.mark.skipif(not ALICE.is_dir(), reason=f"Alice data not found at {ALICE} (set BRAINLIKE_ALICE)")
def test_alice_cli_report(capsys):
    assert validate_main([str(ALICE)]) == 1
    out = capsys.readouterr().out
    assert "alice_sub-s33_task-alice  FAIL" in out and "1 of 15 run(s) failed" in out
    assert out.count("  PASS  ") == 14


# -- offline Data Docs ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offline_docs(tmp_path_factory, gates, background):
    from brainlike.validation.docs import find_chromium, make_offline, vendor_assets

    if find_chromium() is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    vendor = REPO / "build" / "vendor"
    vendor_assets(vendor)  # no-op when `tools/vendor_assets.py` already ran
    g = Gates()
    g.validate_run(fs_run(background.copy(), "ok"))
    g.validate_run(fs_run(np.zeros((N_TRS, V), np.float32), "zero"))
    docs = tmp_path_factory.mktemp("docs") / "site"
    g.build_docs(docs)
    info = make_offline(docs, vendor)
    return docs, info


def test_data_docs_render_offline(offline_docs, tmp_path):
    from brainlike.validation.docs import docs_check

    docs, info = offline_docs
    for page in docs.rglob("*.html"):  # nothing left to fetch
        text = page.read_text()
        assert "cdn.jsdelivr" not in text and "unpkg.com" not in text and "amazonaws" not in text
    report = docs_check(docs, tmp_path / "shots")
    assert report["index"]["table_rows_js"] >= 6 and report["index"]["result_links"] >= 6
    assert report["result"]["expectation_rows"] >= 5
    assert "zero" in report["result_page"]  # the page with failures is the one checked
    assert report["index"]["grey_std"] > 0.05 and report["result"]["n_colours"] > 100


def test_docs_check_fails_when_an_asset_is_missing(offline_docs, tmp_path):
    from brainlike.validation.docs import OfflineDocsError, docs_check

    docs, _ = offline_docs
    broken = tmp_path / "site"
    shutil.copytree(docs, broken)
    shutil.rmtree(broken / "static" / "vendor" / "bootstrap-table@1.19.1")
    with pytest.raises(OfflineDocsError, match="table is empty"):
        docs_check(broken, tmp_path / "shots")


# -- bad input: one broken subject does not stop the others --------------------------------------
def _alice_copy(dst: Path) -> Path:
    """Symlinked copy of the Alice layout; files a test changes are replaced by real files."""
    for sub in ("roi_6mm", "regressors", "stimulus"):
        (dst / sub).mkdir(parents=True)
        for f in (ALICE / sub).iterdir():
            (dst / sub / f.name).symlink_to(f)
    return dst


def _replace(path: Path, text: str) -> None:
    path.unlink()
    path.write_text(text)


@pytest.mark.skipif(not ALICE.is_dir(), reason=f"Alice data not found at {ALICE} (set BRAINLIKE_ALICE)")
def test_alice_copy_with_broken_subjects_reports_every_verdict(tmp_path, capsys):
    copy = _alice_copy(tmp_path / "alice")
    roi = copy / "roi_6mm"
    rows = (ALICE / "roi_6mm" / "s22-timecourses.txt").read_text().splitlines()
    rows[100] = " ".join(["NaN"] * 6)
    _replace(roi / "s22-timecourses.txt", "\n".join(rows) + "\n")  # a NaN row
    rows = (ALICE / "roi_6mm" / "s23-timecourses.txt").read_text().splitlines()
    rows[7] = rows[7].replace(rows[7].split()[2], "oops", 1)
    _replace(roi / "s23-timecourses.txt", "\n".join(rows) + "\n")  # a non-numeric token
    _replace(roi / "s26-timecourses.txt", (ALICE / "roi_6mm" / "s24-timecourses.txt").read_text())  # a copy
    scaled = np.loadtxt(ALICE / "roi_6mm" / "s28-timecourses.txt") * 1e30
    roi.joinpath("s28-timecourses.txt").unlink()
    np.savetxt(roi / "s28-timecourses.txt", scaled)  # a file scaled by mistake
    next((copy / "regressors").glob("s30-rp_*.txt")).unlink()  # no motion file

    report = tmp_path / "report.json"
    assert validate_main([str(copy), "--report", str(report)]) == 1
    out = capsys.readouterr().out
    verdicts = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("alice_sub-")}
    assert len(verdicts) == 15  # every subject judged, the unreadable one included
    failed = {rid.split("_")[1][4:] for rid, v in verdicts.items() if v == "FAIL"}
    assert failed == {"s22", "s23", "s24", "s26", "s28", "s33"}
    assert "alice_sub-s22_task-alice: fmri_run.trs/no_nan" in out and "tr=100 n_nan=6" in out
    assert "alice_sub-s23_task-alice: load/readable" in out and "s23-timecourses.txt" in out and "oops" in out
    assert "fmri_dataset.pairs/distinct_subjects" in out
    assert "duplicate_of=alice_sub-s26_task-alice, correlation=1" in out
    assert "duplicate_of=alice_sub-s24_task-alice, correlation=1" in out
    assert "alice_sub-s28_task-alice: fmri_run.targets/dynamic_range" in out and "<= 1e+08" in out
    assert "WARNING alice_sub-s30_task-alice: no motion file" in out
    assert verdicts["alice_sub-s30_task-alice"] == "PASS"
    data = json.loads(report.read_text())
    assert "alice_sub-s30_task-alice" in data["warnings"]
    assert data["runs"]["alice_sub-s23_task-alice"]["failures"][0]["check"] == "readable"


def test_near_identical_subjects_are_named_with_their_correlation(gates):
    rng = np.random.default_rng(5)
    words = story_words(120, tr=2.0)
    base = rng.standard_normal((120, 6)) + 100
    near = base + 0.05 * rng.standard_normal(base.shape)  # a copy with a little noise added
    other = rng.standard_normal((120, 6)) + 100
    names = [f"R{i}" for i in range(6)]
    runs = [Run("ds", s, "story", 2.0, "roi", d, None, words, target_names=names)
            for s, d in (("a", base), ("b", near), ("c", other))]
    from brainlike.validation.frames import fingerprint

    failures = gates.validate_pairs({r.run_id: fingerprint(r.data) for r in runs}, "ds")
    assert {f.run for f in failures} == {"ds_sub-a_task-story", "ds_sub-b_task-story"}
    corr = failures[0].observed["correlation"]
    assert 0.98 < corr < 1.0
    assert failures[0].observed["duplicate_of"] == "ds_sub-b_task-story"
    assert failures[0].message().endswith("expected every correlation <= 0.98")


def test_unreadable_run_in_the_store_is_excluded_and_the_rest_go_on(background, tmp_path):
    root = tmp_path / "prepared"
    write_store([fs_run(background.copy(), "01")], root, extra={"unreadable": [
        {"run_id": "synthetic_sub-02_task-story", "dataset": "synthetic", "subject": "02", "task": "story",
         "source": "/data/sub-02.nii.gz", "problem": "not a NIfTI file"}]})
    report = run_validation(root, ValidationConfig(on_invalid="exclude"), tmp_path / "v.json", tmp_path / "docs")
    assert report["valid_runs"] == ["synthetic_sub-01_task-story"]
    (excl,) = report["excluded"]
    assert excl["run_id"] == "synthetic_sub-02_task-story"
    assert "load/readable" in excl["reasons"][0] and "not a NIfTI file" in excl["reasons"][0]
    with pytest.raises(ValidationFailed, match="synthetic_sub-02_task-story  load/readable"):
        run_validation(root, ValidationConfig(on_invalid="fail"), tmp_path / "v2.json", tmp_path / "docs2")


@pytest.mark.skipif(not ALICE.is_dir(), reason=f"Alice data not found at {ALICE} (set BRAINLIKE_ALICE)")
def test_prepare_records_an_unreadable_subject_and_exclude_goes_on(tmp_path):
    from brainlike.config import parse_params
    from brainlike.data.prepare import prepare_all

    copy = _alice_copy(tmp_path / "alice")
    _replace(copy / "roi_6mm" / "s23-timecourses.txt", "1 2 3\n")
    params = parse_params({"embedded": {"enabled": False},
                           "datasets": [{"kind": "alice", "path": str(copy), "subjects": ["s18", "s23", "s24"]}],
                           "paths": {"prepared": str(tmp_path / "prepared"), "metrics": str(tmp_path / "metrics")}})
    with pytest.warns(UserWarning, match=r"alice_sub-s23_task-alice not prepared: .*expected 6 columns, got 3"):
        summary = prepare_all(params)
    assert summary["n_runs"] == 2 and [u["subject"] for u in summary["unreadable"]] == ["s23"]
    report = run_validation(tmp_path / "prepared", ValidationConfig(on_invalid="exclude"),
                            tmp_path / "metrics" / "validation.json", tmp_path / "docs")
    assert report["valid_runs"] == ["alice_sub-s18_task-alice", "alice_sub-s24_task-alice"]
    assert [e["run_id"] for e in report["excluded"]] == ["alice_sub-s23_task-alice"]


@pytest.mark.skipif(not ALICE.is_dir(), reason=f"Alice data not found at {ALICE} (set BRAINLIKE_ALICE)")
def test_prepare_publishes_the_store_and_its_summary_together(tmp_path):
    """`prepare` writes the store and metrics/prepare.json before publishing either: an
    unwritable metrics folder fails naming it and leaves the previous store as it was."""
    from brainlike.config import parse_params
    from brainlike.data.prepare import prepare_all
    from brainlike.errors import OutputError

    def params(metrics):
        return parse_params({"embedded": {"enabled": False},
                             "datasets": [{"kind": "alice", "path": str(ALICE), "subjects": ["s18", "s24"]}],
                             "paths": {"prepared": str(tmp_path / "prepared"), "metrics": str(metrics)}})

    summary = prepare_all(params(tmp_path / "metrics"))
    store = tmp_path / "prepared"
    before = {p.relative_to(store): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert summary["prepared_bytes"] == sum(len(b) for b in before.values())
    assert json.loads((tmp_path / "metrics" / "prepare.json").read_text()) == summary
    (store / "old.txt").write_text("the previous store")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the metrics folder should be")  # unwritable, even for root
    with pytest.raises(OutputError, match=r"blocked/prepare\.json: cannot write"):
        prepare_all(params(blocked))
    assert (store / "old.txt").read_text() == "the previous store"  # not replaced
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


@pytest.mark.parametrize("has_filter", [True, False], ids=["data-filter", "python<3.11.4"])
def test_vendored_archives_extract_plain_files_only(tmp_path, monkeypatch, has_filter):
    """npm tarballs: a plain package extracts; a member escaping the folder is refused, with or
    without tarfile's 'data' filter (Debian 12's Python 3.11.2 has none)."""
    import io
    import tarfile

    from brainlike.validation.docs import OfflineDocsError, _extract_data

    if not has_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)

    def tarball(name: str) -> Path:
        path = tmp_path / f"{abs(hash(name))}.tgz"
        with tarfile.open(path, "w:gz") as tar:
            data = b"x"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        return path

    with tarfile.open(tarball("package/dist/vega.js")) as tar:
        _extract_data(tar, tmp_path / "ok")
    assert (tmp_path / "ok/package/dist/vega.js").read_bytes() == b"x"
    with tarfile.open(tarball("../evil.js")) as tar, pytest.raises((OfflineDocsError, tarfile.FilterError)):
        _extract_data(tar, tmp_path / "bad")
    assert not (tmp_path / "evil.js").exists()
