"""Stage `extract`: activations of one model on every prepared stimulus, aligned to TRs.

    python pipelines/extract.py --model NAME [--params params.yaml] [--materialise-only]
    python pipelines/extract.py --materialise-all        (stage `materialise`)

Reads ``models:``, ``extract:`` and ``paths.prepared`` from params.yaml; writes
``<extract.output>/<NAME>/<stimulus>/``. ``--materialise-only`` builds the model folder
under ``extract.model_cache`` (stage `materialise`) and stops.
"""

from __future__ import annotations

import argparse
import json
import sys

from brainlike.activations import extract_stimulus, load_model, materialise, needs_materialise, stimuli_from_runs
from brainlike.activations.gate import enforce_activation_gate
from brainlike.activations.vlm import event_stimuli_from_runs, extract_events, vlm_families
from brainlike._utils.atomic import write_text_atomic
from brainlike.cli import set_offline_env
from brainlike.config import load_params
from brainlike.data import iter_runs
from brainlike.errors import BrainlikeError, ConfigError
from brainlike.validation import read_valid_runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model")
    ap.add_argument("--materialise-all", action="store_true", help="build every model folder that needs it")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--materialise-only", action="store_true")
    args = ap.parse_args(argv)
    set_offline_env()
    try:
        params = load_params(args.params)
        by_name = params.models
        if args.materialise_all:
            for src in sorted({m.source for m in by_name.values() if needs_materialise(m.source)}):
                print(json.dumps({"source": src, "model_dir": str(materialise(src, params.extract.model_cache))}))
            return 0
        if not args.model:
            ap.error("--model NAME or --materialise-all is required")
        if args.model not in by_name:
            raise ConfigError(f"{args.params}: no model named {args.model!r} in models (have {sorted(by_name)})")
        model, cfg = by_name[args.model], params.extract
        model_dir = materialise(model.source, cfg.model_cache)
        if args.materialise_only:
            print(json.dumps({"model": model.name, "model_dir": str(model_dir)}))
            return 0
        # Only runs that passed the data gates (stage `validate`) reach the models.
        valid = read_valid_runs(params.paths.metrics / "validation.json")
        runs = list(iter_runs(params.paths.prepared, run_ids=valid))
        loaded = load_model(model_dir, model.trained, model.seed, cfg.device)
        # Vision-language models see image+caption events; text models see every stimulus's
        # words (a movie's captions included). A VLM never gets a text-only stimulus.
        if loaded.family.name in vlm_families():
            jobs = [(stim, extract_events) for stim in event_stimuli_from_runs(runs)]
        else:
            jobs = [(stim, extract_stimulus) for stim in stimuli_from_runs(runs)]
        done = {}
        for stim, extract in jobs:
            report = extract(model, cfg, stim, model_dir, loaded=loaded)
            enforce_activation_gate(report["path"], params.validation)
            done[stim.id] = report.get("status")
            print(json.dumps({"model": model.name, "stimulus": stim.id} | report))
        # The stage's output always exists and says which stimuli this model saw (possibly none).
        write_text_atomic(cfg.output / model.name / "index.json", json.dumps({"model": model.name, "stimuli": sorted(done)}, indent=1) + "\n")
    except BrainlikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
