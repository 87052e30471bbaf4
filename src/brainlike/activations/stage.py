"""Stages `materialise` and `extract`: model folders, then activations of models on every stimulus.

:func:`materialise_all` builds every model folder that needs unzipping or conversion;
:func:`run_extract` extracts named models on every prepared stimulus that passed the data
gates, writing ``<extract.output>/<model>/<stimulus>/`` and ``<extract.output>/<model>/index.json``.

Every (model, stimulus) is an independent task run where ``compute:`` says: here, one after
another, with ``serial`` and ``processes`` (each model loaded once, one model in memory at a
time; the forward pass on ``extract.threads`` torch threads), or on Dask workers that load the
model themselves and write into ``extract.output`` (a filesystem shared with this process).
Several models in one call let a cluster extract a whole model zoo at once; DVC runs one model
per stage ``extract@<model>``.

DVC re-runs ``extract@<model>`` whole when a dataset is added or removed (its input is the whole
prepared store); a (model, stimulus) whose inputs are unchanged is then linked back from the
memo (``build/memo``, :class:`~brainlike._utils.memo.Memo`), keyed by its extraction's
``params_hash``, the stimulus, the gate's settings, the code and torch's version. The model is
loaded only when some stimulus misses.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from .._utils.atomic import write_text_atomic
from .._utils.compute import cpu_threads, open_executor
from .._utils.device import check_device
from .._utils.memo import Memo
from .._utils.offline import set_offline_env
from ..config import Params
from ..data import iter_runs
from ..errors import BrainlikeError, ConfigError
from ..stimulus import stimuli_from_runs
from ..validation import read_valid_runs
from .extract import extract_stimulus, params_hash
from .gate import enforce_activation_gate, gate_in_helper, warm_gates
from .models import load_model, model_family
from .sources import materialise, needs_materialise, weights_revision
from .phases import revision_of as weights_revision_of
from .vlm import _images_provenance as images_provenance
from .vlm import check_events, event_stimuli_from_runs, events_params_hash, extract_events, vlm_families


def _torch_threads(cfg):
    """``extract.threads`` torch threads, not the host's core count or a worker's setting: it fixes
    the activations' bits (torch imported first: :func:`cpu_threads` pins only a loaded torch)."""
    import torch  # noqa: F401

    return cpu_threads(cfg.threads)


def extract_task(job: tuple) -> tuple[str, str, dict]:
    """Extract one (model, stimulus) and pass its activation gate; a Dask task or a serial call.

    ``job`` = (ModelConfig, ExtractConfig, ValidationConfig, stimulus, model folder, vlm?,
    loaded model or None, gate here?). Without a loaded model (on a worker) the task loads it
    itself. With ``gate here`` False the caller gates the set (a helper process does, see
    :func:`run_extract`). Returns (model name, stimulus id, the extraction report).
    """
    model, cfg, vcfg, stim, model_dir, vlm, loaded, gate_here = job
    set_offline_env()
    with _torch_threads(cfg):
        if loaded is None:
            check_device(cfg.device, "extract.device")  # a Dask worker may be a machine without it
            loaded = load_model(model_dir, model.trained, model.seed, cfg.device)
        report = (extract_events if vlm else extract_stimulus)(model, cfg, stim, model_dir, loaded=loaded)
    if gate_here:
        enforce_activation_gate(report["path"], vcfg)
    return model.name, stim.id, report


