"""Stage ``register``: stage outputs -> MLflow runs, summary in ``metrics/registry.json``.

``metrics/registry.json`` is DVC-tracked, so it holds only what the same inputs give on any
machine: the store's URI (a SQLite file inside the clone relative to it), and per model the
provenance hash (the ``brainlike.provenance_hash`` tag that finds the run), the number of
subjects and the notes. MLflow's run ids are random and whether a fit was ``created`` or
``unchanged`` depends on the store's history: they go to the untracked ``build/registry.json``.

The store is checked (reachable, schema current) before anything is read or written, so an
unreachable server fails the DVC stage with one message and leaves every local output as it was;
the summary file is replaced atomically only after every model is logged. The GIfTI/Parquet
files converted for the store live in a scratch folder of the system's temporary directory,
removed at the end (and, after a SIGKILL, by the next registration).
"""

from __future__ import annotations

import json
from pathlib import Path

from .._utils.atomic import scratch_dir, write_text_atomic
from .._utils.reproducible import build_dir, portable_path
from .adapter import SCRATCH_PREFIX, model_configs, records_from_outputs
from .log import log_model_fit
from .provenance import collect_provenance
from .store import open_store


# What metrics/registry.json keeps of each model: the same on every machine for the same inputs.
STABLE_KEYS = ("n_subjects", "provenance_hash", "notes")


def registry_config(params):
    """``params.registry``, or the defaults while params.yaml has no registry section."""
    from ..config import RegistryConfig

    return getattr(params, "registry", None) or RegistryConfig()


def repo_root_of(params_path: str | Path) -> Path:
    """The repository root: the folder holding params.yaml."""
    return Path(params_path).resolve().parent


def experiment_name(params, dataset: str) -> str:
    return registry_config(params).experiment_name.format(dataset=dataset)


def open_project_store(params, repo_root: str | Path):
    """``(store, client)`` for the project's registry (checked; see :func:`store.check_store`)."""
    cfg = registry_config(params)
    return open_store(cfg.tracking_uri, cfg.artifact_location, repo_root, cfg.upgrade_schema, cfg.timeout_s)


def portable_uri(uri: str, root: str | Path) -> str:
    """``uri`` without this machine's path: a SQLite file inside ``root`` as ``sqlite:///<relative>``."""
    prefix = "sqlite:///"
    if uri.startswith(prefix):
        return prefix + portable_path(uri[len(prefix):], root)
    return uri


def register(params, repo_root: str | Path, summary: str | Path | None = None) -> dict:
    """Log every (dataset, model) found on disk; write and return the summary.

    Returns
    -------
    dict
        ``{"tracking_uri", "models": {dataset/model: {parent_run_id, status, predecessor_run_id,
        n_subjects, provenance_hash, notes}}, "counts": {created, unchanged, updated}}``; the
        summary file keeps :data:`STABLE_KEYS` of each model (see the module docstring), the
        whole of it goes to ``build/registry.json``.
    """
    root = Path(repo_root)
    store, client = open_project_store(params, root)  # fail before touching anything
    # only the current models' dvc.lock entries: a removed model's stale ones are no provenance
    prov = collect_provenance(root, [m.name for m in model_configs(params)])
    summary_d: dict = {"tracking_uri": portable_uri(store.display_uri, root), "models": {},
                       "counts": {"created": 0, "unchanged": 0, "updated": 0}}
    # converted artifacts live until they are copied into the store; a killed predecessor's
    # scratch folder is removed when this one is made
    with scratch_dir(SCRATCH_PREFIX) as scratch:
        for record, subjects in records_from_outputs(params, root, scratch):
            fit = log_model_fit(store, experiment_name(params, record.dataset), record, subjects, prov)
            summary_d["models"][f"{record.dataset}/{record.model}"] = {
                "parent_run_id": fit.parent_run_id, "status": fit.status,
                "predecessor_run_id": fit.predecessor_run_id, "n_subjects": len(fit.subject_run_ids),
                "provenance_hash": fit.provenance_hash, "notes": record.notes,
            }
            summary_d["counts"][fit.status] += 1
    path = Path(summary) if summary else root / params.paths.metrics / "registry.json"
    stable = {"tracking_uri": summary_d["tracking_uri"],
              "models": {k: {kk: v[kk] for kk in STABLE_KEYS} for k, v in summary_d["models"].items()}}
    write_text_atomic(path, json.dumps(stable, indent=2) + "\n")
    runs = root / build_dir() / "registry.json"  # an absolute $BRAINLIKE_BUILD stays as it is
    runs.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(runs, json.dumps(summary_d, indent=2) + "\n")
    return summary_d


def register_main(params_path: str | Path = "params.yaml") -> dict:
    """Entry point of ``pipelines/register.py``."""
    from ..config import load_params

    params = load_params(params_path)
    out = register(params, repo_root_of(params_path))
    c = out["counts"]
    print(f"registry {out['tracking_uri']}: {c['created']} created, {c['unchanged']} unchanged, "
          f"{c['updated']} updated")
    return out
