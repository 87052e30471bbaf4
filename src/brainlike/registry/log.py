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
"""

from __future__ import annotations

import math
import re
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
from .store import RegistryError, Store

TAG_LEVEL = "brainlike.level"
TAG_MODEL = "brainlike.model"
TAG_HASH = "brainlike.provenance_hash"
TAG_PRED = "brainlike.predecessor_run_id"
TAG_SUPERSEDED = "brainlike.superseded_by"
TAG_LAST = "brainlike.last_registered"
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
    if exp is not None:
        if exp.lifecycle_stage != "active":
            raise RegistryError(
                f"experiment {name!r} in {client.tracking_uri} is deleted; restore it "
                f"(`mlflow experiments restore --experiment-id {exp.experiment_id}`) or choose another "
                "registry.experiment_name"
            )
        return exp.experiment_id
    location = None
    if artifact_root is not None:
        Path(artifact_root).mkdir(parents=True, exist_ok=True)
        location = (Path(artifact_root).resolve() / re.sub(r"[^A-Za-z0-9_.-]", "_", name)).as_uri()
    # the UI opens classic (non-GenAI) experiments on the runs table
    tags = {"mlflow.experimentKind": "custom_model_development"} | ({"brainlike.dataset": dataset} if dataset else {})
    return client.create_experiment(name, artifact_location=location, tags=tags)


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


def log_model_fit(client_or_uri, experiment: str, record: ModelRecord,
                  subjects: Sequence[SubjectFitRecord] = (), provenance: Provenance | None = None,
                  artifact_root: Path | None = None) -> LoggedFit:
    """Register one model's fit and its subject fits; idempotent (see module docstring).

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

    Returns
    -------
    LoggedFit
    """
    if isinstance(client_or_uri, Store) and artifact_root is None:
        artifact_root = client_or_uri.artifact_root
    client = as_client(client_or_uri)
    names = [s.subject for s in subjects]
    if len(set(names)) != len(names):
        raise RegistryError(f"{record.model}: subject labels repeat: {names}")
    exp_id = ensure_experiment(client, experiment, artifact_root, record.dataset)
    phash = provenance_hash(record, subjects)
    metrics = metric_items(record.metrics)
    sub_metrics = {s.subject: metric_items(s.metrics) for s in subjects}

    existing = find_parent_runs(client, exp_id, record.model, phash)
    if existing:
        run = existing[0]
        updated = _update_metrics(client, run, metrics)
        kids = {r.data.tags.get("brainlike.subject"): r for r in child_runs(client, exp_id, run.info.run_id)}
        for s in subjects:
            if s.subject in kids:
                updated |= _update_metrics(client, kids[s.subject], sub_metrics[s.subject])
        extra = provenance.tags() if provenance else {}
        commit_tags = {k: v for k, v in extra.items() if k in ("brainlike.git_commit", "brainlike.git_dirty")}
        client.set_tag(run.info.run_id, TAG_LAST, _now_tag())
        for k, v in commit_tags.items():  # the code that last confirmed this fit
            client.set_tag(run.info.run_id, k.replace("brainlike.", "brainlike.last_"), v)
        return LoggedFit(run.info.run_id, {k: r.info.run_id for k, r in kids.items() if k},
                         "updated" if updated else "unchanged",
                         run.data.tags.get(TAG_PRED), phash)

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
    parent = client.create_run(exp_id, run_name=record.model, tags={TAG_LEVEL: "model", TAG_MODEL: record.model})
    pid = parent.info.run_id
    out = LoggedFit(pid, {}, "created", pred, phash)
    try:
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
        client.set_terminated(pid, "FINISHED")
    except BaseException:
        # a half-written fit is never reused: only FINISHED parents count as existing
        for rid in [pid, *out.subject_run_ids.values()]:
            try:
                client.set_terminated(rid, "FAILED")
            except Exception:  # noqa: BLE001 - the original error matters more
                pass
        raise
    if pred:
        client.set_tag(pred, TAG_SUPERSEDED, pid)
    return out
