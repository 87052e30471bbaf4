"""Shared fixtures. Keep helpers in functions: nothing here runs at import time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import brainlike  # noqa: F401  (first: pins the float kernels before a test module loads numpy)


def alice_dir() -> Path:
    """Where the real Alice data live: ``$BRAINLIKE_ALICE``, else the repository's copy ``data/raw/alice-brennan2016``."""
    env = os.environ.get("BRAINLIKE_ALICE")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "data/raw/alice-brennan2016"


ATLAS_NAMES = ["yeo7", "yeo17", "cole_anticevic12"]


@pytest.fixture(scope="session")
def atlas_root(tmp_path_factory) -> Path:
    """The repository's atlas store (after `make run`), else one fresh build (no plots) for the
    whole session: building the three atlases takes a while, so it happens once, not per module."""
    root = Path(__file__).resolve().parents[1] / "data" / "atlases"
    if (root / "networks.json").is_file() and (root / "networks.parquet").is_file():
        return root
    from brainlike.data.atlases import build_atlases

    root = tmp_path_factory.mktemp("atlases") / "atlases"
    build_atlases(ATLAS_NAMES, root, seitzman_radius_mm=5.0, plots=False)
    return root


@pytest.fixture(scope="session")
def alice_path() -> Path:
    """The real Alice (Brennan 2016) folder; skips the test when it is absent (a fresh clone)."""
    path = alice_dir()
    if not (path / "roi_6mm").is_dir():
        pytest.skip(f"real Alice data not found at {path} (set BRAINLIKE_ALICE to its folder)")
    return path


@pytest.fixture(scope="session", autouse=True)
def build_dir(tmp_path_factory) -> Path:
    """The stages' untracked ``build/`` (timing logs, registry run ids) in a temporary folder:
    tests never write into the checkout's own ``build/``."""
    path = tmp_path_factory.mktemp("build")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRAINLIKE_BUILD", str(path))
        yield path
