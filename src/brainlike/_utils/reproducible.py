"""Outputs that are the same bytes on every machine and every run.

Three things make a stage's output differ between two runs of the same inputs, and each has a
helper here:

- **paths of the machine** (``/home/me/clone/.venv/lib/python3.11/site-packages/...``):
  :func:`portable_path` names a file inside an installed package as ``package:path/in/package``
  (``brainspace:datasets/preprocessing/x.mgz``, ``brainlike:data/embedded/story.txt``) and a
  file of the repository relative to the repository root (the working directory of a DVC
  stage); anything else (data outside the clone, given in params.yaml) is kept as given.
- **wall times**: they do not belong in DVC-tracked files. :func:`write_timings` logs them to
  the untracked ``build/timings/<stage>.json`` (``python -m brainlike.checks times`` prints the
  table).
- **dates** a format asks for (the run time of the data docs): :func:`source_date`.

(``numpy.savez`` needs nothing: its zip members carry the fixed date 1980-01-01.)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from .atomic import write_text_atomic

# Folder of the untracked per-stage timing logs; BRAINLIKE_BUILD moves ``build/`` (tests do).
BUILD_ENV = "BRAINLIKE_BUILD"
TIMINGS_DIR = "timings"
# Keys that hold wall-clock durations: never in a DVC-tracked output (tests/test_reproducible.py).
# (``*_s`` alone is no criterion: ``speech_span_s`` or ``high_pass_s`` are stimulus durations.)
# Nor ``timing``: it is also a planted feature kind.
TIMING_KEYS = frozenset({"seconds", "total_s", "fit_s", "elapsed_s", "wall_s", "timing_s", "maps_s", "targets_s",
                         "spins_s", "task_s", "forward_s", "this_call", "this_call_s", "shared_s"})
# matplotlib's PNG metadata without its version string (PNG carries no date unless asked).
PNG_METADATA = {"Software": None}
# The date when none is given: the earliest a zip member can carry (numpy.savez uses it too).
EPOCH_1980 = (1980, 1, 1, 0, 0, 0)
_PACKAGE_DIRS = ("site-packages", "dist-packages")


def _own_package_dir() -> Path:
    return Path(__file__).resolve().parents[1]


def portable_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """``path`` as written in an output: the same string on every machine.

    Parameters
    ----------
    path : str or path-like
        A file or folder.
    root : str or path-like, optional
        The repository root (default: the working directory, which is the root in a DVC stage).

    Returns
    -------
    str
        ``"package:relative/path"`` for a file inside an installed package (or brainlike's own
        package, installed or editable), the POSIX path relative to ``root`` for a file inside
        the repository, else ``path`` unchanged (a relative path stays relative).
    """
    p = PurePath(os.fspath(path))
    if not p.is_absolute():
        return p.as_posix()
    parts = p.parts
    # before the repository root: a venv may live inside the clone; the innermost site-packages wins
    idx = [i for i, part in enumerate(parts) if part in _PACKAGE_DIRS and i + 2 < len(parts)]
    if idx:
        i = idx[-1]
        return f"{parts[i + 1]}:{PurePath(*parts[i + 2:]).as_posix()}"
    real = Path(p).resolve()
    own = _own_package_dir()
    if real.is_relative_to(own):
        return f"{own.name}:{real.relative_to(own).as_posix()}"
    base = Path(root if root is not None else Path.cwd()).resolve()
    if real.is_relative_to(base):
        return real.relative_to(base).as_posix() or "."
    return str(path)


def portable_paths(obj: Any, root: str | os.PathLike | None = None) -> Any:
    """A copy of ``obj`` (JSON-like: dicts, lists, scalars) with every absolute path string made
    portable by :func:`portable_path`; other values unchanged."""
    if isinstance(obj, Mapping):
        return {k: portable_paths(v, root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable_paths(v, root) for v in obj]
    if isinstance(obj, PurePath) or (isinstance(obj, str) and obj.startswith("/") and "\n" not in obj):
        return portable_path(obj, root)
    return obj


def source_date() -> _dt.datetime:
    """The date written where a format wants one (a report's "run time"): ``$SOURCE_DATE_EPOCH``
    (the reproducible-builds convention) if set, else 1980-01-01, both UTC -- never the clock."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
    return _dt.datetime(*EPOCH_1980, tzinfo=_dt.timezone.utc)


def build_dir() -> Path:
    """The untracked build folder: ``$BRAINLIKE_BUILD``, else ``build`` in the working directory."""
    return Path(os.environ.get(BUILD_ENV) or "build")


def write_timings(stage: str, timings: Mapping[str, Any], part: str | None = None) -> Path:
    """Log a stage's wall times to ``build/timings/<stage>[.<part>].json`` (replaced atomically).

    Parameters
    ----------
    stage : str
        The DVC stage name (``encode@minilm-l6``).
    timings : mapping
        JSON-serialisable seconds, nested as the stage likes; ``total_s`` is what
        ``python -m brainlike.checks times`` adds up per stage.
    part : str, optional
        For a stage that logs several independent pieces (one per stimulus).

    Returns
    -------
    Path
        The file written.
    """
    for what, name in (("stage", stage), ("part", part)):
        if name is not None and (not name or "/" in name or name.startswith(".")):
            raise ValueError(f"write_timings: {what} name {name!r} must be non-empty, without '/' or a leading '.'")
    path = build_dir() / TIMINGS_DIR / (f"{stage}.{part}.json" if part else f"{stage}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"stage": stage, "part": part, "timings": dict(timings)}
    write_text_atomic(path, json.dumps(rec, indent=1, default=float) + "\n")
    return path


def read_timings(folder: str | os.PathLike | None = None) -> dict[str, dict]:
    """Every log of ``build/timings``: ``{stage: timings}`` for whole stages and
    ``{stage: {part: timings}}`` for stages logged in parts; sorted by stage name."""
    d = Path(folder) if folder is not None else build_dir() / TIMINGS_DIR
    out: dict[str, dict] = {}
    for f in sorted(d.glob("*.json")):
        rec = json.loads(f.read_text())
        stage, part = rec.get("stage", f.stem), rec.get("part")
        if part:
            out.setdefault(stage, {})[part] = rec.get("timings", {})
        else:
            out[stage] = rec.get("timings", {})
    return dict(sorted(out.items()))
