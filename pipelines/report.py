"""Stage `report`: comparison table from the registry, then the self-contained reports/index.html.

    python pipelines/report.py [--params params.yaml]
"""

from __future__ import annotations

import argparse

from brainlike.cli import run_stage
from brainlike.registry import compare_main
from brainlike.report.stage import report_main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    compare_main(["--params", args.params])
    report_main(args.params)


if __name__ == "__main__":
    run_stage(main)
