"""Command-line interface: ``brainlike <command>``.

Errors users can fix (bad params, bad data) print one clear message and exit 1; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from .._utils.offline import set_offline_env
from ..config import load_params
from ..errors import BrainlikeError


def run_stage(main: Callable[[], object]) -> None:
    """Run a DVC stage's ``main`` and turn user errors into exit code 1 with one message."""
    set_offline_env()
    try:
        main()
    except BrainlikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _cmd_config(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    print(json.dumps(params.model_dump(mode="json"), indent=2))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..validation.cli import validate_main

    return validate_main(args.paths, params_path=args.params)


def _cmd_ui(args: argparse.Namespace) -> int:
    from ..registry import ui_main

    return ui_main(["--params", args.params, *args.extra, *args.rest])


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..registry import compare_main

    return compare_main(["--params", args.params, *args.extra, *args.rest])


def _cmd_repro(args: argparse.Namespace) -> int:
    from .repro import repro_main

    return repro_main([*args.extra, *args.rest])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainlike", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("config", help="validate params.yaml and print the effective configuration")
    p.set_defaults(func=_cmd_config)
    p = sub.add_parser(
        "validate",
        help="run the data gates on BIDS runs, the Alice folder or prepared runs; exit 1 if any fails",
    )
    p.add_argument("paths", nargs="+", help="prepared store/run folder, Alice folder, or BIDS func file")
    p.set_defaults(func=_cmd_validate)
    p = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 against the project's registry", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_ui)
    p = sub.add_parser("compare", help="models ordered by generation, from the registry", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_compare)
    p = sub.add_parser("repro", help="dvc repro with independent stages side by side (same outputs)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_repro)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    set_offline_env()
    parser = build_parser()
    # `ui`, `compare` and `repro` pass their options through to their own parsers.
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("ui", "compare", "repro"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = [a for a in extra if a != "--"]
    try:
        return int(args.func(args) or 0)
    except BrainlikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
