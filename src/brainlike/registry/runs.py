"""The registry's runs in an MLflow store: tag names, client, experiments, parent and nested runs.

What :mod:`~brainlike.registry.log` writes is found again here: parent runs by model and
provenance hash (newest registration first), a parent's nested runs, and the experiment of a
dataset (created on first use, safe against a concurrent creator).
"""

from __future__ import annotations

import re
from pathlib import Path

from .store import RegistryError, Store, redact

TAG_LEVEL = "brainlike.level"
TAG_MODEL = "brainlike.model"
TAG_HASH = "brainlike.provenance_hash"
TAG_PRED = "brainlike.predecessor_run_id"
TAG_SUPERSEDED = "brainlike.superseded_by"
TAG_LAST = "brainlike.last_registered"
PARENT_TAG = "mlflow.parentRunId"


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
