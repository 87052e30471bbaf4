"""Params sections of the services around the study: the MLflow registry and report, and where work runs."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator

from .base import _Section


# --- registry section: owned by the registry and report layers -------------------------------
class RegistryConfig(_Section):
    """The MLflow registry, the comparison table and the report (stages ``register``, ``report``).

    ``MLFLOW_TRACKING_URI`` in the environment overrides ``tracking_uri``. A relative SQLite path
    (``sqlite:///mlflow.db``) and ``artifact_location`` are relative to the repository root.
    """

    tracking_uri: str = Field(
        "sqlite:///mlflow.db", min_length=3, description="sqlite:///<file>, http(s)://<server> or another MLflow URI"
    )
    artifact_location: Path = Field(
        Path("mlartifacts"), description="Artifact root of experiments created in a SQLite store"
    )
    experiment_name: str = Field(
        "brainlike/{dataset}", pattern=r"\{dataset\}", description="One experiment per dataset; must hold {dataset}"
    )
    upgrade_schema: bool = Field(
        False, description="Migrate a SQLite store written by an older MLflow (else refuse with a message)"
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="Reachability probe of an http(s) tracking server")
    compare: Path = Field(Path("metrics/compare"), description="Comparison table: <compare>.json and .csv")
    report: Path = Field(Path("reports/index.html"), description="Self-contained HTML report")
    ui_port: int = Field(5000, ge=1024, le=65535, description="Default port of `brainlike ui`")


# --- end of registry section -------------------------------------------------------------


# --- compute section (execution only: never changes a result, so no DVC stage tracks it) -----


class ComputeConfig(_Section):
    """Where independent units of work (per model, subject, stimulus, spin test) run.

    ``serial`` runs them one after another in the stage's process; ``processes`` forks one
    worker per core from it for each batch of tasks (the default: both cores of a small
    machine at no start-up cost); ``local`` starts a
    ``dask.distributed.LocalCluster`` sized to the machine; an address (``tcp://host:8786``)
    connects to a running scheduler -- which is how a Slurm (dask-jobqueue) or Kubernetes
    (dask-kubernetes) cluster is used. Results are the same for every choice, so DVC does not
    track this section: switching scheduler re-uses cached stage outputs.
    """

    scheduler: str = Field(
        "processes", description="serial | processes | local | a Dask scheduler address (tcp://host:port, tls://...)"
    )
    n_workers: int | None = Field(None, ge=1, le=4096, description="processes/local: workers (default: one per core)")
    threads_per_worker: int = Field(1, ge=1, le=256, description="processes/local: threads per worker (BLAS too)")
    memory_limit: str = Field("auto", description="local: memory per worker ('auto', '4GiB', ...)")
    retries: int = Field(2, ge=0, le=20, description="Resubmissions of a task whose worker died")

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value: str) -> str:
        v = value.strip()
        if v in ("serial", "processes", "local") or re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$", v):
            return v
        raise ValueError(
            f"compute.scheduler must be 'serial', 'processes', 'local' or a Dask scheduler address such as "
            f"tcp://10.0.0.5:8786, got {value!r}"
        )
