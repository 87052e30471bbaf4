"""Build :class:`ModelRecord` / :class:`SubjectFitRecord` from the stage outputs on disk.

One record per (dataset, model): the dataset is the part of a stimulus id before ``_task-``
(``embedded_task-story`` and ``embedded_task-movie`` -> ``embedded``, ``alice_task-alice`` ->
``alice``), so every dataset gets its own experiment and a model's parent run holds all its
stimuli of that dataset; one nested run per (subject, stimulus), labelled ``<S>_task-<task>``.
Paths relative to the repository root (``<M>`` model, ``<stim>`` stimulus id, ``<S>`` subject):

==================================================  ============================================
``data/encoding/<M>/<stim>/encode.json``            which stimuli a model was encoded on; space,
                                                    group held-out r (fallback of the org. metric)
``data/encoding/<M>/<stim>/sub-<S>.npz``            subject fit: ``r`` (V,), ``valid`` (V,),
                                                    ``significant`` (K, V) -> nested-run metrics
``data/encoding/<M>/<stim>/group.npz``              ``z`` (K, V): group atom maps (GIfTI on
                                                    fsaverage5, Parquet for ROIs)
``data/activations/<M>/<stim>/activations.json``    model source, weight sha256, site, pooling, HRF
``metrics/patterns/<M>.json``                       dictionary R^2 (``stimuli.<stim>.r2``)
``data/patterns/<M>/<stim>/layer_hist.png``         figure artifact
``data/networks/links.parquet``                     link table (rows of this model), artifact
``metrics/organization.json``                       ``models.<M>``: organization metrics on the
                                                    model's primary stimulus (``stimulus`` key),
                                                    ``by_stimulus`` for the others
``metrics/recovery.json``                           ``by_stimulus.<stim>.models.<M>`` scores
``metrics/alice.json``                              ``stimuli.<stim>.models.<M>`` (ROI datasets)
==================================================  ============================================

Comparison columns (:data:`~brainlike.registry.records.COMPARE_METRICS`) on the parent run, all
on the model's *primary* stimulus of the dataset (the one ``organization.json`` reports: the
story for text models, the movie for the vision-language models, which never see the story):

- ``diversity``, ``within_fbn_consistency``, ``balance``, ``compactness``: organization.json as is;
- ``heldout_r_mean``: ``heldout.r_mean`` of organization.json (group held-out r over targets),
  else encode.json's ``group.r_mean`` (ROI datasets, which organization.json does not cover);
- ``recovery``: **F1 of link recovery** against the planted ground truth (harmonic mean of
  precision, true links / links, and recall, planted networks linked / planted networks). F1 is
  chosen over the mean best Dice because it penalises both spurious and missing links; a model
  with no link at all scores 0 (recovery.json leaves its F1 null as precision is undefined, but
  F1 = 2TP / (2TP + FP + FN) = 0 there). Only embedded stimuli have a ground truth;
  ``recovery.<task>.<score>`` holds every score of every stimulus.

A file that is missing is skipped and named in the record's ``notes`` (tag ``brainlike.notes``).
"""

from __future__ import annotations

import atexit
import json
import math
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from .._utils.atomic import make_scratch
from ..activations.store import SIDECAR
from ..stimulus import dataset_of, primary_stimulus, task_of
from .artifacts import N_FSAVERAGE5, write_atom_gifti, write_atom_parquet
from .provenance import content_digest, content_hash, input_md5, read_dvc_lock
from .records import Artifact, ModelRecord, SubjectFitRecord, flatten

PARAM_SECTIONS = ("extract", "patterns", "encoding", "networks", "metrics")
SUMMARY = "encode.json"
SCRATCH_PREFIX = "brainlike-register-"  # scratch folders in the system's temporary directory
# organization.json keys that are per-FBN / per-atom / per-layer tables, not run metrics
_ORG_TABLES = ("atoms_per_fbn", "within_fbn_consistency_per_fbn", "within_fbn_consistency_unsigned_per_fbn", "layer_entropy",
               "cross_subject_consistency_per_atom", "ci_units")
_RECOVERY_SCORES = ("precision", "precision_strict", "precision_networks", "recall", "recall_overlap", "f1",
                    "min_best_dice", "all_pass", "n_links", "n_true_links", "n_planted")


