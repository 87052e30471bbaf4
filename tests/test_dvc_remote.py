"""DVC remote round trip on a small real pipeline (git + dvc init + three stages + dvc repro).

The full default pipeline is checked the same way by ``make remote-check`` (CI, after
``make run``); here the logic runs on a pipeline that reproduces in seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from brainlike.checks import outputs as dvo
from brainlike.checks import remote as dr
from brainlike.errors import DataError

ROOT = Path(__file__).resolve().parents[1]

# Three stages: a directory output with a nested folder, a `persist: true` output, a file output
# that depends on both, and `cache: false` metrics that travel with git.
GEN = """\
import json, pathlib, sys
out = pathlib.Path("data/raw")
(out / "sub").mkdir(parents=True, exist_ok=True)
for i in range(3):
    (out / f"part{i}.txt").write_text("x" * (100 * (i + 1)))
(out / "sub" / "atoms.bin").write_bytes(bytes(range(256)) * 8)
pathlib.Path("metrics").mkdir(exist_ok=True)
pathlib.Path("metrics/gen.json").write_text(json.dumps({"files": 4}))
"""
MODEL = """\
import pathlib
p = pathlib.Path("data/model.bin")
if not p.exists():  # persist: built once, kept across re-runs
    p.write_bytes(b"weights" * 100)
"""
SUMMARY = """\
import pathlib
raw = sorted(pathlib.Path("data/raw").rglob("*"))
size = sum(p.stat().st_size for p in raw if p.is_file())
model = pathlib.Path("data/model.bin").stat().st_size
pathlib.Path("data/summary.txt").write_text(f"{size} {model}\\n")
"""


def _dvc_yaml(py: str) -> str:
    return textwrap.dedent(f"""\
        stages:
          gen:
            cmd: {py} gen.py
            deps: [gen.py]
            outs: [data/raw]
            metrics:
              - metrics/gen.json:
                  cache: false
          model:
            cmd: {py} model.py
            deps: [model.py]
            outs:
              - data/model.bin:
                  persist: true
          summary:
            cmd: {py} summary.py
            deps: [summary.py, data/raw, data/model.bin]
            outs: [data/summary.txt]
        """)


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost",
                    "-c", "commit.gpgsign=false", *args], cwd=cwd, check=True,
                   capture_output=True)


def _make_pipeline(ws: Path) -> Path:
    ws.mkdir(parents=True)
    (ws / "gen.py").write_text(GEN)
    (ws / "model.py").write_text(MODEL)
    (ws / "summary.py").write_text(SUMMARY)
    (ws / "dvc.yaml").write_text(_dvc_yaml(sys.executable))
    _git("init", "-q", cwd=ws)
    dvo.run_dvc(["init", "-q"], ws)
    dvo.run_dvc(["repro", "-q"], ws)
    _git("add", "-A", cwd=ws)
    _git("commit", "-q", "-m", "pipeline", cwd=ws)
    return ws


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Iterator[Path]:
    """A reproduced, committed pipeline; tests must leave it clean (copy it to dirty it)."""
    root = tmp_path_factory.mktemp("dvcremote")
    # DVC keeps per-repo state in a site cache (/var/tmp/dvc by default): keep it in tmp.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DVC_SITE_CACHE_DIR", str(root / "site-cache"))
        mp.setenv("DVC_NO_ANALYTICS", "1")
        yield _make_pipeline(root / "ws")


def _snapshot(ws: Path) -> dict[str, bytes]:
    """The workspace's DVC config and lock, to check the check leaves no trace."""
    names = [".dvc/config", ".dvc/config.local", "dvc.lock", ".gitignore", "data/.gitignore"]
    return {n: (ws / n).read_bytes() for n in names if (ws / n).exists()}


