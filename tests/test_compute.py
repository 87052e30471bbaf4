"""Fan-out (``compute:``): serial, forked worker processes and a real Dask LocalCluster give the
same results.

No mocks: real ``dask.distributed`` clusters of worker processes, a worker really killed
mid-task, and the real stages encode -> networks -> metrics on the small study of
``test_stages`` (fsaverage5 + ROI subjects, real atlases).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from brainlike._utils.compute import ENV_SCHEDULER, ENV_WORKERS, effective_scheduler, open_executor
from brainlike.config import ComputeConfig
from brainlike.encoding.stage import run_baseline, run_encode
from brainlike.errors import BrainlikeError, ConfigError, DataError
from brainlike.metrics.stage import run_metrics
from brainlike.networks.stage import run_networks

from compute_tasks import bad_input, die_once, slow_identity, solve
from test_stages import one_thread, study  # noqa: F401  (module fixtures, reused)

ROOT = Path(__file__).resolve().parents[1]
LOCAL2 = ComputeConfig(scheduler="local", n_workers=2, threads_per_worker=1, memory_limit="3GiB", retries=2)
PROCESSES2 = ComputeConfig(scheduler="processes", n_workers=2)
SERIAL = ComputeConfig(scheduler="serial")


@pytest.fixture(scope="module")
def local2():
    with open_executor(LOCAL2) as ex:
        yield ex


# --- the executor ----------------------------------------------------------------------------
def test_serial_and_local_identical_in_order(local2):
    assert local2.n_workers == 2 and not local2.in_process
    with open_executor(SERIAL) as serial:
        assert serial.in_process
        want = serial.map(solve, range(12))
    got = local2.map(solve, range(12), key_prefix="solve")
    assert len(got) == 12
    for w, g in zip(want, got):
        np.testing.assert_array_equal(w, g)
    assert local2.map(slow_identity, range(5)) == [0, 1, 2, 3, 4]
    shared = local2.share(np.arange(4))
    assert local2.map(np.multiply, [1, 2], shared=shared)[1].tolist() == [0, 2, 4, 6]


def test_task_errors_come_back_unchanged(local2):
    with pytest.raises(DataError) as err:
        local2.map(bad_input, range(4))
    assert err.value.path == "/data/item-2.npz" and err.value.field == "values"
    assert "expected 3 columns" in str(err.value)


def test_serial_and_processes_never_import_dask():
    code = ("import sys; from brainlike._utils.compute import open_executor\n"
            "with open_executor(None) as ex: assert ex.map(abs, [-1, 2]) == [1, 2]\n"
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'dask imported'\n")
    for scheduler in ("serial", "processes"):
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, ENV_SCHEDULER: scheduler})


def test_unreachable_address_is_a_config_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"compute\.scheduler.*tcp://127\.0\.0\.1:{port}"):
        with open_executor(ComputeConfig(scheduler=f"tcp://127.0.0.1:{port}"), connect_timeout_s=2):
            pass
    assert time.perf_counter() - t < 30


def test_env_overrides_scheduler(monkeypatch):
    monkeypatch.setenv(ENV_SCHEDULER, "serial")
    assert effective_scheduler(LOCAL2) == "serial"
    with open_executor(LOCAL2) as ex:
        assert ex.in_process
    monkeypatch.setenv(ENV_SCHEDULER, "slurm")
    with pytest.raises(ConfigError, match=ENV_SCHEDULER):
        effective_scheduler(LOCAL2)


def test_env_caps_the_workers(monkeypatch, tmp_path):
    """``brainlike repro`` caps a stage's pool at its share of the cores; the results do not move."""
    marker = tmp_path / "no-kill"
    marker.write_text("0")
    with open_executor(PROCESSES2) as ex:
        want = ex.map(solve, range(6))
    monkeypatch.setenv(ENV_WORKERS, "1")
    with open_executor(PROCESSES2) as ex:
        assert ex.n_workers == 1
        # one forked worker, pinned like two (in this process the tasks would see its threads)
        assert len(pids := {pid for _, pid in ex.map(die_once, [(i, str(marker)) for i in range(4)])}) == 1
        assert os.getpid() not in pids
        for w, g in zip(want, ex.map(solve, range(6)), strict=True):
            np.testing.assert_array_equal(w, g)
    monkeypatch.setenv(ENV_WORKERS, "8")  # a cap, never more workers than configured
    with open_executor(PROCESSES2) as ex:
        assert ex.n_workers == 2
    for bad in ("0", "two"):
        monkeypatch.setenv(ENV_WORKERS, bad)
        with pytest.raises(ConfigError, match=ENV_WORKERS):
            with open_executor(PROCESSES2):
                pass


