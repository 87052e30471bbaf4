"""DVC remote round trip: what one lab member pushes, another can pull without re-running a stage.

The check (``tools/dvc_remote_check.py``, ``make remote-check``) takes a workspace ``W`` whose
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
brainlike._utils.dvc_remote W`` (exit 0 pass, 1 round trip failed, 2 ``W`` not clean).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from brainlike._utils.hashing import sha256_file
from brainlike.errors import BrainlikeError, DataError

#: Remote name used for the temporary remote (in ``W``'s temporary system config and in ``W2``).
REMOTE_NAME = "brainlike-roundtrip"

#: Files whose sha256 is compared by default: the atoms and the activations index of every model.
DEFAULT_COMPARE = ("data/patterns/*/*/atoms.parquet", "data/activations/*/*/activations.json")


class DirtyWorkspaceError(BrainlikeError):
    """``dvc status`` of the workspace is not clean; ``stages`` maps stage -> what changed."""

    def __init__(self, workspace: Path, stages: Mapping[str, object]):
        self.workspace = Path(workspace)
        self.stages = dict(stages)
        names = ", ".join(sorted(self.stages)) or "?"
        super().__init__(
            f"{workspace}: `dvc status` is not clean (stages: {names}); run `dvc repro` "
            "before checking the remote round trip"
        )


@dataclass(frozen=True)
class CachedOutput:
    """One cached (pushable) stage output, as recorded in ``dvc.lock`` / a ``.dvc`` file.

    Attributes
    ----------
    path : str
        Path relative to the workspace root, POSIX separators.
    stage : str
        DVC stage address (``extract@minilm-l6``, ``data.dvc``).
    oid : str
        Content hash recorded in the lock (``<md5>.dir`` for directories).
    object : str
        Object path relative to a cache/remote root (``files/md5/ab/cdef...``).
    isdir : bool
    nfiles : int or None
        Files in a directory output (1 for a file).
    size : int or None
        Bytes, as recorded in the lock.
    persist : bool
    """

    path: str
    stage: str
    oid: str
    object: str
    isdir: bool
    nfiles: int | None
    size: int | None
    persist: bool


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


# -- running DVC ------------------------------------------------------------------------------


def dvc_executable() -> str:
    """The ``dvc`` next to the running interpreter (the project's venv), else the one on PATH."""
    here = shutil.which("dvc", path=str(Path(sys.executable).parent))
    found = here or shutil.which("dvc")
    if not found:
        raise DataError(None, "no `dvc` executable next to the interpreter or on PATH")
    return found


def run_dvc(
    args: Sequence[str],
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``dvc ARGS`` in ``cwd`` with analytics off; raise :class:`DataError` when ``check``.

    ``env`` entries are added to the current environment (e.g. ``DVC_SYSTEM_CONFIG_DIR``).
    """
    full_env = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_IGNORE_ISATTY": "1", **(env or {})}
    cmd = [dvc_executable(), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise DataError(cwd, f"`dvc {' '.join(args)}` exited {proc.returncode}: {_tail(proc)}")
    return proc


def _tail(proc: subprocess.CompletedProcess[str], n: int = 1500) -> str:
    """The end of what a command printed, without DVC's progress bars."""
    lines = ((proc.stderr or "") + "\n" + (proc.stdout or "")).splitlines()
    keep = [ln.strip() for ln in lines if ln.strip() not in ("", "!") and "|" not in ln]
    return " / ".join(keep)[-n:]


def _git(args: Sequence[str], cwd: str | Path) -> subprocess.CompletedProcess[str]:
    # Fixed identity and no signing: W2 is a throwaway clone, its commit is never shared.
    cmd = ["git", "-c", "user.name=brainlike", "-c", "user.email=brainlike@localhost",
           "-c", "commit.gpgsign=false", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DataError(cwd, f"`git {' '.join(args)}` exited {proc.returncode}: {_tail(proc)}")
    return proc


# -- inspecting a workspace -------------------------------------------------------------------


def stale_stages(workspace: str | Path, env: Mapping[str, str] | None = None) -> dict[str, object]:
    """``dvc status --json`` of ``workspace``: ``{}`` when every stage is up to date."""
    proc = run_dvc(["status", "--json"], workspace, env=env)
    out = proc.stdout.strip()
    try:
        return json.loads(out) if out else {}
    except json.JSONDecodeError as exc:
        raise DataError(workspace, f"`dvc status --json` printed no JSON: {out[:300]!r}") from exc


def would_run(workspace: str | Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Stages that ``dvc repro --dry`` would run or restore from the run cache."""
    proc = run_dvc(["repro", "--dry"], workspace, env=env)
    text = proc.stdout + proc.stderr
    running = re.findall(r"Running stage '([^']+)'", text)
    restored = re.findall(r"Stage '([^']+)' is cached", text)
    return sorted(set(running) | set(restored))


def cached_outputs(workspace: str | Path) -> tuple[list[CachedOutput], list[str], str]:
    """Outputs of ``workspace`` that go to a remote, the ones that do not, and the cache root.

    Read with DVC's own index (``dvc.yaml`` templating and ``foreach`` resolved, hashes from
    ``dvc.lock``); nothing is written to the workspace.

    Returns
    -------
    cached : list of CachedOutput
    uncached : list of str
        ``cache: false`` / ``push: false`` outputs (they travel with git, or not at all).
    cache_root : str
        The workspace's cache folder (``.dvc/cache`` unless configured elsewhere).
    """
    from dvc.repo import Repo

    cached: list[CachedOutput] = []
    uncached: list[str] = []
    with Repo(str(workspace)) as repo:
        root = repo.root_dir
        for stage in repo.index.stages:
            for out in stage.outs:
                rel = Path(os.path.relpath(out.fs_path, root)).as_posix()
                if not out.use_cache or not out.can_push:
                    uncached.append(rel)
                    continue
                oid = out.hash_info.value if out.hash_info else None
                if not oid:
                    raise DataError(
                        Path(workspace) / "dvc.lock", f"output {rel} has no recorded hash",
                        field=stage.addressing,
                    )
                obj = os.path.relpath(out.cache.oid_to_path(oid), repo.cache.local_cache_dir)
                cached.append(CachedOutput(
                    path=rel, stage=_stage_name(stage, root), oid=oid, object=Path(obj).as_posix(),
                    isdir=bool(out.hash_info.isdir), nfiles=out.meta.nfiles,
                    size=out.meta.size, persist=bool(out.persist),
                ))
        cache_root = repo.cache.local_cache_dir
    return cached, sorted(uncached), cache_root


def _stage_name(stage, root: str) -> str:
    """``name`` for a stage of the root ``dvc.yaml``, ``sub/dvc.yaml:name`` or ``x.dvc`` else."""
    rel = Path(os.path.relpath(stage.path, root)).as_posix()
    name = getattr(stage, "name", None)
    if not name:
        return rel
    return name if rel == "dvc.yaml" else f"{rel}:{name}"


def _dir_entries(cache_root: str | Path, out: CachedOutput) -> list[tuple[str, str]]:
    """``(relpath, object)`` for each file of a directory output, from the ``.dir`` manifest."""
    manifest = Path(cache_root) / out.object
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(manifest, f"directory manifest of {out.path} unreadable: {exc}") from exc
    prefix = out.object.split("/")[:-2]  # files/md5
    return [
        (e["relpath"], "/".join([*prefix, e["md5"][:2], e["md5"][2:]])) for e in entries
    ]


def missing_objects(
    remote_dir: str | Path, outputs: Iterable[CachedOutput], cache_root: str | Path
) -> list[str]:
    """Objects of ``outputs`` absent from the local remote ``remote_dir``, one line each.

    Each line names the output, its stage, the file inside a directory output and the
    object path, e.g. ``data/x (stage s): file a/b.txt -> files/md5/ab/cd... missing``.
    """
    remote_dir = Path(remote_dir)
    lines = []
    for out in outputs:
        where = f"{out.path} (stage {out.stage})"
        if not (remote_dir / out.object).is_file():
            lines.append(f"{where}: object {out.object} missing from {remote_dir}")
        if out.isdir:
            for rel, obj in _dir_entries(cache_root, out):
                if not (remote_dir / obj).is_file():
                    lines.append(f"{where}: file {rel} -> object {obj} missing from {remote_dir}")
    return lines


def tree_stats(root: str | Path) -> tuple[int, int]:
    """``(files, bytes)`` under ``root`` (a file counts as one)."""
    root = Path(root)
    if root.is_file():
        return 1, root.stat().st_size
    n = size = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            n += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return n, size


def _listing(root: Path) -> dict[str, int]:
    if root.is_file():
        return {".": root.stat().st_size}
    if not root.is_dir():
        return {}
    return {
        Path(dp, f).relative_to(root).as_posix(): os.lstat(os.path.join(dp, f)).st_size
        for dp, _, files in os.walk(root) for f in files
    }


def compare_outputs(
    source: str | Path,
    copy: str | Path,
    outputs: Iterable[CachedOutput],
    patterns: Sequence[str] = DEFAULT_COMPARE,
) -> tuple[dict[str, str], list[str]]:
    """Compare pulled outputs in ``copy`` with those in ``source``.

    Every output's file list and sizes must match; files matching one of ``patterns``
    (``fnmatch`` on the workspace-relative path; ``*`` also crosses ``/``) are compared by
    sha256.

    Returns
    -------
    compared : dict
        Workspace-relative path -> ``"sha256 equal"`` or what differs, for each hashed file.
    problems : list of str
        One line per difference (missing/extra file, size, hash).
    """
    source, copy = Path(source), Path(copy)
    compared: dict[str, str] = {}
    problems: list[str] = []
    for out in outputs:
        a, b = _listing(source / out.path), _listing(copy / out.path)
        if a != b:
            only_a = sorted(set(a) - set(b))[:5]
            only_b = sorted(set(b) - set(a))[:5]
            sizes = sorted(k for k in set(a) & set(b) if a[k] != b[k])[:5]
            problems.append(
                f"{out.path}: pulled files differ from the workspace (missing {only_a}, "
                f"extra {only_b}, size differs {sizes})"
            )
            continue
        for rel in sorted(a):
            path = out.path if rel == "." else f"{out.path}/{rel}"
            if not any(fnmatch.fnmatch(path, pat) for pat in patterns):
                continue
            ha, hb = sha256_file(source / path), sha256_file(copy / path)
            compared[path] = "sha256 equal" if ha == hb else f"sha256 {hb[:12]} != {ha[:12]}"
            if ha != hb:
                problems.append(f"{path}: pulled sha256 {hb} differs from the workspace's {ha}")
    return compared, problems


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


def git_visible_files(workspace: str | Path) -> list[str]:
    """Files git would put in the next commit of ``workspace``: tracked + untracked-not-ignored.

    Paths are relative to ``workspace``; files deleted in the working tree are left out.
    """
    proc = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], workspace)
    names = sorted({p for p in proc.stdout.split("\0") if p})
    return [p for p in names if os.path.lexists(Path(workspace) / p)]


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
    _git(["commit", "-q", "-m", "fresh copy for the DVC remote round trip"], dest)
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


def _rmtree(path: Path) -> None:
    # DVC makes cache files read-only; rmtree on Linux only needs the folders writable.
    def onerror(func, p, _exc):
        os.chmod(os.path.dirname(p), 0o755)
        func(p)

    shutil.rmtree(path, onerror=onerror)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m brainlike._utils.dvc_remote [WORKSPACE] [--compare GLOB]... [--keep]``.

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
