"""Stage `encode`: encoding models of one model's atoms (or the baseline regressors, or the bounds).

    python pipelines/encode.py --model NAME
    python pipelines/encode.py --baseline
    python pipelines/encode.py --bounds

Reads ``encoding:``, ``patterns.output``, ``paths`` from params.yaml and the valid runs of
``<paths.metrics>/validation.json``; writes ``<encoding.output>/<NAME>/<stimulus>/`` and
``<paths.metrics>/encode/<NAME>.json`` (baseline: ``<encoding.baseline_output>/<stimulus>/`` and
``<paths.metrics>/encode_baseline.json``; bounds: ``<encoding.bounds_output>/{oracle,null}/<stimulus>/``
for every embedded stimulus). The per-run fits run where ``compute:`` says
(``$BRAINLIKE_COMPUTE_SCHEDULER`` overrides it); the outputs are the same for every choice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.encoding.stage import run_baseline, run_bounds, run_encode
from brainlike.errors import ConfigError


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--model")
    who.add_argument("--baseline", action="store_true")
    who.add_argument("--bounds", action="store_true")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    p = load_params(args.params)
    if p.encoding.threads:
        import torch

        torch.set_num_threads(p.encoding.threads)
    validation = Path(p.paths.metrics) / "validation.json"
    if args.baseline:
        out = run_baseline(p.encoding, p.paths.prepared, validation, p.paths.atlases, p.paths.metrics,
                           compute=p.compute)
        name = "baseline"
    elif args.bounds:
        res = run_bounds(p.encoding, p.encoding.bounds_output, p.paths.prepared, validation, p.paths.atlases,
                         compute=p.compute)
        print(json.dumps({n: {s: {"r_mean": v["group"]["r_mean"]} for s, v in o.items()} for n, o in res.items()}))
        return
    else:
        if args.model not in p.models:
            raise ConfigError(f"--model {args.model!r} is not a key of `models` in {args.params} "
                              f"(have: {', '.join(sorted(p.models))})")
        out = run_encode(args.model, p.encoding, p.patterns.output, p.paths.prepared, validation,
                         p.paths.atlases, p.paths.metrics, compute=p.compute)
        name = args.model
    # wall times are in build/timings (`python -m brainlike.checks times`), not in the outputs
    print(json.dumps({name: {s: {"r_mean": v["group"]["r_mean"], "r_top": v["group"]["r_top"]}
                             for s, v in out.items()}}))


if __name__ == "__main__":
    run_stage(main)
