"""The explicit input of the registry: one :class:`ModelRecord` per (dataset, model) and one
:class:`SubjectFitRecord` per subject fit.

Stages never talk to MLflow directly; they (or :func:`brainlike.registry.adapter.records_from_outputs`)
fill these records, and :func:`brainlike.registry.log.log_model_fit` writes them. Metric names the
comparison reads from a model record (:data:`COMPARE_METRICS`): ``diversity``,
``within_fbn_consistency``, ``within_fbn_consistency_marginal`` (the same on the marginal maps'
links), ``balance``, ``compactness``, ``heldout_r_mean``, ``recovery``,
``recovery_semantic_minus_twin`` (trained models: strict semantic recovery minus the twin's).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .provenance import content_hash

COMPARE_METRICS = ("diversity", "within_fbn_consistency", "within_fbn_consistency_marginal", "balance", "compactness",
                   "heldout_r_mean", "recovery", "recovery_semantic_minus_twin")
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
_BAD_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class Artifact:
    """A local file to upload, and the folder inside the run's artifacts where it goes."""

    path: Path
    artifact_dir: str | None = None


@dataclass
class SubjectFitRecord:
    """One subject's encoding fit of one model (a nested MLflow run).

    Attributes
    ----------
    subject : str
        Subject label without ``sub-``.
    params : dict
        What shaped this fit beyond the model's params (run ids, number of TRs, ...).
    metrics : dict of str to float
        E.g. ``heldout_r_mean``, ``heldout_r_top_decile``, ``n_significant_targets``.
    tags : dict of str to str
    artifacts : list of Artifact
    inputs : dict of str to str
        Input name -> content hash (DVC md5 or sha256); part of the provenance hash.
    """

    subject: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)


@dataclass
class ModelRecord:
    """One model's fit on one dataset (a parent MLflow run).

    Attributes
    ----------
    dataset, model : str
        Experiment (via ``registry.experiment_name``) and run name.
    generation : str
    generation_order : int
        Older generations first when comparing.
    trained : bool
        False for the randomly initialised twin.
    params : dict
        Everything that shaped the fit (nested dicts are flattened to ``a.b`` keys).
    metrics : dict of str to float
        Dictionary R^2, organization metrics, subject means, recovery ... (None/NaN are skipped).
    tags : dict of str to str
    artifacts : list of Artifact
    inputs : dict of str to str
        Input name -> content hash (DVC md5 of prepared data, activations, atoms ...).
    notes : list of str
        What the adapter could not find (logged as the ``brainlike.notes`` tag).
    """

    dataset: str
    model: str
    generation: str
    generation_order: int
    trained: bool
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Artifact] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b": value}``; lists stay values."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


def clean_key(key: str) -> str:
    """MLflow keys allow letters, digits, ``_ - . /`` and spaces; anything else becomes ``_``."""
    return _BAD_KEY.sub("_", str(key))[:250]


def param_value(v: Any) -> str:
    """String form of a param value (JSON for lists/None); over-long values keep a hash suffix."""
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    if len(s) > MAX_PARAM_CHARS:
        s = s[: MAX_PARAM_CHARS - 80] + f"...[sha256 {content_hash(s)[:16]}]"
    return s


def metric_items(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Finite-or-NaN floats only; None, strings and booleans-as-labels are dropped."""
    out = {}
    for k, v in flatten(metrics).items():
        if v is None or isinstance(v, str) or isinstance(v, (list, tuple, dict)):
            continue
        f = float(v)
        if math.isinf(f):
            continue
        out[clean_key(k)] = f
    return out


def provenance_hash(record: ModelRecord, subjects: Sequence[SubjectFitRecord]) -> str:
    """Identity of a model fit: dataset, model, params and input hashes of it and its subjects.

    Metrics, tags, artifacts and the git commit are outputs or context, not inputs: the same
    inputs logged twice map to the same run.
    """
    return content_hash({
        "dataset": record.dataset,
        "model": record.model,
        "generation": [record.generation, record.generation_order, record.trained],
        "params": {k: param_value(v) for k, v in flatten(record.params).items()},
        "inputs": record.inputs,
        "subjects": sorted(
            ((s.subject, {k: param_value(v) for k, v in flatten(s.params).items()}, s.inputs) for s in subjects),
            key=lambda t: t[0],
        ),
    })
