"""``brainlike repro``: DVC's stages side by side, with what ``dvc repro`` would leave behind.

Real git and DVC on small projects: the stages that may run together do (a rendezvous that a
one-at-a-time run could not pass), every output and ``dvc.lock`` entry equals a plain
``dvc repro``'s, a failure stops what depends on it, and new lock entries do not depend on timing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brainlike.cli import main as cli_main
from brainlike.cli.repro import order_lock, plan

ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}

# b and c wait for each other: they finish only if both are running at once (60 s to meet)
_MEET = """
import pathlib, sys, time
me, other = sys.argv[1], sys.argv[2]
pathlib.Path("flags").mkdir(exist_ok=True)
pathlib.Path("flags", me).write_text("up")
t = time.monotonic()
while not pathlib.Path("flags", other).exists():
    if time.monotonic() - t > 60:
        sys.exit(f"{me}: {other} never started beside me")
    time.sleep(0.05)
pathlib.Path("out", me).parent.mkdir(exist_ok=True)
pathlib.Path("out", me).write_text(pathlib.Path("out/a").read_text() + me + "\\n")
"""


def _git(ws: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", *args],
                   cwd=ws, check=True, capture_output=True)


def _dvc(ws: Path, *args: str) -> subprocess.CompletedProcess:
    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run([str(dvc if dvc.exists() else shutil.which("dvc")), *args], cwd=ws,
                          capture_output=True, text=True, env=ENV)


def _project(ws: Path, stages: dict) -> Path:
    ws.mkdir()
    _git(ws, "init", "-q")
    assert _dvc(ws, "init", "-q").returncode == 0
    (ws / "meet.py").write_text(_MEET)
    (ws / "input.txt").write_text("input\n")
    (ws / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    _git(ws, "add", "-A")
    _git(ws, "commit", "-q", "-m", "project")
    return ws


PY = sys.executable
# a -> (b, c) -> d; e on its own. dvc.yaml order differs from the order they can finish in.
STAGES = {
    "e": {"cmd": "mkdir -p out && echo e > out/e", "outs": ["out/e"]},
    "a": {"cmd": "mkdir -p out && cat input.txt > out/a", "deps": ["input.txt"], "outs": ["out/a"]},
    "b": {"cmd": f"{PY} meet.py b c", "deps": ["out/a", "meet.py"], "outs": ["out/b"]},
    "c": {"cmd": f"{PY} meet.py c b", "deps": ["out/a", "meet.py"], "outs": ["out/c"]},
    "d": {"cmd": "cat out/b out/c > out/d", "deps": ["out/b", "out/c"], "outs": ["out/d"]},
}


def _repro(ws: Path, *args: str) -> int:
    cwd = os.getcwd()
    os.chdir(ws)
    try:
        return cli_main(["repro", *args])
    finally:
        os.chdir(cwd)


def _lock_without_cmds(ws: Path) -> dict:
    return yaml.safe_load((ws / "dvc.lock").read_text())


def test_independent_stages_run_together_and_leave_what_dvc_repro_leaves(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    par = _project(tmp_path / "par", STAGES)
    assert _repro(par, "--jobs", "2") == 0
    out = capsys.readouterr().out
    assert (par / "out/d").read_text() == "input\nb\ninput\nc\n"
    # the same project, stage by stage in DVC's own order (b and c would wait forever: let them meet)
    seq = _project(tmp_path / "seq", {**STAGES, **{
        k: {**STAGES[k], "cmd": f"mkdir -p flags && touch flags/{'c' if k == 'b' else 'b'} && " + STAGES[k]["cmd"]}
        for k in ("b", "c")}})
    assert _dvc(seq, "repro").returncode == 0
    lp, ls = _lock_without_cmds(par), _lock_without_cmds(seq)
    assert list(lp["stages"]) == list(ls["stages"]) == ["e", "a", "b", "c", "d"]  # dvc.yaml order here
    for name in lp["stages"]:
        assert lp["stages"][name].get("outs") == ls["stages"][name].get("outs"), name
    assert _dvc(par, "status", "--json").stdout.strip() == "{}"
    assert "--- b" in out and "--- c" in out and "5 stages" in out
    # nothing to do: nothing runs, the lock file is untouched
    before = (par / "dvc.lock").read_bytes()
    assert _repro(par) == 0
    assert "up to date" in capsys.readouterr().out
    assert (par / "dvc.lock").read_bytes() == before


def test_only_what_changed_and_what_follows_it_is_planned(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    ws = _project(tmp_path / "ws", {k: STAGES[k] for k in ("e", "a")} | {
        "f": {"cmd": "cat out/a > out/f", "deps": ["out/a"], "outs": ["out/f"]}})
    assert _repro(ws, "-j", "2") == 0
    (ws / "input.txt").write_text("changed\n")
    p = plan(ws)
    assert p.todo == ["a", "f"] and p.upstream["f"] == {"a"} and p.order == ["e", "a", "f"]
    assert plan(ws, ["a"]).todo == ["a"]
    assert _repro(ws) == 0
    assert (ws / "out/f").read_text() == "changed\n"
    assert plan(ws).todo == []


def test_a_failed_stage_stops_what_depends_on_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    ws = _project(tmp_path / "ws", {
        "a": {"cmd": "echo broken >&2 && exit 3", "deps": ["input.txt"], "outs": ["out/a"]},
        "f": {"cmd": "cat out/a > out/f", "deps": ["out/a"], "outs": ["out/f"]},
        "e": STAGES["e"]})
    rc = _repro(ws, "-j", "2")
    out = capsys.readouterr().out
    assert rc != 0
    assert "stage a failed" in out and "broken" in out
    assert not (ws / "out/f").exists() and not (ws / "out/a").exists()
    lock = yaml.safe_load((ws / "dvc.lock").read_text()) if (ws / "dvc.lock").exists() else None
    assert "f" not in ((lock or {}).get("stages") or {})


def test_new_lock_entries_follow_dvc_yaml_not_the_finishing_order(tmp_path):
    lock = tmp_path / "dvc.lock"
    entry = {"cmd": "x", "outs": [{"path": "o", "md5": "0", "size": 1}]}
    lock.write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "old2": entry, "old1": entry, "new_b": entry, "new_a": entry}}, sort_keys=False))
    order = ["old1", "old2", "new_a", "new_b"]
    assert order_lock(lock, order, before=["old2", "old1"])
    stages = list(yaml.safe_load(lock.read_text())["stages"])
    assert stages == ["old2", "old1", "new_a", "new_b"]  # old entries stay where they were
    before = lock.read_bytes()
    assert not order_lock(lock, order, before=["old2", "old1"])
    assert lock.read_bytes() == before


def test_bad_arguments_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    ws = _project(tmp_path / "ws", {"e": STAGES["e"]})
    with pytest.raises(SystemExit):
        _repro(ws, "--jobs", "0")
    with pytest.raises(SystemExit, match="no such stage: nope"):
        _repro(ws, "nope")


# a stage notes itself in running/ while it runs, and fails if it finds a stage it must not run beside
_MARK = """
import pathlib, sys, time
me, alone = sys.argv[1], sys.argv[2] == "alone"
run = pathlib.Path("running"); run.mkdir(exist_ok=True)
def others():
    return sorted(p.name for p in run.iterdir() if p.name != me)
