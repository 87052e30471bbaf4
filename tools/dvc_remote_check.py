#!/usr/bin/env python
"""DVC remote round trip check of a workspace (CI: ``make remote-check`` after ``make run``).

Usage: python tools/dvc_remote_check.py [WORKSPACE] [--compare GLOB]... [--tmp DIR] [--keep] [-j N]

Pushes every cached output of WORKSPACE (whose ``dvc status`` must be clean) to a fresh
temporary local remote, pulls into a fresh copy of its git-visible files with an empty cache,
and checks that ``dvc status`` is clean there and ``dvc repro --dry`` would run nothing.
Prints a JSON report. Exit 0: pass; 1: the round trip failed; 2: WORKSPACE is not clean.
The same as ``python -m brainlike.checks remote``; the logic is in ``brainlike.checks.remote``.
"""

from __future__ import annotations

import sys

from brainlike.checks.remote import main

if __name__ == "__main__":
    sys.exit(main())
