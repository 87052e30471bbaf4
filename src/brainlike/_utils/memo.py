"""A content-addressed memo of per-model work in the cross-model stages (untracked ``build/memo/``).

``metrics`` and ``report`` read every model, so DVC re-runs them whole when one model is added;
every other model's share of their work (organization CIs, recovery bootstraps, the report's
figures) is then computed again from the same bytes. :class:`Memo` keys such a result by
everything it is computed from and returns the stored result when the key is known:

- the **inputs**, listed by the caller: files by their sha256 (content, not path or date),
  arrays by dtype, shape and bytes, tables by columns, dtypes and values, configs by value;
- the **code**: the sha256 of every source file of the ``brainlike`` package, so any change
  of the package forgets everything (a memo only has to serve a change of the *data*, such
  as one more model);
- the **libraries** that compute or draw it (numpy, pandas, scipy, matplotlib, nilearn,
  scikit-learn, torch, transformers).

A value is stored with pickle, so a hit returns the objects a miss returned (numpy scalars
stay numpy scalars) and the stage writes the same bytes either way; the tests compare a hit
with a fresh computation. An input the key cannot represent raises ``TypeError`` rather than
being left out. Entries live in one folder per version of the code, and the first entry of a new
version removes the others, so the memo holds one version's results (a few MB for the default
run). ``BRAINLIKE_MEMO=0`` turns the memo off; deleting ``build/memo`` empties it.

The per-model stages keep a **cell** per (model, stimulus) the same way (:meth:`Memo.put_dir`,
:meth:`Memo.get_dir`): the files of the cell's output folder, hard-linked (a second name for the
bytes DVC also links into its cache, not a copy), and a small value. DVC re-runs a model's stage
whole when one dataset is added or removed, since its inputs are folders of every dataset; the
cells of the other datasets are then linked back instead of computed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .hashing import sha256_file
from .reproducible import build_dir

MEMO_ENV = "BRAINLIKE_MEMO"
MEMO_DIR = "memo"
LIBRARIES = ("numpy", "pandas", "scipy", "matplotlib", "nilearn", "scikit-learn", "torch", "transformers")


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the ``brainlike`` package's sources and the versions of :data:`LIBRARIES`."""
    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parents[1]
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    for lib in LIBRARIES:
        try:
            h.update(f"{lib}={metadata.version(lib)}\0".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{lib}=-\0".encode())
    return h.hexdigest()


def _feed(h, part: Any) -> None:
    """Add one key part to ``h``, tagged with its kind so that ``"1"`` and ``1`` differ."""
    import pandas as pd

    if part is None or isinstance(part, (bool, int, float, str)):
        h.update(b"j" + json.dumps(part).encode())
    elif isinstance(part, bytes):
        h.update(b"b%d:" % len(part) + part)
    elif isinstance(part, Path):  # a file, by content
        h.update(b"f" + (sha256_file(part).encode() if part.is_file() else b"missing"))
    elif isinstance(part, np.generic):
        _feed(h, np.asarray(part))
    elif isinstance(part, np.ndarray):
        if part.dtype == object:
            raise TypeError("memo key: object arrays cannot be hashed by value")
        h.update(b"a" + json.dumps([part.dtype.str, part.shape]).encode())
        h.update(np.ascontiguousarray(part).tobytes())
    elif isinstance(part, pd.DataFrame):
        h.update(b"d" + json.dumps([[str(c), str(t)] for c, t in part.dtypes.items()]).encode())
        h.update(pd.util.hash_pandas_object(part, index=True).to_numpy().tobytes())
    elif isinstance(part, Mapping):
        h.update(b"m%d" % len(part))
        for k in sorted(part, key=str):
            _feed(h, str(k))
            _feed(h, part[k])
    elif isinstance(part, (list, tuple)):
        h.update(b"l%d" % len(part))
        for p in part:
            _feed(h, p)
    elif dataclasses.is_dataclass(part) and not isinstance(part, type):
        h.update(b"c" + type(part).__qualname__.encode())
        _feed(h, {f.name: getattr(part, f.name) for f in dataclasses.fields(part)})
    elif hasattr(part, "model_dump"):  # a pydantic config
        h.update(b"p" + type(part).__qualname__.encode())
        _feed(h, part.model_dump(mode="json"))
    else:
        raise TypeError(f"memo key: cannot hash a {type(part).__name__}")


def folder_files(folder: str | Path) -> list[tuple[str, Path]]:
    """A key part for a whole folder: each file's relative path and the file (hashed by content)."""
    folder = Path(folder)
    return [(f.relative_to(folder).as_posix(), f) for f in sorted(folder.rglob("*"))
            if f.is_file() and "__pycache__" not in f.relative_to(folder).parts]


def _link_tree(src: Path, dest: Path) -> None:
    """``dest`` (new) with the files of ``src`` under the same relative paths: hard links where the
    file system allows, copies elsewhere. Outputs are never rewritten in place (they are written
    to a temporary and renamed), so a linked file is never changed under the memo."""
    dest.mkdir(parents=True)
    for f in sorted(src.rglob("*")):
        to = dest / f.relative_to(src)
        if f.is_dir():
            to.mkdir(exist_ok=True)
            continue
        to.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, to)
        except OSError:
            shutil.copy2(f, to)


