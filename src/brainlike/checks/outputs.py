"""DVC outputs of a workspace: run dvc and git, list cached outputs, check remotes, compare copies.

The building blocks of the remote round trip (:mod:`.remote`): what ``dvc.lock`` says is
cached, which objects a remote lacks, which stages ``dvc status`` / ``dvc repro --dry`` would
run, and whether two copies of the outputs hold the same files.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .._utils.hashing import sha256_file
from ..errors import BrainlikeError, DataError

#: Files whose sha256 is compared by default: the atoms and the activations index of every model.
DEFAULT_COMPARE = ("data/patterns/*/*/atoms.parquet", "data/activations/*/*/activations.json")


class DirtyWorkspaceError(BrainlikeError):
    """``dvc status`` of the workspace is not clean; ``stages`` maps stage -> what changed."""

    def __init__(self, workspace: Path, stages: Mapping[str, object]):
        self.workspace = Path(workspace)
        self.stages = dict(stages)
        names = ", ".join(sorted(self.stages)) or "?"
        super().__init__(
            f"{workspace}: `dvc status` is not clean (stages: {names}); run `dvc repro` first: "
            "this needs the workspace's outputs to be what dvc.lock says"
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
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``dvc ARGS`` in ``cwd`` with analytics off; raise :class:`DataError` when ``check``.

    ``env`` entries are added to the current environment (e.g. ``DVC_SYSTEM_CONFIG_DIR``).
    ``capture=False`` lets DVC print as it goes (a long ``repro``); the error then points there.
    """
    # DVC_IGNORE_ISATTY only for captured output: printing to a log, it would draw progress bars
    tty = {"DVC_IGNORE_ISATTY": "1"} if capture else {}
    full_env = {**os.environ, "DVC_NO_ANALYTICS": "1", **tty, **(env or {})}
    cmd = [dvc_executable(), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=capture, text=True)
    if check and proc.returncode != 0:
        said = _tail(proc) if capture else "see its output above"
        raise DataError(cwd, f"`dvc {' '.join(args)}` exited {proc.returncode}: {said}")
    return proc


def _tail(proc: subprocess.CompletedProcess[str], n: int = 1500) -> str:
    """The end of what a command printed, without DVC's progress bars."""
    lines = ((proc.stderr or "") + "\n" + (proc.stdout or "")).splitlines()
    keep = [ln.strip() for ln in lines if ln.strip() not in ("", "!") and "|" not in ln]
    return " / ".join(keep)[-n:]


def _git(args: Sequence[str], cwd: str | Path, text: bool = True) -> subprocess.CompletedProcess:
    """``git args`` in ``cwd``; a failure is a DataError naming the command. ``text=False`` keeps
    stdout as bytes (a committed Parquet file)."""
    # Fixed identity and no signing: W2 is a throwaway clone, its commit is never shared.
    cmd = ["git", "-c", "user.name=brainlike", "-c", "user.email=brainlike@localhost",
           "-c", "commit.gpgsign=false", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=text)
    if proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode(errors="replace")
        raise DataError(cwd, f"`git {' '.join(args)}` exited {proc.returncode}: "
                             f"{_tail(subprocess.CompletedProcess(cmd, proc.returncode, '', err))}")
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


def git_visible_files(workspace: str | Path) -> list[str]:
    """Files git would put in the next commit of ``workspace``: tracked + untracked-not-ignored.

    Paths are relative to ``workspace``; files deleted in the working tree are left out.
    """
    proc = _git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], workspace)
    names = sorted({p for p in proc.stdout.split("\0") if p})
    return [p for p in names if os.path.lexists(Path(workspace) / p)]


def _rmtree(path: Path) -> None:
    # DVC makes cache files read-only; rmtree on Linux only needs the folders writable.
    def onerror(func, p, _exc):
        os.chmod(os.path.dirname(p), 0o755)
        func(p)

    shutil.rmtree(path, onerror=onerror)
