"""Stage `register`: every model's fit -> MLflow runs (idempotent) -> metrics/registry.json."""

from brainlike.cli import run_stage
from brainlike.registry.stage import register_main

if __name__ == "__main__":
    run_stage(register_main)
