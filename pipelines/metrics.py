"""Stage `metrics`: organization metrics per model, recovery of the planted answer, real-data verdict.

    python pipelines/metrics.py

Writes ``<paths.metrics>/organization.json``, ``organization.parquet``, ``recovery.json`` and
``alice.json``.
"""

from __future__ import annotations

import argparse
import json

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.metrics.stage import run_metrics


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    out = run_metrics(load_params(args.params))
    rec = out["recovery"].get("summary", out["recovery"])
    print(json.dumps({"recovery": rec, "alice": out["alice"].get("verdicts", out["alice"].get("status")),
                      "total_s": out.get("total_s")}, default=str))


if __name__ == "__main__":
    run_stage(main)
