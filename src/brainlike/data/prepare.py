"""Assemble every run a study uses into the prepared store (the `prepare` stage's library side)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .._utils.atomic import write_text_atomic
from ..config import Params
from .run import Run
from .store import write_store


def embedded_runs(params: Params) -> tuple[list[Run], dict, pd.DataFrame]:
    """The semi-synthetic default: runs, ground truth and the planted feature time courses."""
    from .atlases import load_atlas
    from .embedded import embedded_features, make_embedded

    cfg = params.embedded
    atlases = {name: load_atlas(name, params.paths.atlases) for name in {p.atlas for p in cfg.planted}}
    masks = {(p.atlas, p.network): atlases[p.atlas].mask(p.network) for p in cfg.planted}
    runs, truth = make_embedded(cfg, masks)
    return runs, truth, embedded_features(cfg)


def prepare_all(params: Params) -> dict:
    """Load every configured run and write ``paths.prepared`` atomically.

    Everything is loaded and checked before anything is written, so a bad input leaves the
    previous store untouched. Returns a summary (also written to ``metrics/prepare.json``).
    """
    from .loaders import load_dataset

    runs: list[Run] = []
    sidecars: dict[str, object] = {}
    datasets: dict[str, dict] = {}
    if params.embedded.enabled:
        emb, truth, features = embedded_runs(params)
        runs += emb
        sidecars["embedded/ground_truth.json"] = json.dumps(truth, indent=2, default=str) + "\n"
        sidecars["embedded/features.parquet"] = features
        datasets["embedded"] = {"kind": "embedded", "semi_synthetic": True, "n_runs": len(emb)}
    for ds in params.datasets:
        loaded = load_dataset(ds)
        runs += loaded
        datasets[ds.name] = {"kind": ds.kind, "path": str(ds.path), "n_runs": len(loaded)}
    entries = write_store(runs, params.paths.prepared, extra={"datasets": datasets}, sidecars=sidecars)
    root = Path(params.paths.prepared)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    summary = {
        "n_runs": len(entries),
        "datasets": datasets,
        "prepared_bytes": size,
        "runs": {e["run_id"]: {"n_trs": e["n_trs"], "n_targets": e["n_targets"], "tr": e["tr"]} for e in entries},
    }
    write_text_atomic(Path(params.paths.metrics) / "prepare.json", json.dumps(summary, indent=2) + "\n")
    return summary
