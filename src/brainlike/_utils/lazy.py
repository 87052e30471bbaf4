"""Package exports imported on first use (PEP 562), so a stage pays only for what it imports.

A package whose ``__init__`` imported every submodule made ``from ..patterns.outputs import X``
(a file-name constant) load torch and the solvers: ~2 s at the start of every stage process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``package``: ``exports[name]`` is the submodule that
    defines ``name``; it is imported, and the value cached in the package, on first access."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
