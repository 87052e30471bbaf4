"""Stage `patterns`: pattern bases (sparse dictionary learning) of one model's activations.

    python pipelines/patterns.py --model NAME [--params params.yaml]

Reads ``patterns:``, ``extract.output`` and ``paths.metrics`` from params.yaml; writes
``<patterns.output>/<NAME>/<stimulus>/`` and ``<paths.metrics>/patterns/<NAME>.json``. The
per-stimulus fits run where ``compute:`` says.
"""

from __future__ import annotations

import argparse
import json

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.patterns import run_patterns


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    metrics = run_patterns(args.model, params.patterns, params.extract.output, params.paths.metrics,
                           compute=params.compute)
    print(json.dumps({"model": args.model} | {k: {"r2": v["r2"], "sparsity": v["sparsity"]} for k, v in metrics.items()}))


if __name__ == "__main__":
    run_stage(main)
