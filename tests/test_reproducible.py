"""Outputs a re-run reproduces byte for byte: no machine path, no wall time, no write date.

The stages are run on the small study of ``test_stages`` (its module fixtures, reused) and a
small prepared store through the real ``validate`` stage; every text output is then searched
for this machine's paths (the checkout, ``$HOME``, the Python prefix, ``site-packages``) and
every JSON output for wall-time keys, as ``python -m brainlike.checks portable`` does in CI.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlike._utils.reproducible import (
    TIMING_KEYS,
    portable_path,
    portable_paths,
    read_timings,
    source_date,
    write_timings,
)
from brainlike.checks.reproducible import machine_paths, scan, stage_seconds, times_main, times_table
from brainlike.config import ValidationConfig
from brainlike.data.embedded.timing import story_path
from brainlike.data.run import Run
from brainlike.data.store import write_store
from brainlike.validation.stage import run_validation

from test_stages import one_thread, outputs, study  # noqa: F401  (module fixtures, reused)

ROOT = Path(__file__).resolve().parents[1]


def _brainspace_file() -> Path:
    import brainspace

    return Path(brainspace.__file__).parent / "datasets" / "preprocessing" / "x.fsa5.lh.mgz"


# --- the helpers -------------------------------------------------------------------------------
def test_portable_path_names_packages_and_repository_files(tmp_path):
    bs = _brainspace_file()
    assert "site-packages" in bs.parts, bs  # a real installed package, not a copy in the checkout
    assert portable_path(bs) == "brainspace:datasets/preprocessing/x.fsa5.lh.mgz"
    # brainlike's own files by package too: the same name for an editable and a wheel install
    assert portable_path(story_path()) == "brainlike:data/embedded/story.txt"
    assert portable_path(tmp_path / "data" / "raw" / "a.txt", root=tmp_path) == "data/raw/a.txt"
    assert portable_path("data/raw/a.txt") == "data/raw/a.txt"
    assert portable_path("/elsewhere/ds002345", root=tmp_path) == "/elsewhere/ds002345"  # given in params: kept
    got = portable_paths({"source": str(bs), "nested": [{"words_source": Path(story_path())}], "n": 3,
                          "note": "a / b"}, root=tmp_path)
    assert got == {"source": "brainspace:datasets/preprocessing/x.fsa5.lh.mgz",
                   "nested": [{"words_source": "brainlike:data/embedded/story.txt"}], "n": 3, "note": "a / b"}


def test_timings_go_to_build_and_print_as_a_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BRAINLIKE_BUILD", str(tmp_path / "build"))
    write_timings("encode@m", {"stimuli": {"s": {"total_s": 1.5}}, "total_s": 2.0})
    write_timings("extract@m", {"forward_s": 1.0, "this_call_s": 3.0}, part="embedded_task-story")
    write_timings("extract@m", {"forward_s": 1.0, "this_call_s": 4.0}, part="alice_task-alice")
    t = read_timings()
    assert list(t) == ["encode@m", "extract@m"]
    assert set(t["extract@m"]) == {"embedded_task-story", "alice_task-alice"}
    assert stage_seconds(t["encode@m"]) == 2.0 and stage_seconds(t["extract@m"]) == 7.0
    assert times_main([]) == 0
    out = capsys.readouterr().out
    assert out == times_table(t) + "\n" and out.splitlines()[-1].split() == ["total", "9.0"]
    with pytest.raises(ValueError, match="stage name"):
        write_timings("a/b", {})
    assert times_main([str(tmp_path / "nothing")]) == 1


def test_source_date_never_reads_the_clock(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert source_date() == dt.datetime(1980, 1, 1, tzinfo=dt.timezone.utc)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert source_date() == dt.datetime.fromtimestamp(1700000000, dt.timezone.utc)


def test_scan_finds_machine_paths_and_timing_keys(tmp_path):
    out = tmp_path / "metrics"
    out.mkdir()
    (out / "ok.json").write_text(json.dumps({"speech_span_s": 600.0, "source": "brainspace:x.mgz", "timing": 0.2}))
    (out / "path.json").write_text(json.dumps({"source": str(_brainspace_file())}))
    (out / "root.csv").write_text(f"a,b\n1,{tmp_path / 'x'}\n")
    (out / "time.json").write_text(json.dumps({"stimuli": {"s": {"total_s": 3.0}}, "trace": [{"elapsed_s": 1.0}]}))
    found = {(f.path.name, f.what, f.detail.split(" at ")[0]) for f in scan([out], root=tmp_path)}
    assert any(n == "path.json" and w == "path" for n, w, _ in found)
    assert ("root.csv", "path", repr(str(tmp_path))) in found
    assert {d for n, w, d in found if n == "time.json"} == {"key stimuli.s.total_s", "key trace[0].elapsed_s"}
    assert not any(n == "ok.json" for n, _, _ in found)
    assert str(tmp_path) in machine_paths(tmp_path)


# --- the stages --------------------------------------------------------------------------------
def _assert_clean(paths, what: str) -> None:
    found = scan(paths, root=ROOT)
    assert not found, f"{what}: " + "; ".join(map(str, found))


def test_prepared_store_and_validation_name_files_portably(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the repository root of a DVC stage
    raw = tmp_path / "data" / "raw" / "ds"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    words = pd.DataFrame({"word": ["la"] * 200, "onset": np.linspace(2.0, 280.0, 200), "duration": 0.3})
    runs = [Run("embedded", "01", "story", 1.5, "roi", rng.standard_normal((200, 3)), None, words,
                target_names=["A", "B", "C"],
                meta={"source": str(_brainspace_file()), "words_source": story_path(),
                      "regressor_sources": {"rate": str(raw / "s01-rate.txt")}})]
    write_store(runs, "data/prepared")
    meta = json.loads(Path("data/prepared/embedded_sub-01_task-story/run.json").read_text())["meta"]
    assert meta == {"source": "brainspace:datasets/preprocessing/x.fsa5.lh.mgz",
                    "words_source": "brainlike:data/embedded/story.txt",
                    "regressor_sources": {"rate": "data/raw/ds/s01-rate.txt"}}
    report = run_validation(Path("data/prepared"), ValidationConfig(on_invalid="exclude"),
                            Path("metrics/validation.json"), tmp_path / "reports" / "data_docs")
    assert report["docs"]["path"] == "reports/data_docs"
    assert report["runs"]["embedded_sub-01_task-story"]["summary"]["source"].startswith("brainspace:")
    assert "seconds" not in report
    _assert_clean([tmp_path / "data", tmp_path / "metrics", tmp_path / "reports"], "prepare/validate outputs")
    assert "validate" in read_timings()
    # the data docs again, a moment later: the same bytes (no load time, no random block id)
    time.sleep(0.05)
    again = run_validation(Path("data/prepared"), ValidationConfig(on_invalid="exclude"),
                           Path("metrics/validation2.json"), tmp_path / "reports" / "data_docs2")
    assert again == report | {"docs": {"path": "reports/data_docs2", "offline": False}}
    first, second = tmp_path / "reports" / "data_docs", tmp_path / "reports" / "data_docs2"
    pages = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert pages == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    changed = [str(p) for p in pages if (first / p).read_bytes() != (second / p).read_bytes()]
    assert not changed, f"data docs differ between two runs: {changed}"
    today = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d")
    assert not [p for p in pages if today in (first / p).read_text(errors="replace")], "data docs carry today's date"


def test_stage_outputs_hold_no_machine_path_or_wall_time(study, outputs):
    p = study
    tracked = [p.paths.metrics, p.encoding.output, p.encoding.baseline_output, p.networks.output]
    _assert_clean(tracked, "encode/networks/metrics outputs")
    # every JSON the stages wrote was searched (not an empty scan)
    n_json = sum(1 for d in tracked for _ in Path(d).rglob("*.json"))
    assert n_json >= 8
    # ... and the wall times are in build/timings instead
    t = read_timings()
    for stage in ("encode@m", "encode@m-random", "encode_baseline", "networks", "metrics"):
        assert stage in t and stage_seconds(t[stage]) > 0, stage
    assert set(t["encode@m"]["stimuli"]) == {"embedded_task-story", "alice_task-alice"}
    assert "spins_s" in t["networks"]


def test_stage_npz_outputs_are_byte_stable(study, outputs):
    """The encoding and networks maps carry no write date (numpy's zip members: 1980-01-01),
    so the same arrays give the same bytes."""
    files = sorted(Path(study.encoding.output).rglob("*.npz")) + sorted(Path(study.networks.output).rglob("*.npz"))
    assert files
    for f in files:
        with zipfile.ZipFile(f) as zf:
            assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}, f


def test_registry_summary_names_the_store_relative_to_the_clone(tmp_path):
    from brainlike.registry.stage import portable_uri

    assert portable_uri(f"sqlite:///{tmp_path}/mlflow.db", tmp_path) == "sqlite:///mlflow.db"
    assert portable_uri("sqlite:///mlflow.db", tmp_path) == "sqlite:///mlflow.db"
    assert portable_uri("http://mlflow.lab.example:5000", tmp_path) == "http://mlflow.lab.example:5000"


def test_timing_keys_are_not_stimulus_durations():
    # keys that look like seconds but describe the stimulus or a threshold stay in the outputs
    assert not {"speech_span_s", "high_pass_s", "max_extra_scan_s", "duration_s", "tr", "timing"} & TIMING_KEYS


def test_reproduce_check_names_each_metric_that_moved(tmp_path):
    """The comparison of ``python -m brainlike.checks reproduce``: exact by default, floats within
    ``rtol`` when asked, NaN equal to NaN, every moved metric named by file and key path."""
    from brainlike.checks.reproduce import differences, file_differences, lock_differences

    a = {"models": {"m": {"r": 0.5, "ci": [0.1, float("nan")], "n": 3}}, "only_a": 1}
    b = {"models": {"m": {"r": 0.5 * (1 + 1e-13), "ci": [0.1, float("nan")], "n": 3}}}
    assert differences(a, b) == ["/only_a: only committed",
                                 f"/models/m/r: committed 0.5 != reproduced {0.5 * (1 + 1e-13)!r}"]
    assert differences(a, b, rel_tol=1e-12) == ["/only_a: only committed"]
    b["models"]["m"]["n"] = 4  # integers are counts: never within a tolerance
    assert "/models/m/n: committed 3 != reproduced 4" in differences(a, b, rel_tol=1e-3)
    assert differences(1.0, 1.1, names=("reference", "check")) == [": reference 1.0 != check 1.1"]

    (tmp_path / "c").mkdir()
    (tmp_path / "r").mkdir()
    for name, old, new in [("x.json", '{"r": 0.25}', '{"r": 0.2500001}'),
                           ("t.csv", "model,r\nm,0.25\n", "model,r\nm,0.2500001\n"),
                           ("p.svg", "<svg/>", "<svg />")]:
        (tmp_path / "c" / name).write_text(old)
        (tmp_path / "r" / name).write_text(new)
    assert file_differences(tmp_path / "c" / "x.json", tmp_path / "r" / "x.json") == [
        "/r: committed 0.25 != reproduced 0.2500001"]
    assert file_differences(tmp_path / "c" / "x.json", tmp_path / "r" / "x.json", rel_tol=1e-5) == []
    assert file_differences(tmp_path / "c" / "t.csv", tmp_path / "r" / "t.csv") == [
        ": row 0 column r: committed 0.25 != reproduced 0.2500001"]
    assert file_differences(tmp_path / "c" / "t.csv", tmp_path / "r" / "t.csv", rel_tol=1e-5) == []
    assert file_differences(tmp_path / "c" / "p.svg", tmp_path / "r" / "p.svg", rel_tol=1.0) == [": bytes differ"]

    lock = {"schema": "2.0", "stages": {"encode": {"outs": [{"path": "data/enc", "md5": "aa.dir"},
                                                            {"path": "metrics/encode", "md5": "bb.dir"}]}}}
    (tmp_path / "c" / "dvc.lock").write_text(json.dumps(lock))
    lock["stages"]["encode"]["outs"][0]["md5"] = "cc.dir"
    del lock["stages"]["encode"]["outs"][1]
    (tmp_path / "r" / "dvc.lock").write_text(json.dumps(lock))
    assert lock_differences(tmp_path / "c" / "dvc.lock", tmp_path / "r" / "dvc.lock") == [
        "dvc.lock encode: data/enc: committed md5 aa.dir != reproduced cc.dir",
        "dvc.lock encode: metrics/encode: committed md5 bb.dir != reproduced missing"]


def test_reproduce_check_refuses_a_workspace_that_is_not_clean(tmp_path, capsys):
    """A workspace whose outputs are not what dvc.lock says cannot be compared: exit 2, nothing
    copied or run (the real ``dvc status`` decides)."""
    import subprocess

    from brainlike.checks.__main__ import main as checks_main

    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=ws, check=True)
    (ws / "in.txt").write_text("x")
    (ws / "dvc.yaml").write_text("stages:\n  copy:\n    cmd: cp in.txt out.txt\n    deps: [in.txt]\n    outs: [out.txt]\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert checks_main(["reproduce", str(ws), "--tmp", str(scratch)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reproduce: ") and "copy" in err
    assert list(scratch.iterdir()) == [] and not (ws / "out.txt").exists()


@pytest.mark.skipif(__import__("platform").machine().lower() not in ("x86_64", "amd64"), reason="x86-64 kernels")
def test_importing_brainlike_caps_float_kernels_at_avx2():
    """`import brainlike` before numpy/torch: numpy dispatches no AVX-512 kernel, OpenBLAS runs its
    Haswell kernels, torch its AVX2 ones, on any x86-64 CPU; BRAINLIKE_NATIVE_KERNELS=1 opts out."""
    import os
    import subprocess
    import sys

    code = ("import brainlike, numpy, torch, threadpoolctl\n"
            "from numpy._core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f\n"
            "blas = [i for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas']\n"
            "print(sorted(k for k in d if f.get(k) and k.startswith(('AVX512', 'X86_V4'))),"
            " blas[0]['architecture'], torch.backends.cpu.get_cpu_capability())\n")
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINLIKE_NATIVE_KERNELS", "OPENBLAS_CORETYPE",
                                                          "NPY_DISABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", "Haswell", "AVX2"], out.stdout + out.stderr
    native = subprocess.run([sys.executable, "-c", "import brainlike, os; print(os.environ.get('OPENBLAS_CORETYPE'))"],
                            env=env | {"BRAINLIKE_NATIVE_KERNELS": "1"}, capture_output=True, text=True, check=True)
    assert native.stdout.strip() == "None"


# --- the CI gate after `make run`: exact on the reference CPU, cross-CPU tolerances elsewhere ----
def _git(ws: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True)


def _committed_workspace(tmp_path: Path) -> Path:
    import yaml

    ws = tmp_path / "ws"
    (ws / "metrics").mkdir(parents=True)
    (ws / "src").mkdir()
    (ws / "src" / "code.py").write_text("x = 1\n")
    (ws / "metrics" / "m.json").write_text(json.dumps({"r": 0.25, "n": 1000, "verdict": "yes", "ok": True}))
    (ws / "metrics" / "t.csv").write_text("model,r,n\na,0.5,200\n")
    lock = {"schema": "2.0", "stages": {"s": {"cmd": "python run.py",
                                              "deps": [{"path": "src", "md5": "aaa.dir"}, {"path": "data/in", "md5": "d1.dir"}],
                                              "outs": [{"path": "data/out", "md5": "o1.dir"}]},
                       "t": {"cmd": "python make.py", "deps": [{"path": "src", "md5": "aaa.dir"}],
                             "outs": [{"path": "data/in", "md5": "d1.dir"}]}}}
    (ws / "dvc.lock").write_text(yaml.safe_dump(lock))
    _git(ws, "init", "-q")
    _git(ws, "add", ".")
    _git(ws, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "outputs")
    return ws


def test_committed_check_is_exact_on_the_reference_cpu_and_tolerant_elsewhere(tmp_path):
    import yaml

    from brainlike.checks.committed import CROSS_CPU, committed_differences

    ws = _committed_workspace(tmp_path)
    assert committed_differences(ws, exact=True) == ([], [], True)
    # last-digit drift of another CPU: a float and a count move a little, the data md5 in dvc.lock
    m = json.loads((ws / "metrics" / "m.json").read_text())
    (ws / "metrics" / "m.json").write_text(json.dumps(m | {"r": 0.2501, "n": 1003}))
    lock = yaml.safe_load((ws / "dvc.lock").read_text())
    lock["stages"]["s"]["deps"][1]["md5"] = "d2.dir"  # the output of stage t
    lock["stages"]["t"]["outs"][0]["md5"] = "d2.dir"
    lock["stages"]["s"]["outs"][0]["md5"] = "o2.dir"
    (ws / "dvc.lock").write_text(yaml.safe_dump(lock))
    failures, within, exact = committed_differences(ws, exact=True)
    assert sorted(f.split(":")[0] for f in failures) == ["dvc.lock", "metrics/m.json"] and exact
    failures, within, exact = committed_differences(ws, exact=False)
    assert failures == [] and sorted(within) == ["dvc.lock", "metrics/m.json"]
    # beyond the tolerance, a changed verdict, a changed code hash, an untracked file: each named
    (ws / "metrics" / "m.json").write_text(json.dumps(m | {"r": 0.25 * (1 + 3 * CROSS_CPU["rel"]) + CROSS_CPU["abs"],
                                                            "verdict": "no"}))
    (ws / "metrics" / "t.csv").write_text(f"model,r,n\na,0.5,{int(200 * (1 + 3 * CROSS_CPU['count']))}\n")
    lock["stages"]["s"]["deps"][0]["md5"] = "bbb.dir"
    (ws / "dvc.lock").write_text(yaml.safe_dump(lock))
    (ws / "metrics" / "new.json").write_text("{}")
    failures, _, _ = committed_differences(ws, exact=False)
    text = "\n".join(failures)
    assert "metrics/m.json/r: committed 0.25" in text and "metrics/m.json/verdict" in text
    assert "metrics/t.csv: row 0 column n" in text
    assert "dvc.lock s: input src committed md5 aaa.dir" in text and "data/out" not in text
    assert "metrics/new.json: untracked" in text
    # a changed file that is not a metric must be the same on every CPU
    (ws / "src" / "code.py").write_text("x = 2\n")
    assert any(f.startswith("src/code.py: changed (not a metric") for f in committed_differences(ws, exact=False)[0])


def test_host_signature_names_the_kernels_inputs(tmp_path, capsys):
    from brainlike.checks.committed import REFERENCE, host_main, host_signature, reference_signature

    sig = host_signature()
    assert set(sig) == {"vendor", "family", "model", "model_name", "isa", "cache", "cpus"}
    assert host_main([str(tmp_path), "--record"]) == 0
    assert reference_signature(tmp_path) == sig and (tmp_path / REFERENCE).is_file()
    assert host_main([str(tmp_path)]) == 0 and "this is the reference CPU" in capsys.readouterr().out


def test_table_comparison_takes_missing_text_as_equal():
    """A text column with empty cells (the zoo's ``size``) read by pandas 3: missing equals
    missing, a changed label is named."""
    from brainlike.checks.reproduce import bytes_differences

    a = b"model,size,r\nm1,,0.5\nm2,0.5B,0.25\n"
    assert bytes_differences(".csv", a, a.replace(b"0.5\n", b"0.50\n")) == []
    lines = bytes_differences(".csv", a, a.replace(b"0.5B", b"1.5B"))
    assert len(lines) == 1 and "row 1 column size" in lines[0]


def test_committed_check_can_report_moved_metrics_without_failing(tmp_path):
    from brainlike.checks.committed import committed_differences

    ws = _committed_workspace(tmp_path)
    (ws / "metrics" / "m.json").write_text(json.dumps({"r": 0.9, "n": 1000, "verdict": "yes", "ok": True}))
    (ws / "metrics" / "stray.json").write_text("{}")
    moved: list[str] = []
    failures, _, _ = committed_differences(ws, exact=False, moved=moved)
    assert moved == ["metrics/m.json/r: committed 0.25 != reproduced 0.9"]
    assert failures == ["metrics/stray.json: untracked file left by the run"]


def test_verdict_text_compares_its_numbers_within_the_tolerance():
    """A verdict that prints a q of 0.0859 on one CPU and 0.0858 on another is the same verdict;
    one whose words change ("beats" -> "does not beat") or whose count moves is not."""
    from brainlike.checks.reproduce import differences

    a = "m: does not beat its twin (r difference +0.017 [-0.004, +0.040], BH q=0.0859, 3/6 ROIs higher)"
    assert differences({"v": a}, {"v": a.replace("0.0859", "0.0858")}, rel_tol=0.02, abs_tol=0.02) == []
    assert differences({"v": a}, {"v": a.replace("does not beat", "beats")}, rel_tol=0.02, abs_tol=0.02)
    assert differences({"v": a}, {"v": a.replace("3/6", "4/6")}, rel_tol=0.02, abs_tol=0.02)
    assert differences({"v": a}, {"v": a.replace("0.0859", "0.0858")})  # exact by default
