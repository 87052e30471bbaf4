"""Build :class:`ModelRecord` / :class:`SubjectFitRecord` from the stage outputs on disk.

Coded against the layout the upstream stages write (paths relative to the repository root;
``<M>`` = model name, ``<S>`` = subject label). Every file is optional: a missing one is
skipped and named in the record's ``notes`` (logged as the ``brainlike.notes`` tag).

=============================================  ==============================================
``data/activations/<M>/<stim>/activations.json``  sidecar: model config, weight revision, site,
                                                  pooling, HRF, dataset (``stimulus.dataset``)
``metrics/patterns/<M>.json``                  dictionary metrics (``r2`` / ``dictionary_r2`` ...)
``data/encoding/<M>/sub-<S>/metrics.json``     held-out r (``heldout_r_mean``,
                                                  ``heldout_r_top_decile``), ``n_significant_targets``
``data/encoding/<M>/sub-<S>/zmaps.npy``        (K, 20484) or (K, n_roi) z-maps per atom
``data/encoding/<M>/group/zmaps.npy``          group z-maps (artifact: GIfTI / Parquet)
``data/networks/links.parquet`` (or ``<M>/``)  link table (model, atom, sign, atlas, network, ...)
``metrics/organization.json``                  ``{M: {diversity, ...}}`` or ``{"models": {M: ...}}``
``metrics/recovery.json``                      same shapes; a scalar ``recovery`` (or ``score``)
``reports/figures/<M>/*.png``                  figures (artifact ``figures/``)
=============================================  ==============================================
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .artifacts import N_FSAVERAGE5, write_atom_gifti, write_atom_parquet
from .provenance import content_hash, input_md5, read_dvc_lock
from .records import Artifact, ModelRecord, SubjectFitRecord, aggregate_subject_metrics, flatten

PARAM_SECTIONS = ("extract", "patterns", "encoding", "networks", "metrics")


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        notes.append(f"missing {path.as_posix()}")
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        notes.append(f"unreadable {path.as_posix()} ({exc.msg})")
        return None


def _per_model(blob: Any, model: str) -> dict | None:
    if not isinstance(blob, dict):
        return None
    if isinstance(blob.get("models"), dict):
        blob = blob["models"]
    val = blob.get(model)
    return val if isinstance(val, dict) else None


def _file_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _section(params, name: str) -> dict:
    sec = getattr(params, name, None)
    return sec.model_dump(mode="json") if sec is not None and hasattr(sec, "model_dump") else {}


def _models(params) -> list:
    models = getattr(params, "models", None)
    if models is None:
        from ..config import default_models

        models = default_models()
    return list(models)


def records_from_outputs(params, repo_root: str | Path,
                         scratch: str | Path | None = None) -> list[tuple[ModelRecord, list[SubjectFitRecord]]]:
    """One ``(ModelRecord, [SubjectFitRecord])`` per (dataset, model) found on disk.

    Parameters
    ----------
    params : Params
    repo_root : path
    scratch : path, optional
        Folder for converted artifacts (GIfTI/Parquet from .npy); default: a temporary folder
        that lives as long as the process (logging copies the files into the artifact store).
    """
    root = Path(repo_root)
    outs, _ = read_dvc_lock(root / "dvc.lock")
    scratch = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="brainlike-register-"))
    shared = {s: _section(params, s) for s in PARAM_SECTIONS}
    org_notes: list[str] = []
    organization = _read_json(root / "metrics/organization.json", org_notes)
    recovery = _read_json(root / "metrics/recovery.json", org_notes)
    prepared = Path(getattr(getattr(params, "paths", None), "prepared", "data/prepared"))
    out: list[tuple[ModelRecord, list[SubjectFitRecord]]] = []

    def inputs_of(paths: list[Path]) -> dict[str, str]:
        got = {}
        for p in paths:
            md5 = input_md5(outs, p)
            if md5 is None and (root / p).is_file():
                md5 = "sha256:" + _file_sha(root / p)
            if md5 is not None:
                got[p.as_posix()] = md5
        return got

    for m in _models(params):
        notes = list(org_notes)
        name = m.name
        mcfg = m.model_dump(mode="json")
        sidecars = sorted((root / "data/activations" / name).glob("*/activations.json"))
        if not sidecars:
            notes.append(f"missing data/activations/{name}/*/activations.json")
        datasets: dict[str, dict] = {}
        for sc in sidecars:
            side = _read_json(sc, notes) or {}
            ds = (side.get("stimulus") or {}).get("dataset") or sc.parent.name.split("_task-")[0]
            datasets.setdefault(ds, side)
        if not datasets:
            datasets = {"embedded" if params.embedded.enabled else (params.datasets[0].name if params.datasets else "default"): {}}
        for ds, side in datasets.items():
            rev = side.get("revision")
            params_d: dict[str, Any] = {
                "source": m.source, "site": m.site, "pooling": m.pooling, "context": m.context,
                "stride": m.stride, "seed": m.seed, "dataset": ds,
                "weights_sha256": content_hash(rev) if rev else None,
                "model_config": mcfg,
                **{k: v for k, v in shared.items() if v},
            }
            if side:
                params_d["activations"] = {"params_hash": side.get("params_hash"), "n_layers": side.get("n_layers"),
                                           "widths": side.get("widths"), "family": side.get("family"),
                                           "hrf": side.get("hrf")}
            metrics: dict[str, Any] = {}
            pat = _read_json(root / "metrics/patterns" / f"{name}.json", notes)
            if isinstance(pat, dict):
                flat = {k: v for k, v in flatten(pat).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                metrics |= {f"patterns.{k}": v for k, v in flat.items()}
                for key in ("dictionary_r2", "r2", "reconstruction_r2"):
                    if key in flat:
                        metrics["dictionary_r2"] = flat[key]
                        break
            org = _per_model(organization, name)
            if org:
                metrics |= {k: v for k, v in flatten(org).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            rec = _per_model(recovery, name)
            if rec:
                flat = {k: v for k, v in flatten(rec).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
                metrics |= {f"recovery.{k}": v for k, v in flat.items()}
                for key in ("recovery", "score"):
                    if key in flat:
                        metrics["recovery"] = flat[key]
                        break
            enc = root / "data/encoding" / name
            subjects: list[SubjectFitRecord] = []
            for sub_dir in sorted(enc.glob("sub-*")) if enc.is_dir() else []:
                s_notes: list[str] = []
                sm = _read_json(sub_dir / "metrics.json", s_notes) or {}
                s = SubjectFitRecord(
                    subject=sub_dir.name.removeprefix("sub-"),
                    metrics={k: v for k, v in flatten(sm).items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
                    inputs=inputs_of([p.relative_to(root) for p in sorted(sub_dir.glob("*")) if p.is_file()]),
                )
                z = sub_dir / "zmaps.npy"
                if z.is_file():
                    s.artifacts += _map_artifacts(np.load(z), scratch / name / sub_dir.name)
                subjects.append(s)
                notes += s_notes
            if not subjects:
                notes.append(f"no subject fits under data/encoding/{name}/sub-*")
            metrics |= {k: v for k, v in aggregate_subject_metrics(subjects).items() if k not in metrics}
            artifacts: list[Artifact] = []
            gz = enc / "group" / "zmaps.npy"
            if gz.is_file():
                artifacts += _map_artifacts(np.load(gz), scratch / name / "group")
            links = _links_table(root, name, scratch / name)
            if links is not None:
                artifacts.append(Artifact(links, "networks"))
            else:
                notes.append("no network-link table for this model")
            fig_dir = root / "reports/figures" / name
            artifacts += [Artifact(p, "figures") for p in sorted(fig_dir.glob("*.png"))] if fig_dir.is_dir() else []
            inputs = inputs_of([
                prepared,
                *[sc.relative_to(root) for sc in sidecars],
                Path("data/patterns") / name,
                Path("metrics/patterns") / f"{name}.json",
                Path("data/encoding") / name,
                Path("data/networks"),
                Path("metrics/organization.json"),
                Path("metrics/recovery.json"),
            ])
            out.append((ModelRecord(
                dataset=ds, model=name, generation=m.generation, generation_order=m.generation_order,
                trained=m.trained, params=params_d, metrics=metrics, inputs=inputs,
                artifacts=artifacts, notes=notes,
                tags={"brainlike.source": m.source},
            ), subjects))
    return out


def _map_artifacts(z: np.ndarray, folder: Path) -> list[Artifact]:
    """Atom maps -> GIfTI pair (fsaverage5) or a Parquet table (ROIs)."""
    z = np.atleast_2d(z)
    if z.shape[1] == N_FSAVERAGE5:
        return [Artifact(p, "atom_maps") for p in write_atom_gifti(z, folder)]
    names = [f"target_{i:04d}" for i in range(z.shape[1])]
    return [Artifact(write_atom_parquet(z, names, folder / "atoms.parquet"), "atom_maps")]


def _links_table(root: Path, model: str, folder: Path) -> Path | None:
    import pandas as pd

    for cand in (root / "data/networks" / model / "links.parquet", root / "data/networks/links.parquet"):
        if cand.is_file():
            df = pd.read_parquet(cand)
            if "model" in df.columns:
                df = df[df["model"] == model]
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "network_links.parquet"
            df.to_parquet(path, index=False)
            return path
    return None
