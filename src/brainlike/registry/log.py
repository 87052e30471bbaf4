"""Write model records to MLflow: one experiment per dataset, a parent run per model, nested
runs per subject; idempotent by provenance hash.

Run layout
----------
- experiment ``registry.experiment_name`` with ``{dataset}`` filled (tag ``brainlike.dataset``);
- parent run named after the model, tags ``brainlike.level=model``, ``brainlike.model``,
  ``brainlike.generation``, ``brainlike.generation_order``, ``brainlike.size`` (when set),
  ``brainlike.gguf_name`` / ``_finetune`` / ``_size_label`` (a multi-part GGUF's header, when
  the source is one), ``brainlike.trained``, the provenance tags (git commit and dirty flag,
  DVC md5s, dvc.lock stage hashes, package versions) and ``brainlike.provenance_hash``;
- one nested run per subject (``mlflow.parentRunId``), ``brainlike.level=subject``.

Idempotence: a FINISHED parent run of the same experiment with the same provenance hash is
reused: nothing is duplicated, metrics whose value changed are re-logged and
``brainlike.last_registered`` is refreshed (status ``"unchanged"`` or ``"updated"``). A new hash
for a model that already has runs creates a new parent run tagged
``brainlike.predecessor_run_id`` = the model's most recently registered run (which gets
``brainlike.superseded_by``).

Concurrent registrations of one fit, and killed ones, are settled as
:mod:`~brainlike.registry.concurrency` describes; tag names and run searches are in
:mod:`~brainlike.registry.runs`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .concurrency import WAIT_S, _clear_failed, _discard, _keep_one, _owner_tags, _rival_ahead, _wait_for
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
from .runs import (
    PARENT_TAG,
    TAG_HASH,
    TAG_LAST,
    TAG_LEVEL,
    TAG_MODEL,
    TAG_PRED,
    TAG_SUPERSEDED,
    as_client,
    child_runs,
    ensure_experiment,
    find_parent_runs,
)
from .store import RegistryError, Store, refusals_as_errors


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

    Safe when several processes register to one store at once (see
    :mod:`~brainlike.registry.concurrency`): the same fit registered twice at once leaves one
    parent run.

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