def test_killed_worker_is_retried(tmp_path):
    """A worker dies mid-task (SIGKILL): Dask reruns the task elsewhere and every result comes back."""
    marker = tmp_path / "killed"
    with open_executor(LOCAL2) as ex:
        got = ex.map(die_once, [(i, str(marker)) for i in range(6)], key_prefix="die")
    assert marker.is_file(), "the fault was never injected"
    assert [g[0] for g in got] == [i * i for i in range(6)]
    assert got[1][1] != int(marker.read_text())  # item 1 finished on another process than the killed one


def test_processes_like_serial(tmp_path):
    """Forked workers: same results in input order, shared values, task errors unchanged."""
    marker = tmp_path / "no-kill"
    marker.write_text("0")  # die_once kills nobody once its marker exists
    with open_executor(PROCESSES2) as ex, open_executor(SERIAL) as serial:
        assert ex.in_process and ex.n_workers == 2 and ex.scheduler == "processes"
        for w, g in zip(serial.map(solve, range(12)), ex.map(solve, range(12)), strict=True):
            np.testing.assert_array_equal(w, g)
        assert ex.map(slow_identity, range(5)) == [0, 1, 2, 3, 4]
        assert ex.map(np.multiply, [1, 2], shared=ex.share(np.arange(4)))[1].tolist() == [0, 2, 4, 6]
        pids = {pid for _, pid in ex.map(die_once, [(i, str(marker)) for i in range(6)])}
        assert os.getpid() not in pids and 1 <= len(pids) <= 2  # ran in forked workers
        assert {pid for _, pid in ex.map(die_once, [(0, str(marker)), (2, str(marker))], fork=False)} == {os.getpid()}
        with pytest.raises(DataError) as err:
            ex.map(bad_input, range(4))
        assert err.value.path == "/data/item-2.npz" and err.value.field == "values"


def test_processes_dead_worker_is_one_clear_error(tmp_path):
    """No retries with forked workers: a worker killed mid-task fails the map with a named error."""
    marker = tmp_path / "killed"
    with open_executor(PROCESSES2) as ex, pytest.raises(BrainlikeError, match=r"'processes'.*die_once.*died"):
        ex.map(die_once, [(i, str(marker)) for i in range(4)])
    assert marker.is_file()


# --- the stages --------------------------------------------------------------------------------
def _stages(p, metrics_dir: Path, compute) -> dict:
    val = Path(p.paths.metrics) / "validation.json"
    for m in ("m", "m-random"):
        run_encode(m, p.encoding, p.patterns.output, p.paths.prepared, val, p.paths.atlases, metrics_dir,
                   compute=compute)
    run_baseline(p.encoding, p.paths.prepared, val, p.paths.atlases, metrics_dir, compute=compute)
    run_networks(["m", "m-random"], p.networks, p.encoding.output, p.paths.atlases, p.networks.output, metrics_dir,
                 compute=compute)
    return run_metrics(p, metrics_dir, compute=compute)


# Ignored: wall seconds measured by the stages (they differ between any two runs), and the
# output folders echoed in encode.json's params (serial and local write to different folders).
TIMING = {"timing", "total_s", "seconds", "spins_s", "output", "baseline_output"}


