"""Reading the ``networks`` stage's link tables back: one table per model folder, read as one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .outputs import BOUNDS_DIR, LINKS_FILE, LINKS_MARGINAL_FILE


def read_links(root: str | Path, models: Iterable[str] | None = None, marginal: bool = False) -> pd.DataFrame | None:
    """The link tables of ``models`` (default: every model folder under ``root`` except the
    bounds) concatenated in model order; None when none exists. ``marginal``: the links of the
    marginal maps (each atom fitted alone) instead of the joint GLM's."""
    root = Path(root)
    name = LINKS_MARGINAL_FILE if marginal else LINKS_FILE
    names = sorted(p.parent.name for p in root.glob(f"*/{name}")) if models is None else list(models)
    tables = [pd.read_parquet(root / m / name) for m in names
              if m != BOUNDS_DIR and (root / m / name).is_file()]
    return pd.concat(tables, ignore_index=True) if tables else None


def read_bound_links(root: str | Path) -> pd.DataFrame | None:
    """The link table of the benchmark's oracle and null (``<root>/bounds/``), None when absent."""
    path = Path(root) / BOUNDS_DIR / LINKS_FILE
    return pd.read_parquet(path) if path.is_file() else None
