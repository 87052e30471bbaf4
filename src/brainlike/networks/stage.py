"""Stage ``networks``: every model's group atom maps -> links to functional brain networks.

One stage for all models, so the spin-test rotations (``n_spins`` nearest-neighbour
permutations of the fsaverage5 sphere, ~11 s for 1,000) are built once and reused for every
model and atom. Only fsaverage5 stimuli are matched (ROI data have no maps to threshold).
Each (model, stimulus) is an independent task (:func:`match_task`) run where ``compute`` says;
on Dask the rotations are built here and sent once to every worker (``scatter``), and the
workers read the encoding folders themselves. Tables and maps come back here to be written.

Reads ``<encoding.output>/<model>/<stimulus>/group.npz`` (group z, valid vertices) and
``sub-*.npz`` (subject z), and the same for the benchmark's bounds
(``<encoding.bounds_output>/{oracle,null}/<stimulus>/``, linked exactly like a model); writes,
atomically, ``<output>/``::

    links.parquet                      model, stimulus, atom, sign, atlas, network, dice, p,
                                       linked, map_vertices (one row per atom x sign x network)
    <model>/<stimulus>/maps.npz        group (K, 2, V) bool thresholded group maps (sign axis
                                       0 '+', 1 '-'); subjects (S, K, 2, V) bool, the subject
                                       z-maps thresholded the same way; subject_ids; valid (V,)
    bounds/links.parquet               the same table for the bounds (model: oracle | null)
    networks.json                      per model and stimulus: links, linked atoms; ``bounds``: the same

and ``<metrics>/networks.json`` (the same summary).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.atomic import atomic_paths
from .._utils.compute import executor_for
from .._utils.reproducible import write_timings
from ..errors import DataError
from .match import LINK_COLUMNS, match_from_config, network_set
from ..encoding.outputs import GROUP_FILE, SUBJECT_GLOB, SUBJECT_PREFIX
from .outputs import BOUNDS_DIR, LINKS_FILE, MAPS_FILE, SUMMARY_FILE
from .spin import spin_permutations
from .threshold import threshold_maps



def surface_stimuli(encoding_root: str | Path, model: str, n_vertices: int) -> list[Path]:
    """The model's encoding folders whose maps cover ``n_vertices`` (fsaverage5) targets."""
    out = []
    for g in sorted((Path(encoding_root) / model).glob(f"*/{GROUP_FILE}")):
        with np.load(g) as f:
            if f["z"].shape[-1] == n_vertices:
                out.append(g.parent)
    return out


def read_subject_z(folder: Path) -> tuple[list[str], np.ndarray]:
    """Subject ids and z-maps (S, K, V) float32 of one encoding folder."""
    files = sorted(folder.glob(SUBJECT_GLOB))
    if not files:
        raise DataError(folder, "no subject maps (sub-*.npz); re-run `dvc repro encode`")
    ids, zs = [], []
    for f in files:
        with np.load(f) as d:
            zs.append(d["z"])
        ids.append(f.stem.removeprefix(SUBJECT_PREFIX))
    return ids, np.stack(zs)


def match_model_stimulus(folder: Path, model: str, nets, perms, cfg) -> tuple[pd.DataFrame, dict]:
    """Links and thresholded maps of one (model, stimulus) encoding folder.

    Returns
    -------
    table : DataFrame (``LINK_COLUMNS`` plus ``stimulus``)
    maps : dict with ``group`` (K, 2, V) bool, ``subjects`` (S, K, 2, V) bool, ``subject_ids``, ``valid``
    """
    with np.load(folder / GROUP_FILE) as g:
        z = g["z"].astype(np.float64)
        valid = g["valid"].astype(bool)
    table, group_maps = match_from_config(z, nets, perms, cfg, model=model, valid=valid)
    table.insert(1, "stimulus", folder.name)
    ids, sz = read_subject_z(folder)
    ok = nets.cortex & valid
    subj = threshold_maps(sz.astype(np.float64), method=cfg.threshold, fdr_alpha=cfg.fdr_alpha,
                          top_fraction=cfg.top_fraction, valid=ok)
    return table, {"group": group_maps, "subjects": subj, "subject_ids": np.array(ids), "valid": valid}


