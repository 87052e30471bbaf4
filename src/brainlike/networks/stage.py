"""Stages ``spins`` and ``networks@<model>``: group atom maps -> links to functional brain networks.

``spins`` builds the spin-test rotations once (``n_spins`` nearest-neighbour permutations of the
fsaverage5 sphere, ~8 s per 1,000; :func:`run_spins`); every ``networks@<model>`` stage reads
them, so adding a model links only that model. Only fsaverage5 stimuli are matched (ROI data
have no maps to threshold). Each (model, stimulus) is an independent task (:func:`match_task`)
run where ``compute`` says; on Dask the rotations are sent once to every worker (``scatter``),
and the workers read the encoding folders themselves. Tables and maps come back here to be written.

Reads ``<encoding.output>/<model>/<stimulus>/group.npz`` (group z, valid vertices) and
``sub-*.npz`` (subject z), and the same for the benchmark's bounds
(``<encoding.bounds_output>/{oracle,null}/<stimulus>/``, linked exactly like a model, stage
``networks_bounds``); writes, atomically, per model ``<output>/<model>/``::

    links.parquet           model, stimulus, atom, sign, atlas, network, dice, p, q, linked,
                            map_vertices (one row per atom x sign x network)
    links_marginal.parquet  the same for the marginal group maps (each atom fitted alone; when
                            the encoding wrote them, ``encoding.marginal_maps``) of the model's
                            primary stimulus, its own BH family
    <stimulus>/maps.npz     group (K, 2, V) bool thresholded group maps (sign axis 0 '+', 1 '-');
                            subjects (S, K, 2, V) bool, the subject z-maps thresholded the same
                            way; subject_ids; valid (V,); group_marginal (K, 2, V) bool (if any)
    networks.json           per stimulus: links, linked atoms, non-empty maps

with ``<metrics>/networks/<model>.json`` (the same summary); the bounds go to
``<output>/bounds/`` (links.parquet, networks.json; model ``oracle`` | ``null``).
:func:`~brainlike.networks.links.read_links` reads every model's table back as one. A
(model, stimulus) whose encoding folder, rotations and settings are unchanged comes from the memo
(``build/memo``), so a changed dataset relinks only its own stimuli.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.atomic import atomic_paths
from .._utils.compute import executor_for
from .._utils.memo import Memo, folder_files
from .._utils.reproducible import write_timings
from ..errors import ConfigError, DataError
from .match import LINK_COLUMNS, match_from_config, network_set
from ..encoding.outputs import GROUP_FILE, SUBJECT_GLOB, SUBJECT_PREFIX
from ..stimulus import primary_stimulus
from .outputs import BOUNDS_DIR, LINKS_FILE, LINKS_MARGINAL_FILE, MAPS_FILE, METRICS_DIR, SUMMARY_FILE
from .spin import read_spins, spin_permutations, write_spins
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


def match_model_stimulus(folder: Path, model: str, nets, perms, cfg,
                         marginal: bool = True) -> tuple[pd.DataFrame, dict, pd.DataFrame | None]:
    """Links and thresholded maps of one (model, stimulus) encoding folder.

    Returns
    -------
    table : DataFrame (``LINK_COLUMNS`` plus ``stimulus``)
    maps : dict with ``group`` (K, 2, V) bool, ``subjects`` (S, K, 2, V) bool, ``subject_ids``, ``valid``,
        and ``group_marginal`` (K, 2, V) bool when the folder has marginal maps
    table_marginal : the links of the marginal group maps (same columns), or None: with ``marginal``,
        when the encoding wrote them
    """
    with np.load(folder / GROUP_FILE) as g:
        z = g["z"].astype(np.float64)
        valid = g["valid"].astype(bool)
        zm = g["z_marginal"].astype(np.float64) if marginal and "z_marginal" in g.files else None
    table, group_maps = match_from_config(z, nets, perms, cfg, model=model, valid=valid)
    table.insert(1, "stimulus", folder.name)
    ids, sz = read_subject_z(folder)
    ok = nets.cortex & valid
    subj = threshold_maps(sz.astype(np.float64), method=cfg.threshold, fdr_alpha=cfg.fdr_alpha,
                          top_fraction=cfg.top_fraction, valid=ok)
    maps = {"group": group_maps, "subjects": subj, "subject_ids": np.array(ids), "valid": valid}
    table_m = None
    if zm is not None:  # the same thresholds, spins and link family rules, on the marginal maps
        table_m, maps["group_marginal"] = match_from_config(zm, nets, perms, cfg, model=model, valid=valid)
        table_m.insert(1, "stimulus", folder.name)
    return table, maps, table_m


def match_task(job: tuple[str, str, object], shared: tuple) -> tuple[pd.DataFrame, dict, float, pd.DataFrame | None]:
    """:func:`match_model_stimulus` of ``job`` = (folder, model, NetworksConfig, marginal) as a task.

    ``shared`` = (NetworkSet, spin permutations), the same for every task. Returns the table,
    the maps, the task's seconds and the marginal maps' table (or None).
    """
    t = time.perf_counter()
    folder, model, cfg, marginal = job
    nets, perms = shared
    table, maps, table_m = match_model_stimulus(Path(folder), model, nets, perms, cfg, marginal)
    return table, maps, time.perf_counter() - t, table_m


def spins_for(cfg, nets, spins_file: str | Path | None = None) -> np.ndarray:
    """The spin permutations of ``cfg`` on ``nets.cortex``: read from ``spins_file`` (stage
    ``spins``) when given, else built here. Raises DataError when the file does not match."""
    if spins_file is None:
        return spin_permutations(cfg.n_spins, cfg.seed, valid=nets.cortex)
    return read_spins(spins_file, cfg.n_spins, nets.cortex.size)


def run_spins(cfg, atlases_root: str | Path, out: str | Path) -> Path:
    """Stage ``spins``: ``cfg.n_spins`` rotations of the cortex of ``cfg.atlases``, written once.

    Every ``networks@<model>`` stage reads them, so adding a model does not rebuild them; the
    file is keyed by what they depend on (``n_spins``, ``seed``, the atlases' cortex mask).
    """
    nets = network_set(cfg.atlases, atlases_root)
    t = time.perf_counter()
    perms = spin_permutations(cfg.n_spins, cfg.seed, valid=nets.cortex)
    path = write_spins(perms, out)
    write_timings("spins", {"total_s": round(time.perf_counter() - t, 2)})
    return path


def run_networks(
    models: list[str],
    cfg,
    encoding_root: str | Path,
    atlases_root: str | Path,
    output: str | Path,
    metrics_dir: str | Path,
    compute=None,
    bounds_root: str | Path | None = None,
    spins_file: str | Path | None = None,
) -> dict:
    """Stage ``networks`` for ``models`` (and the bounds under ``bounds_root``); returns the summary.

    Each model is published on its own (``<output>/<model>/`` with its metrics), so the stage
    runs per model (``networks@<model>``) and adding a model re-links only that model.

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
        Its ``oracle`` and ``null`` folders are linked as two more models, into ``<output>/bounds/``.
    spins_file : the ``spins`` stage's output, optional (default: the rotations are built here)
    """
    t0 = time.perf_counter()
    if BOUNDS_DIR in models:
        raise ConfigError(f"a model cannot be named {BOUNDS_DIR!r}: the networks stage writes the benchmark's "
                          f"bounds under {Path(output, BOUNDS_DIR).as_posix()}")
    nets = network_set(cfg.atlases, atlases_root)
    n_v = nets.masks.shape[1]
    todo = [(m, f, m) for m in models for f in surface_stimuli(encoding_root, m, n_v)]
    if bounds_root is not None and Path(bounds_root).is_dir():
        todo += [(b, f, BOUNDS_DIR) for b in sorted(p.name for p in Path(bounds_root).iterdir() if p.is_dir())
                 for f in surface_stimuli(bounds_root, b, n_v)]
    timings: dict = {"spins_s": 0.0, "models": {}}  # build/timings, not DVC
    # marginal maps are linked on a model's primary stimulus only (the one its organization
    # headline describes; a second spin family costs as much as the first), never for the bounds
    prim = {m: primary_stimulus([f.name for mm, f, _ in todo if mm == m]) for m in models}
    tasks = [(str(f), m, cfg, g != BOUNDS_DIR and f.name == prim.get(m)) for m, f, g in todo]
    # a (model, stimulus) whose maps, rotations and settings are unchanged comes from the memo:
    # DVC re-runs the stage whole when the model's encoding folder changes in another dataset
    memo = Memo("networks-cell")
    spins_part = Path(spins_file) if spins_file is not None else (cfg.n_spins, cfg.seed)
    keys = [memo.key(m, f.name, g, marginal, cfg, folder_files(f), spins_part, nets)
            for (m, f, g), (*_, marginal) in zip(todo, tasks)]

    def match(miss: list[int]) -> list:
        t = time.perf_counter()
        perms = spins_for(cfg, nets, spins_file)  # only when a cell is computed
        timings["spins_s"] = round(time.perf_counter() - t, 2)
        with executor_for(compute) as ex:
            shared = ex.share((nets, perms))
            return ex.map(match_task, [tasks[i] for i in miss], key_prefix="networks", shared=shared)

    done = memo.fill(keys, match)
    groups = list(dict.fromkeys(models)) + ([BOUNDS_DIR] if any(g == BOUNDS_DIR for *_, g in todo) else [])
    summary: dict = {}
    for group in groups:
        out = {"n_spins": cfg.n_spins, "models": {}}
        tables, tables_m = [], []
        # data and metrics are both written before either is published (data first, metrics last)
        with atomic_paths(Path(output) / group, Path(metrics_dir) / METRICS_DIR / f"{group}.json") as (tmp, mtmp):
            tmp.mkdir(parents=True)
            for (model, folder, g), (table, maps, seconds, table_m) in zip(todo, done):
                if g != group:
                    continue
                if group != BOUNDS_DIR:
                    (tmp / folder.name).mkdir()
                    np.savez_compressed(tmp / folder.name / MAPS_FILE, **maps)
                tables.append(table)
                out["models"].setdefault(model, {})[folder.name] = link_summary(table, maps["group"])
                if table_m is not None:
                    tables_m.append(table_m)
                    out["models"][model][folder.name]["marginal"] = link_summary(table_m, maps["group_marginal"])
                timings["models"].setdefault(model, {})[folder.name] = {"seconds": round(seconds, 2)}
            cols = ["model", "stimulus"] + [c for c in LINK_COLUMNS if c != "model"]
            links = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols)
            links[cols].to_parquet(tmp / LINKS_FILE, index=False)
            if tables_m:
                pd.concat(tables_m, ignore_index=True)[cols].to_parquet(tmp / LINKS_MARGINAL_FILE, index=False)
            (tmp / SUMMARY_FILE).write_text(json.dumps(out, indent=1) + "\n")
            mtmp.write_text(json.dumps(out, indent=1) + "\n")
        summary[group] = out
    write_timings("networks" if len(groups) != 1 else f"networks@{groups[0]}",
                  timings | {"total_s": round(time.perf_counter() - t0, 2)})
    return summary


def link_summary(table: pd.DataFrame, group: np.ndarray) -> dict:
    """Links, linked atoms and non-empty maps of one (model, stimulus): its link table and its
    thresholded group maps (K, 2, V)."""
    lk = table[table["linked"]]
    return {
        "n_links": int(len(lk)),
        "n_linked_atoms": int(lk["atom"].nunique()),
        "n_atoms": int(group.shape[0]),
        "n_nonempty_maps": int(group.any(-1).sum()),
        "linked_fbns": sorted({f"{a}/{n}" for a, n in zip(lk["atlas"], lk["network"])}),
    }
