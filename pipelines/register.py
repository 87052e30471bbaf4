"""Stage `register`: every model's fit -> MLflow runs (idempotent) -> metrics/registry.json.

    python pipelines/register.py [--params params.yaml]
"""

from __future__ import annotations

import argparse

from brainlike.cli import run_stage
from brainlike.registry.stage import register_main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    register_main(args.params)


if __name__ == "__main__":
    run_stage(main)