def match_task(job: tuple[str, str, object], shared: tuple) -> tuple[pd.DataFrame, dict, float]:
    """:func:`match_model_stimulus` of ``job`` = (folder, model, NetworksConfig) as a task.

    ``shared`` = (NetworkSet, spin permutations), the same for every task. Returns the table,
    the maps and the task's seconds.
    """
    t = time.perf_counter()
    folder, model, cfg = job
    nets, perms = shared
    table, maps = match_model_stimulus(Path(folder), model, nets, perms, cfg)
    return table, maps, time.perf_counter() - t


def run_networks(
    models: list[str],
    cfg,
    encoding_root: str | Path,
    atlases_root: str | Path,
    output: str | Path,
    metrics_dir: str | Path,
    compute=None,
    bounds_root: str | Path | None = None,
) -> dict:
    """Stage ``networks`` for ``models`` (and the bounds under ``bounds_root``); returns the summary.

    Parameters
    ----------
    models : model names (``models:`` keys)
    cfg : NetworksConfig
    encoding_root : ``encoding.output``
    atlases_root : ``paths.atlases``
    output : the stage's output folder (``networks.output``)
    metrics_dir : ``paths.metrics``
    compute : ComputeConfig or Executor, optional
        Where the (model, stimulus) matches run (default: ``ComputeConfig()``, forked worker processes).
    bounds_root : ``encoding.bounds_output``, optional
        Its ``oracle`` and ``null`` folders are linked as two more models, into ``bounds/``.
    """
    t0 = time.perf_counter()
    nets = network_set(cfg.atlases, atlases_root)
    n_v = nets.masks.shape[1]
    todo = [(m, f, False) for m in models for f in surface_stimuli(encoding_root, m, n_v)]
    if bounds_root is not None and Path(bounds_root).is_dir():
        todo += [(b, f, True) for b in sorted(p.name for p in Path(bounds_root).iterdir() if p.is_dir())
                 for f in surface_stimuli(bounds_root, b, n_v)]
    summary: dict = {"models": {}, "n_spins": cfg.n_spins}
    tables, bound_tables = [], []
    t = time.perf_counter()
    perms = spin_permutations(cfg.n_spins, cfg.seed, valid=nets.cortex) if todo else None
    timings: dict = {"spins_s": round(time.perf_counter() - t, 2), "models": {}}  # build/timings, not DVC
    with executor_for(compute) as ex:
        shared = ex.share((nets, perms)) if todo else None
        done = ex.map(match_task, [(str(f), m, cfg) for m, f, _ in todo], key_prefix="networks", shared=shared)
    # data and metrics are both written before either is published (data first, metrics last)
    with atomic_paths(output, Path(metrics_dir) / SUMMARY_FILE) as (tmp, metrics_tmp):
        tmp.mkdir(parents=True)
        for (model, folder, bound), (table, maps, seconds) in zip(todo, done):
            if not bound:
                dest = tmp / model / folder.name
                dest.mkdir(parents=True)
                np.savez_compressed(dest / MAPS_FILE, **maps)
            (bound_tables if bound else tables).append(table)
            lk = table[table["linked"]]
            summary.setdefault("bounds" if bound else "models", {}).setdefault(model, {})[folder.name] = {
                "n_links": int(len(lk)),
                "n_linked_atoms": int(lk["atom"].nunique()),
                "n_atoms": int(maps["group"].shape[0]),
                "n_nonempty_maps": int(maps["group"].any(-1).sum()),
                "linked_fbns": sorted({f"{a}/{n}" for a, n in zip(lk["atlas"], lk["network"])}),
            }
            timings["models"].setdefault(model, {})[folder.name] = {"seconds": round(seconds, 2)}
        cols = ["model", "stimulus"] + [c for c in LINK_COLUMNS if c != "model"]
        links = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols)
        links[cols].to_parquet(tmp / LINKS_FILE, index=False)
        if bound_tables:
            (tmp / BOUNDS_DIR).mkdir()
            pd.concat(bound_tables, ignore_index=True)[cols].to_parquet(tmp / BOUNDS_DIR / LINKS_FILE, index=False)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
        metrics_tmp.write_text(json.dumps(summary, indent=1) + "\n")
    write_timings("networks", timings | {"total_s": round(time.perf_counter() - t0, 2)})
    return summary
