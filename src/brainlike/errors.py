"""Errors users see: each names the file, the field and what was expected."""

from __future__ import annotations

from pathlib import Path


class BrainlikeError(Exception):
    """Base class of errors that the CLI reports as one clear line and exit code 1."""


class ConfigError(BrainlikeError):
    """params.yaml holds an unknown key or a bad value."""


class DataError(BrainlikeError):
    """An input file is missing, malformed or inconsistent.

    Parameters
    ----------
    path : str or Path or None
        The offending file (or folder).
    problem : str
        What is wrong and what was expected.
    field : str, optional
        The column, key or attribute concerned.
    """

    def __init__(self, path: str | Path | None, problem: str, field: str | None = None):
        self.path = None if path is None else str(path)
        self.field = field
        self.problem = problem
        where = self.path or "<input>"
        if field:
            where = f"{where} [{field}]"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        # pickle rebuilds from the real arguments, so a Dask worker's DataError reaches the caller intact
        return (type(self), (self.path, self.problem, self.field))


class OutputError(BrainlikeError):
    """An output cannot be written: the operating system refused (permission, disk full...).

    Parameters
    ----------
    path : str or Path
        The output being written (file or folder).
    problem : str
        The system's reason, with the file concerned when it is not ``path`` itself.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: cannot write: {problem} (nothing was replaced)")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))
