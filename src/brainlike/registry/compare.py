"""Compare models across generations from the registry: ``brainlike compare``.

Reads the most recently registered FINISHED parent run of each model in the dataset's
experiment and builds one row per model, ordered by generation order, then generation label,
trained before random, then name. Writes ``<compare>.json`` and ``<compare>.csv`` (the DVC
plots read the CSV) and ``<compare>_long.csv`` (one row per model and metric, for the
metrics-vs-generation plot).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from .._utils.atomic import atomic_path
from .log import find_parent_runs
from .records import COMPARE_METRICS
from .store import RegistryError, redact, refusals_as_errors

ID_COLUMNS = ("model", "generation", "generation_order", "size", "trained", "run_id")


def compare_table(client, experiment: str, models: Sequence[str] | None = None,
                  metrics: Sequence[str] = COMPARE_METRICS) -> pd.DataFrame:
    """One row per model: identity columns, then ``metrics`` (NaN where a run lacks one).

    Parameters
    ----------
    client : MlflowClient
    experiment : str
    models : sequence of str, optional
        Models that must be present (e.g. params.yaml's list); default: every model registered.

    Raises
    ------
    RegistryError
        The experiment does not exist, holds no model run, or lacks one of ``models``; or the
        server refused the request (no or wrong credentials, no READ permission).
    """
    with refusals_as_errors(client.tracking_uri, f"reading experiment {experiment!r}", need="READ"):
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise RegistryError(
                f"no experiment {experiment!r} in {redact(client.tracking_uri)}; run `dvc repro -f register` "
                "(the stage is up to date for the store it last wrote to)"
            )
        latest: dict[str, object] = {}
        for run in find_parent_runs(client, exp.experiment_id):  # newest registration first
            latest.setdefault(run.data.tags.get("brainlike.model"), run)
    if models is not None:
        missing = [m for m in models if m not in latest]
        if missing:
            raise RegistryError(
                f"model(s) {missing} have no finished run in experiment {experiment!r} at "
                f"{redact(client.tracking_uri)} (registered: {sorted(k for k in latest if k) or 'none'}); "
                "run `dvc repro -f register`"
            )
        latest = {m: latest[m] for m in models}
    if not latest:
        raise RegistryError(f"experiment {experiment!r} in {redact(client.tracking_uri)} holds no model run")
    rows = []
    for name, run in latest.items():
        tags, vals = run.data.tags, run.data.metrics
        row = {
            "model": name,
            "generation": tags.get("brainlike.generation", ""),
            "generation_order": int(tags.get("brainlike.generation_order", 0)),
            "size": tags.get("brainlike.size", ""),
            "trained": tags.get("brainlike.trained") == "true",
            "run_id": run.info.run_id,
        }
        row |= {m: vals.get(m, math.nan) for m in metrics}
        # every compared number with its confidence interval (NaN where the run has none)
        row |= {f"{m}_{b}": vals.get(f"{m}_{b}", math.nan) for m in metrics for b in ("ci_low", "ci_high")}
        rows.append(row)
    df = pd.DataFrame(rows)
    df["_random"] = ~df["trained"]
    df = df.sort_values(["generation_order", "generation", "_random", "model"]).drop(columns="_random")
    return df.reset_index(drop=True)


def long_table(df: pd.DataFrame, metrics: Sequence[str] = COMPARE_METRICS) -> pd.DataFrame:
    """``(model, generation, generation_order, trained, metric, value, ci_low, ci_high)``, NaN values dropped."""
    ids = ["model", "generation", "generation_order", "trained"]
    cols = [m for m in metrics if m in df.columns]
    out = df.melt(id_vars=ids, value_vars=cols, var_name="metric", value_name="value")
    for b in ("ci_low", "ci_high"):
        ci = df.melt(id_vars=ids, value_vars=[f"{m}_{b}" if f"{m}_{b}" in df.columns else m for m in cols],
                     var_name="metric", value_name=b)
        out[b] = ci[b].where(ci["metric"].str.endswith(b)).to_numpy()
    return out.dropna(subset=["value"]).reset_index(drop=True)


def write_compare(df: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.csv`` and ``<stem>_long.csv`` atomically.

    Without ``run_id``: MLflow's run ids are random, and these files are DVC outputs that a
    re-run on another machine must reproduce byte for byte (``metrics/registry.json`` has each
    model's provenance hash, the tag that finds its run).
    """
    df = df.drop(columns=["run_id"], errors="ignore")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    records = json.loads(df.to_json(orient="records"))  # NaN -> null
    outs = []
    path = stem.with_suffix(".json")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"models": records}, indent=2) + "\n")
    outs.append(path)
    for path, frame in ((stem.with_suffix(".csv"), df), (stem.with_name(stem.name + "_long.csv"), long_table(df))):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.6g")
        outs.append(path)
    return outs


def format_table(df: pd.DataFrame) -> str:
    """Plain-text table for the terminal (run ids left out)."""
    show = df.drop(columns=["run_id"], errors="ignore").copy()
    show["trained"] = show["trained"].map({True: "trained", False: "random"})
    return show.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")


def compare_main(argv: Sequence[str] | None = None) -> int:
    """``brainlike compare [--params P] [--dataset D] [--models a,b] [--out STEM]``."""
    from ..config import load_params
    from .stage import experiment_name, open_project_store, registry_config, repo_root_of

    ap = argparse.ArgumentParser(prog="brainlike compare", description="Models ordered by generation, from the registry")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", default=None, help="dataset name (default: the first of the study)")
    ap.add_argument("--models", default=None, help="comma-separated models that must be present (default: params.yaml's)")
    ap.add_argument("--all", action="store_true", help="every registered model, not only params.yaml's")
    ap.add_argument("--out", default=None, help="output stem (default: registry.compare)")
    # `brainlike compare -- --all`: the CLI's REMAINDER keeps a leading "--"
    args = ap.parse_args([a for a in argv if a != "--"] if argv is not None else None)
    params = load_params(args.params)
    root = repo_root_of(args.params)
    dataset = args.dataset or _default_dataset(params)
    _, client = open_project_store(params, root)
    if args.models:
        models = [m for m in args.models.split(",") if m]
    elif args.all:
        models = None
    else:
        from .adapter import model_configs

        models = [m.name for m in model_configs(params)] or None
    df = compare_table(client, experiment_name(params, dataset), models)
    stem = Path(args.out) if args.out else root / registry_config(params).compare
    outs = write_compare(df, stem)
    print(format_table(df))
    print("wrote " + ", ".join(str(p) for p in outs))
    return 0


def _default_dataset(params) -> str:
    if params.embedded.enabled:
        return "embedded"
    if params.datasets:
        return params.datasets[0].name
    raise RegistryError("params.yaml enables no dataset (embedded.enabled is false and datasets is empty)")
