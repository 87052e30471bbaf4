"""Stage ``patterns``: pattern bases of one model on every stimulus it was extracted on.

Reads ``<activations>/<model>/<stimulus>/`` (see ``activations.store``) and writes, atomically,
``<output>/<model>/<stimulus>/``::

    atoms.parquet        T x K: tr_index, time_s, atom_000 ... (unit-norm temporal atoms)
    codes.npz            scipy.sparse CSR, K x N (column n = AN n of ans.parquet)
    ans.parquet          an_id, tower, layer, unit, delay, r2, n_atoms, max_atom
    subgroups.parquet    one row per non-zero code: an_id, tower, layer, unit, delay, atom, code, is_max
    layer_hist.parquet   atom, tower, layer, n_ans, n_ans_max, fraction, fraction_max
    layer_hist.png       each atom's sub-group over layers
    patterns.json        sidecar: params, lambda used, activation sidecar sha256, R^2 (overall and
                         per layer), sparsity, objective, timing

The dictionary is fitted on the TR grid heard by most runs of the stimulus (the primary grid).
ANs stream from the store chunk by chunk and are scaled to unit norm on the fly (never two copies
of X). Metrics for DVC go to ``<metrics>/patterns/<model>.json``, written before either output is
published and renamed after the data folder, so the two never disagree. Each stimulus is an
independent task (:func:`fit_task`) run where ``compute`` says; a stimulus whose activation
folder (every file, by content) and settings are unchanged is linked back from the memo
(``build/memo``) instead, so an added dataset fits only its own stimuli.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._utils.atomic import atomic_paths
from .._utils.device import check_device
from .._utils.memo import Memo, folder_files
from .._utils.memory import limit_heap_growth
from .._utils.compute import executor_for
from .._utils.hashing import sha256_file
from .._utils.reproducible import PNG_METADATA, TIMING_KEYS, portable_path, write_timings
from ..activations.store import SIDECAR, ActivationSet
from ..errors import DataError
from ._solvers import ColumnError
from .estimator import SparseDictionary
from .outputs import (
    ANS_FILE,
    ATOMS_FILE,
    CODES_FILE,
    LAYER_HIST_FILE,
    LAYER_HIST_PNG,
    METRICS_DIR,
    SIDECAR_FILE,
    SUBGROUPS_FILE,
)


def primary_grid(aset: ActivationSet) -> dict:
    """The grid heard by most runs (ties: smallest id)."""
    return sorted(aset.grids.values(), key=lambda g: (-len(g["run_ids"]), g["id"]))[0]


def unit_columns(aset: ActivationSet, grid: str):
    """A re-iterable stream of the grid's AN chunks scaled to unit-norm columns."""
    limit_heap_growth()  # batch temporaries must not pile up on the heap over millions of ANs

    def gen():
        for c in aset.iter_chunks(grid):
            v = np.asarray(c.values, dtype=np.float32)
            norm = np.linalg.norm(v, axis=0, keepdims=True)
            yield v / np.where(norm > 0, norm, 1.0)

    return gen


def an_index(aset: ActivationSet, grid: str) -> pd.DataFrame:
    """AN table in stream order: an_id, tower, layer, unit, delay."""
    parts = [pd.DataFrame({"tower": c.tower.astype(str), "layer": c.layer.astype(np.int32),
                           "unit": c.unit.astype(np.int32), "delay": c.delay.astype(np.int32)})
             for c in aset.iter_chunks(grid)]
    df = pd.concat(parts, ignore_index=True)
    df.insert(0, "an_id", np.arange(len(df), dtype=np.int64))
    return df


