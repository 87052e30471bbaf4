"""``python -m brainlike.checks {remote,compute,reproduce,committed,host,portable,times,zoo} [ARGS]``: run one end-to-end check; its exit status."""

from __future__ import annotations

import sys
from collections.abc import Sequence

CHECKS = {
    "remote": "DVC remote round trip of a clean workspace (push, pull into a fresh copy, nothing re-runs)",
    "compute": "Dask run of encode -> networks -> metrics gives the serial organization.json",
    "reproduce": "re-run the pipeline (or --target stages) in a scratch copy and compare with the committed outputs",
    "committed": "the tracked outputs after a run against HEAD: byte for byte on the CPU that built them",
    "host": "this CPU's signature (--record: the committed outputs were built on it)",
    "portable": "no path of this machine and no wall time in the tracked outputs",
    "times": "per-stage wall times of the last run (build/timings)",
    "zoo": "the model-zoo experiment: the default plus experiments/zoo.yaml in build/zoo, comparison to metrics/zoo/",
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in CHECKS:
        asked = bool(args) and args[0] in ("-h", "--help")
        lines = "\n".join(f"  {name:8s} {what}" for name, what in CHECKS.items())
        print(f"usage: python -m brainlike.checks {{{','.join(CHECKS)}}} [ARGS]\n{lines}",
              file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    # import only the check asked for: the compute check loads every stage of the pipeline
    if args[0] == "remote":
        from .remote import main as check
    elif args[0] == "reproduce":
        from .reproduce import main as check
    elif args[0] == "committed":
        from .committed import main as check
    elif args[0] == "host":
        from .committed import host_main as check
    elif args[0] == "portable":
        from .reproducible import portable_main as check
    elif args[0] == "times":
        from .reproducible import times_main as check
    elif args[0] == "zoo":
        from .zoo import main as check
    else:
        from .compute import main as check
    return check(args[1:])


if __name__ == "__main__":
    sys.exit(main())