def test_round_trip_passes_and_leaves_no_trace(workspace, tmp_path, capsys):
    before = _snapshot(workspace)
    rc = dr.main([str(workspace), "--tmp", str(tmp_path), "--keep",
                  "--compare", "data/raw/sub/*", "--compare", "data/model.bin"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0 and report["verdict"] == "pass", report["problems"]
    assert report["cached_outputs"] == 3
    assert report["persist_outputs"] == ["data/model.bin"]
    assert report["uncached_outputs"] == ["metrics/gen.json"]
    # 6 files (4 in data/raw, model, summary) + the .dir manifest; nothing for the metrics.
    assert report["remote_objects"] == 7 and report["files_pushed"] == 7
    assert report["bytes_pushed"] > report["bytes_pulled"]  # the manifest
    assert report["files_pulled"] == 6
    assert report["bytes_pulled"] == 100 + 200 + 300 + 2048 + 700 + len("2648 700\n")
    assert report["compared"] == {"data/model.bin": "sha256 equal",
                                  "data/raw/sub/atoms.bin": "sha256 equal"}
    assert report["status_after_pull"] == {} and report["would_run"] == []
    assert report["push_s"] > 0 and report["pull_s"] > 0
    # The copy got the cache: false metrics from git, its outputs from its own cache.
    copy = Path(report["workspace_copy"])
    assert json.loads((copy / "metrics/gen.json").read_text()) == {"files": 4}
    assert (copy / "data/summary.txt").read_text() == "2648 700\n"
    assert (copy / ".dvc/cache/files/md5").is_dir()
    assert Path(report["remote"]).parent == copy.parent
    # No trace in the workspace: config, lock and .gitignore files as they were.
    assert _snapshot(workspace) == before
    assert not (workspace / ".dvc/config.local").exists()


def test_remote_missing_objects_name_the_outputs(workspace, tmp_path):
    outputs, _, cache_root = dvo.cached_outputs(workspace)
    assert [(o.path, o.stage, o.isdir, o.nfiles) for o in outputs] == [
        ("data/raw", "gen", True, 4), ("data/model.bin", "model", False, None),
        ("data/summary.txt", "summary", False, None)]
    remote = tmp_path / "remote"
    dr.push_outputs(workspace, remote, tmp_path / "scratch")
    assert dvo.missing_objects(remote, outputs, cache_root) == []
    summary = next(o for o in outputs if o.path == "data/summary.txt")
    raw = next(o for o in outputs if o.path == "data/raw")
    _, atoms = next(e for e in dvo._dir_entries(cache_root, raw) if e[0] == "sub/atoms.bin")
    (remote / summary.object).unlink()
    (remote / atoms).unlink()
    assert dvo.missing_objects(remote, outputs, cache_root) == [
        f"data/raw (stage gen): file sub/atoms.bin -> object {atoms} missing from {remote}",
        f"data/summary.txt (stage summary): object {summary.object} missing from {remote}",
    ]

    copy = dr.fresh_copy(workspace, tmp_path / "copy")
    assert not (copy / "data/raw").exists() and not (copy / ".dvc/cache").exists()
    assert (copy / "metrics/gen.json").is_file() and (copy / "dvc.lock").is_file()
    with pytest.raises(DataError) as err:
        dr.pull_outputs(copy, remote, outputs, cache_root,
                        env={"DVC_SITE_CACHE_DIR": str(tmp_path / "site")})
    msg = str(err.value)
    assert "data/summary.txt" in msg.split("outputs not restored:")[1].split(";")[0]
    assert summary.object in msg and f"file sub/atoms.bin -> object {atoms}" in msg
    assert "failed to pull" in msg  # DVC's own words follow


def test_changed_pulled_file_is_reported(workspace, tmp_path):
    outputs, _, _ = dvo.cached_outputs(workspace)
    copy = tmp_path / "copy"
    shutil.copytree(workspace / "data", copy / "data")
    compared, problems = dvo.compare_outputs(workspace, copy, outputs, ["data/raw/sub/*"])
    assert compared == {"data/raw/sub/atoms.bin": "sha256 equal"} and problems == []
    target = copy / "data/raw/sub/atoms.bin"
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[0] ^= 1  # same size, different content
    target.write_bytes(bytes(data))
    (copy / "data/raw/part0.txt").unlink()
    compared, problems = dvo.compare_outputs(workspace, copy, outputs, ["data/raw/sub/*"])
    assert "part0.txt" in problems[0] and "missing" in problems[0]
    assert compared == {}  # a listing that differs is not hashed file by file
    (copy / "data/raw/part0.txt").write_text("x" * 100)
    compared, problems = dvo.compare_outputs(workspace, copy, outputs, ["data/raw/sub/*"])
    assert compared["data/raw/sub/atoms.bin"].startswith("sha256 ")
    assert compared["data/raw/sub/atoms.bin"] != "sha256 equal"
    assert len(problems) == 1 and "data/raw/sub/atoms.bin" in problems[0]


def test_dirty_workspace_exits_2_with_the_stages(workspace, tmp_path):
    dirty = tmp_path / "dirty"
    shutil.copytree(workspace, dirty, symlinks=True)
    (dirty / "summary.py").write_text(SUMMARY + "# changed\n")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools/dvc_remote_check.py"), str(dirty),
         "--tmp", str(tmp_path)],
        capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"},
    )
    assert proc.returncode == 2, proc.stderr
    assert "not clean (stages: summary)" in proc.stderr
    stages = json.loads(proc.stderr[proc.stderr.index("{"):])
    assert list(stages) == ["summary"]
    assert proc.stdout == ""
    assert not list(tmp_path.glob("brainlike-dvc-remote-*"))  # nothing pushed


def test_checks_entry_dispatches_to_the_named_check(capsys):
    from brainlike.checks.__main__ import main as checks_main

    assert checks_main(["--help"]) == 0
    assert "remote" in capsys.readouterr().out
    assert checks_main(["nope"]) == 2
    assert "usage: python -m brainlike.checks" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ex:  # argparse of the remote check itself
        checks_main(["remote", "--help"])
    assert ex.value.code == 0 and "--compare" in capsys.readouterr().out
