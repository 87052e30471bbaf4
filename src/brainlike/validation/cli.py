"""``brainlike validate PATH...``: the data gates without DVC (pre-commit / CI step).

Each PATH is loaded with :func:`brainlike.data.loaders.load_path` (a prepared store or run
folder, the Alice folder, a BIDS func file); every run is validated (a run whose file cannot
be read fails, the others are still judged); a per-run verdict table, each warning (e.g. a
missing motion file) and each failure (run, check, observed, expected) are printed. Exit status 1 when any run
fails or a path cannot be loaded, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import BrainlikeError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brainlike validate", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="PATH", help="prepared store/run, Alice folder or BIDS func file")
    p.add_argument("--params", type=Path, default=None,
                   help="params.yaml whose `validation:` thresholds to use (default: built-in defaults)")
    p.add_argument("--report", type=Path, default=None, help="also write the JSON report here")
    p.add_argument("--docs", type=Path, default=None, help="also write GX Data Docs into this folder")
    p.add_argument("--vendor", type=Path, default=None,
                   help="vendored assets (build/vendor) to make --docs render offline")
    return p


def validate_main(argv: list[str] | None = None, params_path: str | Path | None = None) -> int:
    """Entry point of ``brainlike validate``; returns the exit status.

    Parameters
    ----------
    argv : list of str
        ``PATH... [--params FILE] [--report JSON] [--docs DIR [--vendor DIR]]``.
    params_path : path, optional
        A params.yaml to take thresholds from when ``--params`` is not in ``argv`` and the
        file exists (the top-level ``brainlike --params``, default ``params.yaml``); a user
        validating data outside a project has none, and gets the built-in defaults.
    """
    args = _parser().parse_args(argv)
    if args.params is None and params_path is not None and Path(params_path).is_file():
        args.params = Path(params_path)
    try:
        return _run(args)
    except BrainlikeError as exc:
        print(f"brainlike validate: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from ..config import ValidationConfig, load_params
    from ..data.loaders import load_path  # heavy imports only when the command runs
    from .stage import build_report, validate_runs, verdict_table
    from .suites import Gates

    cfg = load_params(args.params).validation if args.params else ValidationConfig()
    runs = []
    unreadable: list = []  # runs whose files cannot be read: failed verdicts, the others go on
    for path in args.paths:
        runs.extend(load_path(path, failures=unreadable))
    gates = Gates(cfg)
    results = validate_runs(runs, gates, unreadable)
    print(verdict_table(results))
    warned = [r for r in results if r.warnings]
    if warned:
        print(f"\nwarnings ({sum(len(r.warnings) for r in warned)}):")
        for r in warned:
            for w in r.warnings:
                print(f"  WARNING {r.run_id}: {w}")
    bad = [r for r in results if not r.passed]
    if bad:
        print(f"\n{len(bad)} of {len(results)} run(s) failed:")
        for r in bad:
            for f in r.failures:
                print(f"  {f.message()}")
    else:
        print(f"\nall {len(results)} run(s) passed")
    docs = None
    if args.docs:
        from .._utils.atomic import atomic_path

        docs = {"path": str(args.docs), "offline": False}
        with atomic_path(args.docs) as tmp:
            gates.build_docs(tmp)
            if args.vendor:
                from .docs import make_offline

                docs |= {"offline": True, "pages": make_offline(tmp, args.vendor)["pages"]}
    if args.report:
        from .._utils.atomic import write_text_atomic

        report = build_report(results, cfg, docs)
        write_text_atomic(args.report, json.dumps(report, indent=2, allow_nan=False) + "\n")
    return 1 if bad else 0
