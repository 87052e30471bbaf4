"""Stage `networks`: every model's group atom maps -> links to functional brain networks.

    python pipelines/networks.py

Reads ``networks:``, ``models``, ``encoding.output`` / ``bounds_output``, ``paths`` from params.yaml; writes
``<networks.output>/`` (links.parquet, per-model thresholded maps, bounds/links.parquet) and
``<paths.metrics>/networks.json``.
The (model, stimulus) matches run where ``compute:`` says.
"""

from __future__ import annotations

import argparse
import json

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.networks.stage import run_networks


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    p = load_params(args.params)
    s = run_networks(sorted(p.models), p.networks, p.encoding.output, p.paths.atlases, p.networks.output,
                     p.paths.metrics, compute=p.compute, bounds_root=p.encoding.bounds_output)
    print(json.dumps({m: {st: v["n_links"] for st, v in d.items()} for m, d in s["models"].items()}))


if __name__ == "__main__":
    run_stage(main)
