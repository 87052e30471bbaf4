"""Bad input and faults outside the data gates: params mistakes, devices, secrets in messages,
the UI server's shutdown, leftovers of killed writers (see the README's table of bad inputs
and faults; the data-gate cases are in test_validation.py and test_loaders.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from brainlike.config import load_params
from brainlike.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- params -----------------------------------------------------------------------------------------
def test_duplicated_yaml_key_is_refused_naming_key_and_lines(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("patterns:\n  n_atoms: 8\n  seed: 1\n  n_atoms: 16\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: line 4: key 'n_atoms' is given twice .*first at line 2"):
        load_params(p)
    out = subprocess.run([sys.executable, "-m", "brainlike.cli", "--params", str(p), "config"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 1 and "key 'n_atoms' is given twice" in out.stderr and "Traceback" not in out.stderr
    p.write_text("base: &b {n_atoms: 8}\npatterns:\n  <<: *b\n  n_atoms: 16\n")  # a merge key may be overridden
    with pytest.raises(ConfigError, match="unknown|not permitted|base"):  # 'base' is no section, but no duplicate
        load_params(p)


def test_cuda_device_without_cuda_is_a_config_error(tmp_path, monkeypatch):
    import torch

    from brainlike._utils.device import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"p\.yaml: extract\.device = 'cuda' but torch sees no CUDA device"):
        check_device("cuda", "extract.device", "p.yaml")
    check_device("cpu", "extract.device")
    check_device("auto", "patterns.device")
    p = tmp_path / "params.yaml"
    p.write_text("extract:\n  device: cuda\n")
    sys.path.insert(0, str(REPO / "pipelines"))
    try:
        import extract as extract_stage
    finally:
        sys.path.pop(0)
    # the stage entry raises the project's error (run_stage turns it into one line and exit 1)
    with pytest.raises(ConfigError, match=r"extract\.device = 'cuda'"):
        extract_stage.main(["--model", "minilm-l6", "--params", str(p)])

    from brainlike.config import PatternsConfig
    from brainlike.patterns import run_patterns

    with pytest.raises(ConfigError, match=r"patterns\.device = 'cuda'"):
        run_patterns("m", PatternsConfig(device="cuda"), tmp_path, tmp_path)


def test_materialise_all_creates_the_model_cache_when_nothing_needs_building(tmp_path):
    cache = tmp_path / "models"
    p = tmp_path / "params.yaml"
    p.write_text(
        "models:\n  local:\n    generation: g\n    source: path:/nonexistent/model\n"
        f"extract:\n  model_cache: {cache}\n"
    )
    out = subprocess.run([sys.executable, str(REPO / "pipelines/extract.py"), "--materialise-all", "--params", str(p)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env=os.environ | {"PYTHONPATH": str(REPO / "src")})
    assert out.returncode == 0, out.stderr
    # no model folder is built; only the model's manifest (what extract@local depends on)
    assert cache.is_dir() and [q.relative_to(cache).as_posix() for q in cache.rglob("*")] == ["by-model", "by-model/local.json"]


# -- secrets ----------------------------------------------------------------------------------------
def test_redact_hides_userinfo_and_query_string_credentials():
    from brainlike.registry.store import redact

    uri = "postgresql://alice:s3cr3t@db:5432/mlflow?sslmode=require&password=pw1&Token=tk2;secret=sc3#x"
    shown = redact(uri)
    for secret in ("s3cr3t", "pw1", "tk2", "sc3"):
        assert secret not in shown
    assert shown == "postgresql://alice:***@db:5432/mlflow?sslmode=require&password=***&Token=***;secret=***#x"
    text = "could not connect to 'https://h/api?access_token=abc&x=1' (refused)"
    assert redact(text) == "could not connect to 'https://h/api?access_token=***&x=1' (refused)"


def test_unreachable_server_message_hides_a_query_token():
    from brainlike.registry.store import RegistryError, _probe_http

    with pytest.raises(RegistryError) as info:
        _probe_http(f"http://127.0.0.1:{_closed_port()}/?token=tk-123&password=pw-456", 2)
    assert "tk-123" not in str(info.value) and "pw-456" not in str(info.value)
    assert "token=***" in str(info.value)


def test_credentials_in_a_server_uri_are_not_taken_for_its_host():
    """``http://user:password@host``: the health probe reaches the host, the message hides the password."""
    from brainlike.registry.store import RegistryError, _probe_http

    with pytest.raises(RegistryError) as info:
        _probe_http(f"http://bob:pw-789@127.0.0.1:{_closed_port()}", 2)
    msg = str(info.value)
    assert "pw-789" not in msg and "bob:***@127.0.0.1" in msg
    assert "refused" in msg.lower() and "name or service" not in msg.lower()


