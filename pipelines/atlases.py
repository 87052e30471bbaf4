"""Stage `atlases`: FBN atlases resampled onto fsaverage5, plus Seitzman-2018 ROIs.

    python pipelines/atlases.py [--params params.yaml]
"""

from __future__ import annotations

import argparse

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.data.atlases import build_atlases


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    build_atlases(params.atlases.names, params.paths.atlases, params.atlases.seitzman_radius_mm)


if __name__ == "__main__":
    run_stage(main)