class Memo:
    """Results of one kind of work (``namespace``), keyed by their inputs.

    Parameters
    ----------
    namespace : str
        A folder name under ``build/memo``: the kind of work (``metrics-model``).
    root : path, optional
        Default: ``$BRAINLIKE_BUILD/memo`` (``build/memo``).
    """

    def __init__(self, namespace: str, root: str | Path | None = None):
        self.enabled = os.environ.get(MEMO_ENV, "1") != "0"
        self.root = Path(root) if root is not None else build_dir() / MEMO_DIR
        # one folder per version of the code: entries of another version can never be hit again
        self.version = code_digest()[:16]
        self.folder = self.root / self.version / namespace

    def key(self, *parts: Any) -> str:
        """sha256 of ``parts`` (the code's version is the folder, :attr:`version`)."""
        h = hashlib.sha256()
        _feed(h, list(parts))
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pkl"

    def get(self, key: str, default: Any = None) -> Any:
        """The stored value, or ``default`` (also when the memo is off or the entry unreadable)."""
        if not self.enabled:
            return default
        try:
            return pickle.loads(self._path(key).read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return default

    def put(self, key: str, value: Any) -> Any:
        """Store ``value`` (atomically: a reader sees the whole entry or none) and return it.

        A memo that cannot be written (read-only or full disk) only costs the next run its time.
        """
        if self.enabled:
            tmp = None
            try:
                self._open_folder()
                fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, self._path(key))
            except OSError:
                if tmp is not None:
                    Path(tmp).unlink(missing_ok=True)
        return value

    def put_dir(self, key: str, src: str | Path, value: Any = None) -> None:
        """Keep the files of folder ``src`` (hard links, copies across file systems) and ``value``.

        Atomic like :meth:`put`; a cell that cannot be written only costs the next run its time.
        """
        if not self.enabled:
            return
        src, tmp = Path(src), None
        try:
            self._open_folder()
            tmp = Path(tempfile.mkdtemp(dir=self.folder, suffix=".tmp"))
            _link_tree(src, tmp / "files")
            (tmp / "value.pkl").write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            final = self.folder / f"{key}.d"
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def get_dir(self, key: str, dest: str | Path, default: Any = None) -> Any:
        """Link the stored cell's files into the new folder ``dest``; its value, or ``default``
        (nothing is left at ``dest`` then: a miss, the memo off, an unreadable entry)."""
        if not self.enabled:
            return default
        entry, dest = self.folder / f"{key}.d", Path(dest)
        try:
            value = pickle.loads((entry / "value.pkl").read_bytes())
            if not (entry / "files").is_dir():
                return default
            _link_tree(entry / "files", dest)
            return value
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            shutil.rmtree(dest, ignore_errors=True)
            return default

    def _open_folder(self) -> None:
        """Create this namespace's folder; the first entry of a new code version forgets the others."""
        if not (self.root / self.version).is_dir():
            self._forget_other_versions()
        self.folder.mkdir(parents=True, exist_ok=True)

    def _forget_other_versions(self) -> None:
        """Remove what other versions of the code stored (the memo holds one version at a time)."""
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other.name != self.version:
                    shutil.rmtree(other, ignore_errors=True)

    def fill(self, keys: Sequence[str], compute: Callable[[list[int]], Iterable[Any]]) -> list:
        """The stored value of each of ``keys``, in order; ``compute(missing)`` gives the values
        of the keys not stored (their indices, in order: e.g. one executor map over them), which
        are stored and returned in their places."""
        missing = object()
        done = [self.get(k, missing) for k in keys]
        todo = [i for i, d in enumerate(done) if d is missing]
        if todo:
            for i, value in zip(todo, compute(todo), strict=True):
                done[i] = self.put(keys[i], value)
        return done

    def map(self, keys: Sequence[str], fn: Callable[[Any], Any], items: Sequence[Any], compute=None,
            key_prefix: str | None = None) -> list:
        """:meth:`fill` with ``fn(items[i])`` for each key not stored, run as tasks of ``compute``
        (an Executor or a ComputeConfig, :func:`~brainlike._utils.compute.executor_for`)."""
        from .compute import executor_for

        def run(todo: list[int]) -> list:
            with executor_for(compute) as ex:
                return ex.map(fn, [items[i] for i in todo], key_prefix=key_prefix)

        return self.fill(keys, run)

    def __call__(self, fn, *parts: Any) -> Any:
        """``fn()`` the first time ``parts`` are seen, the stored result afterwards."""
        key = self.key(*parts)
        missing = object()
        got = self.get(key, missing)
        return self.put(key, fn()) if got is missing else got
