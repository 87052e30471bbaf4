"""Stage `atlases`: FBN atlases resampled onto fsaverage5, plus Seitzman-2018 ROIs."""

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.data.atlases import build_atlases


def main() -> None:
    params = load_params()
    build_atlases(params.atlases.names, params.paths.atlases, params.atlases.seitzman_radius_mm)


if __name__ == "__main__":
    run_stage(main)
