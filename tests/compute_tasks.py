"""Tasks of tests/test_compute.py, in a module of their own: a Dask worker unpickles a task by
importing its module, and this one imports only numpy (test_compute imports the stages)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from brainlike.errors import DataError


def solve(seed: int) -> np.ndarray:
    """A small numeric task whose result depends on its seed (and on BLAS)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((60, 60))
    return np.linalg.solve(a @ a.T + np.eye(60), rng.standard_normal(60)) * seed


def slow_identity(i: int) -> int:
    time.sleep(0.05 * (5 - i))  # later items finish first: order must come from the inputs
    return i


def bad_input(i: int) -> int:
    if i == 2:
        raise DataError(f"/data/item-{i}.npz", "expected 3 columns", "values")
    return i


def die_once(item: tuple[int, str]) -> tuple[int, int]:
    """Item 1 kills its own worker process on its first attempt (a marker file remembers it)."""
    i, marker = item
    if i == 1 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return i * i, os.getpid()