def _drop_timing(o):
    if isinstance(o, dict):
        return {k: _drop_timing(v) for k, v in o.items() if k not in TIMING}
    if isinstance(o, list):
        return [_drop_timing(v) for v in o]
    return o


def _same_npz(a: Path, b: Path) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files), a
        for k in x.files:
            np.testing.assert_array_equal(x[k], y[k], err_msg=f"{a} [{k}]")


def _same_frame(a: pd.DataFrame, b: pd.DataFrame, what) -> None:
    """Same columns, dtypes and values, floats to the last bit (NaN == NaN)."""
    assert list(a.columns) == list(b.columns) and a.dtypes.equals(b.dtypes), what
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind == "f":
            np.testing.assert_array_equal(x, y, err_msg=f"{what} [{c}]")  # exact, unlike assert_frame_equal
        else:
            assert x.tolist() == y.tolist(), f"{what} [{c}]"


def _redirected(study, d: Path):
    enc = study.encoding.model_copy(update={"output": d / "enc", "baseline_output": d / "base"})
    return study.model_copy(update={"encoding": enc, "networks": study.networks.model_copy(update={"output": d / "net"})})


@pytest.fixture(scope="module")
def serial_run(study, one_thread, tmp_path_factory):  # noqa: F811
    """encode -> networks -> metrics run serially: (params, metrics folder), the reference."""
    d = tmp_path_factory.mktemp("serial")
    p = _redirected(study, d)
    _stages(p, d / "metrics", SERIAL)
    return p, d / "metrics"


@pytest.mark.parametrize("cfg", [LOCAL2, PROCESSES2], ids=["local", "processes"])
def test_stages_equal_serial(cfg, serial_run, study, one_thread, tmp_path, monkeypatch):  # noqa: F811
    """encode -> networks -> metrics on 2 workers (a LocalCluster, forked processes) == serial, bit for bit."""
    # computed here, not taken from the memo the serial run filled (metrics' cells are keyed by
    # the bytes of their inputs, the same in both runs)
    monkeypatch.setenv("BRAINLIKE_MEMO", "0")
    p_serial, ms = serial_run
    p_local, ml = _redirected(study, tmp_path / "l"), tmp_path / "l/metrics"
    with open_executor(cfg) as ex:  # one executor for the three stages, as tools/compute_check.py
        assert ex.n_workers == 2
        _stages(p_local, ml, ex)
    pairs = [(Path(p_serial.encoding.output), Path(p_local.encoding.output)),
             (Path(p_serial.encoding.baseline_output), Path(p_local.encoding.baseline_output)),
             (Path(p_serial.networks.output), Path(p_local.networks.output))]
    n = 0
    for a_root, b_root in pairs:
        files = sorted(f.relative_to(a_root) for f in a_root.rglob("*") if f.is_file())
        assert files == sorted(f.relative_to(b_root) for f in b_root.rglob("*") if f.is_file())
        for rel in files:
            a, b = a_root / rel, b_root / rel
            if rel.suffix == ".npz":
                _same_npz(a, b)
            elif rel.suffix == ".parquet":
                _same_frame(pd.read_parquet(a), pd.read_parquet(b), rel)
            else:
                assert _drop_timing(json.loads(a.read_text())) == _drop_timing(json.loads(b.read_text())), rel
            n += 1
    # organization.json has no timing field: the files must be identical, byte for byte
    for f in ("organization.json", "recovery.json", "alice.json"):
        assert (ms / f).read_text() == (ml / f).read_text(), f
    assert json.loads((ms / "organization.json").read_text())["models"]["m"]["n_linked_atoms"] >= 2
    _same_frame(pd.read_parquet(ms / "organization.parquet"), pd.read_parquet(ml / "organization.parquet"), "organization")
    for rel in ("networks/m.json", "networks/m-random.json", "encode/m.json", "encode/m-random.json",
                "encode_baseline.json"):
        assert _drop_timing(json.loads((ms / rel).read_text())) == _drop_timing(json.loads((ml / rel).read_text())), rel
    assert n >= 20  # group and subject maps of both models and the baseline, links, thresholded maps
