"""Check that a Dask cluster gives the same organization metrics as the `dvc repro` run.

    python tools/compute_check.py [--params params.yaml] [--scheduler local] [--n-workers N]
                                  [--out build/compute-check] [--reference metrics/organization.json]

The same as ``python -m brainlike.checks compute``; the logic is in ``brainlike.checks.compute``.
"""

from __future__ import annotations

import sys

from brainlike.checks.compute import main

if __name__ == "__main__":
    sys.exit(main())
