"""Provenance of a registered fit: code commit, DVC hashes of the inputs, package versions.

Everything here is read-only: ``git rev-parse`` / ``git status``, ``dvc.lock`` (YAML) and the
installed distributions' metadata. Missing pieces (no git, no dvc.lock yet) become ``None``
values, never errors: a registry entry from a plain checkout is still worth having.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from .._utils.yamlio import safe_load
from ..errors import DataError

PACKAGES = ("brainlike", "mlflow", "dvc", "numpy", "scipy", "scikit-learn", "torch", "transformers",
            "nilearn", "nibabel", "pandas", "great-expectations")


@dataclass(frozen=True)
class Provenance:
    """Where a fit came from.

    Attributes
    ----------
    git_commit : str or None
    git_dirty : bool or None
        Uncommitted changes to tracked files (None outside a git checkout).
    dvc_outs : dict of str to str
        ``dvc.lock`` output path -> md5 (folders end in ``.dir``).
    dvc_stages : dict of str to str
        Stage name -> short sha256 of its ``dvc.lock`` entry (cmd, deps, params, outs).
    versions : dict of str to str
        Installed version of each of :data:`PACKAGES` that is installed.
    """

    git_commit: str | None = None
    git_dirty: bool | None = None
    dvc_outs: dict[str, str] = field(default_factory=dict)
    dvc_stages: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        """MLflow tags (``mlflow.source.git.commit`` is the key the UI shows)."""
        out: dict[str, str] = {}
        if self.git_commit:
            out["mlflow.source.git.commit"] = self.git_commit
            out["brainlike.git_commit"] = self.git_commit
        if self.git_dirty is not None:
            out["brainlike.git_dirty"] = str(self.git_dirty).lower()
        out |= {f"brainlike.dvc_md5.{p}": md5 for p, md5 in self.dvc_outs.items()}
        out |= {f"brainlike.dvc_stage.{s}": h for s, h in self.dvc_stages.items()}
        out |= {f"brainlike.version.{p}": v for p, v in self.versions.items()}
        return out


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(repo_root: str | Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, dirty flag) of the checkout holding ``repo_root``; (None, None) outside git."""
    root = Path(repo_root)
    head = _git(["rev-parse", "HEAD"], root)
    if head is None:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], root)
    return head.strip(), (None if status is None else bool(status.strip()))


def read_dvc_lock(path: str | Path, models: Iterable[str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Output md5s and stage hashes from a ``dvc.lock`` file (empty dicts if it does not exist).

    Parameters
    ----------
    path : path
    models : iterable of str, optional
        The models params.yaml holds now. When given, the entries of per-model stages
        (``extract@<model>``, ``patterns@<model>``...) of any other model are left out: DVC
        keeps a removed model's entries in the lock until the next full ``dvc repro``, and
        they describe nothing the current fit used.

    Returns
    -------
    outs : dict of str to str
        Output path -> md5 of every stage's ``outs``.
    stages : dict of str to str
        Stage name -> first 16 hex digits of sha256 over its lock entry (canonical JSON).

    Raises
    ------
    DataError
        The file exists but is not a DVC 3 lock file (``schema: '2.0'`` with ``stages``).
    """
    path = Path(path)
    if not path.is_file():
        return {}, {}
    try:
        lock = safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML: {exc}") from None
    stages = lock.get("stages") if isinstance(lock, dict) else None
    if not isinstance(stages, dict):
        raise DataError(path, "expected a DVC lock file with a 'stages' mapping", field="stages")
    keep = None if models is None else set(models)
    outs: dict[str, str] = {}
    hashes: dict[str, str] = {}
    for name, entry in stages.items():
        if keep is not None and "@" in str(name) and str(name).split("@", 1)[1] not in keep:
            continue  # a per-model stage of a model no longer in params
        blob = json.dumps(entry, sort_keys=True, default=str).encode()
        hashes[str(name)] = hashlib.sha256(blob).hexdigest()[:16]
        for out in (entry or {}).get("outs", []) or []:
            if isinstance(out, dict) and "path" in out and "md5" in out:
                outs[str(out["path"])] = str(out["md5"])
    return outs, hashes


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def collect_provenance(repo_root: str | Path, models: Iterable[str] | None = None) -> Provenance:
    """Git state, ``<repo_root>/dvc.lock`` hashes (of ``models`` only, see :func:`read_dvc_lock`)
    and package versions."""
    root = Path(repo_root)
    commit, dirty = git_state(root)
    outs, stages = read_dvc_lock(root / "dvc.lock", models)
    return Provenance(commit, dirty, outs, stages, package_versions())


# Keys of the stage JSON files that hold wall-clock timings: they change on every run of a stage
# whose inputs did not change, so they are no part of a fit's identity.
TIMING_KEYS = frozenset({"seconds", "total_s", "fit_s", "elapsed_s", "wall_s", "timing_s"})


def _strip_timings(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip_timings(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    p = Path(path)
    if p.suffix == ".json":
        try:
            return content_hash(_strip_timings(json.loads(p.read_text())))
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # not JSON after all: its bytes
    if p.suffix == ".npz":
        # a zip member's header holds the time it was written: hash the arrays, not the archive
        try:
            with zipfile.ZipFile(p) as z:
                return content_hash({n: hashlib.sha256(z.read(n)).hexdigest() for n in sorted(z.namelist())})
        except zipfile.BadZipFile:
            pass
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(path: str | Path) -> str | None:
    """sha256 of what a file or folder holds, stable while its content is the same.

    Unlike a DVC md5 it ignores what changes when nothing changed: hidden entries (the
    ``.gitignore`` DVC writes, ``.*.tmp`` leftovers, ``.partial`` work folders), wall-clock
    timing keys of JSON files (:data:`TIMING_KEYS`) and the write times inside ``.npz``
    archives. A folder's digest covers the relative path and digest of every file under it.

    Returns
    -------
    str or None
        None when ``path`` does not exist.
    """
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return _file_digest(str(p.resolve()), st.st_size, st.st_mtime_ns)
    if not p.is_dir():
        return None
    entries = {}
    for f in sorted(p.rglob("*")):
        rel = f.relative_to(p)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        st = f.stat()
        entries[rel.as_posix()] = _file_digest(str(f.resolve()), st.st_size, st.st_mtime_ns)
    return content_hash(entries)


def input_md5(dvc_outs: dict[str, str], path: str | Path) -> str | None:
    """DVC md5 of ``path``: its own entry, or that of the tracked folder that holds it."""
    p = Path(path).as_posix().rstrip("/")
    if p in dvc_outs:
        return dvc_outs[p]
    for out, md5 in sorted(dvc_outs.items(), key=lambda kv: -len(kv[0])):
        if p.startswith(out.rstrip("/") + "/"):
            return md5
    return None


def content_hash(obj: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``obj``: the identity used for idempotent logging."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
