"""Outputs a re-run reproduces byte for byte: what would break that, and where the time went.

- ``python -m brainlike.checks portable [PATH ...]``: every text output under the tracked
  paths (default :data:`TRACKED`) is searched for a path of this machine (the repository root,
  ``$HOME``, the Python prefix, ``site-packages``) and every JSON file for a wall-time key
  (:data:`~brainlike._utils.reproducible.TIMING_KEYS`); exit 1 listing each hit.
- ``python -m brainlike.checks times [FOLDER]``: the per-stage wall times the stages logged
  to ``build/timings`` (untracked), as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._utils.reproducible import TIMING_KEYS, TIMINGS_DIR, build_dir, read_timings

# What `dvc repro` writes that git or dvc.lock tracks (data/raw and data/models are inputs).
TRACKED = ("dvc.lock", "metrics", "reports", "data/atlases", "data/prepared", "data/activations", "data/patterns",
           "data/encoding", "data/networks")
TEXT_SUFFIXES = frozenset({".json", ".csv", ".html", ".lock", ".yaml", ".yml", ".txt", ".md", ".tsv", ".js", ".css"})
MAX_TEXT_BYTES = 64 << 20
_SKIP_PARTS = frozenset({".partial", ".git", ".dvc"})
# benchmark results (`python -m brainlike.bench`) are measurements of time by design; they are
# written by hand on a quiet machine, not by `dvc repro`
_SKIP_NAMES = ("bench",)


@dataclass(frozen=True)
class Finding:
    """One reason a file would differ on another machine or another run."""

    path: Path
    what: str  # "path" or "timing"
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what} {self.detail}"


def machine_paths(root: str | Path) -> list[str]:
    """Absolute paths of this machine that no output may contain (longest first)."""
    cands = {str(Path(root)), str(Path(root).resolve()), sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix)}
    home = os.environ.get("HOME", "")
    if len(home.rstrip("/")) > 1:
        cands.add(home.rstrip("/"))
    cands |= {"site-packages", "dist-packages"}
    return sorted((c for c in cands if c and c != "/"), key=len, reverse=True)


def text_files(paths: Iterable[str | Path]) -> list[Path]:
    """Text outputs (by suffix, at most :data:`MAX_TEXT_BYTES`) under ``paths``; missing paths are skipped."""
    out = []
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
        for f in files:
            if _SKIP_PARTS.isdisjoint(f.parts) and (f.suffix in TEXT_SUFFIXES or f.name == "dvc.lock") \
                    and not f.name.startswith(_SKIP_NAMES) and f.stat().st_size <= MAX_TEXT_BYTES:
                out.append(f)
    return out


def _timing_keys(obj, where: str = "") -> Iterable[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in TIMING_KEYS:
                yield f"{where}.{k}".lstrip(".")
            yield from _timing_keys(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _timing_keys(v, f"{where}[{i}]")


def scan(paths: Iterable[str | Path], root: str | Path = ".") -> list[Finding]:
    """Findings in the text outputs under ``paths``: machine paths (:func:`machine_paths` of
    ``root``) anywhere, timing keys in JSON."""
    needles = machine_paths(root)
    found: list[Finding] = []
    for f in text_files(paths):
        text = f.read_text(encoding="utf-8", errors="replace")
        for n in needles:
            i = text.find(n)
            if i >= 0:
                line = text.count("\n", 0, i) + 1
                found.append(Finding(f, "path", f"{n!r} at line {line}"))
                break
        if f.suffix == ".json":
            try:
                obj = json.loads(text)
            except ValueError:
                continue  # not ours to judge here; the stages' readers say what is wrong
            found += [Finding(f, "timing", f"key {k}") for k in _timing_keys(obj)]
    return found


def stage_seconds(timings: dict) -> float | None:
    """A stage's wall seconds: its ``total_s`` (or ``seconds``), or the sum over its parts."""
    for key in ("total_s", "seconds", "this_call_s"):
        if isinstance(timings.get(key), (int, float)):
            return float(timings[key])
    parts = [stage_seconds(v) for v in timings.values() if isinstance(v, dict)]
    parts = [p for p in parts if p is not None]
    return sum(parts) if parts else None


def times_table(timings: dict[str, dict]) -> str:
    """``stage  seconds`` rows sorted by stage, and the sum."""
    rows = [(stage, stage_seconds(t)) for stage, t in timings.items()]
    width = max([len(s) for s, _ in rows] + [5])
    lines = [f"{'stage':{width}s}  seconds"]
    lines += [f"{s:{width}s}  {'-' if v is None else f'{v:8.1f}'}" for s, v in rows]
    lines.append(f"{'total':{width}s}  {sum(v for _, v in rows if v is not None):8.1f}")
    return "\n".join(lines)


def portable_main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brainlike.checks portable",
                                 description="No machine path or wall time in the tracked outputs")
    ap.add_argument("paths", nargs="*", default=list(TRACKED))
    args = ap.parse_args(argv)
    found = scan(args.paths, Path.cwd())
    for f in found:
        print(f)
    n = len(text_files(args.paths))
    print(f"{n} text output(s) checked: " + (f"{len(found)} problem(s)" if found else "no machine path, no wall time"),
          file=sys.stderr if found else sys.stdout)
    return 1 if found else 0


def times_main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brainlike.checks times",
                                 description="Per-stage wall times of the last `dvc repro` (build/timings)")
    ap.add_argument("folder", nargs="?", default=None, help=f"default: build/{TIMINGS_DIR}")
    args = ap.parse_args(argv)
    folder = Path(args.folder) if args.folder else build_dir() / TIMINGS_DIR
    timings = read_timings(folder)
    if not timings:
        print(f"no timings in {folder} (the stages write them when they run)", file=sys.stderr)
        return 1
    print(times_table(timings))
    return 0
