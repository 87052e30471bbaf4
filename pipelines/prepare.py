"""Stage `prepare`: every run (embedded default + datasets in params) -> data/prepared/."""

from brainlike.cli import run_stage
from brainlike.config import load_params
from brainlike.data.prepare import prepare_all


def main() -> None:
    params = load_params()
    prepare_all(params)


if __name__ == "__main__":
    run_stage(main)
