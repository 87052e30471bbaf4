"""The tracking store: resolve its URI, check it is reachable and current, hand out a client.

Default: ``sqlite:///mlflow.db`` with artifacts under ``mlartifacts/``, both in the repository
root (git-ignored). ``MLFLOW_TRACKING_URI`` overrides ``registry.tracking_uri``.

Failure modes turned into one :class:`RegistryError` that names the URI:

- an http(s) server that does not answer ``/health`` within ``timeout_s`` (MLflow's own client
  would retry with back-off for minutes before failing);
- a SQLite file whose folder does not exist;
- a SQLite store written by an older MLflow schema: refused with the upgrade command, or
  migrated in place when ``upgrade=True`` (``registry.upgrade_schema``).
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrainlikeError

ENV_URI = "MLFLOW_TRACKING_URI"


class RegistryError(BrainlikeError):
    """The tracking store cannot be used, or holds no run for what was asked."""


@dataclass(frozen=True)
class Store:
    """A resolved tracking store.

    Attributes
    ----------
    uri : str
        Tracking URI with SQLite paths made absolute.
    artifact_root : Path or None
        Folder holding the artifacts of experiments this project creates (SQLite stores);
        None for a tracking server, which chooses its own.
    """

    uri: str
    artifact_root: Path | None

    @property
    def is_sqlite(self) -> bool:
        return self.uri.startswith("sqlite:")

    def client(self):
        """An ``mlflow.MlflowClient`` on this store (call :func:`check_store` first)."""
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri)


def _sqlite_file(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def resolve_store(tracking_uri: str, artifact_location: str | Path, repo_root: str | Path,
                  env: dict[str, str] | None = None) -> Store:
    """The store to use: ``MLFLOW_TRACKING_URI`` if set, else ``tracking_uri``.

    Relative SQLite paths and ``artifact_location`` are taken relative to ``repo_root`` so
    that every stage and ``brainlike ui`` see one store whatever their working directory.
    """
    env = os.environ if env is None else env
    uri = env.get(ENV_URI) or tracking_uri
    root = Path(repo_root).resolve()
    db = _sqlite_file(uri)
    if db is not None and not db.is_absolute():
        uri = "sqlite:///" + str(root / db)
    if uri.startswith(("sqlite:", "file:")) or "://" not in uri:
        art = Path(artifact_location)
        return Store(uri, art if art.is_absolute() else root / art)
    return Store(uri, None)


def _probe_http(uri: str, timeout: float) -> None:
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (user-given server)
            if resp.status != 200:
                raise RegistryError(f"tracking server {uri} answered {url} with HTTP {resp.status}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RegistryError(
            f"tracking server {uri} is unreachable ({reason}); start it, or unset {ENV_URI} / set "
            "registry.tracking_uri to use the local sqlite:///mlflow.db store. Nothing was logged; "
            "local outputs are untouched."
        ) from None


def schema_revisions(uri: str) -> tuple[str | None, str]:
    """(revision stored in the SQLite store or None when it is empty, revision this MLflow expects)."""
    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    head = ScriptDirectory.from_config(_get_alembic_config(uri)).get_current_head()
    engine = sa.create_engine(uri)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None, head
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return current, head


def check_store(store: Store, upgrade: bool = False, timeout: float = 10.0) -> Store:
    """Fail early and clearly if the store cannot be used; migrate an old SQLite schema on request.

    Raises
    ------
    RegistryError
        Unreachable server, missing SQLite folder, or an out-of-date schema with ``upgrade=False``.
    """
    if store.uri.startswith(("http://", "https://")):
        _probe_http(store.uri, timeout)
        return store
    db = _sqlite_file(store.uri)
    if db is None:
        return store
    if not db.parent.is_dir():
        raise RegistryError(f"tracking store {store.uri}: folder {db.parent} does not exist")
    if not db.exists():
        return store  # MLflow creates the tables at head on first use
    current, head = schema_revisions(store.uri)
    if current is None or current == head:
        return store
    if not upgrade:
        raise RegistryError(
            f"tracking store {store.uri} was written by an older MLflow (schema revision {current}, "
            f"this MLflow expects {head}). Back it up, then run `mlflow db upgrade {store.uri}` or set "
            "registry.upgrade_schema: true; nothing was logged."
        )
    import sqlalchemy as sa
    from mlflow.store.db.utils import _upgrade_db

    engine = sa.create_engine(store.uri)
    try:
        _upgrade_db(engine)
    finally:
        engine.dispose()
    after, _ = schema_revisions(store.uri)
    if after != head:  # pragma: no cover - alembic raises before this
        raise RegistryError(f"tracking store {store.uri}: upgrade stopped at {after}, expected {head}")
    return store


def open_store(tracking_uri: str, artifact_location: str | Path, repo_root: str | Path,
               upgrade: bool = False, timeout: float = 10.0):
    """Resolve, check and connect: returns ``(store, client)``."""
    store = check_store(resolve_store(tracking_uri, artifact_location, repo_root), upgrade, timeout)
    return store, store.client()
