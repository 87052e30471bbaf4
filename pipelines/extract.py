"""Stage `extract`: activations of one model on every prepared stimulus, aligned to TRs.

    python pipelines/extract.py --model NAME [--model NAME2 ...] [--params params.yaml] [--materialise-only]
    python pipelines/extract.py --materialise-all        (stage `materialise`)

Reads ``models:``, ``extract:`` and ``paths.prepared`` from params.yaml; writes
``<extract.output>/<NAME>/<stimulus>/``. ``--materialise-only`` builds the model folder
under ``extract.model_cache`` (stage `materialise`) and stops. The work is
:func:`brainlike.activations.stage.run_extract` (where ``compute:`` says; several ``--model``
let a cluster extract a whole model zoo at once).
"""

from __future__ import annotations

import argparse
import json

from brainlike.activations.stage import materialise_all, run_extract
from brainlike.cli import run_stage
from brainlike.config import load_params


def _print(row: dict) -> None:
    print(json.dumps(row), flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", help="a key of `models` (repeat for several)")
    ap.add_argument("--materialise-all", action="store_true", help="build every model folder that needs it")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--materialise-only", action="store_true")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    if args.materialise_all:
        for row in materialise_all(params):
            _print(row)
        return
    if not args.model:
        ap.error("--model NAME or --materialise-all is required")
    run_extract(args.model, params, materialise_only=args.materialise_only, on_result=_print)


if __name__ == "__main__":
    run_stage(main)
