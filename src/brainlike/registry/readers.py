"""One reader per stage output the registry reads (the table in :mod:`.adapter`).

File names come from the stage that writes them (``<package>.outputs`` and
:data:`~brainlike.activations.store.SIDECAR`). A reader of a run-level source adds its metrics to
the record's ``metrics`` and names what it could not find in ``notes``, both in place: the order
of the readers is the order keys are added in, and a later reader may look at what an earlier
one found (a fallback only when the key is still missing).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..activations.store import SIDECAR
from ..encoding.outputs import GROUP_FILE, SUBJECT_GLOB, SUBJECT_PREFIX, SUMMARY_FILE, TARGETS_FILE
from ..metrics.outputs import ALICE_FILE, ORGANIZATION_FILE, RECOVERY_FILE
from ..networks.outputs import LINKS_FILE
from ..patterns.outputs import LAYER_HIST_PNG, METRICS_DIR
from ..stimulus import dataset_of, task_of
from .artifacts import N_FSAVERAGE5, write_atom_gifti, write_atom_parquet
from .provenance import content_digest, content_hash, input_md5, read_dvc_lock
from .records import Artifact, SubjectFitRecord, flatten

# organization.json keys that are per-FBN / per-atom / per-layer tables, not run metrics
_ORG_TABLES = ("atoms_per_fbn", "within_fbn_consistency_per_fbn", "within_fbn_consistency_unsigned_per_fbn",
               "within_fbn_consistency_marginal_per_fbn", "within_fbn_consistency_unsigned_marginal_per_fbn", "layer_entropy",
               "cross_subject_consistency_per_atom", "ci_units")
_RECOVERY_SCORES = ("precision", "precision_strict", "precision_networks", "recall", "recall_overlap", "f1",
                    "min_best_dice", "all_pass", "n_links", "n_true_links", "n_planted")


@dataclass(frozen=True)
class Layout:
    """Where the stage outputs are: folders as params.yaml names them (relative to ``root``
    unless absolute), and the outputs dvc.lock records (content hashes of paths not on disk)."""

    root: Path
    prepared: Path
    metrics: Path
    activations: Path
    patterns: Path
    encoding: Path
    networks: Path
    dvc_outs: dict

    @classmethod
    def of(cls, params, root: Path, sections: dict[str, dict]) -> Layout:
        """From ``params.paths`` and the params sections (``model_dump`` of each) in ``sections``."""
        outs, _ = read_dvc_lock(root / "dvc.lock")
        paths = getattr(params, "paths", None)
        return cls(root=root, prepared=Path(getattr(paths, "prepared", "data/prepared")),
                   metrics=Path(getattr(paths, "metrics", "metrics")),
                   activations=Path(sections.get("extract", {}).get("output", "data/activations")),
                   patterns=Path(sections.get("patterns", {}).get("output", "data/patterns")),
                   encoding=Path(sections.get("encoding", {}).get("output", "data/encoding")),
                   networks=Path(sections.get("networks", {}).get("output", "data/networks")),
                   dvc_outs=outs)

    def inputs_of(self, rel: list[Path]) -> dict[str, str]:
        """Content hash of each path: the content on disk, without timings and DVC's .gitignore
        (a DVC md5 changes with both, so a re-run with unchanged inputs would look like a new
        fit); the DVC md5 of the tracked output holding the path only when it is not on disk."""
        got = {}
        for p in rel:
            digest = content_digest(self.root / p)
            md5 = "sha256:" + digest if digest is not None else input_md5(self.dvc_outs, p)
            if md5 is not None:
                got[p.as_posix()] = md5
        return got

    def model_inputs(self, name: str, stims: list[str]) -> list[Path]:
        """What a (dataset, model) record was built from, relative paths."""
        rel = [self.prepared, self.metrics / ORGANIZATION_FILE, self.metrics / RECOVERY_FILE,
               self.metrics / METRICS_DIR / f"{name}.json", self.networks / name / LINKS_FILE]
        for s in stims:
            rel += [self.activations / name / s, self.patterns / name / s, self.encoding / name / s,
                    self.networks / name / s]
        return rel


# --- helpers -------------------------------------------------------------------------------
def read_json(path: Path, notes: list[str], root: Path | None = None) -> Any:
    """The JSON at ``path``, or None with ``missing <path>`` / ``unreadable <path>`` in ``notes``."""
    shown = path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.as_posix()
    if not path.is_file():
        notes.append(f"missing {shown}")
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        notes.append(f"unreadable {shown} ({exc.msg})")
        return None


def numbers(d: Any, prefix: str = "", skip: tuple[str, ...] = ()) -> dict[str, float]:
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


# --- project-wide sources: read once ---------------------------------------------------------
def read_organization(lay: Layout, notes: list[str]) -> dict:
    """``metrics/organization.json`` (``{}`` when missing or unreadable, named in ``notes``)."""
    return read_json(lay.root / lay.metrics / ORGANIZATION_FILE, notes, lay.root) or {}


def read_recovery(lay: Layout, notes: list[str]) -> dict:
    """``metrics/recovery.json`` (``{}`` when missing or unreadable, named in ``notes``)."""
    return read_json(lay.root / lay.metrics / RECOVERY_FILE, notes, lay.root) or {}


def read_alice(lay: Layout) -> dict:
    """``metrics/alice.json``; ``{}`` when missing (no ROI dataset), not a note."""
    path = lay.root / lay.metrics / ALICE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def read_links(lay: Layout, notes: list[str]):
    """Every model's link table of the networks stage, as one DataFrame; None when there is none
    (named in ``notes``)."""
    from ..networks.links import read_links as read_model_links

    links = read_model_links(lay.root / lay.networks)
    if links is None:
        notes.append(f"missing {(lay.networks / '<model>' / LINKS_FILE).as_posix()}")
    return links


@dataclass(frozen=True)
class ProjectOutputs:
    """The sources every record reads (the metrics stage's files, the link table), read once;
    ``notes`` names what is missing or unreadable among them and goes to every record."""

    organization: dict
    recovery: dict
    alice: dict
    links: Any  # a DataFrame, None when missing
    notes: list[str]

    @classmethod
    def read(cls, lay: Layout) -> ProjectOutputs:
        notes: list[str] = []
        return cls(organization=read_organization(lay, notes), recovery=read_recovery(lay, notes),
                   alice=read_alice(lay), links=read_links(lay, notes), notes=notes)


def read_patterns(lay: Layout, name: str) -> dict:
    """``metrics/patterns/<M>.json``; a missing file shows as one note per stimulus later."""
    return read_json(lay.root / lay.metrics / METRICS_DIR / f"{name}.json", [], lay.root) or {}


# --- per model: which stimuli, their sidecars and summaries -----------------------------------
def stimuli_by_dataset(lay: Layout, name: str) -> list[tuple[str, list[str]]]:
    """``(dataset, [stimulus])`` of every stimulus with an ``encode.json``, datasets sorted."""
    enc = lay.root / lay.encoding / name
    stims = sorted(p.parent.name for p in enc.glob(f"*/{SUMMARY_FILE}")) if enc.is_dir() else []
    by_ds: dict[str, list[str]] = defaultdict(list)
    for stim in stims:
        by_ds[dataset_of(stim)].append(stim)
    return sorted(by_ds.items())


def read_sidecars(lay: Layout, name: str, stims: list[str], notes: list[str]) -> dict[str, dict]:
    """Each stimulus' activation sidecar (``{}`` when missing, named in ``notes``)."""
    return {s: read_json(lay.root / lay.activations / name / s / SIDECAR, notes, lay.root) or {} for s in stims}


def read_summaries(lay: Layout, name: str, stims: list[str], notes: list[str]) -> dict[str, dict]:
    """Each stimulus' ``encode.json`` (``{}`` when missing, named in ``notes``)."""
    return {s: read_json(lay.root / lay.encoding / name / s / SUMMARY_FILE, notes, lay.root) or {} for s in stims}


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


# --- run metrics, one reader per source (in place, in this order) -----------------------------
def add_patterns(metrics: dict, notes: list[str], pat: dict, name: str, stims: list[str], primary: str) -> None:
    """Dictionary R^2 (patterns stage): ``patterns.<task>.*`` and ``dictionary_r2`` (primary)."""
    pat_stims = pat.get("stimuli") or {}
    for s in stims:
        if s in pat_stims:
            metrics |= numbers(pat_stims[s], f"patterns.{task_of(s)}.",
                               skip=("lambda", "n_epochs", "fit_s", "device", "solver"))
        else:
            notes.append(f"no dictionary metrics for {s} in metrics/{METRICS_DIR}/{name}.json")
    if isinstance(pat_stims.get(primary), dict) and "r2" in pat_stims[primary]:
        metrics["dictionary_r2"] = float(pat_stims[primary]["r2"])


def add_organization(metrics: dict, notes: list[str], org_m: dict, name: str, stims: list[str],
                     summaries: dict[str, dict]) -> None:
    """Organization metrics (surface stimuli) of the model's entry in organization.json."""
    if org_m and org_m.get("stimulus") in stims:
        metrics |= numbers(org_m, skip=(*_ORG_TABLES, "by_stimulus", "heldout", "heldout_twin",
                                        "heldout_baseline", "generation_order", "trained"))
        for key in ("heldout", "heldout_twin", "heldout_baseline"):
            metrics |= numbers(org_m.get(key), f"{key}_")
        ci = (org_m.get("heldout") or {}).get("subject_r_ci") or {}
        if ci.get("ci_low") is not None:  # bootstrap over subjects of the subject mean r
            metrics["heldout_r_mean_ci_low"], metrics["heldout_r_mean_ci_high"] = ci["ci_low"], ci["ci_high"]
        for s, e in (org_m.get("by_stimulus") or {}).items():
            if s in stims:
                metrics |= numbers(e, f"{task_of(s)}.", skip=(*_ORG_TABLES, "stimulus"))
    elif any(summaries[s].get("space") == "fsaverage5" for s in stims):
        notes.append(f"no organization metrics for {name} in metrics/{ORGANIZATION_FILE}")


def add_encode(metrics: dict, summaries: dict[str, dict], stims: list[str], primary: str) -> None:
    """Encoding summaries per stimulus; group held-out r of the primary as the fallback of the
    organization metric (ROI datasets)."""
    for s in stims:
        metrics |= numbers((summaries[s] or {}).get("group"), f"encode.{task_of(s)}.")
    group = (summaries[primary] or {}).get("group") or {}
    if "heldout_r_mean" not in metrics and "r_mean" in group:
        metrics["heldout_r_mean"] = float(summaries[primary]["group"]["r_mean"])
    if "heldout_r_top" not in metrics and "r_top" in group:
        metrics["heldout_r_top"] = float(summaries[primary]["group"]["r_top"])


def add_recovery(metrics: dict, notes: list[str], recovery: dict, name: str, ds: str, stims: list[str],
                 primary: str) -> None:
    """Scores against the planted ground truth: ``recovery.<task>.*``, ``recovery`` (F1 on
    the primary stimulus, 0 for a model with no link) and, for a trained model with a twin,
    ``recovery_semantic_minus_twin`` (+ ``_ci_low`` / ``_ci_high``)."""
    by_stim = recovery.get("by_stimulus") or {}
    for s in stims:
        sc = ((by_stim.get(s) or {}).get("models") or {}).get(name)
        if sc:
            metrics |= numbers({k: sc[k] for k in _RECOVERY_SCORES if k in sc}, f"recovery.{task_of(s)}.")
    rec_primary = ((by_stim.get(primary) or {}).get("models") or {}).get(name)
    if rec_primary is None and isinstance((recovery.get("models") or {}).get(name), dict):
        # ``models`` holds each model's primary-stimulus score (older files: only this)
        cand = recovery["models"][name]
        rec_primary = cand if cand.get("stimulus", primary) == primary else None
        if rec_primary and not any(k.startswith(f"recovery.{task_of(primary)}.") for k in metrics):
            metrics |= numbers({k: cand[k] for k in _RECOVERY_SCORES if k in cand}, f"recovery.{task_of(primary)}.")
    sem = ((rec_primary or {}).get("strict_minus_twin_by_kind_ci") or {}).get("semantic")
    if sem and sem.get("difference") is not None:
        # the benchmark's headline: strict semantic recovery (mean best Dice), trained minus twin
        metrics["recovery_semantic_minus_twin"] = float(sem["difference"])
        metrics["recovery_semantic_minus_twin_ci_low"] = float(sem["lo"])
        metrics["recovery_semantic_minus_twin_ci_high"] = float(sem["hi"])
    if rec_primary and rec_primary.get("f1") is not None:
        metrics["recovery"] = float(rec_primary["f1"])
    elif rec_primary and not rec_primary.get("n_links") and rec_primary.get("n_planted"):
        # no link at all: precision is undefined but F1 = 2TP / (2TP + FP + FN) = 0
        metrics["recovery"] = 0.0
    elif ds == "embedded":
        notes.append(f"no recovery score for {name} on {primary} in metrics/{RECOVERY_FILE}")


def add_alice(metrics: dict, alice: dict, name: str, stims: list[str]) -> None:
    """ROI datasets (Alice): group r per ROI and the verdicts, ``alice.<task>.*``."""
    for s in stims:
        e = (((alice.get("stimuli") or {}).get(s) or {}).get("models") or {}).get(name)
        if e:
            metrics |= numbers(e, f"alice.{task_of(s)}.", skip=("rois", "twin", "trained"))
            metrics |= {f"alice.{task_of(s)}.roi.{roi}.r": float(v["r"]) for roi, v in (e.get("rois") or {}).items()
                        if v.get("r") is not None}


# --- subject fits --------------------------------------------------------------------------
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


def read_subject_fits(lay: Layout, name: str, stims: list[str], top_fraction: float,
                      notes: list[str]) -> list[SubjectFitRecord]:
    """One record per (subject, stimulus), labelled ``<S>_task-<task>``, from ``sub-<S>.npz``."""
    subjects: list[SubjectFitRecord] = []
    for s in stims:
        for npz in sorted((lay.root / lay.encoding / name / s).glob(SUBJECT_GLOB)):
            label = npz.stem.removeprefix(SUBJECT_PREFIX)
            with np.load(npz, allow_pickle=False) as f:
                run_ids = [str(x) for x in f["run_ids"]] if "run_ids" in f.files else []
            subjects.append(SubjectFitRecord(
                subject=f"{label}_task-{task_of(s)}",
                params={"stimulus": s, "subject_label": label, "run_ids": run_ids},
                metrics=subject_fit_metrics(npz, top_fraction),
                tags={"brainlike.stimulus": s},
                inputs=lay.inputs_of([npz.relative_to(lay.root)]),
            ))
    if not subjects:
        notes.append(f"no subject fits under {lay.encoding.as_posix()}/{name}/*/{SUBJECT_GLOB}")
    return subjects


# --- artifacts -----------------------------------------------------------------------------
def stimulus_artifacts(lay: Layout, name: str, stims: list[str], scratch: Path, notes: list[str]) -> list[Artifact]:
    """Per stimulus: the group atom maps (GIfTI pair on fsaverage5, Parquet for ROIs, converted
    into ``scratch``) and the patterns stage's layer histogram."""
    artifacts: list[Artifact] = []
    for s in stims:
        enc = lay.root / lay.encoding / name / s
        if (enc / GROUP_FILE).is_file():
            with np.load(enc / GROUP_FILE, allow_pickle=False) as f:
                z = np.asarray(f["z"])
            tnames = _target_names(enc / TARGETS_FILE, z.shape[-1])
            artifacts += _map_artifacts(z, scratch / name / s, f"atom_maps/{task_of(s)}", tnames)
        else:
            notes.append(f"missing {(lay.encoding / name / s / GROUP_FILE).as_posix()}")
        png = lay.root / lay.patterns / name / s / LAYER_HIST_PNG
        if png.is_file():
            artifacts.append(Artifact(png, f"figures/{task_of(s)}"))
    return artifacts


def links_artifact(links, name: str, ds: str, stims: list[str], scratch: Path) -> Artifact:
    """The link table's rows of this model on these stimuli, as ``network_links_<ds>.parquet``."""
    lk = links[(links["model"] == name) & links["stimulus"].isin(stims)] \
        if {"model", "stimulus"} <= set(links.columns) else links
    (scratch / name).mkdir(parents=True, exist_ok=True)
    path = scratch / name / f"network_links_{ds}.parquet"
    lk.to_parquet(path, index=False)
    return Artifact(path, "networks")


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


def _gifti_pair(z: np.ndarray, folder: Path) -> list[Path]:
    """:func:`write_atom_gifti` of ``z`` into ``folder``; the files' bytes come from the memo when
    these maps were converted before (~0.15 s of zlib a model and stimulus, every registration)."""
    from importlib.metadata import version

    from .._utils.atomic import atomic_path
    from .._utils.memo import Memo

    def convert() -> list[tuple[str, bytes]]:
        return [(p.name, p.read_bytes()) for p in write_atom_gifti(z, folder)]

    files = Memo("registry-gifti")(convert, z, version("nibabel"))
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        with atomic_path(folder / name) as tmp:
            tmp.write_bytes(data)
    return [folder / name for name, _ in files]


def _map_artifacts(z: np.ndarray, folder: Path, artifact_dir: str, target_names: list[str]) -> list[Artifact]:
    """Atom maps (K, V) -> GIfTI pair (fsaverage5) or a Parquet table (ROIs)."""
    z = np.atleast_2d(z)
    if z.shape[1] == N_FSAVERAGE5:
        return [Artifact(p, artifact_dir) for p in _gifti_pair(z, folder)]
    return [Artifact(write_atom_parquet(z, target_names, folder / "atoms.parquet"), artifact_dir)]