bad = lambda o: o if alone else [x for x in o if x.startswith("x")]
(run / me).write_text("")
for _ in range(20):  # 1 s, looking
    if bad(others()):
        sys.exit(f"{me} ran beside {bad(others())}")
    time.sleep(0.05)
(run / me).unlink()
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out", me).write_text(me)
"""


def test_stages_side_by_side_share_the_cores(tmp_path, monkeypatch):
    """Each stage's worker pool is capped at its share of the cores: all of them alone, half of
    them beside another stage (two stages forking a worker per core ran slower on 2 cores)."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    monkeypatch.delenv("BRAINLIKE_COMPUTE_WORKERS", raising=False)
    env = f"{PY} -c \"import os; print(os.environ['BRAINLIKE_COMPUTE_WORKERS'])\""
    stages = {"first": {"cmd": f"mkdir -p out && {env} > out/first", "outs": ["out/first"]}}
    stages |= {s: {"cmd": f"{env} > out/{s}", "deps": ["out/first"], "outs": [f"out/{s}"]} for s in ("left", "right")}
    stages["last"] = {"cmd": f"{env} > out/last", "deps": ["out/left", "out/right"], "outs": ["out/last"]}
    ws = _project(tmp_path / "ws", stages)
    assert _repro(ws, "-j", "2") == 0
    cores = os.cpu_count() or 1
    got = {s: int((ws / "out" / s).read_text()) for s in stages}
    assert got == {"first": cores, "left": max(1, cores // 2), "right": max(1, cores // 2), "last": cores}


def test_a_stage_that_uses_every_core_runs_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    stages = {name: {"cmd": f"{PY} mark.py {name} {'alone' if name.startswith('x') else 'shared'}",
                     "deps": ["mark.py"], "outs": [f"out/{name}"]} for name in ("y1", "x1", "y2", "x2", "y3")}
    ws = _project(tmp_path / "ws", stages)
    (ws / "mark.py").write_text(_MARK)
    assert _repro(ws, "-j", "2", "--alone", "x*") == 0
    assert sorted(p.name for p in (ws / "out").iterdir() if p.name != ".gitignore") == [
        "x1", "x2", "y1", "y2", "y3"]


def test_a_stage_whose_inputs_did_not_change_is_not_started(tmp_path, capsys, monkeypatch):
    """g re-runs (its param changed) but writes the same output: h, planned only because it reads
    g's output, is skipped without a process; k reads a rewritten output and runs. The result is
    what a plain `dvc repro` leaves: `dvc status` clean, the same lock entries."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    stages = {
        "g": {"cmd": "mkdir -p out && cat input.txt > out/g", "deps": ["input.txt"], "params": ["g"],
              "outs": ["out/g"]},
        "h": {"cmd": "cat out/g > out/h && date +%s%N >> runs_h", "deps": ["out/g"], "outs": ["out/h"]},
        "j": {"cmd": "mkdir -p out && cat input.txt > out/j", "deps": ["input.txt"], "params": ["j"],
              "outs": ["out/j"]},
        "k": {"cmd": "cat out/j > out/k && date +%s%N >> runs_k", "deps": ["out/j"], "outs": ["out/k"]},
    }
    ws = _project(tmp_path / "ws", stages)
    (ws / "params.yaml").write_text("g: 1\nj: 1\n")
    assert _repro(ws, "-j", "2") == 0
    (ws / "params.yaml").write_text("g: 2\nj: 2\n")
    (ws / "input.txt").write_text("input\n")  # unchanged: g and j re-run for their params only
    p = plan(ws)
    assert p.todo == ["g", "h", "j", "k"] and p.changed == {"g", "j"}
    # j's command now writes something else: its output is rewritten, so k must follow
    lock_before = yaml.safe_load((ws / "dvc.lock").read_text())
    (ws / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        **stages, "j": {**stages["j"], "cmd": "mkdir -p out && cat input.txt input.txt > out/j"}}}, sort_keys=False))
    capsys.readouterr()
    assert _repro(ws, "-j", "2") == 0
    out = capsys.readouterr().out
    assert "--- h: up to date" in out and "--- k (" in out
    assert len((ws / "runs_h").read_text().split()) == 1  # h ran once, in the first repro
    assert len((ws / "runs_k").read_text().split()) == 2
    assert (ws / "out/k").read_text() == "input\ninput\n"
    assert _dvc(ws, "status", "--json").stdout.strip() == "{}"
    lock = yaml.safe_load((ws / "dvc.lock").read_text())["stages"]
    assert lock["h"] == lock_before["stages"]["h"] and lock["g"]["outs"] == lock_before["stages"]["g"]["outs"]
    assert lock["k"]["outs"] != lock_before["stages"]["k"]["outs"]


def test_a_stage_taken_out_of_dvc_yaml_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    """A foreach item removed from params (a model taken out of the study): its output, its
    .gitignore line and its dvc.lock entry go, and the stage reading the whole folder is back to
    the committed lock entry, so `git status` is clean again."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    stages = {
        "make": {"foreach": "${items}", "do": {"cmd": "mkdir -p out && echo ${item} > out/${item}",
                                                "outs": ["out/${item}"]}},
        "gather": {"cmd": "ls out > listing", "deps": ["out"], "outs": ["listing"]},
    }
    ws = _project(tmp_path / "ws", stages)
    assert _dvc(ws, "config", "core.autostage", "true").returncode == 0  # as the project's .dvc/config
    (ws / "params.yaml").write_text("items: [x, y]\n")
    assert _repro(ws, "-j", "2") == 0
    _git(ws, "add", "-A")
    _git(ws, "commit", "-q", "-m", "x and y")
    committed = (ws / "dvc.lock").read_bytes()
    (ws / "params.yaml").write_text("items: [x, y, z]\n")
    assert _repro(ws, "-j", "2") == 0
    assert (ws / "out/z").is_file() and "/z" in (ws / "out/.gitignore").read_text()
    assert (ws / "listing").read_text().split() == ["x", "y", "z"]
    (ws / "params.yaml").write_text("items: [x, y]\n")
    capsys.readouterr()
    assert _repro(ws, "-j", "2") == 0
    assert "make@z is no longer in dvc.yaml" in capsys.readouterr().out
    assert not (ws / "out/z").exists() and (ws / "out/x").is_file()
    assert (ws / "listing").read_text().split() == ["x", "y"]
    assert (ws / "dvc.lock").read_bytes() == committed
    assert _dvc(ws, "status", "--json").stdout.strip() == "{}"
    st = subprocess.run(["git", "status", "--porcelain"], cwd=ws, capture_output=True, text=True, check=True)
    assert st.stdout == ""


def test_a_stage_reading_an_unchanged_file_of_a_rewritten_folder_is_not_started(tmp_path, capsys, monkeypatch):
    """m rewrites its folder (one file of two changes); x reads the file that stayed the same and
    is skipped, y reads the one that changed and runs; DVC agrees (`dvc status` clean)."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    stages = {
        "m": {"cmd": "mkdir -p models && echo a > models/a.json && echo ${n} > models/b.json", "params": ["n"],
              "outs": ["models"]},
        "x": {"cmd": "cat models/a.json > x && date +%s%N >> runs_x", "deps": ["models/a.json"], "outs": ["x"]},
        "y": {"cmd": "cat models/b.json > y && date +%s%N >> runs_y", "deps": ["models/b.json"], "outs": ["y"]},
    }
    ws = _project(tmp_path / "ws", stages)
    (ws / "params.yaml").write_text("n: 1\n")
    assert _repro(ws, "-j", "2") == 0
    (ws / "params.yaml").write_text("n: 2\n")
    assert plan(ws).todo == ["m", "x", "y"]
    capsys.readouterr()
    assert _repro(ws, "-j", "2") == 0
    out = capsys.readouterr().out
    assert "--- x: up to date" in out and "--- y (" in out
    assert len((ws / "runs_x").read_text().split()) == 1 and len((ws / "runs_y").read_text().split()) == 2
    assert (ws / "y").read_text() == "2\n"
    assert _dvc(ws, "status", "--json").stdout.strip() == "{}"
