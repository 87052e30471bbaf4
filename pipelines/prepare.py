"""Stage `prepare`: every run (embedded default + datasets in params) -> data/prepared/.

    python pipelines/prepare.py [--params params.yaml]
"""

from __future__ import annotations

import argparse

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.data.prepare import prepare_all


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    prepare_all(load_params(args.params))


if __name__ == "__main__":
    run_stage(main)
