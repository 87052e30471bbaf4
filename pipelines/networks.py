"""Stages `spins`, `networks@<model>` and `networks_bounds`: group atom maps -> links to brain networks.

    python pipelines/networks.py --spins
    python pipelines/networks.py --model NAME
    python pipelines/networks.py --bounds

Reads ``networks:``, ``models``, ``encoding.output`` / ``bounds_output``, ``paths`` from params.yaml.
``--spins`` writes the spin-test rotations (``networks.spins``); ``--model`` writes
``<networks.output>/<NAME>/`` (links.parquet, thresholded maps per stimulus) and
``<paths.metrics>/networks/<NAME>.json``; ``--bounds`` the same for the benchmark's oracle and null
under ``bounds``. The (model, stimulus) matches run where ``compute:`` says.
"""

from __future__ import annotations

import argparse
import json

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.errors import ConfigError
from brainlike.networks.stage import run_networks, run_spins


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--model")
    who.add_argument("--bounds", action="store_true")
    who.add_argument("--spins", action="store_true")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    p = load_params(args.params)
    if args.spins:
        print(run_spins(p.networks, p.paths.atlases, p.networks.spins).as_posix())
        return
    if args.model is not None and args.model not in p.models:
        raise ConfigError(f"--model {args.model!r} is not a key of `models` in {args.params} "
                          f"(have: {', '.join(sorted(p.models))})")
    s = run_networks([] if args.bounds else [args.model], p.networks, p.encoding.output, p.paths.atlases,
                     p.networks.output, p.paths.metrics, compute=p.compute,
                     bounds_root=p.encoding.bounds_output if args.bounds else None, spins_file=p.networks.spins)
    print(json.dumps({m: {st: v["n_links"] for st, v in d.items()} for g in s.values() for m, d in g["models"].items()}))


if __name__ == "__main__":
    run_stage(main)
