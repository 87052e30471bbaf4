"""One file-hashing helper for provenance (weights, sidecars, inputs)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path, block: int = 1 << 22) -> str:
    """sha256 of a file, read in blocks (constant memory for multi-GB weights)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(block), b""):
            h.update(chunk)
    return h.hexdigest()
