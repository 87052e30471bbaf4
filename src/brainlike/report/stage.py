"""Stage ``report``: stage outputs -> ``reports/index.html`` (see :mod:`brainlike.report.html`).

Reads, per model of params.yaml (each optional; a missing file becomes a note on the page):
``metrics/compare.json`` (the comparison table, from ``brainlike compare``),
``data/encoding/<M>/group/zmaps.npy`` (K, 20484), ``data/networks/links.parquet`` (or
``data/networks/<M>/links.parquet``) and ``data/patterns/<M>/layer_counts.npy`` (K, n_layers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .html import ModelReport, build_report


def _links(root: Path, model: str) -> pd.DataFrame | None:
    for cand in (root / "data/networks" / model / "links.parquet", root / "data/networks/links.parquet"):
        if cand.is_file():
            df = pd.read_parquet(cand)
            return df[df["model"] == model] if "model" in df.columns else df
    return None


def report_from_outputs(params, repo_root: str | Path, out: str | Path | None = None) -> Path:
    from ..registry.stage import registry_config

    root = Path(repo_root)
    cfg = registry_config(params)
    compare_path = root / cfg.compare.with_suffix(".json")
    compare = pd.DataFrame(json.loads(compare_path.read_text())["models"]) if compare_path.is_file() else None
    models = []
    for m in getattr(params, "models", []):
        notes = []
        z = root / "data/encoding" / m.name / "group" / "zmaps.npy"
        lc = root / "data/patterns" / m.name / "layer_counts.npy"
        links = _links(root, m.name)
        for path, what in ((z, "group atom maps"), (lc, "layer counts")):
            if not path.is_file():
                notes.append(f"no {what} ({path.relative_to(root)})")
        if links is None:
            notes.append("no network-link table (data/networks/links.parquet)")
        models.append(ModelReport(m.name, m.generation, m.trained,
                                  zmaps=np.load(z) if z.is_file() else None, links=links,
                                  layer_counts=np.load(lc) if lc.is_file() else None, notes=notes))
    if compare is None:
        notes_all = f"no comparison table ({compare_path.relative_to(root)}): run `brainlike compare`"
        for mr in models:
            mr.notes.append(notes_all)
    return build_report(models, compare, Path(out) if out else root / cfg.report)


def report_main(params_path: str | Path = "params.yaml") -> Path:
    """Entry point of ``pipelines/report.py``."""
    from ..config import load_params

    params = load_params(params_path)
    out = report_from_outputs(params, Path(params_path).resolve().parent)
    print(f"wrote {out}")
    return out
