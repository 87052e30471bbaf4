"""Stage `extract`: activations of one model on every prepared stimulus, aligned to TRs.

    python pipelines/extract.py --model NAME [--model NAME2 ...] [--params params.yaml] [--materialise-only]
    python pipelines/extract.py --materialise-all        (stage `materialise`)

Reads ``models:``, ``extract:`` and ``paths.prepared`` from params.yaml; writes
``<extract.output>/<NAME>/<stimulus>/``. ``--materialise-only`` builds the model folder
under ``extract.model_cache`` (stage `materialise`) and stops.

Every (model, stimulus) is an independent task run where ``compute:`` says: serially here
(each model loaded once), or on Dask workers that load the model themselves and write into
``extract.output`` (a filesystem shared with this process). Several ``--model`` in one call let
a cluster extract a whole model zoo at once; DVC runs one model per stage ``extract@<model>``.
"""

from __future__ import annotations

import argparse
import json
import sys

from brainlike.activations import extract_stimulus, load_model, materialise, needs_materialise, stimuli_from_runs
from brainlike.activations.gate import enforce_activation_gate
from brainlike.activations.models import model_family
from brainlike.activations.vlm import event_stimuli_from_runs, extract_events, vlm_families
from brainlike._utils.atomic import write_text_atomic
from brainlike._utils.compute import open_executor
from brainlike._utils.device import check_device
from brainlike.cli import set_offline_env
from brainlike.config import load_params
from brainlike.data import iter_runs
from brainlike.errors import BrainlikeError, ConfigError
from brainlike.validation import read_valid_runs


def extract_task(job: tuple) -> tuple[str, str, dict]:
    """Extract one (model, stimulus) and pass its activation gate; a Dask task or a serial call.

    ``job`` = (ModelConfig, ExtractConfig, ValidationConfig, stimulus, model folder, vlm?,
    loaded model or None). Without a loaded model (on a worker) the task loads it itself.
    Returns (model name, stimulus id, the extraction report).
    """
    model, cfg, vcfg, stim, model_dir, vlm, loaded = job
    set_offline_env()
    if loaded is None:
        check_device(cfg.device, "extract.device")  # a Dask worker may be a machine without it
        loaded = load_model(model_dir, model.trained, model.seed, cfg.device)
    report = (extract_events if vlm else extract_stimulus)(model, cfg, stim, model_dir, loaded=loaded)
    enforce_activation_gate(report["path"], vcfg)
    return model.name, stim.id, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="a key of `models` (repeat for several)")
    ap.add_argument("--materialise-all", action="store_true", help="build every model folder that needs it")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--materialise-only", action="store_true")
    args = ap.parse_args(argv)
    set_offline_env()
    try:
        params = load_params(args.params)
        by_name = params.models
        check_device(params.extract.device, "extract.device", args.params)
        if args.materialise_all:
            # the stage's output exists even when no model needs building (every source a folder)
            params.extract.model_cache.mkdir(parents=True, exist_ok=True)
            for src in sorted({m.source for m in by_name.values() if needs_materialise(m.source)}):
                print(json.dumps({"source": src, "model_dir": str(materialise(src, params.extract.model_cache))}))
            return 0
        if not args.model:
            ap.error("--model NAME or --materialise-all is required")
        for name in args.model:
            if name not in by_name:
                raise ConfigError(f"{args.params}: no model named {name!r} in models (have {sorted(by_name)})")
        cfg = params.extract
        model_dirs = {name: materialise(by_name[name].source, cfg.model_cache) for name in args.model}
        if args.materialise_only:
            for name, model_dir in model_dirs.items():
                print(json.dumps({"model": name, "model_dir": str(model_dir)}))
            return 0
        # Only runs that passed the data gates (stage `validate`) reach the models.
        valid = read_valid_runs(params.paths.metrics / "validation.json")
        runs = list(iter_runs(params.paths.prepared, run_ids=valid))
        done: dict[str, dict] = {name: {} for name in model_dirs}
        with open_executor(params.compute) as ex:
            # In process: one model in memory at a time, loaded once for all its stimuli. On Dask:
            # every (model, stimulus) at once, each worker task loading its own copy.
            batches = [[name] for name in model_dirs] if ex.in_process else [list(model_dirs)]
            for names in batches:
                jobs = []
                for name in names:
                    model, model_dir = by_name[name], model_dirs[name]
                    loaded = load_model(model_dir, model.trained, model.seed, cfg.device) if ex.in_process else None
                    family = loaded.family if loaded else model_family(model_dir)
                    # Vision-language models see image+caption events; text models see every stimulus's
                    # words (a movie's captions included). A VLM never gets a text-only stimulus.
                    vlm = family.name in vlm_families()
                    stims = event_stimuli_from_runs(runs) if vlm else stimuli_from_runs(runs)
                    jobs += [(model, cfg, params.validation, stim, model_dir, vlm, loaded) for stim in stims]
                for name, stim_id, report in ex.map(extract_task, jobs, key_prefix="extract"):
                    done[name][stim_id] = report.get("status")
                    print(json.dumps({"model": name, "stimulus": stim_id} | report))
                del jobs, loaded  # release this model before the next one loads
        # The stage's output always exists and says which stimuli this model saw (possibly none).
        for name, stims in done.items():
            write_text_atomic(cfg.output / name / "index.json",
                              json.dumps({"model": name, "stimuli": sorted(stims)}, indent=1) + "\n")
    except BrainlikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