def _gate_result(future) -> list:
    """The failures a helper process found, or a clear error if the helper died."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise BrainlikeError("extract: the helper process running the activation gate died (killed, or out of "
                             "memory); rerun, or set compute.scheduler: serial to gate in the stage's process") from exc


MANIFESTS = "by-model"  # <extract.model_cache>/by-model/<model>.json: what extract@<model> depends on


def materialise_all(params: Params) -> list[dict]:
    """Stage `materialise`: build every model folder that needs it; one ``{source, model_dir}`` each.

    Also writes one manifest per model, ``<extract.model_cache>/by-model/<model>.json`` (its
    source and the sha256 of the weights it will load), and nothing else for it: stage
    ``extract@<model>`` depends on that file, not on the whole cache, so building a new model's
    folder leaves every other model's extraction up to date.
    """
    cache = params.extract.model_cache
    sources = sorted({m.source for m in params.models.values() if needs_materialise(m.source)})
    # the stage's output exists even when no model needs building (every source a folder)
    cache.mkdir(parents=True, exist_ok=True)
    built = {src: materialise(src, cache) for src in sources}
    rows = [{"source": src, "model_dir": str(d)} for src, d in built.items()]
    weights = {src: weights_revision(d) for src, d in built.items()}
    folder = cache / MANIFESTS
    folder.mkdir(exist_ok=True)
    for name, model in params.models.items():
        # sources not built here (an installed package, a folder, the HF cache) are identified by
        # their string; the extraction's sidecar records their weights
        entry = {"model": name, "source": model.source, "weights": weights.get(model.source)}
        write_text_atomic(folder / f"{name}.json", json.dumps(entry, indent=1) + "\n")
    for stale in folder.glob("*.json"):
        if stale.stem not in params.models:
            stale.unlink()
    return rows


def run_extract(names: Sequence[str], params: Params, materialise_only: bool = False,
                on_result: Callable[[dict], None] | None = None) -> dict[str, dict[str, str]]:
    """Stage `extract`: the activations of the models ``names`` on every valid prepared stimulus.

    Parameters
    ----------
    names : keys of ``params.models``
    params : Params
        Reads ``models``, ``extract``, ``validation``, ``compute``, ``paths.prepared`` and
        ``<paths.metrics>/validation.json`` (only runs that passed the data gates reach a model).
    materialise_only : bool
        Build the model folders under ``extract.model_cache`` and stop.
    on_result : callable(dict), optional
        Called with one row per materialised model (``materialise_only``) or per finished
        (model, stimulus): ``{"model", "stimulus"} | report``.

    Returns
    -------
    dict
        ``{model: {stimulus id: status}}`` (empty with ``materialise_only``).

    Raises
    ------
    ConfigError
        A name that is not a key of ``models``.
    """
    emit = on_result or (lambda row: None)
    by_name = params.models
    for name in names:
        if name not in by_name:
            raise ConfigError(f"models: no model named {name!r} (have {sorted(by_name)})")
    cfg = params.extract
    check_device(cfg.device, "extract.device")
    model_dirs = {name: materialise(by_name[name].source, cfg.model_cache) for name in names}
    if materialise_only:
        for name, model_dir in model_dirs.items():
            emit({"model": name, "model_dir": str(model_dir)})
        return {}
    valid = read_valid_runs(Path(params.paths.metrics) / "validation.json")
    runs = list(iter_runs(params.paths.prepared, run_ids=valid))
    done: dict[str, dict[str, str]] = {name: {} for name in model_dirs}
    # Cells (model, stimulus) whose inputs are unchanged are linked back from the memo (an added
    # dataset re-runs this stage whole): no model is loaded and no gate runs for them.
    memo = Memo("extract-cell")
    todo: dict[str, list] = {}
    for name, model_dir in model_dirs.items():
        model = by_name[name]
        vlm = model_family(model_dir).name in vlm_families()
        # Vision-language models see image+caption events; text models see every stimulus's
        # words (a movie's captions included). A VLM never gets a text-only stimulus.
        for stim in (event_stimuli_from_runs(runs) if vlm else stimuli_from_runs(runs)):
            key = memo.key(_cell_identity(model, cfg, params.validation, stim, model_dir, vlm))
            final = Path(cfg.output) / name / stim.id
            report = _restore_cell(memo, key, final)
            if report is None:
                todo.setdefault(name, []).append((stim, vlm, key))
            else:
                done[name][stim.id] = report["status"]
                emit({"model": name, "stimulus": stim.id} | report)
    if todo:
        _extract_cells(todo, model_dirs, params, memo, done, emit)
    # The stage's output always exists and says which stimuli this model saw (possibly none).
    for name, stims in done.items():
        write_text_atomic(Path(cfg.output) / name / "index.json",
                          json.dumps({"model": name, "stimuli": sorted(stims)}, indent=1) + "\n")
    return done


def _cell_identity(model, cfg, vcfg, stim, model_dir: Path, vlm: bool) -> tuple:
    """Everything a cell's files are computed from: its extraction's ``params_hash`` (weights,
    stimulus, grids, settings), the stimulus itself, the gate's settings and torch's version."""
    from importlib import metadata

    revision = weights_revision_of(model, model_dir)
    if vlm:
        events = check_events(stim.events, stim.source)
        phash = events_params_hash(model, cfg, events, stim.grids, revision, images_provenance(events))
    else:
        phash = params_hash(model, cfg, stim, revision)
    return (model, cfg, vcfg, stim, str(model_dir), vlm, phash,
            [metadata.version(p) for p in ("torch", "transformers")])


def _restore_cell(memo: Memo, key: str, final: Path) -> dict | None:
    """Link a memoised cell into ``final`` (one rename, as :func:`~.phases.publish` does); its
    report, or None on a miss."""
    tmp = final.parent / f".{final.name}.memo"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    report = memo.get_dir(key, tmp)
    if report is None:
        return None
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return report | {"status": "memo", "path": str(final)}


def _extract_cells(todo: dict[str, list], model_dirs: dict, params: Params, memo: Memo,
                   done: dict[str, dict[str, str]], emit: Callable[[dict], None]) -> None:
    """Extract and gate the cells ``todo`` = {model: [(stimulus, vlm?, memo key)]}; memoise each gated set."""
    cfg, by_name = params.extract, params.models
    keys = {(name, stim.id): key for name, cells in todo.items() for stim, _, key in cells}
    # The activation gate runs in a helper process where there is a second core (``processes``):
    # it imports GX (~4 s) while this process loads the model, and gates one stimulus's set
    # while the next one is extracted. Sets are published (emitted, indexed) only once gated.
    with open_executor(params.compute) as ex, ex.side_process(warm_gates, (params.validation,)) as helper:
        # In process: one model in memory at a time, loaded once for all its stimuli. On Dask:
        # every (model, stimulus) at once, each worker task loading its own copy.
        batches = [[name] for name in todo] if ex.in_process else [list(todo)]
        for batch in batches:
            jobs = []
            for name in batch:
                model, model_dir = by_name[name], model_dirs[name]
                with _torch_threads(cfg):  # a random twin's initialisation too
                    loaded = load_model(model_dir, model.trained, model.seed, cfg.device) if ex.in_process else None
                jobs += [(model, cfg, params.validation, stim, model_dir, vlm, loaded, helper is None)
                         for stim, vlm, _ in todo[name]]
            # fork=False: one model in memory per stage (the stages run side by side instead,
            # `brainlike repro`; the forward pass pins extract.threads). With a helper, one by one
            # here, so each set is handed to the gate as soon as it is written.
            rows = (extract_task(j) for j in jobs) if helper else ex.map(extract_task, jobs, key_prefix="extract",
                                                                          fork=False)
            results = []
            for name, stim_id, report in rows:
                gated = helper.submit(gate_in_helper, report["path"], params.validation) if helper else None
                results.append((name, stim_id, report, gated))
            for name, stim_id, report, gated in results:
                if gated is not None:
                    enforce_activation_gate(report["path"], params.validation, failures=_gate_result(gated))
                memo.put_dir(keys[name, stim_id], report["path"], {k: v for k, v in report.items() if k != "path"})
                done[name][stim_id] = report.get("status")
                emit({"model": name, "stimulus": stim_id} | report)
            del jobs, loaded, results  # release this model before the next one loads
