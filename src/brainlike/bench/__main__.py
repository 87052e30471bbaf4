"""Dispatch ``python -m brainlike.bench <name> [args]``."""

from __future__ import annotations

import sys

BENCHES = {
    "extract": "brainlike.bench.extract",
    "patterns": "brainlike.bench.patterns",
    "encode": "brainlike.bench.encode",
    "scaling": "brainlike.bench.scaling",
    "memory": "brainlike.bench.memory",
    "all": "brainlike.bench.all",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in BENCHES:
        print(f"usage: python -m brainlike.bench {{{','.join(BENCHES)}}} [args]", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(BENCHES[argv[0]]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