def _read_json(path: Path, notes: list[str], root: Path | None = None) -> Any:
    shown = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.as_posix()
    if not path.is_file():
        notes.append(f"missing {shown}")
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        notes.append(f"unreadable {shown} ({exc.msg})")
        return None


def _numbers(d: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, float]:
    """Numeric leaves of a mapping (booleans as 0/1), flattened to ``prefix + a.b``."""
    if not isinstance(d, dict):
        return {}
    out = {}
    for k, v in flatten({k: v for k, v in d.items() if k not in skip}).items():
        if isinstance(v, bool):
            v = float(v)
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isinf(v)):
            out[prefix + k] = float(v)
    return out


def _section(params, name: str) -> dict:
    sec = getattr(params, name, None)
    return sec.model_dump(mode="json") if sec is not None and hasattr(sec, "model_dump") else {}


def model_configs(params) -> list:
    """params.yaml's models as a list of ModelConfig (``models`` is a mapping name -> config)."""
    models = getattr(params, "models", None)
    if models is None:
        from ..config import default_models

        models = default_models()
    return list(models.values()) if isinstance(models, dict) else list(models)


def weights_sha256(revision: dict | None) -> str | None:
    """One sha256 naming the weights: the weight file's own sha256 when there is one file, else
    the sha256 of the canonical JSON of the revision (several files, MPNet zip parts, or the
    random twin's seed + config sha)."""
    if not revision:
        return None
    files = revision.get("files") or []
    if len(files) == 1 and isinstance(files[0], dict) and files[0].get("sha256"):
        return str(files[0]["sha256"])
    return content_hash(revision)


def subject_fit_metrics(npz_path: str | Path, top_fraction: float = 0.1) -> dict[str, float]:
    """Nested-run metrics of one subject fit (``sub-<S>.npz`` of the encode stage).

    Parameters
    ----------
    npz_path : path
        Holds ``r`` (V,) held-out r per target, ``valid`` (V,) bool, ``significant`` (K, V)
        bool (GLM z after FDR), optionally ``r2`` (V,).
    top_fraction : float
        ``heldout_r_top_decile`` = mean r over the best ``top_fraction`` of valid targets.

    Returns
    -------
    dict
        ``heldout_r_mean``, ``heldout_r_top_decile``, ``heldout_r2_mean``, ``n_targets``,
        ``n_significant_targets`` (targets significant for >= 1 atom), ``n_significant_atoms``.
    """
    with np.load(npz_path, allow_pickle=False) as f:
        r = np.asarray(f["r"], dtype=float)
        valid = np.asarray(f["valid"], dtype=bool) if "valid" in f.files else np.isfinite(r)
        sig = np.asarray(f["significant"], dtype=bool) if "significant" in f.files else None
        r2 = np.asarray(f["r2"], dtype=float) if "r2" in f.files else None
    valid &= np.isfinite(r)
    rv = r[valid]
    out = {"n_targets": float(valid.sum())}
    if rv.size:
        n_top = max(1, int(math.ceil(top_fraction * rv.size)))
        out["heldout_r_mean"] = float(rv.mean())
        out["heldout_r_top_decile"] = float(np.sort(rv)[-n_top:].mean())
    if r2 is not None and rv.size:
        out["heldout_r2_mean"] = float(np.nanmean(r2[valid]))
    if sig is not None:
        sig = sig & valid[None, :]
        out["n_significant_targets"] = float(sig.any(axis=0).sum())
        out["n_significant_atoms"] = float(sig.any(axis=1).sum())
    return out


def _stimuli_on_disk(enc: Path) -> list[str]:
    return sorted(p.parent.name for p in enc.glob(f"*/{SUMMARY}")) if enc.is_dir() else []


