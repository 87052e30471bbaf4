#!/usr/bin/env python
"""Vendor the Data Docs' CDN assets from the npm registry (build time; see validation/docs.py).

Usage: python tools/vendor_assets.py [DEST]   (default: build/vendor, git-ignored)

Fetches the exact versions GX 1.24's Data Docs reference with `npm pack` and records the
resolved versions and integrity hashes in DEST/vendor.json. The `validate` stage copies the
files next to the generated docs and rewrites the links, so the docs render offline.
"""

from __future__ import annotations

import sys
from pathlib import Path

from brainlike.validation.docs import OfflineDocsError, vendor_assets


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dest = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "build" / "vendor"
    try:
        manifest = vendor_assets(dest)
    except OfflineDocsError as exc:
        print(f"vendor_assets: {exc}", file=sys.stderr)
        return 1
    for spec, info in sorted(manifest.items()):
        print(f"{spec:40s} -> {info['name']}@{info['version']}")
    print(f"vendored into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
