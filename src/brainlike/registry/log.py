"""Write model records to MLflow: one experiment per dataset, a parent run per model, nested
runs per subject; idempotent by provenance hash.

Run layout
----------
- experiment ``registry.experiment_name`` with ``{dataset}`` filled (tag ``brainlike.dataset``);
- parent run named after the model, tags ``brainlike.level=model``, ``brainlike.model``,
  ``brainlike.generation``, ``brainlike.generation_order``, ``brainlike.trained``, the provenance
  tags (git commit and dirty flag, DVC md5s, dvc.lock stage hashes, package versions) and
  ``brainlike.provenance_hash``;
- one nested run per subject (``mlflow.parentRunId``), ``brainlike.level=subject``.

Idempotence: a FINISHED parent run of the same experiment with the same provenance hash is
reused: nothing is duplicated, metrics whose value changed are re-logged and
``brainlike.last_registered`` is refreshed (status ``"unchanged"`` or ``"updated"``). A new hash
for a model that already has runs creates a new parent run tagged
``brainlike.predecessor_run_id`` = the model's most recently registered run (which gets
``brainlike.superseded_by``).

Concurrency
-----------
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

import math
import os
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .provenance import Provenance
from .records import (
    ModelRecord,
    SubjectFitRecord,
    clean_key,
    flatten,
    metric_items,
    param_value,
    provenance_hash,
)
from .store import RegistryError, Store, redact, refusals_as_errors

TAG_LEVEL = "brainlike.level"
TAG_MODEL = "brainlike.model"
TAG_HASH = "brainlike.provenance_hash"
TAG_PRED = "brainlike.predecessor_run_id"
TAG_SUPERSEDED = "brainlike.superseded_by"
TAG_LAST = "brainlike.last_registered"
TAG_DUPLICATE = "brainlike.duplicate_of"
TAG_HOST = "brainlike.host"
TAG_PID = "brainlike.pid"
TAG_PID_START = "brainlike.pid_start"
TAG_ABANDONED = "brainlike.abandoned"
WAIT_S = 900.0  # longest wait for another process registering the same fit
STALE_S = 6 * 3600.0  # a parent RUNNING for longer was left by a killed process: no rival
POLL_S = 0.5
PARENT_TAG = "mlflow.parentRunId"


@dataclass
class LoggedFit:
    """What :func:`log_model_fit` did.

    Attributes
    ----------
    parent_run_id : str
    subject_run_ids : dict of str to str
        Subject -> nested run id.
    status : {"created", "unchanged", "updated"}
    predecessor_run_id : str or None
    provenance_hash : str
    """

    parent_run_id: str
    subject_run_ids: dict[str, str] = field(default_factory=dict)
    status: str = "created"
    predecessor_run_id: str | None = None
    provenance_hash: str = ""

    @property
    def run_ids(self) -> list[str]:
        return [self.parent_run_id, *self.subject_run_ids.values()]


def as_client(client_or_uri):
    """An MlflowClient from a client, a :class:`~brainlike.registry.store.Store` or a URI string."""
    from mlflow import MlflowClient

    if isinstance(client_or_uri, MlflowClient):
        return client_or_uri
    if isinstance(client_or_uri, Store):
        return client_or_uri.client()
    return MlflowClient(tracking_uri=str(client_or_uri))


def ensure_experiment(client, name: str, artifact_root: Path | None = None, dataset: str | None = None) -> str:
    """Id of experiment ``name``, created (artifacts under ``artifact_root/<name>``) if absent.

    Raises
    ------
    RegistryError
        The experiment exists but was deleted (MLflow keeps the name reserved).
    """
    exp = client.get_experiment_by_name(name)
    if exp is None:
        exp_id = _create_experiment(client, name, artifact_root, dataset)
        if exp_id is not None:
            return exp_id
        exp = client.get_experiment_by_name(name)  # another process created it first
    if exp.lifecycle_stage != "active":
        raise RegistryError(
            f"experiment {name!r} in {redact(client.tracking_uri)} is deleted; restore it "
            f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) or choose another "
            "registry.experiment_name"
        )
    return exp.experiment_id


def _create_experiment(client, name: str, artifact_root: Path | None, dataset: str | None) -> str | None:
    """Create experiment ``name``; None when another process created it meanwhile."""
    from mlflow.exceptions import MlflowException

    location = None
    if artifact_root is not None:
        Path(artifact_root).mkdir(parents=True, exist_ok=True)
        location = (Path(artifact_root).resolve() / re.sub(r"[^A-Za-z0-9_.-]", "_", name)).as_uri()
    # the UI opens classic (non-GenAI) experiments on the runs table
    tags = {"mlflow.experimentKind": "custom_model_development"} | ({"brainlike.dataset": dataset} if dataset else {})
    try:
        return client.create_experiment(name, artifact_location=location, tags=tags)
    except MlflowException as exc:
        # the name is unique in the store: a concurrent creator wins, this one reads its id
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return None
        raise


def _q(v: str) -> str:
    return "'" + str(v).replace("'", "\\'") + "'"


def find_parent_runs(client, experiment_id: str, model: str | None = None, provenance: str | None = None,
                     finished_only: bool = True) -> list:
    """Parent runs of an experiment (newest registration first), optionally of one model/hash."""
    parts = [f"tags.`{TAG_LEVEL}` = 'model'"]
    if model is not None:
        parts.append(f"tags.`{TAG_MODEL}` = {_q(model)}")
    if provenance is not None:
        parts.append(f"tags.`{TAG_HASH}` = {_q(provenance)}")
    if finished_only:
        parts.append("attributes.status = 'FINISHED'")
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], " and ".join(parts), max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    runs.sort(key=lambda r: (r.data.tags.get(TAG_LAST, ""), r.info.start_time or 0), reverse=True)
    return runs


def child_runs(client, experiment_id: str, parent_run_id: str) -> list:
    return client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = {_q(parent_run_id)}", max_results=1000)


def _now_tag() -> str:
    return f"{time.time():017.6f}"  # fixed width so string order = time order


def _log_all(client, run_id: str, params: dict, metrics: dict[str, float], tags: dict[str, str]) -> None:
    from mlflow.entities import Metric, Param, RunTag

    ts = int(time.time() * 1000)
    p = [Param(clean_key(k), param_value(v)) for k, v in sorted(flatten(params).items())]
    m = [Metric(k, v, ts, 0) for k, v in sorted(metrics.items())]
    t = [RunTag(clean_key(k), str(v)[:8000]) for k, v in sorted(tags.items())]
    for i in range(0, len(p), 100):
        client.log_batch(run_id, params=p[i:i + 100])
    for i in range(0, len(m), 1000):
        client.log_batch(run_id, metrics=m[i:i + 1000])
    for i in range(0, len(t), 100):
        client.log_batch(run_id, tags=t[i:i + 100])


def _log_artifacts(client, run_id: str, artifacts) -> None:
    for a in artifacts:
        path = Path(a.path)
        if path.is_dir():
            client.log_artifacts(run_id, str(path), a.artifact_dir)
        else:
            client.log_artifact(run_id, str(path), a.artifact_dir)


def _update_metrics(client, run, metrics: dict[str, float]) -> bool:
    old = run.data.metrics
    changed = {
        k: v for k, v in metrics.items()
        if k not in old or not (old[k] == v or (math.isnan(old[k]) and math.isnan(v)))
    }
    if changed:
        _log_all(client, run.info.run_id, {}, changed, {})
    return bool(changed)


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


def _reuse(client, experiment_id: str, run, metrics: dict, sub_metrics: dict, subjects,
           provenance: Provenance | None, phash: str) -> LoggedFit:
    """The fit is registered already: refresh changed metrics and the registration time."""
    updated = _update_metrics(client, run, metrics)
    kids = {r.data.tags.get("brainlike.subject"): r for r in child_runs(client, experiment_id, run.info.run_id)}
    for s in subjects:
        if s.subject in kids:
            updated |= _update_metrics(client, kids[s.subject], sub_metrics[s.subject])
    extra = provenance.tags() if provenance else {}
    commit_tags = {k: v for k, v in extra.items() if k in ("brainlike.git_commit", "brainlike.git_dirty")}
    client.set_tag(run.info.run_id, TAG_LAST, _now_tag())
    for k, v in commit_tags.items():  # the code that last confirmed this fit
        client.set_tag(run.info.run_id, k.replace("brainlike.", "brainlike.last_"), v)
    return LoggedFit(run.info.run_id, {k: r.info.run_id for k, r in kids.items() if k},
                     "updated" if updated else "unchanged", run.data.tags.get(TAG_PRED), phash)


def log_model_fit(client_or_uri, experiment: str, record: ModelRecord,
                  subjects: Sequence[SubjectFitRecord] = (), provenance: Provenance | None = None,
                  artifact_root: Path | None = None, wait_s: float = WAIT_S) -> LoggedFit:
    """Register one model's fit and its subject fits; idempotent (see module docstring).

    Safe when several processes register to one store at once (see "Concurrency" in the module
    docstring): the same fit registered twice at once leaves one parent run.

    Parameters
    ----------
    client_or_uri : MlflowClient, Store or str
    experiment : str
        Experiment name (one per dataset).
    record : ModelRecord
    subjects : sequence of SubjectFitRecord
        Subject labels must be distinct.
    provenance : Provenance, optional
        Code and data provenance tags, set on the parent and every nested run.
    artifact_root : Path, optional
        Where a newly created experiment keeps artifacts (SQLite stores); defaults to the
        store's own root when ``client_or_uri`` is a Store.
    wait_s : float
        How long to wait for another process registering the same fit before giving up.

    Returns
    -------
    LoggedFit

    Raises
    ------
    RegistryError
        Repeated subject labels, a deleted experiment, a concurrent registration of the same
        fit still RUNNING after ``wait_s``, or a request the server refused (no or wrong
        credentials, or a user without EDIT permission on the experiment).
    """
    if isinstance(client_or_uri, Store) and artifact_root is None:
        artifact_root = client_or_uri.artifact_root
    client = as_client(client_or_uri)
    names = [s.subject for s in subjects]
    if len(set(names)) != len(names):
        raise RegistryError(f"{record.model}: subject labels repeat: {names}")
    with refusals_as_errors(client.tracking_uri, f"registering {record.model} in experiment {experiment!r}"):
        return _log_fit(client, experiment, record, subjects, provenance, artifact_root, wait_s)


def _log_fit(client, experiment: str, record: ModelRecord, subjects: Sequence[SubjectFitRecord],
             provenance: Provenance | None, artifact_root: Path | None, wait_s: float) -> LoggedFit:
    exp_id = ensure_experiment(client, experiment, artifact_root, record.dataset)
    phash = provenance_hash(record, subjects)
    metrics = metric_items(record.metrics)
    sub_metrics = {s.subject: metric_items(s.metrics) for s in subjects}
    deadline = time.monotonic() + wait_s
    while True:
        finished = find_parent_runs(client, exp_id, record.model, phash)
        if finished:
            run = _keep_one(client, exp_id, finished)
            _clear_failed(client, exp_id, record.model, phash, run.info.run_id)
            return _reuse(client, exp_id, run, metrics, sub_metrics, subjects, provenance, phash)
        out = _register(client, exp_id, record, subjects, provenance, phash, metrics, sub_metrics)
        if isinstance(out, LoggedFit):
            return out
        # another process registers the same fit and goes first: wait for it, then look again
        _wait_for(client, out, record.model, deadline, wait_s)


def _register(client, exp_id: str, record: ModelRecord, subjects: Sequence[SubjectFitRecord],
              provenance: Provenance | None, phash: str, metrics: dict, sub_metrics: dict) -> LoggedFit | str:
    """Create the parent and nested runs; the run id of a rival that goes first if this one yields."""
    previous = find_parent_runs(client, exp_id, record.model)
    pred = previous[0].info.run_id if previous else None
    prov_tags = provenance.tags() if provenance else {}
    tags = {
        **record.tags,
        **prov_tags,
        TAG_LEVEL: "model",
        TAG_MODEL: record.model,
        "brainlike.dataset": record.dataset,
        "brainlike.generation": record.generation,
        "brainlike.generation_order": str(record.generation_order),
        "brainlike.trained": str(bool(record.trained)).lower(),
        "brainlike.kind": "trained" if record.trained else "random",
        TAG_HASH: phash,
        **({TAG_PRED: pred} if pred else {}),
        **({"brainlike.notes": "; ".join(record.notes)} if record.notes else {}),
    }
    params = {"model": record.model, "generation": record.generation,
              "generation_order": record.generation_order, "trained": record.trained, **record.params}
    # the hash is set at creation: a concurrent registration of the same fit sees this claim at once
    parent = client.create_run(exp_id, run_name=record.model,
                               tags={TAG_LEVEL: "model", TAG_MODEL: record.model, TAG_HASH: phash, **_owner_tags()})
    pid = parent.info.run_id
    out = LoggedFit(pid, {}, "created", pred, phash)
    try:
        rival = _rival_ahead(client, exp_id, record.model, phash, parent)
        if rival is not None:  # yield before uploading anything
            _discard(client, exp_id, [pid], rival)
            return rival
        _log_all(client, pid, params, metrics, tags)
        _log_artifacts(client, pid, record.artifacts)
        for s in subjects:
            child = client.create_run(
                exp_id, run_name=f"{record.model}/sub-{s.subject}",
                tags={PARENT_TAG: pid, TAG_LEVEL: "subject", TAG_MODEL: record.model},
            )
            cid = child.info.run_id
            ctags = {**s.tags, **prov_tags, PARENT_TAG: pid, TAG_LEVEL: "subject", TAG_MODEL: record.model,
                     "brainlike.subject": s.subject, "brainlike.dataset": record.dataset,
                     "brainlike.generation": record.generation,
                     "brainlike.generation_order": str(record.generation_order),
                     "brainlike.trained": str(bool(record.trained)).lower(), TAG_HASH: phash}
            _log_all(client, cid, {"subject": s.subject, **s.params}, sub_metrics[s.subject], ctags)
            _log_artifacts(client, cid, s.artifacts)
            client.set_terminated(cid, "FINISHED")
            out.subject_run_ids[s.subject] = cid
        client.set_tag(pid, TAG_LAST, _now_tag())
        # a rival created after the first check (it saw this run RUNNING and went on only if its
        # key is smaller, or it finished meanwhile): the same rule again, before finishing
        rival = _rival_ahead(client, exp_id, record.model, phash, parent)
        if rival is not None:
            _discard(client, exp_id, [pid], rival, children=list(out.subject_run_ids.values()))
            return rival
        client.set_terminated(pid, "FINISHED")
    except BaseException:
        # a half-written fit is never reused: only FINISHED parents count as existing
        for rid in [pid, *out.subject_run_ids.values()]:
            try:
                client.set_terminated(rid, "FAILED")
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
        raise
    # Clocks of different hosts can disagree, so two registrations may both pass the checks:
    # among FINISHED ones the smallest key stays, whoever looks (the last to finish sees all).
    winner = _keep_one(client, exp_id, find_parent_runs(client, exp_id, record.model, phash))
    if winner.info.run_id != pid:
        return winner.info.run_id
    _clear_failed(client, exp_id, record.model, phash, pid)
    if pred:
        client.set_tag(pred, TAG_SUPERSEDED, pid)
    return out
