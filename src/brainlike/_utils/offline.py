"""The environment every entry point and worker task sets: offline and quiet."""

from __future__ import annotations

import os

# The project's tools run offline and quietly wherever the CLI, a stage or a worker starts them.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
}


def set_offline_env() -> None:
    """Set each variable of :data:`OFFLINE_ENV` unless the environment already sets it."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
