"""Command-line interface: ``brainlike <command>``.

Errors users can fix (bad params, bad data) print one clear message and exit 1; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from ..config import load_params
from ..errors import BrainlikeError

# The project's tools run offline and quietly wherever the CLI or a stage starts them.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
}


def set_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    set_offline_env()
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrainlikeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
