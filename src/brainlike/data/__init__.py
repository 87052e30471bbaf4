"""Data layer: the run representation, loaders, surfaces, atlases, the embedded default."""

from .run import Run, check_words
from .store import iter_runs, read_manifest, read_run, write_store

__all__ = ["Run", "check_words", "iter_runs", "read_manifest", "read_run", "write_store"]
