"""Stage ``report``: stage outputs -> ``reports/index.html`` (see :mod:`brainlike.report.html`).

Reads, per model of params.yaml, on its *primary* stimulus (the one ``metrics/organization.json``
reports: the story for text models, the movie for vision-language models; else the first
surface stimulus found). Each file is optional; a missing one becomes a note on the page:

- ``metrics/compare.json``: the comparison table (written just before by ``brainlike compare``);
- ``data/encoding/<M>/<stim>/group.npz``: ``z`` (K, 20484), the group atom maps;
- ``data/networks/links.parquet``: the link table, rows of (model, stimulus);
- ``data/patterns/<M>/<stim>/layer_hist.parquet``: ANs per (atom, tower, layer) -> (K, n_layers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..encoding.outputs import GROUP_FILE
from ..metrics.outputs import ORGANIZATION_FILE
from ..networks.links import read_links
from ..networks.outputs import LINKS_FILE
from ..patterns.outputs import LAYER_HIST_FILE
from ..stimulus import primary_stimulus as stimulus_rule
from .html import ModelReport, build_report

N_FSAVERAGE5 = 20484


def layer_counts(hist: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """``layer_hist.parquet`` rows -> counts of shape (n_atoms, n_layers) and the layer labels.

    Layers of a two-tower model (VLM) are labelled ``<tower>:<layer>``; one tower: the layer index.
    Atoms with no row get zeros (all atoms 0..max present as rows).
    """
    towers = hist["tower"].astype(str) if "tower" in hist else pd.Series("text", index=hist.index)
    multi = towers.nunique() > 1
    col = (towers + ":" + hist["layer"].astype(str)) if multi else hist["layer"].astype(int)
    tab = hist.assign(_col=col).pivot_table(index="atom", columns="_col", values="n_ans", aggfunc="sum", fill_value=0)
    tab = tab.reindex(range(int(hist["atom"].max()) + 1), fill_value=0)
    return tab.to_numpy(dtype=float), [str(c) for c in tab.columns]


def primary_stimulus(root: Path, model: str, organization: dict, encoding_root: Path) -> str | None:
    org = ((organization or {}).get("models") or {}).get(model) or {}
    stims = sorted(p.parent.name for p in (root / encoding_root / model).glob("*/group.npz"))
    if org.get("stimulus") in stims:
        return org["stimulus"]
    return stimulus_rule(stims)


def report_from_outputs(params, repo_root: str | Path, out: str | Path | None = None) -> Path:
    from ..registry.adapter import model_configs
    from ..registry.stage import registry_config

    root = Path(repo_root)
    cfg = registry_config(params)
    compare_path = root / cfg.compare.with_suffix(".json")
    compare = pd.DataFrame(json.loads(compare_path.read_text())["models"]) if compare_path.is_file() else None
    metrics_dir = Path(params.paths.metrics)
    org_path = root / metrics_dir / ORGANIZATION_FILE
    organization = json.loads(org_path.read_text()) if org_path.is_file() else {}
    enc_root, pat_root = Path(params.encoding.output), Path(params.patterns.output)
    net_root = root / params.networks.output
    links_all = read_links(net_root)
    models = []
    for m in model_configs(params):
        notes: list[str] = []
        stim = primary_stimulus(root, m.name, organization, enc_root)
        zmaps = links = counts = None
        if stim is None:
            notes.append(f"no group atom maps ({enc_root.as_posix()}/{m.name}/*/group.npz): model not encoded")
        else:
            notes.append(f"stimulus {stim}")
            with np.load(root / enc_root / m.name / stim / GROUP_FILE, allow_pickle=False) as f:
                z = np.asarray(f["z"])
            if z.shape[-1] == N_FSAVERAGE5:
                zmaps = z
            else:
                notes.append(f"atom maps of {stim} are not on fsaverage5 ({z.shape[-1]} targets): no surface plot")
            lh = root / pat_root / m.name / stim / LAYER_HIST_FILE
            if lh.is_file():
                counts, _ = layer_counts(pd.read_parquet(lh))
            else:
                notes.append(f"no layer histogram ({lh.relative_to(root).as_posix()})")
            if links_all is not None:
                links = links_all[(links_all["model"] == m.name) & (links_all["stimulus"] == stim)]
                if links.empty:
                    links = None
            if links is None:
                notes.append(f"no network links for {stim} in "
                             f"{(net_root / m.name / LINKS_FILE).relative_to(root).as_posix()}")
        models.append(ModelReport(m.name, m.generation, m.trained, zmaps=zmaps, links=links,
                                  layer_counts=counts, notes=notes))
    if compare is None:
        msg = f"no comparison table ({compare_path.relative_to(root)}): run `brainlike compare`"
        for mr in models:
            mr.notes.append(msg)
    return build_report(models, compare, Path(out) if out else root / cfg.report, compute=params.compute)


def report_main(params_path: str | Path = "params.yaml") -> Path:
    """Entry point of ``pipelines/report.py``."""
    from ..config import load_params

    params = load_params(params_path)
    out = report_from_outputs(params, Path(params_path).resolve().parent)
    print(f"wrote {out}")
    return out
