"""Stages ``encode`` (one model), ``encode_baseline`` (once per stimulus) and ``encode_bounds``
(the oracle and null of the embedded benchmark, :func:`run_bounds`): fits -> files.

For every stimulus a model has atoms for (``<patterns>/<model>/<stimulus>/atoms.parquet``) and
every *valid* prepared run of that stimulus (``metrics/validation.json``), per run:

- **maps** -- :func:`~brainlike.encoding.fit.fit_subject` on every target (vertex or ROI) that
  is not constant: AR(1) GLM z per atom + BH-FDR, block-CV ridge held-out r / R^2. On
  fsaverage5 the ridge uses the cheaper ``vertex_alphas`` / ``vertex_inner_folds`` and no
  permutation test (``vertex_permutations: false``): vertex-wise significance comes from the
  GLM z + FDR;
- **targets** -- the permutation test of held-out r (``n_permutations`` circular shifts, full
  ``alphas`` grid and ``n_inner_folds``) on a few targets: the ROIs themselves (``space: roi``)
  or, on fsaverage5, the mean time course of every network of ``target_atlases`` (over the
  run's non-constant vertices).

Group level: one-sample moderated t across subjects of the GLM z per atom and vertex (each
vertex's variance shrunk towards a prior fitted over the vertices; ``group_test: moderated_t``),
the plain t-test (``group_test: t``; both :func:`~brainlike.encoding.fit.fit_group`) or fixed
effects (Stouffer z, ``group_test: stouffer``, :func:`~brainlike.encoding.fit.fixed_effects_group`); runs of one subject
are averaged first. And a group
permutation p per target: the mean over subjects of held-out r against the mean over subjects
of the null r (the same seeded circular shifts are applied to every subject, so the mean null
is the null of the mean).

Confounds: a dataset's own stimulus regressors (``baseline_columns``, e.g. Alice's ``rate`` and
``sndpwr``) are never nuisance regressors of a model's fit -- they are the baseline -- so model
and baseline see the same nuisance set (motion etc.).

Outputs, written atomically, ``<output>/<name>/<stimulus>/``::

    sub-<subject>.npz   z (K, V) float32, significant (K, V) bool (BH-FDR per atom),
                        r, r2 (V,) float32 (NaN on constant targets), alpha (n_folds, V)
                        float32, rho (V,) float32, valid (V,) bool, run_ids; on fsaverage5 with
                        ``marginal_maps``: z_marginal (K, V) float32, each atom fitted alone
    group.npz           z, t, mean, q (K, V) float32; significant, positive, negative (K, V)
                        bool; valid (V,) bool; r_mean, r2_mean (V,) float32; subjects;
                        z_marginal (K, V) float32, the group test of the marginal maps (if any)
    targets.parquet     subject ('group' for the group row), kind ('network' | 'roi'), target,
                        r, r2, p, q (BH over the targets of one subject), n_permutations
    encode.json         summary (per subject and group; see :func:`~brainlike.encoding.summary.summarise`)

where ``<name>`` is the model, or the baseline folder (``baseline_output``) for the baseline
regressors: word rate + envelope proxy from the words table (:func:`word_baseline`), or the
dataset's own ``baseline_columns`` when its confounds have them.

Wall times go to the untracked ``build/timings/encode@<name>.json`` (``encode_baseline.json``),
not to the DVC outputs: ``total_s`` of a stimulus is the seconds its run fits took (wherever they
ran) plus its group level. The per-run fits are independent tasks (:class:`RunJob`, :func:`fit_run_job`) run where
``compute`` says (here, on forked processes, or on Dask workers); the group level and every write stay in
the stage's process, so the outputs do not depend on where the fits ran. A stimulus whose
regressors, valid runs (by value) and settings are unchanged is linked back from the memo
(``build/memo``): an added or removed dataset refits only its own stimuli.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.atomic import atomic_paths
from .._utils.compute import cpu_threads, executor_for
from .._utils.memo import Memo
from .._utils.reproducible import write_timings
from ..config import EncodingConfig
from ..data.atlases import load_atlas
from ..data.run import Run
from ..data.store import iter_runs
from ..errors import DataError
from ..stimulus import stimuli_from_runs
from ..validation.stage import read_valid_runs
from .baseline import baseline_regressors
from .shared import shared_report
from .summary import summarise
from .fit import shared_fit, _combine_runs, _group_targets, _nanmean, _scatter, encode_run, fit_group
from ..patterns.outputs import ATOMS_FILE
from .regressors import BOUND_NAMES, atoms_on_run, bound_regressors, load_atoms, planted_answer
from .outputs import GROUP_FILE, SHARED_FILE, SUBJECT_FILE, SUMMARY_FILE, TARGETS_FILE



# --- inputs --------------------------------------------------------------------------------
def network_targets(names: Sequence[str], atlases_root: str | Path) -> tuple[list[str], np.ndarray]:
    """Every network of the atlases ``names`` as (``atlas/network`` labels, masks (n, 20484) bool)."""
    labels, masks = [], []
    for name in names:
        atlas = load_atlas(name, atlases_root)
        for net in atlas.networks:
            labels.append(f"{name}/{net}")
            masks.append(atlas.mask(net))
    return labels, np.stack(masks)


def valid_runs_by_stimulus(prepared: str | Path, validation_json: str | Path) -> dict[str, list[Run]]:
    """Valid prepared runs grouped by stimulus id (``<dataset>_task-<task>``)."""
    valid = read_valid_runs(validation_json)
    runs = {r.run_id: r for r in iter_runs(prepared, valid)}
    missing = sorted(set(valid) - set(runs))
    if missing:
        raise DataError(Path(prepared) / "manifest.json", f"valid runs {missing} are not in the prepared store; "
                        "re-run `dvc repro prepare validate`", "runs")
    out: dict[str, list[Run]] = {}
    for stim in stimuli_from_runs(runs.values()):
        ids = sorted(i for g in stim.grids for i in g.run_ids)
        out[stim.id] = [runs[i] for i in ids]
    return out


# --- fits ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunJob:
    """One run's fit as an independent task: small, picklable, self-contained.

    ``run`` is the loaded run when the task runs in the caller's process; elsewhere it is None
    and the worker reads run ``run_id`` from the prepared store ``prepared`` itself.
    ``atoms`` = (atoms (T, K), times (T,), names, source file) of the model, or None for the
    baseline regressors.
    """

    run_id: str
    prepared: str
    cfg: EncodingConfig
    networks: tuple[list[str], np.ndarray] | None
    atoms: tuple[np.ndarray, np.ndarray, list[str], str] | None = None
    run: Run | None = None


def fit_run_job(job: RunJob) -> dict:
    """:func:`encode_run` of one :class:`RunJob` (a Dask task; also run in process by ``serial``).

    Torch and numpy's BLAS run on ``cfg.threads`` threads (when set): how a product of large
    matrices (the network means, the GLM) splits its sums depends on the thread count, so a
    fixed count gives the same numbers, to the last bit, in the stage's process and on any
    worker of any machine. Returns :func:`encode_run`'s dict plus ``run_id``, ``subject``,
    ``regressors`` (where the baseline regressors came from) and ``task_s``.
    """
    t = time.perf_counter()
    run = job.run
    if run is None:
        run = next(iter_runs(job.prepared, [job.run_id]), None)
        if run is None:
            raise DataError(Path(job.prepared) / "manifest.json", f"run {job.run_id} is not in the prepared store",
                            "runs")
    if job.atoms is None:
        b, src = baseline_regressors(run, job.cfg)
        X, names = b.to_numpy(np.float64), None
    else:
        A, times, names, source = job.atoms
        X, src = atoms_on_run(A, times, run, source), None
    with cpu_threads(job.cfg.threads):
        res = encode_run(X, run, job.cfg, job.networks, names)
    return res | {"run_id": run.run_id, "subject": str(run.subject), "regressors": src,
                  "task_s": time.perf_counter() - t}


@dataclass
class SharedJob:
    """The shared-response fit of one stimulus (a task beside its runs' :class:`RunJob`).

    It needs every run of the stimulus in memory, so it is only submitted where tasks see the
    caller's memory (``serial``, ``processes``); on Dask it runs in the stage's process.
    """

    runs: list[Run]
    atoms: tuple[np.ndarray, np.ndarray, list[str], str]
    cfg: EncodingConfig
    networks: tuple[list[str], np.ndarray] | None


def fit_shared_job(job: SharedJob) -> dict:
    """:func:`~brainlike.encoding.fit.shared_fit` of a :class:`SharedJob`, as its JSON report,
    with ``shared_s`` (seconds) added. Threads are pinned as in :func:`fit_run_job`."""
    t = time.perf_counter()
    A, times, _, source = job.atoms
    with cpu_threads(job.cfg.threads):
        sh = shared_fit(job.runs, lambda r: atoms_on_run(A, times, r, source), job.cfg, job.networks)
        rep = shared_report(sh, job.cfg.fdr_alpha, job.cfg.n_boot, job.cfg.ci_level)
    return {"report": rep, "shared_s": time.perf_counter() - t}


def encode_task(job: RunJob | SharedJob) -> dict:
    """One task of the encode stage: a run's fit or a stimulus's shared-response fit."""
    return fit_shared_job(job) if isinstance(job, SharedJob) else fit_run_job(job)


def write_stimulus(results: Sequence[dict], cfg: EncodingConfig, out: Path) -> dict:
    """Group level of one stimulus from its run fits (in run order); write ``out`` (a new folder).

    Parameters
    ----------
    results : dicts of :func:`encode_run` with ``run_id``, ``subject`` and ``task_s`` added
        (:func:`fit_run_job`)
    out : folder to create

    Returns
    -------
    dict: the summary written to ``encode.json`` (without the stage's keys).
    """
    out.mkdir(parents=True)
    by_subject: dict[str, list[dict]] = {}
    subj_tabs, timing = [], {"maps_s": 0.0, "targets_s": 0.0}
    for res in results:
        by_subject.setdefault(res["subject"], []).append(res)
        for k, v in res["timing"].items():
            timing[k] += v
    subjects = sorted(by_subject)
    summary: dict = {"subjects": {}, "n_runs": len(results), "n_subjects": len(subjects)}
    sub_z, sub_zm, sub_valid, sub_est, sub_r, sub_r2, nulls, target_r = [], [], [], [], [], [], [], []
    for s in subjects:
        res = by_subject[s]
        # runs of one subject: maps averaged (z, r), significant = any run
        m = _combine_runs([x["maps"] for x in res])
        tab = _combine_tables([x["targets"] for x in res])
        np.savez(out / SUBJECT_FILE.format(subject=s), run_ids=np.array([x["run_id"] for x in res]), **m)
        tab.insert(0, "subject", s)
        subj_tabs.append(tab)
        summary["subjects"][s] = summarise(m, tab, cfg) | {"run_ids": [x["run_id"] for x in res]}
        sub_z.append(m["z"])
        sub_zm.append(m.get("z_marginal"))
        sub_valid.append(m["valid"])
        sub_est.append(m["estimable"])
        sub_r.append(m["r"])
        sub_r2.append(m["r2"])
        nl = [x["null"] for x in res]
        nulls.append(None if any(n is None for n in nl) else np.mean(nl, axis=0))
        target_r.append(tab.set_index("target")["r"])
    valid = np.logical_and.reduce(sub_valid)
    # atoms estimable in every subject's design. An untested atom's subject maps are 0, so every
    # group test gives it t = 0, p = 1 and no discovery (each atom is its own family and, for
    # the moderated t, has its own prior); `estimable` says it was not tested, not null
    est = np.logical_and.reduce(sub_est)
    zs = np.stack(sub_z)[:, :, valid].astype(np.float64)
    test = cfg.group_test if len(subjects) >= 2 else "stouffer"  # one subject: its own map
    g = fit_group(zs, cfg.fdr_alpha, test=test)
    assert not g["significant"][~est].any()
    # constant targets are NaN in every subject: their mean stays NaN, silently
    r_mean, r2_mean = _nanmean(np.stack(sub_r)), _nanmean(np.stack(sub_r2))
    gm = {k: _scatter(g[k], valid, 0.0 if g[k].dtype != bool else False, np.float32 if g[k].dtype != bool else bool)
          for k in ("z", "t", "mean", "q", "significant", "positive", "negative")}
    gm["q"][:, ~valid] = 1.0
    gm.update(valid=valid, estimable=est, r=np.where(valid, r_mean, np.nan).astype(np.float32),
              r2=np.where(valid, r2_mean, np.nan).astype(np.float32))
    extra = {k: np.asarray(g[k], dtype=np.float64) for k in ("prior_dof", "prior_var") if k in g}  # moderated t
    if all(z is not None for z in sub_zm):  # marginal maps: the same group test, linked beside the joint ones
        gz = fit_group(np.stack(sub_zm)[:, :, valid].astype(np.float64), cfg.fdr_alpha, test=test)
        extra["z_marginal"] = _scatter(gz["z"], valid, 0.0, np.float32)
    np.savez(out / GROUP_FILE, subjects=np.array(subjects), dof=np.asarray(g["dof"], dtype=np.float64), **extra,
             **{k: v for k, v in gm.items() if k not in ("r", "r2")}, r_mean=gm["r"], r2_mean=gm["r2"])
    gtab = _group_targets(target_r, nulls, subj_tabs, cfg)
    tabs = pd.concat(subj_tabs + [gtab], ignore_index=True)
    tabs.to_parquet(out / TARGETS_FILE, index=False)
    summary["group"] = summarise(gm, gtab, cfg) | {"n_subjects": len(subjects), "test": _GROUP_TESTS[test]}
    summary["group"]["n_glm_significant_positive"] = int(gm["positive"][:, valid].any(0).sum())
    summary["group"]["n_glm_significant_negative"] = int(gm["negative"][:, valid].any(0).sum())
    summary["timing"] = {k: round(v, 2) for k, v in timing.items()}  # popped by the caller (not DVC-tracked)
    return summary


_GROUP_TESTS = {"t": "one-sample t across subjects",
                "moderated_t": "one-sample moderated t across subjects (empirical-Bayes variance)",
                "stouffer": "fixed effects (Stouffer z)"}


def _combine_tables(tabs: list[pd.DataFrame]) -> pd.DataFrame:
    if len(tabs) == 1:
        return tabs[0]
    t = pd.concat(tabs).groupby(["kind", "target"], sort=False)[["r", "r2", "p", "q"]].mean().reset_index()
    return t


# --- stage drivers ---------------------------------------------------------------------------
def _networks_if_needed(runs: Iterable[Run], cfg: EncodingConfig, atlases_root, cache: dict | None = None):
    """Network targets when a run is on fsaverage5 (read once per ``cache``), else None."""
    if not any(r.space == "fsaverage5" for r in runs):
        return None
    cache = {} if cache is None else cache
    if "nets" not in cache:
        cache["nets"] = network_targets(cfg.target_atlases, atlases_root)
    return cache["nets"]


def run_encode(
    model: str,
    cfg: EncodingConfig,
    patterns_root: str | Path,
    prepared: str | Path,
    validation_json: str | Path,
    atlases_root: str | Path,
    metrics_dir: str | Path,
    compute=None,
) -> dict:
    """Stage ``encode`` of one model: ``<cfg.output>/<model>/<stimulus>/`` and ``<metrics>/encode/<model>.json``.

    Parameters
    ----------
    compute : ComputeConfig or Executor, optional
        Where the per-run fits run (default: ``ComputeConfig()``, forked processes); the group level
        and the writing stay here. The outputs are the same for every choice.

    Raises
    ------
    DataError
        No atoms for the model, or a stimulus with atoms has no valid run.
    """
    root = Path(patterns_root) / model
    folders = sorted(p.parent for p in root.glob(f"*/{ATOMS_FILE}"))
    if not folders:
        raise DataError(root, "no pattern bases (no */atoms.parquet); run `dvc repro patterns` first")
    by_stim = valid_runs_by_stimulus(prepared, validation_json)
    items = [(f.name, (*load_atoms(f), str(f / ATOMS_FILE))) for f in folders]
    return _run_all(model, Path(cfg.output) / model, items, by_stim, cfg, prepared, atlases_root,
                    Path(metrics_dir) / f"encode/{model}.json", f"encode@{model}", compute=compute)


def run_baseline(
    cfg: EncodingConfig,
    prepared: str | Path,
    validation_json: str | Path,
    atlases_root: str | Path,
    metrics_dir: str | Path,
    compute=None,
) -> dict:
    """Stage ``encode_baseline``: the baseline regressors of every stimulus with valid runs.

    ``compute`` as in :func:`run_encode`.
    """
    by_stim = valid_runs_by_stimulus(prepared, validation_json)
    if not by_stim:
        raise DataError(validation_json, "no valid run to encode", "valid_runs")
    return _run_all("baseline", Path(cfg.baseline_output), [(s, None) for s in sorted(by_stim)], by_stim, cfg,
                    prepared, atlases_root, Path(metrics_dir) / "encode_baseline.json", "encode_baseline",
                    compute=compute)


def run_bounds(
    cfg: EncodingConfig,
    output: str | Path,
    prepared: str | Path,
    validation_json: str | Path,
    atlases_root: str | Path,
    compute=None,
) -> dict:
    """Stage ``encode_bounds``: the oracle and null of every embedded stimulus with a ground truth.

    Encodes :func:`~brainlike.encoding.regressors.bound_regressors` exactly as a model's atoms
    into ``<output>/{oracle,null}/<stimulus>/`` (the layout of an encode folder), without the
    shared-response fit (the bounds need the group z-maps only); the ``networks`` stage links
    them like a model and ``metrics`` writes the bounds into ``recovery.json``. Both folders are
    published together (one rename of ``output``). ``compute`` as in :func:`run_encode`.
    Returns ``{name: {stimulus: summary}}``.
    """
    by_stim = valid_runs_by_stimulus(prepared, validation_json)
    stims = [s for s in sorted(by_stim) if (a := planted_answer(prepared, s)) is not None and a[0].is_file()]
    bcfg = cfg.model_copy(update={"shared": False})
    out: dict = {}
    with atomic_paths(output) as (tmp,):
        tmp.mkdir(parents=True)
        regs = {s: bound_regressors(prepared, s, cfg.min_shift_trs, cfg.seed, cfg.high_pass_s) for s in stims}
        for name in BOUND_NAMES:
            items = [(s, regs[s][name]) for s in stims]
            out[name] = _run_all(name, tmp / name, items, by_stim, bcfg, prepared, atlases_root,
                                 metrics_path=None, timing_name=f"encode_bounds@{name}", compute=compute)
    return out


def _run_all(name: str, dest: Path, items: Sequence[tuple[str, tuple | None]], by_stim, cfg, prepared, atlases_root,
             metrics_path: Path | None, timing_name: str, compute=None) -> dict:
    """Fit every (stimulus, regressors) of ``items`` and write ``dest``/<stimulus>/ and ``metrics_path``.

    ``items``: (stimulus, atoms) with atoms = (X (T, K), times (T,), names, source) as
    :func:`load_atoms` gives them, or None for the baseline regressors of each run.
    """
    t0 = time.perf_counter()
    baseline = all(atoms is None for _, atoms in items)
    summaries: dict = {}
    timings: dict = {}
    nets_cache: dict = {}
    # A stimulus whose regressors, runs and settings are unchanged is linked back from the memo:
    # DVC re-runs the stage whole when another dataset's runs come or go.
    memo = Memo("encode-cell")
    keys = {}
    for stim, atoms in items:
        runs = by_stim.get(stim)
        if not runs:
            raise DataError(atoms[3] if atoms else None,
                            f"stimulus {stim} has no valid prepared run (see metrics/validation.json)")
        nets = _networks_if_needed(runs, cfg, atlases_root, nets_cache)
        # hashing every run costs ~1 s a stage: only when the memo is on
        keys[stim] = memo.key(name, stim, str(dest.name), cfg, atoms, runs, nets, baseline) if memo.enabled else ""
    with executor_for(compute) as ex:
        # every run of every stimulus is one independent task; the group level stays here
        # shared-response fits (several runs each, the longest tasks) go first, where tasks see memory
        jobs, per_stim, shared_jobs = [], [], []
        for stim, atoms in items:
            runs = by_stim[stim]
            if memo.enabled and (memo.folder / f"{keys[stim]}.d").is_dir():
                per_stim.append((stim, runs, atoms, None))
                continue
            nets = _networks_if_needed(runs, cfg, atlases_root, nets_cache)
            per_stim.append((stim, runs, atoms, len(jobs)))
            jobs += [RunJob(r.run_id, str(prepared), cfg, nets, atoms, r if ex.in_process else None) for r in runs]
            if not baseline and cfg.shared:
                shared_jobs.append((stim, SharedJob(runs, atoms, cfg, nets)))
        if not jobs:
            shared_res, results = [], []
        elif ex.in_process:
            done = ex.map(encode_task, [j for _, j in shared_jobs] + jobs, key_prefix=f"encode-{name}")
            shared_res, results = done[:len(shared_jobs)], done[len(shared_jobs):]
        else:
            results = ex.map(fit_run_job, jobs, key_prefix=f"encode-{name}")
            shared_res = [fit_shared_job(j) for _, j in shared_jobs]
        shared = {stim: r for (stim, _), r in zip(shared_jobs, shared_res)}
    # data and metrics are both written before either is published (data first, metrics last)
    with atomic_paths(dest, *([metrics_path] if metrics_path else [])) as (tmp, *metrics_tmp):
        tmp.mkdir(parents=True)
        for stim, runs, atoms, i0 in per_stim:
            if i0 is None:
                s = memo.get_dir(keys[stim], tmp / stim)
                if s is not None:
                    summaries[stim], timings[stim] = s, {"memo": True}
                    continue
                # the entry went away since it was seen: fit this stimulus now
                nets = _networks_if_needed(runs, cfg, atlases_root, nets_cache)
                res = [fit_run_job(RunJob(r.run_id, str(prepared), cfg, nets, atoms, r)) for r in runs]
                sh = fit_shared_job(SharedJob(runs, atoms, cfg, nets)) if not baseline and cfg.shared else None
            else:
                res = results[i0:i0 + len(runs)]
                sh = shared.get(stim)
            t = time.perf_counter()
            s = write_stimulus(res, cfg, tmp / stim)
            timings[stim] = s.pop("timing")
            if baseline:
                s["regressors"] = sorted({r["regressors"] for r in res})
            else:
                s["n_atoms"] = len(atoms[2])
                if cfg.shared:
                    (tmp / stim / SHARED_FILE).write_text(json.dumps(sh["report"], indent=1) + "\n")
                    s["shared"] = {"status": sh["report"]["status"]}
                    timings[stim]["shared_s"] = round(sh["shared_s"], 2)
            # seconds spent on this stimulus: its run and shared fits (wherever they ran) + the group level
            total = sum(r["task_s"] for r in res) + timings[stim].get("shared_s", 0.0) + time.perf_counter() - t
            timings[stim]["total_s"] = round(total, 2)
            s |= {"name": name, "stimulus": stim, "space": runs[0].space, "params": cfg.model_dump(mode="json")}
            (tmp / stim / SUMMARY_FILE).write_text(json.dumps(s, indent=1, default=float) + "\n")
            memo.put_dir(keys[stim], tmp / stim, s)
            summaries[stim] = s
        brief = {
            stim: {"group": s["group"], "subjects": {k: {kk: v[kk] for kk in ("r_mean", "r_top", "n_glm_significant")}
                                                     for k, v in s["subjects"].items()}}
            for stim, s in summaries.items()
        }
        if metrics_tmp:
            metrics_tmp[0].write_text(json.dumps({"name": name, "stimuli": brief}, indent=1, default=float) + "\n")
    write_timings(timing_name, {"stimuli": timings, "total_s": round(time.perf_counter() - t0, 2)})
    return summaries
