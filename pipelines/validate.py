"""Stage `validate`: the data gates on every prepared run -> metrics/validation.json + Data Docs.

    python pipelines/validate.py [--params params.yaml]
"""

from __future__ import annotations

import argparse

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.validation import run_validation


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    run_validation(
        params.paths.prepared,
        params.validation,
        params.paths.metrics / "validation.json",
        params.paths.data_docs,
        vendor_dir=params.paths.vendor,
        policies={d.name: d.on_invalid for d in params.datasets if d.on_invalid is not None},
    )


if __name__ == "__main__":
    run_stage(main)