def test_refused_requests_become_one_line_errors_naming_the_credentials():
    """What an authenticated MLflow server's 401 / 403 become (the server test sees them live)."""
    import requests
    from mlflow.exceptions import MlflowException, RestException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, UNAUTHENTICATED

    from brainlike.registry.store import RegistryError, refusal_error, refusals_as_errors

    uri = "https://mlflow.lab/?token=tk-1"
    doing = "registering m in experiment 'e'"
    anon = refusal_error(MlflowException("401", error_code=UNAUTHENTICATED), uri, doing, env={})
    assert str(anon) == (
        "tracking server https://mlflow.lab/?token=*** asks for credentials (HTTP 401) when registering m in "
        "experiment 'e'; set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment (never "
        "in params.yaml) to an account of that server. Local outputs are untouched.")
    env = {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "pw-2"}
    wrong = refusal_error(MlflowException("401", error_code=UNAUTHENTICATED), uri, doing, env=env)
    assert "did not accept the credentials of user 'bob' (HTTP 401)" in str(wrong) and "pw-2" not in str(wrong)
    denied = refusal_error(RestException({"error_code": "PERMISSION_DENIED", "message": "no"}), uri, doing, env=env)
    assert "denied user 'bob' permission for registering m in experiment 'e' (HTTP 403)" in str(denied)
    assert "grants EDIT on the experiment" in str(denied)
    reading = refusal_error(RestException({"error_code": "PERMISSION_DENIED"}), uri, "reading", need="READ", env=env)
    assert "grants READ on the experiment" in str(reading)
    # an artifact upload refused: requests' HTTPError; the user named in the URI when not in the environment
    resp = requests.Response()
    resp.status_code = 403
    upload = refusal_error(requests.HTTPError("403", response=resp), "http://ann:pw-3@h:5000", doing, env={})
    assert str(upload).startswith("tracking server http://ann:***@h:5000 denied user 'ann'") and "pw-3" not in str(upload)
    # anything else passes through unchanged
    other = MlflowException("gone", error_code=RESOURCE_DOES_NOT_EXIST)
    assert refusal_error(other, uri, doing, env={}) is None
    with pytest.raises(MlflowException, match="gone"), refusals_as_errors(uri, doing):
        raise other
    with pytest.raises(RegistryError, match="HTTP 401"), refusals_as_errors(uri, doing):
        raise MlflowException("401", error_code=UNAUTHENTICATED)


# -- the UI server stops on SIGTERM as on Ctrl-C -----------------------------------------------------
def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_ui_stops_its_server_on_sigterm(tmp_path):
    (tmp_path / "params.yaml").write_text("{}\n")
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from brainlike.registry.ui import ui_main; "
                             f"sys.exit(ui_main(['--params', 'params.yaml', '--port', '{port}']))"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=os.environ | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    try:
        deadline = time.monotonic() + 180
        while not _answers(url):
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "the UI server did not come up"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        time.sleep(0.5)
        assert not _answers(url), "SIGTERM left the MLflow server listening"
    finally:
        if proc.poll() is None:
            proc.kill()


# -- atomic outputs: leftovers of killed writers, two outputs, OS errors ------------------------------
def test_killed_writer_leaves_its_temporary_beside_the_output_and_the_next_start_removes_it(tmp_path):
    out = tmp_path / "data" / "patterns" / "m"
    code = ("import sys, time; from brainlike._utils.atomic import atomic_path\n"
            f"with atomic_path({str(out)!r}) as tmp:\n"
            "    tmp.mkdir(); (tmp / 'codes.npz').write_bytes(b''); print('ready', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (left,) = list(out.parent.glob(".m.*.tmp"))  # beside the output, never inside it
    assert (left / "m" / "codes.npz").exists() and not out.exists()
    # a live writer's temporary of the same output, and another output's leftover, stay
    live = subprocess.Popen([sys.executable, "-c", code.replace(str(out), str(out))], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "ready"
        other = out.parent / ".m-random.1@nohost.abcd.tmp"
        other.mkdir()
        from brainlike._utils.atomic import atomic_path

        with atomic_path(out) as tmp:
            tmp.mkdir()
            (tmp / "codes.npz").write_bytes(b"x")
        assert not left.exists()  # the killed writer's leftover is gone
        assert len(list(out.parent.glob(".m.*.tmp"))) == 1 and other.exists()
        assert (out / "codes.npz").read_bytes() == b"x"
    finally:
        live.kill()
        live.wait()


def test_two_outputs_are_published_together_or_not_at_all(tmp_path):
    from brainlike._utils.atomic import atomic_paths
    from brainlike.errors import OutputError

    data, metrics = tmp_path / "data" / "m", tmp_path / "metrics" / "m.json"
    data.mkdir(parents=True)
    (data / "old.txt").write_text("old")
    metrics.parent.write_text("a file where the metrics folder should be")  # unwritable, even for root
    with pytest.raises(OutputError, match=r"metrics/m\.json: cannot write: "):
        with atomic_paths(data, metrics) as (d, m):
            d.mkdir()
            (d / "new.txt").write_text("new")
            m.write_text("{}")
    assert (data / "old.txt").read_text() == "old" and not (data / "new.txt").exists()  # data untouched
    assert not list(tmp_path.rglob(".*.tmp"))
    # writable again: both are published, data first, then its metrics
    metrics.parent.unlink()
    with atomic_paths(data, metrics) as (d, m):
        d.mkdir()
        (d / "new.txt").write_text("new")
        m.write_text("{}")
    assert (data / "new.txt").exists() and metrics.read_text() == "{}"
    assert metrics.stat().st_mtime_ns >= (data / "new.txt").stat().st_mtime_ns


def test_os_error_while_writing_is_one_line_naming_the_output(tmp_path):
    import errno

    from brainlike._utils.atomic import atomic_path
    from brainlike.errors import OutputError

    with pytest.raises(OutputError) as info:
        with atomic_path(tmp_path / "x.json") as tmp:
            tmp.write_text("{")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert str(info.value).startswith(f"{tmp_path / 'x.json'}: cannot write: No space left on device")
    assert "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())  # no temporary, no half-written file
    p = tmp_path / "stage.py"
    p.write_text("from brainlike.cli import run_stage\nfrom brainlike._utils.atomic import write_text_atomic\n"
                 "def main():\n    raise OSError(28, 'No space left on device')\n"
                 "def stage():\n    from brainlike._utils.atomic import atomic_path\n"
                 f"    with atomic_path({str(tmp_path / 'out')!r}) as t:\n        main()\n"
                 "run_stage(stage)\n")
    out = subprocess.run([sys.executable, str(p)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"error: {tmp_path / 'out'}: cannot write: No space left on device (nothing was replaced)"