def records_from_outputs(params, repo_root: str | Path,
                         scratch: str | Path | None = None) -> list[tuple[ModelRecord, list[SubjectFitRecord]]]:
    """One ``(ModelRecord, [SubjectFitRecord])`` per (dataset, model) encoded on disk.

    Parameters
    ----------
    params : Params
    repo_root : path
    scratch : path, optional
        Folder for converted artifacts (GIfTI/Parquet from the npz maps); default: a scratch
        folder (:func:`~brainlike._utils.atomic.make_scratch`) removed when the process exits
        (logging copies the files into the store).

    Returns
    -------
    list of (ModelRecord, list of SubjectFitRecord)
        In params.yaml's model order; a model with no ``data/encoding/<M>/*/encode.json`` is
        left out (``brainlike compare`` then names it as missing).
    """
    root = Path(repo_root)
    outs, _ = read_dvc_lock(root / "dvc.lock")
    if scratch is None:
        scratch = make_scratch(SCRATCH_PREFIX)
        atexit.register(shutil.rmtree, scratch, True)
    scratch = Path(scratch)
    shared = {s: _section(params, s) for s in PARAM_SECTIONS}
    enc_cfg = shared.get("encoding", {})
    paths = getattr(params, "paths", None)
    prepared = Path(getattr(paths, "prepared", "data/prepared"))
    metrics_dir = Path(getattr(paths, "metrics", "metrics"))
    act_root = Path(shared.get("extract", {}).get("output", "data/activations"))
    pat_root = Path(shared.get("patterns", {}).get("output", "data/patterns"))
    enc_root = Path(enc_cfg.get("output", "data/encoding"))
    net_root = Path(shared.get("networks", {}).get("output", "data/networks"))
    top_fraction = float(enc_cfg.get("top_fraction_r", 0.1))
    org_notes: list[str] = []
    organization = _read_json(root / metrics_dir / "organization.json", org_notes, root) or {}
    recovery = _read_json(root / metrics_dir / "recovery.json", org_notes, root) or {}
    alice_path = root / metrics_dir / "alice.json"
    alice = json.loads(alice_path.read_text()) if alice_path.is_file() else {}
    links_all = _read_links(root / net_root / "links.parquet")
    if links_all is None:
        org_notes.append(f"missing {(net_root / 'links.parquet').as_posix()}")

    def inputs_of(rel: list[Path]) -> dict[str, str]:
        # the content on disk, without timings and DVC's .gitignore (a DVC md5 changes with
        # both, so a re-run with unchanged inputs would look like a new fit); the DVC md5 of the
        # tracked output holding the path only when the path is not on disk
        got = {}
        for p in rel:
            digest = content_digest(root / p)
            md5 = "sha256:" + digest if digest is not None else input_md5(outs, p)
            if md5 is not None:
                got[p.as_posix()] = md5
        return got

    out: list[tuple[ModelRecord, list[SubjectFitRecord]]] = []
    for m in model_configs(params):
        name = m.name
        by_ds: dict[str, list[str]] = defaultdict(list)
        for stim in _stimuli_on_disk(root / enc_root / name):
            by_ds[dataset_of(stim)].append(stim)
        org_m = (organization.get("models") or {}).get(name) or {}
        pat = _read_json(root / metrics_dir / "patterns" / f"{name}.json", [], root) or {}
        for ds, stims in sorted(by_ds.items()):
            notes = list(org_notes)
            # the stimulus organization.json reports for the model, else the shared rule
            primary = org_m.get("stimulus") if org_m.get("stimulus") in stims else primary_stimulus(stims)
            sides = {s: _read_json(root / act_root / name / s / SIDECAR, notes, root) or {} for s in stims}
            side = sides[primary] or next((v for v in sides.values() if v), {})
            enc = {s: _read_json(root / enc_root / name / s / SUMMARY, notes, root) or {} for s in stims}
            p_d: dict[str, Any] = {
                "source": m.source, "site": side.get("site", m.site), "pooling": side.get("pooling", m.pooling),
                "context": m.context, "stride": m.stride, "seed": m.seed, "dataset": ds,
                "stimuli": stims, "primary_stimulus": primary,
                "weights_sha256": weights_sha256(side.get("revision")),
                "weights_kind": (side.get("revision") or {}).get("kind"),
                "hrf": side.get("hrf"), "family": side.get("family"), "n_layers": side.get("n_layers"),
                "widths": side.get("widths"),
                "activations_params_hash": {task_of(s): v.get("params_hash") for s, v in sides.items()},
                "space": {task_of(s): enc[s].get("space") for s in stims},
                "K": shared.get("patterns", {}).get("n_atoms"),
                "cv_scheme": (f"{enc_cfg.get('n_folds')} contiguous blocks (gap {enc_cfg.get('gap_trs')} TRs), "
                              f"inner {enc_cfg.get('n_inner_folds')} folds (vertices {enc_cfg.get('vertex_inner_folds')}), "
                              f"high-pass per {enc_cfg.get('highpass')}") if enc_cfg else None,
                "model_config": m.model_dump(mode="json"),
                **{k: v for k, v in shared.items() if v},
            }
            metrics: dict[str, float] = {}
            # dictionary R^2 (patterns stage), per stimulus
            pat_stims = pat.get("stimuli") or {}
            for s in stims:
                if s in pat_stims:
                    metrics |= _numbers(pat_stims[s], f"patterns.{task_of(s)}.",
                                        skip=("lambda", "n_epochs", "fit_s", "device", "solver"))
                else:
                    notes.append(f"no dictionary metrics for {s} in metrics/patterns/{name}.json")
            if isinstance(pat_stims.get(primary), dict) and "r2" in pat_stims[primary]:
                metrics["dictionary_r2"] = float(pat_stims[primary]["r2"])
            # organization metrics (surface stimuli)
            if org_m and org_m.get("stimulus") in stims:
                metrics |= _numbers(org_m, skip=(*_ORG_TABLES, "by_stimulus", "heldout", "heldout_twin",
                                                 "heldout_baseline", "generation_order", "trained"))
                for key in ("heldout", "heldout_twin", "heldout_baseline"):
                    metrics |= _numbers(org_m.get(key), f"{key}_")
                ci = (org_m.get("heldout") or {}).get("subject_r_ci") or {}
                if ci.get("ci_low") is not None:  # bootstrap over subjects of the subject mean r
                    metrics["heldout_r_mean_ci_low"], metrics["heldout_r_mean_ci_high"] = ci["ci_low"], ci["ci_high"]
                for s, e in (org_m.get("by_stimulus") or {}).items():
                    if s in stims:
                        metrics |= _numbers(e, f"{task_of(s)}.", skip=(*_ORG_TABLES, "stimulus"))
            elif any(enc[s].get("space") == "fsaverage5" for s in stims):
                notes.append(f"no organization metrics for {name} in metrics/organization.json")
            # encoding summaries per stimulus; held-out r fallback for ROI datasets
            for s in stims:
                metrics |= _numbers((enc[s] or {}).get("group"), f"encode.{task_of(s)}.")
            if "heldout_r_mean" not in metrics and "r_mean" in ((enc[primary] or {}).get("group") or {}):
                metrics["heldout_r_mean"] = float(enc[primary]["group"]["r_mean"])
            if "heldout_r_top" not in metrics and "r_top" in ((enc[primary] or {}).get("group") or {}):
                metrics["heldout_r_top"] = float(enc[primary]["group"]["r_top"])
            # recovery against the planted ground truth
            for s in stims:
                sc = (((recovery.get("by_stimulus") or {}).get(s) or {}).get("models") or {}).get(name)
                if sc:
                    metrics |= _numbers({k: sc[k] for k in _RECOVERY_SCORES if k in sc}, f"recovery.{task_of(s)}.")
            rec_primary = (((recovery.get("by_stimulus") or {}).get(primary) or {}).get("models") or {}).get(name)
            if rec_primary is None and isinstance((recovery.get("models") or {}).get(name), dict):
                # ``models`` holds each model's primary-stimulus score (older files: only this)
                cand = recovery["models"][name]
                rec_primary = cand if cand.get("stimulus", primary) == primary else None
                if rec_primary and not any(k.startswith(f"recovery.{task_of(primary)}.") for k in metrics):
                    metrics |= _numbers({k: cand[k] for k in _RECOVERY_SCORES if k in cand},
                                        f"recovery.{task_of(primary)}.")
            if rec_primary and rec_primary.get("f1") is not None:
                metrics["recovery"] = float(rec_primary["f1"])
            elif rec_primary and not rec_primary.get("n_links") and rec_primary.get("n_planted"):
                # no link at all: precision is undefined but F1 = 2TP / (2TP + FP + FN) = 0
                metrics["recovery"] = 0.0
            elif ds == "embedded":
                notes.append(f"no recovery score for {name} on {primary} in metrics/recovery.json")
            # ROI datasets (Alice): group r per ROI and the verdicts
            for s in stims:
                e = (((alice.get("stimuli") or {}).get(s) or {}).get("models") or {}).get(name)
                if e:
                    metrics |= _numbers(e, f"alice.{task_of(s)}.", skip=("rois", "twin", "trained"))
                    metrics |= {f"alice.{task_of(s)}.roi.{roi}.r": float(v["r"]) for roi, v in (e.get("rois") or {}).items()
                                if v.get("r") is not None}
            # subject fits: one nested run per (subject, stimulus)
            subjects: list[SubjectFitRecord] = []
            for s in stims:
                for npz in sorted((root / enc_root / name / s).glob("sub-*.npz")):
                    label = npz.stem.removeprefix("sub-")
                    with np.load(npz, allow_pickle=False) as f:
                        run_ids = [str(x) for x in f["run_ids"]] if "run_ids" in f.files else []
                    subjects.append(SubjectFitRecord(
                        subject=f"{label}_task-{task_of(s)}",
                        params={"stimulus": s, "subject_label": label, "run_ids": run_ids},
                        metrics=subject_fit_metrics(npz, top_fraction),
                        tags={"brainlike.stimulus": s},
                        inputs=inputs_of([npz.relative_to(root)]),
                    ))
            if not subjects:
                notes.append(f"no subject fits under {enc_root.as_posix()}/{name}/*/sub-*.npz")
            # artifacts
            artifacts: list[Artifact] = []
            for s in stims:
                gz = root / enc_root / name / s / "group.npz"
                if gz.is_file():
                    with np.load(gz, allow_pickle=False) as f:
                        z = np.asarray(f["z"])
                    tnames = _target_names(root / enc_root / name / s / "targets.parquet", z.shape[-1])
                    artifacts += _map_artifacts(z, scratch / name / s, f"atom_maps/{task_of(s)}", tnames)
                else:
                    notes.append(f"missing {(enc_root / name / s / 'group.npz').as_posix()}")
                png = root / pat_root / name / s / "layer_hist.png"
                if png.is_file():
                    artifacts.append(Artifact(png, f"figures/{task_of(s)}"))
            if links_all is not None:
                lk = links_all[(links_all["model"] == name) & links_all["stimulus"].isin(stims)] \
                    if {"model", "stimulus"} <= set(links_all.columns) else links_all
                (scratch / name).mkdir(parents=True, exist_ok=True)
                lpath = scratch / name / f"network_links_{ds}.parquet"
                lk.to_parquet(lpath, index=False)
                artifacts.append(Artifact(lpath, "networks"))
            rel_inputs = [prepared, metrics_dir / "organization.json", metrics_dir / "recovery.json",
                          metrics_dir / "patterns" / f"{name}.json", net_root / "links.parquet"]
            for s in stims:
                rel_inputs += [act_root / name / s, pat_root / name / s, enc_root / name / s, net_root / name / s]
            out.append((ModelRecord(
                dataset=ds, model=name, generation=m.generation, generation_order=m.generation_order,
                trained=m.trained, params=p_d, metrics=metrics, inputs=inputs_of(rel_inputs),
                artifacts=artifacts, notes=notes,
                tags={"brainlike.source": m.source, "brainlike.primary_stimulus": primary},
            ), subjects))
    return out


def _read_links(path: Path):
    import pandas as pd

    return pd.read_parquet(path) if path.is_file() else None


def _target_names(path: Path, n: int) -> list[str]:
    """ROI / target names of an ROI-space fit, from targets.parquet's group rows (ROI space)."""
    try:
        import pandas as pd

        t = pd.read_parquet(path, columns=["subject", "target"])
        names = list(dict.fromkeys(t.loc[t["subject"] == "group", "target"].astype(str)))
        if len(names) == n:
            return names
    except Exception:  # noqa: BLE001 -- names are cosmetic; fall back to indices
        pass
    return [f"target_{i:04d}" for i in range(n)]


def _map_artifacts(z: np.ndarray, folder: Path, artifact_dir: str, target_names: list[str]) -> list[Artifact]:
    """Atom maps (K, V) -> GIfTI pair (fsaverage5) or a Parquet table (ROIs)."""
    z = np.atleast_2d(z)
    if z.shape[1] == N_FSAVERAGE5:
        return [Artifact(p, artifact_dir) for p in write_atom_gifti(z, folder)]
    return [Artifact(write_atom_parquet(z, target_names, folder / "atoms.parquet"), artifact_dir)]
