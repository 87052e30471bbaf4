"""Concurrent registrations of one fit: their order, rivals that go first, and dead registrations.

Several processes may register into one store at once (a shared tracking server). Experiment
creation relies on MLflow's unique experiment name (the loser of a creation race reads the
winner's id). Plain MLflow offers no lock, so registering the same fit twice at once is settled
by a deterministic order, :func:`_key` (earliest ``start_time``, then smallest run id): the
parent run carries the provenance hash from its creation; right after creating it and again
before finishing it, a process yields to any FINISHED registration of the same fit and to any
RUNNING one that goes before it, deleting its own runs (tagged ``brainlike.duplicate_of``) and
reusing the other's once it has finished. After finishing, the FINISHED registrations other than
the first in that order are deleted the same way: the store keeps one even when the hosts' clocks
disagree (then, rarely, an earlier caller may have been handed the run a later one deleted). A
RUNNING rival is waited for up to ``wait_s`` (then a :class:`RegistryError` names it).

A killed registration (SIGKILL, power loss) leaves its parent RUNNING. Each parent records the
host and process that created it (tags ``brainlike.host``, ``brainlike.pid``,
``brainlike.pid_start``): a RUNNING rival created on this host whose process is gone (or whose
pid now belongs to another process; "host" is the hostname and the pid namespace) is abandoned
at once -- marked FAILED, tagged
``brainlike.abandoned`` and deleted with its nested runs. A rival from another host cannot be
checked: one older than :data:`STALE_S` is ignored. Once a fit is FINISHED, any FAILED or
abandoned parent with the same provenance hash is deleted too, so exactly one parent per hash
stays.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from .runs import child_runs, find_parent_runs
from .store import RegistryError, redact

TAG_DUPLICATE = "brainlike.duplicate_of"
TAG_HOST = "brainlike.host"
TAG_PID = "brainlike.pid"
TAG_PID_START = "brainlike.pid_start"
TAG_ABANDONED = "brainlike.abandoned"
WAIT_S = 900.0  # longest wait for another process registering the same fit
STALE_S = 6 * 3600.0  # a parent RUNNING for longer was left by a killed process: no rival
POLL_S = 0.5


def _key(run) -> tuple[int, str]:
    """Order among registrations of one fit: earliest start, then smallest run id (deterministic)."""
    return (run.info.start_time or 0, run.info.run_id)


def _discard(client, experiment_id: str, parent_run_ids: Sequence[str], winner: str,
             children: Sequence[str] = ()) -> None:
    """Mark duplicate parent runs and their nested runs ``brainlike.duplicate_of`` and delete them.

    Deleted runs stay in the store (restorable, removed for good by ``mlflow gc``) but no search
    returns them. Another process may be discarding the same runs: its errors are ignored. A
    server that refuses the deletion (an account with EDIT, not MANAGE) leaves the runs tagged
    and active: that is warned once, naming the runs, so the duplicates are not silent.
    """
    import warnings

    from mlflow.exceptions import MlflowException

    ids = list(children)
    for pid in parent_run_ids:
        ids += [r.info.run_id for r in child_runs(client, experiment_id, pid)]
        ids.append(pid)
    refused = []
    for rid in dict.fromkeys(ids):
        try:
            if winner:
                client.set_tag(rid, TAG_DUPLICATE, winner)
            client.delete_run(rid)
        except MlflowException as exc:
            if getattr(exc, "error_code", None) == "PERMISSION_DENIED":
                refused.append(rid)
    if refused:
        warnings.warn(f"the tracking server refused to delete {len(refused)} duplicate or abandoned run(s) "
                      f"({', '.join(refused)}; tagged {TAG_DUPLICATE}/{TAG_ABANDONED}, still listed): deleting "
                      "runs needs MANAGE permission on the experiment", stacklevel=2)


def _keep_one(client, experiment_id: str, finished: Sequence) -> object:
    """The winner among FINISHED registrations of one fit; the others are discarded."""
    winner = min(finished, key=_key)
    losers = [r.info.run_id for r in finished if r.info.run_id != winner.info.run_id]
    if losers:
        _discard(client, experiment_id, losers, winner.info.run_id)
    return winner


def _process_start(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc``); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after "pid (comm)": state is fields[0]
    if fields and fields[0] in ("Z", "X"):
        return "exited"  # a zombie: killed, not yet reaped by its parent
    return fields[19] if len(fields) > 19 else None


def _host_id() -> str:
    """This host as far as pids go: hostname plus the pid namespace (containers may share a
    hostname, but a pid means something only inside its namespace)."""
    try:
        ns = os.readlink("/proc/self/ns/pid").split("[", 1)[-1].rstrip("]")
    except OSError:
        ns = ""
    return f"{socket.gethostname()}/{ns}" if ns else socket.gethostname()


def _owner_tags() -> dict[str, str]:
    """Host and process of this registration, so that a later one can tell if it died."""
    pid = os.getpid()
    return {TAG_HOST: _host_id(), TAG_PID: str(pid), TAG_PID_START: _process_start(pid) or ""}


def _dead_reason(run) -> str | None:
    """Why a RUNNING parent is known to be abandoned, or None (alive, or not checkable here).

    Only a run created on this host can be checked: its process must exist and, where
    ``/proc`` tells, have the start time recorded at creation (a reused pid is another process).
    """
    tags = run.data.tags
    if run.info.status != "RUNNING" or tags.get(TAG_HOST) != _host_id():
        return None
    pid_s = tags.get(TAG_PID, "")
    if not pid_s.isdigit():
        return None
    pid = int(pid_s)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} on {tags[TAG_HOST]} no longer exists"
    except PermissionError:
        pass  # exists, owned by another user
    start, recorded = _process_start(pid), tags.get(TAG_PID_START)
    if start == "exited":
        return f"process {pid} on {tags[TAG_HOST]} has exited"
    if recorded and start is not None and start != recorded:
        return f"pid {pid} on {tags[TAG_HOST]} now belongs to another process"
    return None


def _abandon(client, experiment_id: str, run, reason: str, winner: str | None = None) -> None:
    """Mark a dead registration FAILED (with the nested run it was logging), say why, and delete
    it with its nested runs."""
    from mlflow.exceptions import MlflowException

    rid = run.info.run_id
    try:
        client.set_tag(rid, TAG_ABANDONED, reason)
        client.set_terminated(rid, "FAILED")
        for child in child_runs(client, experiment_id, rid):
            if child.info.status == "RUNNING":
                client.set_terminated(child.info.run_id, "FAILED")
    except MlflowException:
        pass  # another process may be abandoning it too
    _discard(client, experiment_id, [rid], winner or "")


def _rival_ahead(client, experiment_id: str, model: str, phash: str, own) -> str | None:
    """Run id of a registration of the same fit that goes before ``own``, if any.

    A FINISHED one always goes first; otherwise a RUNNING one with a smaller :func:`_key`.
    A RUNNING one whose process is known to be gone is abandoned (see :func:`_dead_reason`);
    one from another host older than :data:`STALE_S` is ignored.
    """
    now_ms = time.time() * 1000
    runs = [r for r in find_parent_runs(client, experiment_id, model, phash, finished_only=False)
            if r.info.run_id != own.info.run_id]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    if finished:
        return min(finished, key=_key).info.run_id
    ahead = []
    for r in runs:
        if r.info.status != "RUNNING" or _key(r) >= _key(own):
            continue
        reason = _dead_reason(r)
        if reason is not None:
            _abandon(client, experiment_id, r, reason)
        elif now_ms - (r.info.start_time or 0) < STALE_S * 1000:
            ahead.append(r)
    return min(ahead, key=_key).info.run_id if ahead else None


def _clear_failed(client, experiment_id: str, model: str, phash: str, winner: str) -> None:
    """Delete FAILED / KILLED parents and dead RUNNING ones of a fit that is now FINISHED."""
    for r in find_parent_runs(client, experiment_id, model, phash, finished_only=False):
        if r.info.run_id == winner or r.info.status == "FINISHED":
            continue
        if r.info.status in ("FAILED", "KILLED"):
            _discard(client, experiment_id, [r.info.run_id], winner)
        elif (reason := _dead_reason(r)) is not None:
            _abandon(client, experiment_id, r, reason, winner)


def _wait_for(client, run_id: str, model: str, deadline: float, wait_s: float) -> None:
    """Return once run ``run_id`` is no longer RUNNING (finished, failed, deleted or found dead)."""
    while True:
        run = client.get_run(run_id)
        if run.info.lifecycle_stage != "active" or run.info.status != "RUNNING":
            return
        reason = _dead_reason(run)
        if reason is not None:
            _abandon(client, run.info.experiment_id, run, reason)
            return
        if time.monotonic() > deadline:
            raise RegistryError(
                f"{model}: run {run_id} in {redact(client.tracking_uri)} has been registering the same fit for "
                f"over {wait_s:.0f} s and is still RUNNING. If the process that started it died, mark it "
                f"failed (MlflowClient().set_terminated({run_id!r}, 'FAILED')) and register again"
            )
        time.sleep(POLL_S)
