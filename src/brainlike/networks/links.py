"""Reading the ``networks`` stage's link tables back: one table per model folder, read as one."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from .outputs import BOUNDS_DIR, LINKS_FILE


def read_links(root: str | Path, models: Iterable[str] | None = None) -> pd.DataFrame | None:
    """The link tables of ``models`` (default: every model folder under ``root`` except the
    bounds) concatenated in model order; None when none exists."""
    root = Path(root)
    names = sorted(p.parent.name for p in root.glob(f"*/{LINKS_FILE}")) if models is None else list(models)
    tables = [pd.read_parquet(root / m / LINKS_FILE) for m in names
              if m != BOUNDS_DIR and (root / m / LINKS_FILE).is_file()]
    return pd.concat(tables, ignore_index=True) if tables else None


def read_bound_links(root: str | Path) -> pd.DataFrame | None:
    """The link table of the benchmark's oracle and null (``<root>/bounds/``), None when absent."""
    path = Path(root) / BOUNDS_DIR / LINKS_FILE
    return pd.read_parquet(path) if path.is_file() else None
