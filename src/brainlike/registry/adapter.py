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
Each source has its reader in :mod:`.readers`; this module composes them into records.
"""

from __future__ import annotations

import atexit
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._utils.atomic import make_scratch
from ..stimulus import primary_stimulus, task_of
from .readers import (
    Layout,
    ProjectOutputs,
    add_alice,
    add_encode,
    add_organization,
    add_patterns,
    add_recovery,
    links_artifact,
    read_patterns,
    read_sidecars,
    read_subject_fits,
    read_summaries,
    stimuli_by_dataset,
    stimulus_artifacts,
    weights_sha256,
)
from .records import ModelRecord, SubjectFitRecord

PARAM_SECTIONS = ("extract", "patterns", "encoding", "networks", "metrics")
SCRATCH_PREFIX = "brainlike-register-"  # scratch folders in the system's temporary directory


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
    shared = {s: _section(params, s) for s in PARAM_SECTIONS}
    lay = Layout.of(params, Path(repo_root), shared)
    if scratch is None:
        scratch = make_scratch(SCRATCH_PREFIX)
        atexit.register(shutil.rmtree, scratch, True)
    scratch = Path(scratch)
    project = ProjectOutputs.read(lay)
    out: list[tuple[ModelRecord, list[SubjectFitRecord]]] = []
    for m in model_configs(params):
        org_m = (project.organization.get("models") or {}).get(m.name) or {}
        pat = read_patterns(lay, m.name)
        for ds, stims in stimuli_by_dataset(lay, m.name):
            out.append(_dataset_record(lay, project, m, ds, stims, org_m, pat, shared, scratch))
    return out


def _dataset_record(lay: Layout, project: ProjectOutputs, m, ds: str, stims: list[str], org_m: dict, pat: dict,
                    shared: dict[str, dict], scratch: Path) -> tuple[ModelRecord, list[SubjectFitRecord]]:
    """The record of model ``m`` on the stimuli ``stims`` of dataset ``ds``, and its subject fits."""
    name, notes = m.name, list(project.notes)
    # the stimulus organization.json reports for the model, else the shared rule
    primary = org_m.get("stimulus") if org_m.get("stimulus") in stims else primary_stimulus(stims)
    sides = read_sidecars(lay, name, stims, notes)
    summaries = read_summaries(lay, name, stims, notes)
    metrics: dict[str, float] = {}
    add_patterns(metrics, notes, pat, name, stims, primary)
    add_organization(metrics, notes, org_m, name, stims, summaries)
    add_encode(metrics, summaries, stims, primary)
    add_recovery(metrics, notes, project.recovery, name, ds, stims, primary)
    add_alice(metrics, project.alice, name, stims)
    top_fraction = float(shared.get("encoding", {}).get("top_fraction_r", 0.1))
    subjects = read_subject_fits(lay, name, stims, top_fraction, notes)
    artifacts = stimulus_artifacts(lay, name, stims, scratch, notes)
    if project.links is not None:
        artifacts.append(links_artifact(project.links, name, ds, stims, scratch))
    record = ModelRecord(
        dataset=ds, model=name, generation=m.generation, generation_order=m.generation_order,
        trained=m.trained, params=_model_params(m, ds, stims, primary, sides, summaries, shared),
        metrics=metrics, inputs=lay.inputs_of(lay.model_inputs(name, stims)), artifacts=artifacts, notes=notes,
        tags={"brainlike.source": m.source, "brainlike.primary_stimulus": primary,
              # a size step within a family (not a generation step): sortable next to the generation
              **({"brainlike.size": m.size} if m.size else {}),
              **_gguf_tags(sides[primary] or next((v for v in sides.values() if v), {}))},
    )
    return record, subjects


def _gguf_tags(side: Mapping[str, Any]) -> dict[str, str]:
    """What a multi-part GGUF says it is (its header, read at materialise), as run tags: a
    repackaged model is labelled by its file, not by its package name."""
    header = ((side.get("revision") or {}).get("origin") or {}).get("gguf_header") or {}
    keys = {"general.name": "brainlike.gguf_name", "general.finetune": "brainlike.gguf_finetune",
            "general.size_label": "brainlike.gguf_size_label"}
    return {tag: str(header[k]) for k, tag in keys.items() if header.get(k) not in (None, "")}


def _model_params(m, ds: str, stims: list[str], primary: str, sides: dict[str, dict], summaries: dict[str, dict],
                  shared: dict[str, dict]) -> dict[str, Any]:
    """The parent run's params: the model's config, what its sidecars say, the shared sections."""
    side = sides[primary] or next((v for v in sides.values() if v), {})
    enc_cfg = shared.get("encoding", {})
    return {
        "source": m.source, "site": side.get("site", m.site), "pooling": side.get("pooling", m.pooling),
        "context": m.context, "stride": m.stride, "seed": m.seed, "dataset": ds,
        "stimuli": stims, "primary_stimulus": primary,
        "weights_sha256": weights_sha256(side.get("revision")),
        "weights_kind": (side.get("revision") or {}).get("kind"),
        "hrf": side.get("hrf"), "family": side.get("family"), "n_layers": side.get("n_layers"),
        "widths": side.get("widths"),
        "activations_params_hash": {task_of(s): v.get("params_hash") for s, v in sides.items()},
        "space": {task_of(s): summaries[s].get("space") for s in stims},
        "K": shared.get("patterns", {}).get("n_atoms"),
        "cv_scheme": (f"{enc_cfg.get('n_folds')} contiguous blocks (gap {enc_cfg.get('gap_trs')} TRs), "
                      f"inner {enc_cfg.get('n_inner_folds')} folds (vertices {enc_cfg.get('vertex_inner_folds')}), "
                      f"high-pass per {enc_cfg.get('highpass')}") if enc_cfg else None,
        "model_config": m.model_dump(mode="json"),
        **{k: v for k, v in shared.items() if v},
    }
