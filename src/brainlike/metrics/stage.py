"""Stage ``metrics``: organization metrics per model, the scored answer, the real-data verdict.

Reads the outputs of ``patterns`` (atoms, AN sub-groups), ``encode`` / ``encode_baseline``
(``encode.json``, ``targets.parquet``) and ``networks`` (``links.parquet``, thresholded maps);
writes

- ``organization.json`` -- ``{"models": {M: {...}}}``: every metric of
  :func:`~brainlike.metrics.organization.organization_metrics` on the model's surface stimulus
  (the embedded default when present), plus held-out r summaries of the model, its random twin
  and the baseline; more surface stimuli go under ``by_stimulus``;
- ``organization.parquet`` -- the same as a long table (model, metric, key, value);
- ``recovery.json`` -- ``{"bounds": ..., "models": {M: score}, "summary": ..., "by_stimulus": ...}``
  against the planted ground truth of each embedded stimulus (story: ``<prepared>/embedded/ground_truth.json``,
  others ``<task>_ground_truth.json``); ``models`` holds each model's story score (else its
  first embedded stimulus); ``bounds`` (and ``by_stimulus[S]["bounds"]``): what the oracle and
  the null of the ``encode_bounds`` stage reach through the same path
  (:func:`~brainlike.metrics.recovery.recovery_bounds`); ``{"status": ...}`` when there is none;
- ``alice.json`` -- for every ROI-space stimulus (Alice): per model and ROI, group held-out r
  and its permutation p, the same for the random twin and the baseline, and a verdict per
  trained model (``{"status": ...}`` when no ROI stimulus was encoded).

The four files are written beside their final names and published together once all are
written (:func:`~brainlike._utils.atomic.atomic_paths`): a failure or a kill before that leaves
the previous four as they were.

Verdict rule (``alice.json``): per subject, held-out r averaged over the ROIs; the trained model
*beats* another fit when the mean paired difference over subjects is > 0 and a one-sided
Wilcoxon signed-rank test over subjects gives p < ``fdr_alpha`` of the encoding params.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from .._utils.atomic import atomic_paths
from .._utils.compute import executor_for
from .._utils.memo import Memo
from .._utils.reproducible import write_timings
from ..encoding.outputs import GROUP_FILE, SHARED_FILE, SUMMARY_FILE, TARGETS_FILE
from ..encoding.stats import bootstrap_ci, fdr_bh, paired_comparison
from ..errors import DataError
from ..networks.match import network_set
from ..encoding.regressors import planted_answer
from ..networks.links import read_bound_links, read_links
from ..networks.outputs import MAPS_FILE
from ..networks.stage import read_subject_z
from ..patterns.outputs import ANS_FILE, ATOMS_FILE, SUBGROUPS_FILE
from ..stimulus import primary_stimulus
from .organization import _num, organization_metrics, tidy_metrics
from .outputs import ALICE_FILE, ORGANIZATION_FILE, ORGANIZATION_TABLE, RECOVERY_FILE
from .recovery import (
    bootstrap_best_dice,
    bootstrap_indices,
    kind_difference,
    paired_kind_difference,
    percentile_ci,
    recovery_bounds,
    score_planted,
    score_recovery_by_model,
)
from .trend import correct_trends, generation_trend
from .uncertainty import marginal_consistency, organization_cis

PRIMARY = "embedded_task-story"  # first in primary_stimulus's order


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise DataError(path, "file not found; run the upstream stage (`dvc repro`)")
    return json.loads(path.read_text())


def twin_of(name: str, models: Mapping) -> str | None:
    """The random twin of a trained model: an untrained entry with the same source (first by name)."""
    m = models[name]
    if not m.trained:
        return None
    for other in sorted(models):
        o = models[other]
        if not o.trained and o.source == m.source and o.site == m.site:
            return other
    return None


def heldout_summary(folder: Path) -> dict | None:
    """Held-out r of one encoding folder (group + subject means), or None if absent."""
    path = folder / SUMMARY_FILE
    if not path.is_file():
        return None
    s = json.loads(path.read_text())
    g = s["group"]
    subj = [v["r_mean"] for v in s["subjects"].values() if v.get("r_mean") is not None]
    return {
        "r_mean": g.get("r_mean"),
        "r_top": g.get("r_top"),
        "subject_r_mean": float(np.mean(subj)) if subj else None,
        "targets_r_mean": g.get("targets_r_mean"),
        "n_glm_significant": g.get("n_glm_significant"),
        "n_targets_significant": g.get("n_targets_significant"),
        "subject_r_ci": _ci_dict(bootstrap_ci(np.asarray(subj, dtype=np.float64))) if len(subj) >= 2 else None,
        "shared": shared_summary(sh) if (sh := read_shared(folder)) is not None else None,
    }


def _ci_dict(b: dict) -> dict:
    return {"value": _num(b["value"]), "ci_low": _num(b["ci_low"]), "ci_high": _num(b["ci_high"])}


def cells_metrics(cells: list[tuple[str, str]], patterns_root: Path, networks_root: Path, links: pd.DataFrame,
                  n_boot: int = 1000, ci: float = 0.95, links_marginal: pd.DataFrame | None = None,
                  compute=None) -> list[dict]:
    """organization_metrics of each (model, stimulus) of ``cells`` (in order), with their CIs
    (:func:`organization_cis`), and the consistencies of the marginal maps' links
    (:func:`marginal_consistency`) when there are any.

    Each result is memoised (``build/memo``) by the bytes of the files it reads, its links and
    the arguments: a model added to the study does not recompute the others' bootstraps. The
    cells not in the memo run as tasks of ``compute`` (an Executor or a ComputeConfig; the
    results do not depend on it).
    """
    memo, args, keys = Memo("metrics-model"), [], []
    for model, stimulus in cells:
        pdir, ndir = patterns_root / model / stimulus, networks_root / model / stimulus
        lk = links[(links["model"] == model) & (links["stimulus"] == stimulus)]
        lm = None
        if links_marginal is not None:
            lm = links_marginal[(links_marginal["model"] == model) & (links_marginal["stimulus"] == stimulus)]
            lm = lm if len(lm) else None
        files = [pdir / ATOMS_FILE, pdir / SUBGROUPS_FILE, pdir / ANS_FILE, ndir / MAPS_FILE]
        rows = [None if t is None else t.reset_index(drop=True) for t in (lk, lm)]  # row labels shift as models come
        args.append((pdir, ndir, lk, lm, n_boot, ci))
        keys.append(memo.key(model, stimulus, files, rows, n_boot, ci))
    return memo.map(keys, _cell_task, args, compute, key_prefix="metrics-model")


def _cell_task(args: tuple) -> dict:
    return _model_metrics(*args)


def _model_metrics(pdir: Path, ndir: Path, lk: pd.DataFrame, lm: pd.DataFrame | None, n_boot: int, ci: float) -> dict:
    atoms_df = pd.read_parquet(pdir / ATOMS_FILE)
    atoms = atoms_df[[c for c in atoms_df.columns if c.startswith("atom_")]].to_numpy(np.float64)
    sub = pd.read_parquet(pdir / SUBGROUPS_FILE)
    ans = pd.read_parquet(pdir / ANS_FILE, columns=["layer"])
    with np.load(ndir / MAPS_FILE) as f:
        maps, subject_maps = f["group"], f["subjects"]
    m = organization_metrics(atoms, lk, sub, maps=maps, subject_maps=subject_maps,
                             n_layers=int(ans["layer"].max()) + 1)
    m |= organization_cis(atoms, lk, m, n_boot=n_boot, ci=ci)
    if lm is not None:
        m |= marginal_consistency(atoms, lm, n_boot=n_boot, ci=ci)
    return m


def _wilcoxon_greater(d: np.ndarray) -> float | None:
    d = d[np.isfinite(d)]
    if d.size < 2 or np.allclose(d, 0):
        return None
    return float(stats.wilcoxon(d, alternative="greater").pvalue)


def read_shared(folder: Path) -> dict | None:
    """``shared.json`` of one (model, stimulus) encoding folder, or None when absent or not fitted."""
    path = folder / SHARED_FILE
    if not path.is_file():
        return None
    sh = json.loads(path.read_text())
    return sh if sh.get("status") == "ok" else None


def shared_summary(sh: dict, n_boot: int = 2000, ci: float = 0.95) -> dict:
    """Mean over targets of the shared-response scores, CIs by bootstrap over subjects.

    Each subject's LOSO r and ceiling are averaged over the targets first; ``r_ceiled`` is the
    ratio of the subject means (resampled as pairs).
    """
    r = np.asarray(sh["subject"]["r"], dtype=np.float64).mean(1)
    c = np.asarray(sh["subject"]["ceiling"], dtype=np.float64).mean(1)
    br, bc = bootstrap_ci(r, n_boot, ci), bootstrap_ci(c, n_boot, ci)
    bq = bootstrap_ci(r, n_boot, ci, denominator=c)
    out = {"r": _num(br["value"]), "ci_low": _num(br["ci_low"]), "ci_high": _num(br["ci_high"]),
           "ceiling": _num(bc["value"]), "ceiling_ci_low": _num(bc["ci_low"]), "ceiling_ci_high": _num(bc["ci_high"]),
           "r_ceiled": _num(bq["value"]), "r_ceiled_ci_low": _num(bq["ci_low"]), "r_ceiled_ci_high": _num(bq["ci_high"]),
           "n_subjects": int(r.size), "n_targets": len(sh["targets"])}
    out["unique_over_baseline"] = {b: dict(u["mean"]) for b, u in sh["unique_over_baseline"].items()}
    return out


def _subject_mean_r(sh: dict) -> pd.Series:
    return pd.Series(np.asarray(sh["subject"]["r"], dtype=np.float64).mean(1), index=sh["subjects"])


def roi_report(stimulus: str, models: Mapping, encoding_root: Path, baseline_root: Path, alpha: float,
               n_boot: int = 2000, ci: float = 0.95) -> dict:
    """Real data in ROI space: shared-response scores of every model, its twin and the baselines.

    Per model: ``shared.rois.<roi>`` (LOSO r with CI, noise ceiling, r / ceiling, split-half
    reliability, group-average fit) and ``shared.mean``; ``unique_over_baseline.<baseline>``
    (delta R^2 of the joint banded ridge over the baseline alone, mean over ROIs, CI over
    subjects, permutation p, and BH ``q`` over every (model, baseline) test of the stimulus);
    ``vs_twin_shared`` (paired over left-out subjects: LOSO r averaged over ROIs, trained minus
    twin, bootstrap CI, one-sided sign-flip p, BH ``q`` over the trained models of the stimulus,
    ROIs where the trained model's mean r is higher). ``per_subject_fits`` keeps the
    single-subject fits (each subject's own CV ridge), their permutation p and the old paired
    Wilcoxon comparisons, for reference. Verdicts use the corrected tests.
    """
    base_path = baseline_root / stimulus / TARGETS_FILE
    base = pd.read_parquet(base_path) if base_path.is_file() else None
    tabs = {m: pd.read_parquet(p) for m in models
            if (p := encoding_root / m / stimulus / TARGETS_FILE).is_file()}
    shared = {m: sh for m in tabs if (sh := read_shared(encoding_root / m / stimulus)) is not None}

    def group(t: pd.DataFrame) -> dict:
        g = t[t["subject"] == "group"]
        return {r.target: {"r": float(r.r), "p": None if pd.isna(r.p) else float(r.p),
                           "q": None if pd.isna(r.q) else float(r.q)} for r in g.itertuples()}

    def per_subject(t: pd.DataFrame) -> pd.Series:
        return t[t["subject"] != "group"].groupby("subject")["r"].mean()

    out: dict = {"stimulus": stimulus, "baseline": group(base) if base is not None else None, "models": {},
                 "families": {
                     "vs_twin_shared": "one-sided sign-flip test over left-out subjects per trained model; "
                                       "BH over the trained models of this stimulus",
                     "unique_over_baseline": "circular-shift permutation test of the atoms band per model and "
                                             "baseline; BH over every (model, baseline) of this stimulus",
                     "rois": "per model, BH over its ROIs (permutation p of the per-subject fits' group r, "
                             "and of each ROI's unique variance)"}}
    for m, t in sorted(tabs.items()):
        twin = twin_of(m, models)
        entry: dict = {"trained": bool(models[m].trained), "twin": twin,
                       "generation": models[m].generation, "generation_order": models[m].generation_order}
        sh = shared.get(m)
        if sh is not None:
            entry["shared"] = {"rois": sh["per_target"], "mean": shared_summary(sh, n_boot, ci),
                               "subjects": sh["subjects"]}
            entry["unique_over_baseline"] = {
                b: dict(u["mean"]) | {"rois": u["per_target"]} for b, u in sh["unique_over_baseline"].items()}
            if twin in shared:
                a, b = _subject_mean_r(sh), _subject_mean_r(shared[twin])
                common = a.index.intersection(b.index)
                cmp = paired_comparison(a[common].to_numpy(), b[common].to_numpy(), n_boot, ci)
                rois_higher = sum(sh["per_target"][k]["r"] > v["r"] for k, v in shared[twin]["per_target"].items()
                                  if k in sh["per_target"] and v["r"] is not None and sh["per_target"][k]["r"] is not None)
                entry["vs_twin_shared"] = cmp | {"rois_higher": int(rois_higher), "n_rois": len(sh["per_target"]),
                                                 "twin_r": _num(b[common].mean())}
        s_m = per_subject(t)
        old = {"rois": group(t), "r_mean_over_rois": float(s_m.mean()), "n_subjects": int(s_m.size)}
        old["n_rois_significant"] = int(sum(v["q"] is not None and v["q"] < alpha for v in old["rois"].values()))
        for label, other in (("twin", tabs.get(twin) if twin else None), ("baseline", base)):
            if other is None:
                continue
            s_o = per_subject(other)
            common = s_m.index.intersection(s_o.index)
            d = (s_m[common] - s_o[common]).to_numpy()
            old[f"vs_{label}"] = {"r_mean_other": float(s_o[common].mean()), "mean_difference": float(d.mean()),
                                  "wilcoxon_p": _wilcoxon_greater(d), "n_subjects": int(common.size)}
        entry["per_subject_fits"] = old
        out["models"][m] = entry
    _correct_and_verdict(out["models"], alpha)
    out["verdicts"] = [e["verdict"] for e in out["models"].values() if "verdict" in e]
    if shared:
        out["trend"] = _trends(shared, models, n_boot, ci)
        correct_trends(out["trend"], alpha)
        out["families"]["trend"] = ("per score and series (trained, twin, trained minus twin): two-sided sign-flip "
                                    "test of the mean per-subject Spearman rho over generations; BH over every "
                                    "(score, series) of this stimulus")
        out["verdicts"] += _trend_verdicts(out["trend"])
    return out


def _trends(shared: Mapping[str, dict], models: Mapping, n_boot: int, ci: float) -> dict:
    """Generation trends of the subject-level scores: LOSO r and each baseline's unique variance."""
    scores = {"shared_r": {m: _subject_mean_r(sh) for m, sh in shared.items()}}
    for m, sh in shared.items():
        for b, u in sh.get("unique_over_baseline", {}).items():
            d = np.asarray(u["subject_delta_r2"], dtype=np.float64)
            scores.setdefault(f"delta_r2_{b}", {})[m] = pd.Series(d.mean(1), index=sh["subjects"])
    return {k: generation_trend(v, models, n_boot, ci) for k, v in scores.items()}


def _trend_verdicts(trends: Mapping[str, dict]) -> list[str]:
    lines = []
    for score, tr in trends.items():
        for series, t in tr["trend"].items():
            if t.get("q") is None:
                continue
            lines.append(f"{score} across {t['n_generations']} generations, {series.replace('_', ' ')}: "
                         f"{t['direction']} (mean Spearman rho over {t['n']} subjects {t['value']:+.2f} "
                         f"[{t['ci_low']:+.2f}, {t['ci_high']:+.2f}], BH q={t['q']:.3g})")
    return lines


def _correct_and_verdict(entries: dict, alpha: float) -> None:
    """BH across the models of one stimulus, then one verdict line per trained model."""
    twin_tests = [(m, e["vs_twin_shared"]) for m, e in entries.items() if e["trained"] and "vs_twin_shared" in e
                  and e["vs_twin_shared"].get("p") is not None]
    if twin_tests:
        q = fdr_bh(np.array([t["p"] for _, t in twin_tests]), alpha)[1]
        for (_, t), qi in zip(twin_tests, q):
            t["q"] = float(qi)
            t["beats"] = bool(t["mean_difference"] > 0 and qi < alpha)
    base_tests = [u for e in entries.values() for u in e.get("unique_over_baseline", {}).values()
                  if u.get("p") is not None]
    if base_tests:
        q = fdr_bh(np.array([u["p"] for u in base_tests]), alpha)[1]
        for u, qi in zip(base_tests, q):
            u["q"] = float(qi)
            # the shift test asks whether the aligned atoms beat shifted ones (which cost
            # prediction); "adds" also needs the net gain's subject-bootstrap CI above 0
            u["beats_shifted"] = bool(qi < alpha)
            u["adds"] = bool(u["delta_r2"] is not None and u["delta_r2"] > 0 and qi < alpha
                             and u.get("ci_low") is not None and u["ci_low"] > 0)
    for m, e in entries.items():
        if not e["trained"]:
            continue
        parts = []
        if "shared" in e:
            sm = e["shared"]["mean"]
            parts.append(f"shared-response r {sm['r']:.3f} [{sm['ci_low']:.3f}, {sm['ci_high']:.3f}], "
                         f"{sm['r_ceiled']:.2f} of the noise ceiling")
        t = e.get("vs_twin_shared")
        if t and t.get("q") is not None:
            parts.append(f"{'beats' if t['beats'] else 'does not beat'} its twin (r difference "
                         f"{t['mean_difference']:+.3f} [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}], BH q={t['q']:.3g}, "
                         f"{t['rois_higher']}/{t['n_rois']} ROIs higher)")
        for b, u in e.get("unique_over_baseline", {}).items():
            if u.get("q") is None:
                continue
            what = ("adds" if u["adds"] else "beats its time-shifted null but its net gain's CI includes 0"
                    if u["beats_shifted"] else "adds nothing significant")
            parts.append(f"{what} over {b} (delta R^2 "
                         f"{u['delta_r2']:+.4f} [{u['ci_low']:+.4f}, {u['ci_high']:+.4f}], BH q={u['q']:.3g})")
        e["verdict"] = f"{m}: " + ("; ".join(parts) if parts else "nothing to compare with")


def _strict_bootstrap(params, stimulus: str, strict: Mapping, nets, compute=None) -> dict[str, np.ndarray]:
    """Best Dice per planted network on subject resamples, for every strictly scored model.

    Adds ``ci_low`` / ``ci_high`` to each ``strict[model]["planted"]`` entry (in place) and
    returns the resamples, (n_boot, n_planted) per model, drawn with the same subject indices
    for every model of the stimulus (so trained minus twin is paired). Models whose encoding
    folder is missing or whose subjects differ from the first model's are left out. The models
    not in the memo are resampled as tasks of ``compute`` (see :func:`cells_metrics`).
    """
    enc = params.encoding
    root = Path(enc.output)
    tasks, idx, subjects = {}, None, None
    for m in sorted(strict):
        folder = root / m / stimulus
        if not (folder / GROUP_FILE).is_file():
            continue
        ids, z = read_subject_z(folder)
        if len(ids) < 2 or (subjects is not None and ids != subjects):
            continue
        if idx is None:
            subjects, idx = ids, bootstrap_indices(len(ids), enc.n_boot, enc.seed)
        with np.load(folder / GROUP_FILE) as g:
            valid = g["valid"]
        kw = dict(threshold=params.networks.threshold, fdr_alpha=params.networks.fdr_alpha,
                  top_fraction=params.networks.top_fraction, valid=valid, test=enc.group_test)
        tasks[m] = (z, strict[m], nets, idx, kw)
    # memoised (build/memo): a model added to the study does not redraw the others' resamples
    memo, items = Memo("metrics-strict-bootstrap"), list(tasks.values())
    boots = dict(zip(tasks, memo.map([memo.key(*t) for t in items], _bootstrap_task, items, compute,
                                     key_prefix="strict-bootstrap")))
    for m, b in boots.items():
        lo, hi = percentile_ci(b, enc.ci_level)
        for e, low, high in zip(strict[m]["planted"], lo, hi, strict=True):
            e["ci_low"], e["ci_high"] = float(low), float(high)
    return boots


def _bootstrap_task(args: tuple) -> np.ndarray:
    z, strict, nets, idx, kw = args
    return bootstrap_best_dice(z, strict, nets, idx, **kw)


def recovery_report(params, links: pd.DataFrame | None, bounds: pd.DataFrame | None, compute=None) -> dict:
    """``recovery.json``: every model's score, and the bounds, on each embedded stimulus with a ground truth.

    Parameters
    ----------
    params : Params
    links : every model's link table (:func:`~brainlike.networks.links.read_links`), or None
    bounds : the oracle's and null's link table, or None
    compute : Executor or ComputeConfig for the strict scores' resamples (:func:`_strict_bootstrap`)
    """
    models = params.models
    by_stim: dict = {}
    nets = None
    links = pd.DataFrame(columns=["model", "stimulus"]) if links is None else links
    for stim in sorted(set(links["stimulus"]) | (set() if bounds is None else set(bounds["stimulus"]))):
        answer = planted_answer(params.paths.prepared, stim)
        gt_path = None if answer is None else answer[0]
        if gt_path is None or not gt_path.is_file():
            continue
        gt = json.loads(gt_path.read_text())
        nets = nets or network_set(params.networks.atlases, params.paths.atlases)
        sl = links[links["stimulus"] == stim]
        scores = score_recovery_by_model(sl, gt["planted"], nets, true_link_overlap=params.metrics.true_link_overlap,
                                         min_recovery_dice=params.metrics.min_recovery_dice) if len(sl) else {}
        if all("kind" in p for p in gt["planted"]):  # strict per-network scores (calibrated benchmark)
            strict = {m: score_planted(g, gt["planted"], nets) for m, g in sl.groupby("model")}
            boots = _strict_bootstrap(params, stim, strict, nets, compute)
            for m, sc in scores.items():
                if m in strict:
                    sc["strict"] = strict[m]
                    twin = twin_of(m, models) if m in models else None
                    if twin in strict:
                        sc["strict_minus_twin_by_kind"] = kind_difference(strict[m], strict[twin])
                        if m in boots and twin in boots:  # paired: the same subject draws
                            sc["strict_minus_twin_by_kind_ci"] = paired_kind_difference(
                                boots[m], boots[twin], [e["kind"] for e in strict[m]["planted"]], strict[m],
                                strict[twin], params.encoding.ci_level)
        by_stim[stim] = {"snr": gt.get("snr"), "target_r": gt.get("target_r"), "ground_truth": gt_path.as_posix(),
                         "n_subjects": gt.get("n_subjects"), "models": scores}
        bl = None if bounds is None else bounds[bounds["stimulus"] == stim]
        if bl is not None and {"oracle", "null"} <= set(bl["model"]):
            # what a perfect and a useless regressor set reach through the same encode -> networks path
            by_stim[stim]["bounds"] = recovery_bounds(bl[bl["model"] == "oracle"], bl[bl["model"] == "null"],
                                                      gt["planted"], nets)
    if by_stim:
        prim = {}
        for stim in sorted(by_stim, key=lambda s: (s != PRIMARY, s)):
            for m, sc in by_stim[stim]["models"].items():
                prim.setdefault(m, sc | {"stimulus": stim})
        recovery = {"models": prim, "summary": {
            m: {"stimulus": s["stimulus"], "all_pass": s["all_pass"], "min_best_dice": s["min_best_dice"],
                "precision": s["precision"], "recall": s["recall"],
                "best_dice": {f"{e['atlas']}/{e['network']}": e["best_dice"] for e in s["planted"]}}
            for m, s in prim.items()}, "by_stimulus": by_stim}
        first = primary_stimulus([st for st in by_stim if "bounds" in by_stim[st]])
        if first is not None:  # the benchmark's bounds, on the story when it has them
            recovery = {"bounds": by_stim[first]["bounds"] | {"stimulus": first,
                                                              "n_subjects": by_stim[first]["n_subjects"]}} | recovery
    else:
        recovery = {"status": "no embedded stimulus with a ground truth was matched to networks: "
                              "recovery is scored on the embedded default only"}
    return recovery


def run_metrics(params, metrics_dir: str | Path | None = None, compute=None) -> dict:
    """Stage ``metrics``: write organization.json/.parquet, recovery.json and alice.json.

    Parameters
    ----------
    params : Params (the whole params.yaml)
    metrics_dir : folder for the outputs (default ``paths.metrics``)
    compute : Executor or ComputeConfig, optional
        Where the bootstraps of the (model, stimulus) cells and of the strict scores run
        (default ``params.compute``); the outputs are the same bytes for every choice.
    """
    t0 = time.perf_counter()
    mdir = Path(metrics_dir or params.paths.metrics)
    enc_root = Path(params.encoding.output)
    base_root = Path(params.encoding.baseline_output)
    pat_root = Path(params.patterns.output)
    net_root = Path(params.networks.output)
    models = params.models
    links = read_links(net_root, sorted(models))
    links_m = read_links(net_root, sorted(models), marginal=True)
    bounds = read_bound_links(net_root)
    per_model: dict = {}
    surface = {} if links is None else {m: sorted(g["stimulus"].unique()) for m, g in links.groupby("model")}
    with executor_for(compute or params.compute) as ex:
        # every model's (model, stimulus) cells at once, so that their bootstraps run side by side
        cells = [(m, s) for m in models for s in surface.get(m, [])]
        of_cell = dict(zip(cells, cells_metrics(cells, pat_root, net_root, links, params.encoding.n_boot,
                                                params.encoding.ci_level, links_m, compute=ex)))
        recovery = recovery_report(params, links, bounds, compute=ex)
    for m in models:
        stims = surface.get(m, [])
        if not stims:
            continue
        prim = primary_stimulus(stims)
        entry = of_cell[(m, prim)]
        twin = twin_of(m, models)
        entry |= {
            "stimulus": prim,
            "generation": models[m].generation,
            "generation_order": models[m].generation_order,
            "trained": bool(models[m].trained),
            "twin": twin,
            "heldout": heldout_summary(enc_root / m / prim),
            "heldout_twin": heldout_summary(enc_root / twin / prim) if twin else None,
            "heldout_baseline": heldout_summary(base_root / prim),
        }
        sh, sh_t = read_shared(enc_root / m / prim), read_shared(enc_root / twin / prim) if twin else None
        if sh is not None and sh_t is not None:  # paired over left-out subjects, network-mean targets
            a, b = _subject_mean_r(sh), _subject_mean_r(sh_t)
            common = a.index.intersection(b.index)
            entry["vs_twin_shared"] = paired_comparison(a[common].to_numpy(), b[common].to_numpy(),
                                                        params.encoding.n_boot, params.encoding.ci_level)
        if len(stims) > 1:
            entry["by_stimulus"] = {s: of_cell[(m, s)] for s in stims if s != prim}
        per_model[m] = entry
    tw = [e["vs_twin_shared"] for e in per_model.values() if e["trained"] and (e.get("vs_twin_shared") or {}).get("p")
          is not None]
    if tw:  # one family: the trained models' twin comparisons on this study's primary stimuli
        for t, q in zip(tw, fdr_bh(np.array([t["p"] for t in tw]), params.encoding.fdr_alpha)[1]):
            t["q"] = float(q)
    mdir.mkdir(parents=True, exist_ok=True)
    tidy = tidy_metrics({m: {k: v for k, v in e.items() if k not in ("stimulus", "generation", "twin", "by_stimulus", "ci_units")}
                         for m, e in per_model.items()})

    # real data, ROI space
    roi_stims = sorted({p.parent.name for m in models for p in (enc_root / m).glob(f"*/{SUMMARY_FILE}")
                        if json.loads(p.read_text()).get("space") == "roi"})
    if roi_stims:
        alice = {"stimuli": {s: roi_report(s, models, enc_root, base_root, params.encoding.fdr_alpha,
                                            params.encoding.n_boot, params.encoding.ci_level) for s in roi_stims}}
        alice["verdicts"] = [v for s in alice["stimuli"].values() for v in s["verdicts"]]
    else:
        alice = {"status": "no ROI-space stimulus was encoded; add the Alice dataset to `datasets` (see README)"}
    # all four are written before the first is published (four renames, microseconds): a kill or
    # a full disk while writing leaves the previous four, never a mix of two runs
    outputs = [mdir / ORGANIZATION_FILE, mdir / ORGANIZATION_TABLE, mdir / RECOVERY_FILE, mdir / ALICE_FILE]
    with atomic_paths(*outputs) as (org_tmp, tidy_tmp, rec_tmp, alice_tmp):
        org_tmp.write_text(json.dumps({"models": per_model}, indent=1, default=_json_default) + "\n")
        tidy.to_parquet(tidy_tmp, index=False)
        rec_tmp.write_text(json.dumps(recovery, indent=1, default=_json_default) + "\n")
        alice_tmp.write_text(json.dumps(alice, indent=1, default=_json_default) + "\n")
    total_s = round(time.perf_counter() - t0, 2)
    write_timings("metrics", {"total_s": total_s})
    return {"organization": per_model, "recovery": recovery, "alice": alice, "total_s": total_s}


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
