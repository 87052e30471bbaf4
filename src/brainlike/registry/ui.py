"""``brainlike ui``: the MLflow UI on 127.0.0.1 against the project's store; and a managed server
for checks (:func:`mlflow_server`) that is always stopped by its process-group id.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from .store import RegistryError, Store

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def server_command(store: Store, port: int, host: str = HOST, workers: int = 1) -> list[str]:
    """``mlflow server`` argv for a store (artifacts served from its artifact root)."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store.uri,
           "--host", host, "--port", str(port), "--workers", str(workers)]
    if store.artifact_root is not None:
        cmd += ["--default-artifact-root", Path(store.artifact_root).resolve().as_uri(),
                "--artifacts-destination", Path(store.artifact_root).resolve().as_uri()]
    return cmd


def _env() -> dict[str, str]:
    return os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


def stop_process_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group started for ``proc`` (server + workers), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


@contextlib.contextmanager
def mlflow_server(store: Store, port: int | None = None, log: str | Path | None = None,
                  start_timeout: float = 90) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run ``mlflow server`` in its own process group; yield ``(url, process)``; always stop it.

    Raises
    ------
    RegistryError
        The server exited or did not answer ``/health`` within ``start_timeout`` seconds
        (the message holds the end of its log).
    """
    port = port or free_port()
    url = f"http://{HOST}:{port}"
    log_path = Path(log) if log else Path(os.devnull)
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(server_command(store, port), stdout=fh, stderr=subprocess.STDOUT,
                                env=_env(), start_new_session=True)
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if proc.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:] if log else ""
                    raise RegistryError(f"mlflow server on {url} exited with code {proc.returncode}:\n{tail}")
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RegistryError(f"mlflow server on {url} did not answer /health in {start_timeout:.0f} s")
                time.sleep(0.3)
            yield url, proc
        finally:
            stop_process_group(proc)


def ui_main(argv: Sequence[str] | None = None) -> int:
    """``brainlike ui [--port N] [--params P]``: serve the registry UI until Ctrl-C or SIGTERM.

    Either stops the server's whole process group (its workers included) before returning 0.
    """
    from ..config import load_params
    from .stage import registry_config, repo_root_of
    from .store import check_store, resolve_store

    ap = argparse.ArgumentParser(prog="brainlike ui", description="MLflow UI on 127.0.0.1 for the project's registry")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--port", type=int, default=None, help="port (default: registry.ui_port)")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    cfg = registry_config(params)
    store = resolve_store(cfg.tracking_uri, cfg.artifact_location, repo_root_of(args.params))
    if not store.is_database:
        raise RegistryError(f"tracking URI {store.display_uri} is a server already: open it in a browser")
    check_store(store, cfg.upgrade_schema, cfg.timeout_s)
    port = args.port or cfg.ui_port
    print(f"MLflow UI for {store.display_uri} on http://{HOST}:{port}  (Ctrl-C or SIGTERM stops it)", flush=True)
    # the server runs in its own session (so Ctrl-C reaches only us and we stop it by group id):
    # SIGTERM and SIGHUP must therefore stop it too, as Ctrl-C does
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    proc = subprocess.Popen(server_command(store, port), env=_env(), start_new_session=True)
    try:
        return proc.wait()
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        stop_process_group(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stop(Exception):
    """SIGTERM / SIGHUP received by ``brainlike ui``."""


def _raise_stop(signum, frame) -> None:
    raise _Stop(signal.Signals(signum).name)