def subgroup_tables(codes: sp.csr_matrix, ans: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Sub-group table (one row per non-zero code), histogram over layers, AN table + assignment.

    Parameters
    ----------
    codes : csr_matrix of shape (K, N)
    ans : DataFrame with N rows (an_id, tower, layer, unit, delay)
    """
    K, N = codes.shape
    coo = codes.tocoo()
    absmax_atom = np.asarray(abs(codes).argmax(axis=0)).ravel()
    has = np.asarray((codes != 0).sum(axis=0)).ravel() > 0
    sub = ans.iloc[coo.col].reset_index(drop=True).copy()
    sub["atom"] = coo.row.astype(np.int32)
    sub["code"] = coo.data.astype(np.float32)
    sub["is_max"] = absmax_atom[coo.col] == coo.row
    sub = sub.sort_values(["atom", "an_id"], kind="stable").reset_index(drop=True)
    layers = ans[["tower", "layer"]].drop_duplicates().sort_values(["tower", "layer"]).reset_index(drop=True)
    n = sub.groupby(["atom", "tower", "layer"]).size().rename("n_ans")
    nmax = sub[sub["is_max"]].groupby(["atom", "tower", "layer"]).size().rename("n_ans_max")
    grid = pd.MultiIndex.from_tuples([(k, t, l) for k in range(K) for t, l in layers.itertuples(index=False)],
                                     names=["atom", "tower", "layer"])
    hist = pd.concat([n, nmax], axis=1).reindex(grid).fillna(0).astype(np.int64).reset_index()
    tot = hist.groupby("atom")["n_ans"].transform("sum")
    totm = hist.groupby("atom")["n_ans_max"].transform("sum")
    hist["fraction"] = np.where(tot > 0, hist["n_ans"] / tot.where(tot > 0, 1), 0.0)
    hist["fraction_max"] = np.where(totm > 0, hist["n_ans_max"] / totm.where(totm > 0, 1), 0.0)
    ans_out = ans.copy()
    ans_out["n_atoms"] = np.diff(codes.tocsc().indptr).astype(np.int32)
    ans_out["max_atom"] = np.where(has, absmax_atom, -1).astype(np.int32)
    return sub, hist, ans_out


def plot_layer_hist(hist: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = hist.pivot_table(index="atom", columns=["tower", "layer"], values="fraction", aggfunc="sum")
    fig, ax = plt.subplots(figsize=(max(4, 0.35 * tab.shape[1] + 2), max(4, 0.12 * tab.shape[0] + 1.5)))
    im = ax.imshow(tab.to_numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
    labels = [f"{t}:{l}" if t != "text" else str(l) for t, l in tab.columns]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_xlabel("layer")
    ax.set_ylabel("atom (sub-group)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="fraction of the sub-group's ANs")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=PNG_METADATA)
    plt.close(fig)


def fit_stimulus(folder: Path, cfg, out: Path) -> dict:
    """Fit one (model, stimulus) folder and write its outputs into ``out`` (a new folder)."""
    check_device(cfg.device, "patterns.device")  # again here: a Dask worker may be another machine
    aset = ActivationSet(folder)
    g = primary_grid(aset)
    ans = an_index(aset, g["id"])
    est = SparseDictionary(n_atoms=cfg.n_atoms, lambda_an=cfg.lambda_an, target_sparsity=cfg.target_sparsity,
                           batch_size=cfg.batch_size, n_iter=cfg.n_iter, tol=cfg.tol, seed=cfg.seed,
                           solver=cfg.solver, device=cfg.device)
    try:
        est.fit(unit_columns(aset, g["id"]))
    except ColumnError as exc:
        a = ans.iloc[exc.column]
        raise DataError(folder / g["id"], f"AN tower={a.tower} layer={a.layer} unit={a.unit} delay={a.delay}: "
                        f"{str(exc).split(': ', 1)[1]}; expected finite, non-constant activations", "values") from None
    except ValueError as exc:
        raise DataError(folder / SIDECAR, f"cannot fit {cfg.n_atoms} atoms: {exc}", "n_atoms") from None
    out.mkdir(parents=True)
    T, K = est.atoms_.shape
    frame = aset.frame_times(g["id"])
    atoms = pd.DataFrame(est.atoms_, columns=[f"atom_{k:03d}" for k in range(K)])
    atoms.insert(0, "time_s", frame)
    atoms.insert(0, "tr_index", np.arange(T, dtype=np.int32))
    atoms.to_parquet(out / ATOMS_FILE, index=False)
    sp.save_npz(out / CODES_FILE, est.codes_.astype(np.float32), compressed=True)
    sub, hist, ans_out = subgroup_tables(est.codes_, ans)
    with np.errstate(divide="ignore", invalid="ignore"):
        ans_out["r2"] = 1.0 - est.rss_ / est.tss_
    ans_out.to_parquet(out / ANS_FILE, index=False)
    sub.to_parquet(out / SUBGROUPS_FILE, index=False)
    hist.to_parquet(out / LAYER_HIST_FILE, index=False)
    by_layer = ans_out.assign(rss=est.rss_, tss=est.tss_).groupby(["tower", "layer"])[["rss", "tss"]].sum()
    r2_layer = {(f"{t}:{l}" if t != "text" else str(l)): round(float(1 - r.rss / r.tss), 6)
                for (t, l), r in by_layer.iterrows()}
    model = aset.sidecar.get("model", {}).get("name", folder.parent.name)
    plot_layer_hist(hist, out / LAYER_HIST_PNG, f"{model} / {folder.name}: sub-groups over layers (K={K})")
    metrics = {
        "r2": round(est.r2_, 6), "r2_by_layer": r2_layer, "sparsity": round(est.sparsity_, 4),
        "objective": est.objective_, "lambda": est.lambda_, "n_atoms": K, "n_unused_atoms": est.n_unused_atoms_,
        "n_ans": int(len(ans)), "n_trs": int(T), "n_epochs": int(est.n_iter_),
        "device": est.device_, "solver": cfg.solver,
    }
    sidecar = {
        "format_version": 1, "model": model, "stimulus": folder.name, "grid": g["id"], "run_ids": g["run_ids"],
        "params": cfg.model_dump(mode="json"),
        "activations": {"folder": portable_path(folder), "sidecar_sha256": sha256_file(folder / SIDECAR),
                        "params_hash": aset.sidecar.get("params_hash"), "site": aset.sidecar.get("site")},
        "input_scaling": "each AN column divided by its L2 norm (z-scored AN / sqrt(n_trs))",
        "objective_definition": "mean over ANs of 0.5*||x - D a||^2 + lambda*||a||_1, ||d_k|| = 1",
        "lambda_search": getattr(est, "lambda_search_", None),
        # per-epoch wall times stay out: this file is a DVC output
        "trace": [{k: v for k, v in e.items() if k not in TIMING_KEYS} for e in est.trace_],
    } | metrics
    (out / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=1, default=float) + "\n")
    return metrics | {"fit_s": round(est.fit_time_s_, 2)}  # fit_s: for build/timings only


def fit_task(job: tuple[str, object, str]) -> tuple[str, dict]:
    """:func:`fit_stimulus` of ``job`` = (activations folder, PatternsConfig, output folder) as a task.

    The worker reads the activations and writes the outputs itself (a filesystem shared with
    the stage's process); the solver pins its own threads (``cpu_threads``), so the fit is the
    same wherever it runs. Returns (stimulus, metrics).
    """
    folder, cfg, out = job
    return Path(folder).name, fit_stimulus(Path(folder), cfg, Path(out))


def run_patterns(model: str, cfg, activations_root: Path, metrics_dir: Path, compute=None) -> dict:
    """Fit every stimulus of ``model``; write ``<cfg.output>/<model>/`` and the metrics JSON atomically.

    Parameters
    ----------
    compute : ComputeConfig or Executor, optional
        Where the per-stimulus fits run (default: ``ComputeConfig()``, forked worker processes).

    Raises
    ------
    DataError
        If the model has no complete activation folder, or an AN column is unusable.
    ConfigError
        ``patterns.device`` names a device this machine lacks (checked before any fit).
    """
    check_device(cfg.device, "patterns.device")
    root = Path(activations_root) / model
    folders = sorted(p.parent for p in root.glob(f"*/{SIDECAR}"))
    if not folders:
        raise DataError(root, "no extracted activations (no */activations.json); run `dvc repro extract` first")
    t0 = time.perf_counter()
    metrics_path = Path(metrics_dir) / METRICS_DIR / f"{model}.json"
    # both outputs are written before either is published (data first, then its metrics), so a
    # metrics folder that cannot be written leaves the previous data in place too
    memo = Memo("patterns-cell")
    with atomic_paths(Path(cfg.output) / model, metrics_path) as (tmp, metrics_tmp):
        tmp.mkdir(parents=True)
        # a stimulus whose activations and settings are unchanged is linked back from the memo
        # (DVC re-runs the stage whole when another dataset's activations come or go)
        keys = {f.name: memo.key(model, str(f), cfg, folder_files(f)) for f in folders}
        metrics: dict = {}
        for f in folders:
            got = memo.get_dir(keys[f.name], tmp / f.name)
            if got is not None:
                metrics[f.name] = got | {"fit_s": None}
        todo = [f for f in folders if f.name not in metrics]
        if todo:
            with executor_for(compute) as ex:
                done = ex.map(fit_task, [(str(f), cfg, str(tmp / f.name)) for f in todo], key_prefix=f"patterns-{model}")
            for stim, m in done:
                memo.put_dir(keys[stim], tmp / stim, {k: v for k, v in m.items() if k != "fit_s"})
                metrics[stim] = m
        metrics = {f.name: metrics[f.name] for f in folders}
        timings = {stim: {"fit_s": m.pop("fit_s")} for stim, m in metrics.items()}
        metrics_tmp.write_text(json.dumps({"model": model, "stimuli": metrics}, indent=1) + "\n")
    write_timings(f"patterns@{model}", {"stimuli": timings, "total_s": round(time.perf_counter() - t0, 2)})
    return metrics
