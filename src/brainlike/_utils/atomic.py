"""Atomic outputs: a stage either finishes or leaves nothing half-written.

Temporaries live *beside* the path they replace (same folder, so the final rename is atomic),
named ``.<name>.<pid>@<host>.<random>.tmp`` (and ``.old`` for the folder being swapped out).
A process killed with SIGKILL cannot remove its own: the next writer of the same path removes
every leftover whose process is gone (same host, pid not running), and leftovers without a
pid in their name once they are older than :data:`LEGACY_STALE_S`. The repository's
``.dvcignore`` also hides ``.*.tmp`` / ``.*.old`` from DVC, so a leftover inside a folder that
another stage depends on does not make that stage re-run.

Scratch folders (converted files a stage needs only while it runs) go to the system's temporary
directory as ``<prefix><pid>@<host>.<random>``: :func:`scratch_dir` removes its own on exit and,
on start, those of its kind whose process is gone (a SIGKILL skips every ``finally``).

Failures of the operating system (no space left, permission denied, read-only folder) become
:class:`~brainlike.errors.OutputError`: one line naming the path, which the stages print as
their error message.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import OutputError

LEGACY_STALE_S = 6 * 3600.0  # a `.name.<random>.tmp` (no pid) older than this is a leftover
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def _prefix(path: Path) -> str:
    return f".{path.name}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped is a zombie: gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


def clean_leftovers(path: str | Path) -> list[Path]:
    """Remove temporaries that killed writers of ``path`` left beside it; return what was removed.

    Only temporaries of this very path (``.<name>.*.tmp`` / ``.*.old``) are candidates: those of
    a process on this host that no longer runs, and pid-less ones (older naming) older than
    :data:`LEGACY_STALE_S`. A live writer's temporaries are left alone.
    """
    path = Path(path)
    parent, prefix = path.parent, _prefix(path)
    if not parent.is_dir():
        return []
    removed = []
    now = time.time()
    for entry in parent.iterdir():
        name = entry.name
        if not name.startswith(prefix) or not name.endswith((".tmp", ".old")):
            continue
        if _stale(entry, name[len(prefix):-4], now):
            _remove(entry)
            removed.append(entry)
    return removed


def _stale(entry: Path, mid: str, now: float) -> bool:
    """Whether a temporary named ``<prefix><mid>`` belongs to no running writer (see :func:`clean_leftovers`)."""
    m = re.fullmatch(r"(\d+)@([A-Za-z0-9_-]+)\.[A-Za-z0-9_]+", mid)
    if m:
        return m.group(2) == _HOST and not _pid_alive(int(m.group(1)))
    try:
        return bool(re.fullmatch(r"[A-Za-z0-9_]+", mid)) and now - entry.lstat().st_mtime > LEGACY_STALE_S
    except OSError:
        return False


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()


def make_scratch(prefix: str) -> Path:
    """A new private folder ``<tmp>/<prefix><pid>@<host>.<random>``; the caller removes it.

    Folders of the same ``prefix`` left by processes of this host that no longer run (killed
    before they could remove theirs) are removed first, and pid-less ones (``<prefix><random>``,
    older naming) once older than :data:`LEGACY_STALE_S`.
    """
    root = Path(tempfile.gettempdir())
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            if entry.name.startswith(prefix) and _stale(entry, entry.name[len(prefix):], now):
                _remove(entry)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}@{_HOST}.", dir=root))


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """:func:`make_scratch`, removed with its content when the block ends (error or not)."""
    path = make_scratch(prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _os_error(path: Path, exc: OSError) -> OutputError:
    where = exc.filename if exc.filename else path
    why = exc.strerror or str(exc)
    return OutputError(path, f"{why} ({where})" if str(where) != str(path) else why)


def _mkdtemp(path: Path, suffix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{_prefix(path)}{os.getpid()}@{_HOST}.", suffix=suffix, dir=path.parent))


def _publish(tmp_target: Path, path: Path) -> None:
    """Rename ``tmp_target`` onto ``path`` (a folder is swapped out, then removed)."""
    if not tmp_target.exists():
        raise FileNotFoundError(f"atomic_path: nothing was written to {tmp_target}")
    if path.is_dir() and not path.is_symlink():
        old = _mkdtemp(path, ".old")
        os.replace(path, old / path.name)
        os.replace(tmp_target, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp_target, path)


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """Yield one temporary path per output; publish them all, in the order given, if the block succeeds.

    Every temporary is created before the block runs and every output is written before the
    first rename, so a failure to write any of them (a read-only metrics folder, a full disk)
    leaves every output as it was. Give the data first and its metrics last: the renames take
    microseconds, and metrics never describe data that was not published.

    Works for files and for folders: whatever the block creates at a yielded path replaces
    that output in one rename. On error the temporaries are removed.

    Raises
    ------
    OutputError
        An operating-system error (permission, disk full...) naming the output.
    """
    targets = [Path(p) for p in paths]
    tmps: list[Path] = []
    current = targets[0] if targets else Path(".")
    try:
        try:
            for path in targets:
                current = path
                path.parent.mkdir(parents=True, exist_ok=True)
                clean_leftovers(path)
                tmps.append(_mkdtemp(path, ".tmp"))
        except OSError as exc:
            raise _os_error(current, exc) from None
        yielded = [tmp / path.name for tmp, path in zip(tmps, targets)]
        try:
            yield yielded
        except OSError as exc:
            # an OS error while writing: name the output (the file is in the message)
            raise _os_error(current if len(targets) == 1 else targets[0], exc) from exc
        try:
            for tmp_target, path in zip(yielded, targets):
                current = path
                _publish(tmp_target, path)
        except OSError as exc:
            raise _os_error(current, exc) from None
    finally:
        for tmp in tmps:
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto ``path`` only if the block succeeds.

    Works for files and for folders: whatever the block creates at the yielded path
    replaces ``path`` in one rename. On error the temporary is removed and ``path`` is
    left as it was. See :func:`atomic_paths` for several outputs that must agree.
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_texts_atomic(items: Sequence[tuple[str | Path, str]]) -> None:
    """Write several text files so that all or none are replaced (renamed in the order given)."""
    with atomic_paths(*(p for p, _ in items)) as tmps:
        for tmp, (_, text) in zip(tmps, items):
            tmp.write_text(text)
