"""DVC remote round trip: what one lab member pushes, another can pull without re-running a stage.

The check (``python -m brainlike.checks remote``, ``make remote-check``) takes a workspace ``W`` whose
``dvc status`` is clean and

1. pushes every cached output of ``W`` to a fresh local remote ``R``. ``R`` is defined in a
   temporary DVC *system* config (``DVC_SYSTEM_CONFIG_DIR``), so no config of ``W`` -- not
   even its git-ignored ``.dvc/config.local`` -- is written and an interrupted check leaves
   no remote behind in ``W``;
2. builds ``W2``: ``W``'s git-visible files (tracked, plus untracked ones that are not ignored:
   what the next commit would hold) as they are in the working tree, ``dvc.lock`` included, no
   outputs and an empty cache of its own -- a colleague's fresh clone;
3. in ``W2``: a ``.dvc/config.local`` naming ``R`` (default remote) and ``W2``'s own cache,
   ``dvc pull``; then ``dvc status`` must be clean and ``dvc repro --dry`` must not run (or
   restore from the run cache) any stage;
4. compares pulled files with ``W``'s (relative paths and sizes of every cached output, sha256
   of the files matching ``compare`` globs).

``cache: false`` outputs (metrics, ``metrics/organization.parquet``) are not pushed: they
travel with git, so ``W2`` gets them from the copy. Run with ``python -m
brainlike.checks remote W`` (exit 0 pass, 1 round trip failed, 2 ``W`` not clean).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import BrainlikeError, DataError
from .outputs import (
    DEFAULT_COMPARE,
    CachedOutput,
    DirtyWorkspaceError,
    _git,
    _rmtree,
    _tail,
    cached_outputs,
    compare_outputs,
    git_visible_files,
    missing_objects,
    run_dvc,
    stale_stages,
    tree_stats,
    would_run,
)

#: Remote name used for the temporary remote (in ``W``'s temporary system config and in ``W2``).
REMOTE_NAME = "brainlike-roundtrip"


@dataclass
class RoundTripReport:
    """Outcome of :func:`round_trip` (``to_json`` is what the CLI prints)."""

    workspace: str
    remote: str
    workspace_copy: str
    cached_outputs: int = 0
    persist_outputs: list[str] = field(default_factory=list)
    uncached_outputs: list[str] = field(default_factory=list)
    files_pushed: int | None = None
    remote_objects: int = 0
    bytes_pushed: int = 0
    push_s: float = 0.0
    files_pulled: int = 0
    bytes_pulled: int = 0
    pull_s: float = 0.0
    status_after_pull: dict = field(default_factory=dict)
    would_run: list[str] = field(default_factory=list)
    compared: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    verdict: str = "fail"

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=False)


# -- the round trip ---------------------------------------------------------------------------


def push_outputs(
    workspace: str | Path, remote_dir: str | Path, scratch: str | Path, jobs: int | None = None
) -> tuple[int | None, float]:
    """``dvc push`` every cached output of ``workspace`` to the local remote ``remote_dir``.

    The remote lives in a DVC system config under ``scratch``, so ``workspace`` is untouched.

    Returns
    -------
    files_pushed : int or None
        As DVC reports it (``N files pushed``); None when DVC printed no count.
    seconds : float
    """
    from dvc.dirs import system_config_dir

    sysconf = Path(scratch) / "dvc-system-config"
    sysconf.mkdir(parents=True, exist_ok=True)
    # Keep what the machine's system config says (a lab may set cache.dir there); add R.
    real = Path(system_config_dir()) / "config"
    base = real.read_text() if real.is_file() else ""
    (sysconf / "config").write_text(
        base.rstrip("\n") + f"\n['remote \"{REMOTE_NAME}\"']\n    url = {remote_dir}\n"
    )
    args = ["push", "-r", REMOTE_NAME] + (["-j", str(jobs)] if jobs else [])
    t0 = time.perf_counter()
    proc = run_dvc(args, workspace, env={"DVC_SYSTEM_CONFIG_DIR": str(sysconf)})
    seconds = time.perf_counter() - t0
    m = re.search(r"(\d+) files? pushed", proc.stdout + proc.stderr)
    if m is None and "Everything is up to date" in proc.stdout + proc.stderr:
        return 0, seconds
    return (int(m.group(1)) if m else None), seconds


def fresh_copy(workspace: str | Path, dest: str | Path) -> Path:
    """A colleague's clone of ``workspace`` at ``dest``: git-visible files, no outputs, no cache.

    ``dvc.lock`` files are copied even when git ignores them; ``.dvc/config.local``, the
    cache and every git-ignored output are not. The copy gets its own git repository (one
    commit); :func:`pull_outputs` gives it its own cache.
    """
    workspace, dest = Path(workspace), Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    names = set(git_visible_files(workspace))
    locks = {str(Path(n).with_name("dvc.lock")) for n in names if Path(n).name == "dvc.yaml"}
    names |= {n for n in locks if (workspace / n).is_file()}
    for rel in sorted(names):
        src, dst = workspace / rel, dest / rel
        if src.is_dir() and not src.is_symlink():
            continue  # a submodule's gitlink
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    if not (dest / ".dvc").is_dir():
        raise DataError(workspace / ".dvc", "not a DVC project (no tracked .dvc/ folder)")
    (dest / ".dvc" / "config.local").unlink(missing_ok=True)
    _git(["init", "-q"], dest)
    _git(["add", "-A"], dest)
    _git(["commit", "-q", "-m", "fresh copy of the workspace (brainlike.checks)"], dest)
    return dest


def pull_outputs(
    copy: str | Path,
    remote_dir: str | Path,
    outputs: Sequence[CachedOutput],
    cache_root: str | Path,
    env: Mapping[str, str] | None = None,
    jobs: int | None = None,
) -> float:
    """Point ``copy`` at ``remote_dir`` (its ``.dvc/config.local``) and ``dvc pull``.

    Returns the pull's wall time. A failed pull raises :class:`DataError` naming the
    outputs that were not restored and, where the remote lacks them, the objects.
    """
    copy = Path(copy)
    # What `dvc cache dir --local` + `dvc remote add --local -d` write, without two DVC starts.
    (copy / ".dvc" / "config.local").write_text(
        f"[core]\n    remote = {REMOTE_NAME}\n[cache]\n    dir = {copy / '.dvc' / 'cache'}\n"
        f"['remote \"{REMOTE_NAME}\"']\n    url = {remote_dir}\n"
    )
    args = ["pull", "-r", REMOTE_NAME] + (["-j", str(jobs)] if jobs else [])
    t0 = time.perf_counter()
    proc = run_dvc(args, copy, env=env, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        absent = [o.path for o in outputs if not (copy / o.path).exists()]
        lacking = missing_objects(remote_dir, outputs, cache_root)
        raise DataError(
            copy,
            f"`dvc pull` from {remote_dir} exited {proc.returncode}; outputs not restored: "
            f"{absent or 'none'}; remote lacks: {lacking or 'nothing'}; "
            f"dvc said: {_tail(proc, 600)}",
        )
    return seconds


def round_trip(
    workspace: str | Path,
    compare: Sequence[str] = DEFAULT_COMPARE,
    tmp_root: str | Path | None = None,
    keep: bool = False,
    jobs: int | None = None,
) -> RoundTripReport:
    """Push ``workspace``'s outputs to a fresh local remote, pull them into a fresh copy, verify.

    Parameters
    ----------
    workspace : str or Path
        A DVC project inside a git work tree whose ``dvc status`` is clean.
    compare : sequence of str
        Glob patterns (workspace-relative) of output files compared by sha256.
    tmp_root : str or Path, optional
        Where the remote and the copy are made (default: the system temp dir). For a
        realistic push timing, use the same file system as ``workspace``.
    keep : bool
        Keep the remote and the copy (their paths are in the report) instead of removing them.
    jobs : int, optional
        ``dvc push/pull -j``.

    Returns
    -------
    RoundTripReport
        ``verdict`` is ``"pass"`` only when the pull succeeded, ``dvc status`` of the copy is
        clean, ``dvc repro --dry`` runs nothing, the remote holds every object and the
        compared files are equal.

    Raises
    ------
    DirtyWorkspaceError
        ``dvc status`` of ``workspace`` is not clean (nothing is pushed).
    """
    workspace = Path(workspace).resolve()
    stale = stale_stages(workspace)
    if stale:
        raise DirtyWorkspaceError(workspace, stale)
    outputs, uncached, cache_root = cached_outputs(workspace)
    scratch = Path(tempfile.mkdtemp(prefix="brainlike-dvc-remote-", dir=tmp_root))
    remote_dir, copy = scratch / "remote", scratch / "workspace"
    report = RoundTripReport(str(workspace), str(remote_dir), str(copy))
    report.cached_outputs = len(outputs)
    report.persist_outputs = sorted(o.path for o in outputs if o.persist)
    report.uncached_outputs = uncached
    # W2's DVC state/index live in the scratch folder, not in the shared /var/tmp/dvc.
    copy_env = {"DVC_SITE_CACHE_DIR": str(scratch / "site-cache")}
    try:
        try:
            report.files_pushed, report.push_s = push_outputs(workspace, remote_dir, scratch, jobs)
        except DataError as exc:
            report.problems.append(str(exc))
            report.problems += missing_objects(remote_dir, outputs, cache_root)
            return _finish(report)
        report.remote_objects, report.bytes_pushed = (
            tree_stats(remote_dir) if remote_dir.exists() else (0, 0)
        )
        report.problems += missing_objects(remote_dir, outputs, cache_root)
        fresh_copy(workspace, copy)
        leftovers = [o.path for o in outputs if (copy / o.path).exists()]
        if leftovers:  # a cached output that git also tracks would not come from the remote
            report.problems.append(f"outputs present in the copy before the pull: {leftovers}")
        try:
            report.pull_s = pull_outputs(copy, remote_dir, outputs, cache_root, copy_env, jobs)
        except DataError as exc:
            report.problems.append(str(exc))
        else:
            for o in outputs:
                n, size = tree_stats(copy / o.path) if (copy / o.path).exists() else (0, 0)
                report.files_pulled += n
                report.bytes_pulled += size
            report.status_after_pull = stale_stages(copy, env=copy_env)
            if report.status_after_pull:
                report.problems.append(
                    f"`dvc status` after the pull is not clean: {sorted(report.status_after_pull)}"
                )
            report.would_run = would_run(copy, env=copy_env)
            if report.would_run:
                report.problems.append(f"`dvc repro --dry` would run {report.would_run}")
            report.compared, diffs = compare_outputs(workspace, copy, outputs, compare)
            report.problems += diffs
    finally:
        if not keep:
            _rmtree(scratch)
    return _finish(report)


def _finish(report: RoundTripReport) -> RoundTripReport:
    report.push_s, report.pull_s = round(report.push_s, 2), round(report.pull_s, 2)
    report.verdict = "fail" if report.problems else "pass"
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m brainlike.checks remote [WORKSPACE] [--compare GLOB]... [--keep]``.

    Prints the JSON report on stdout. Exit 0: pass; 1: the round trip failed; 2: the
    workspace's ``dvc status`` is not clean (the stages are printed on stderr).
    """
    parser = argparse.ArgumentParser(
        prog="dvc_remote_check",
        description="Push a clean DVC workspace to a temporary local remote, pull into a fresh "
        "copy with an empty cache, and check that no stage would re-run.",
    )
    parser.add_argument("workspace", nargs="?", default=".", help="DVC workspace (default: .)")
    parser.add_argument("--compare", action="append", metavar="GLOB",
                        help="output files compared by sha256 (repeatable; default: "
                        + ", ".join(DEFAULT_COMPARE) + ")")
    parser.add_argument("--tmp", default=None, help="folder for the remote and the copy")
    parser.add_argument("--keep", action="store_true", help="keep the remote and the copy")
    parser.add_argument("-j", "--jobs", type=int, default=None, help="dvc push/pull jobs")
    args = parser.parse_args(argv)
    try:
        report = round_trip(args.workspace, compare=tuple(args.compare or DEFAULT_COMPARE),
                            tmp_root=args.tmp, keep=args.keep, jobs=args.jobs)
    except DirtyWorkspaceError as exc:
        print(f"dvc_remote_check: {exc}", file=sys.stderr)
        print(json.dumps(exc.stages, indent=2, default=str), file=sys.stderr)
        return 2
    except BrainlikeError as exc:
        print(f"dvc_remote_check: {exc}", file=sys.stderr)
        return 1
    print(report.to_json())
    for line in report.problems:
        print(f"dvc_remote_check: {line}", file=sys.stderr)
    return 0 if report.verdict == "pass" else 1


if __name__ == "__main__":
    sys.exit(main())
