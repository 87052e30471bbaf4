"""The tracking store: resolve its URI, check it is reachable and current, hand out a client.

Default: ``sqlite:///mlflow.db`` with artifacts under ``mlartifacts/``, both in the repository
root (git-ignored). ``MLFLOW_TRACKING_URI`` overrides ``registry.tracking_uri``. Also accepted:
an MLflow tracking server (``http(s)://host:5000``, the way to share one registry across
machines: the server stores the artifacts) and a database URI used directly
(``postgresql://user@host:5432/db``; artifacts then go under ``artifact_location`` on the local
disk). A bare ``postgresql://`` is given the psycopg2 driver when psycopg 3 is not installed
(SQLAlchemy 2.1 would otherwise ask for psycopg 3).

Failure modes turned into one :class:`RegistryError` that names the URI (passwords hidden):

- an http(s) server that does not answer ``/health`` within ``timeout_s`` (MLflow's own client
  would retry with back-off for minutes before failing);
- a database server that cannot be reached or refuses the connection within ``timeout_s``;
- a SQLite file whose folder does not exist;
- a database store written by an older MLflow schema: refused with the upgrade command, or
  migrated in place when ``upgrade=True`` (``registry.upgrade_schema``);
- a server with authentication (MLflow's ``basic-auth`` app) that refuses a request: no or wrong
  credentials (HTTP 401) or a user without the permission (HTTP 403). The client authenticates
  with ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` from the environment; see
  :func:`refusals_as_errors`.

A SQLite store moved with its clone is re-rooted on open (:func:`reroot_artifacts`): MLflow keeps
absolute artifact URIs, which would otherwise still name the old folder.
"""

from __future__ import annotations

import importlib.util
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrainlikeError

ENV_URI = "MLFLOW_TRACKING_URI"
ENV_USER, ENV_PASSWORD = "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"  # read by MLflow's client
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # SQLAlchemy dialects MLflow stores runs in


def _scheme(uri: str) -> str:
    """``postgresql+psycopg2://...`` -> ``postgresql``; "" for a plain path."""
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


# query-string parameters that carry a credential (``?password=...``, ``&token=...``)
_SECRET_PARAMS = (r"(?:password|passwd|pwd|pass|secret|client_secret|token|access_token|auth_token|"
                  r"id_token|refresh_token|api_key|apikey|key|sig|signature|credentials?)")


def redact(text: str) -> str:
    """``text`` with every URI password and query-string credential replaced by ``***``.

    Covers ``scheme://user:password@host`` and ``?password=`` / ``&token=`` / ``&secret=`` (and
    the other names of :data:`_SECRET_PARAMS`, any case) wherever they appear, so it also
    serves for messages that quote a URI (a driver's error text).
    """
    text = re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@", r"\1:***@", text)
    return re.sub(rf"([?&;]{_SECRET_PARAMS}=)[^&;#\s'\"]*", r"\1***", text, flags=re.IGNORECASE)


class RegistryError(BrainlikeError):
    """The tracking store cannot be used, or holds no run for what was asked."""


# MLflow's error codes of a refused request, and the HTTP status each stands for
_REFUSALS = {"UNAUTHENTICATED": 401, "CUSTOMER_UNAUTHORIZED": 401, "PERMISSION_DENIED": 403}


def _refusal_status(exc: BaseException) -> int | None:
    """401 or 403 when ``exc`` is a request the server refused, else None.

    MLflow's REST client raises ``MlflowException`` / ``RestException`` with ``error_code``
    UNAUTHENTICATED or PERMISSION_DENIED; its artifact uploads raise ``requests.HTTPError``.
    """
    code = getattr(exc, "error_code", None)
    if code in _REFUSALS:
        return _REFUSALS[code]
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if status in (401, 403) else None


def refusal_error(exc: BaseException, uri: str, doing: str, need: str = "EDIT",
                  env: dict[str, str] | None = None) -> RegistryError | None:
    """The one-line error for a request the tracking server refused; None for any other error.

    Names the server (password hidden), the user, the permission ``need``-ed on the experiment
    and what to set; never a credential. ``env`` stands for the client's environment (default:
    ``os.environ`` and ``~/.mlflow/credentials``).
    """
    status = _refusal_status(exc)
    if status is None:
        return None
    if env is None:  # what MLflow's client sent: the environment, else ~/.mlflow/credentials
        from mlflow.utils.credentials import read_mlflow_creds

        env, user = os.environ, read_mlflow_creds().username
    else:
        user = env.get(ENV_USER)
    try:
        user = user or urllib.parse.urlsplit(uri).username
    except ValueError:
        pass
    where = f"tracking server {redact(uri)}"
    creds = f"{ENV_USER} and {ENV_PASSWORD}"
    if status == 401 and not (user or env.get("MLFLOW_TRACKING_TOKEN")):
        what = (f"asks for credentials (HTTP 401) when {doing}; set {creds} in the environment "
                "(never in params.yaml) to an account of that server")
    elif status == 401:
        who = f"user {user!r}" if user else "MLFLOW_TRACKING_TOKEN"
        what = (f"did not accept the credentials of {who} (HTTP 401) when {doing}; check {creds} "
                "(in the environment, never in params.yaml)")
    else:
        who = f"user {user!r}" if user else "this client"
        what = (f"denied {who} permission for {doing} (HTTP 403); an admin of the server grants {need} on "
                f"the experiment (READ reads, EDIT registers, MANAGE also deletes runs), or set {creds} to "
                "an account that has it")
    return RegistryError(f"{where} {what}. Local outputs are untouched.")


@contextmanager
def refusals_as_errors(uri: str, doing: str, need: str = "EDIT") -> Iterator[None]:
    """Turn a request the tracking server refuses (HTTP 401/403) into :func:`refusal_error`."""
    try:
        yield
    except Exception as exc:
        err = refusal_error(exc, uri, doing, need)
        if err is None:
            raise
        raise err from None


@dataclass(frozen=True, repr=False)
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

    def __repr__(self) -> str:  # never print a password
        return f"Store(uri={self.display_uri!r}, artifact_root={self.artifact_root!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.uri.startswith("sqlite:")

    @property
    def is_database(self) -> bool:
        """A database URI MLflow writes to directly (SQLite, PostgreSQL, MySQL, SQL Server)."""
        return _scheme(self.uri) in DB_SCHEMES

    @property
    def display_uri(self) -> str:
        """The URI with its password hidden."""
        return redact(self.uri)

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
    uri = _postgres_driver(uri)
    if _scheme(uri) in DB_SCHEMES or uri.startswith("file:") or "://" not in uri:
        art = Path(artifact_location)
        return Store(uri, art if art.is_absolute() else root / art)
    return Store(uri, None)


def _postgres_driver(uri: str) -> str:
    """Name the driver of a bare ``postgresql://`` (or ``postgres://``) URI when it must be psycopg2."""
    head, sep, rest = uri.partition("://")
    if not sep or head.lower() not in ("postgresql", "postgres"):
        return uri
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + rest
    return "postgresql://" + rest


def _engine(uri: str, timeout: float | None = None):
    import sqlalchemy as sa

    args = {"connect_timeout": max(1, round(timeout))} if timeout and _scheme(uri) == "postgresql" else {}
    return sa.create_engine(uri, connect_args=args)


def _probe_db(store: Store, timeout: float) -> None:
    """Connect once to a database store (not SQLite); RegistryError naming host and reason if not."""
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(store.uri)
        engine = _engine(store.uri, timeout)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, ValueError) as exc:
        raise RegistryError(
            f"tracking store {store.display_uri}: not a usable database URI ({redact(str(exc))}); check "
            f"registry.tracking_uri (or {ENV_URI})"
        ) from None
    host = f"{url.host or 'localhost'}:{url.port or ''}".rstrip(":")
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        reason = redact(" ".join(str(exc.orig or exc).split()))
        low = reason.lower()
        unreachable = any(s in low for s in ("refused", "timeout", "timed out", "could not translate host",
                                             "no route", "unreachable", "name or service"))
        what = "is unreachable" if unreachable else f"refused database {url.database!r}"
        raise RegistryError(
            f"tracking store {store.display_uri}: the database server at {host} {what} ({reason}). "
            f"Check registry.tracking_uri (or {ENV_URI}) and that the server is up; nothing was "
            "logged, local outputs are untouched."
        ) from None
    finally:
        engine.dispose()


def _without_userinfo(uri: str) -> str:
    """``uri`` without ``user:password@`` (urllib would take it for a host name)."""
    parts = urllib.parse.urlsplit(uri)
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]).geturl() if "@" in parts.netloc else uri


def _probe_http(uri: str, timeout: float) -> None:
    url = _without_userinfo(uri).rstrip("/") + "/health"  # /health needs no credentials
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (user-given server)
            if resp.status != 200:
                raise RegistryError(f"tracking server {redact(uri)} answered {redact(url)} with HTTP {resp.status}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = redact(str(getattr(exc, "reason", exc)))
        raise RegistryError(
            f"tracking server {redact(uri)} is unreachable ({reason}); start it, or unset {ENV_URI} / set "
            "registry.tracking_uri to use the local sqlite:///mlflow.db store. Nothing was logged; "
            "local outputs are untouched."
        ) from None


def schema_revisions(uri: str, timeout: float | None = None) -> tuple[str | None, str]:
    """(revision stored in the database store or None when it is empty, revision this MLflow expects)."""
    from importlib.metadata import version

    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    from .._utils.memo import Memo

    def current_head() -> str:
        return ScriptDirectory.from_config(_get_alembic_config(uri)).get_current_head()

    # reading MLflow's ~60 migration scripts takes ~1.5 s a process; the head is fixed by its version
    head = Memo("mlflow-schema-head")(current_head, version("mlflow"))
    engine = _engine(uri, timeout)
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
        Unreachable server or database, missing SQLite folder, or an out-of-date schema with
        ``upgrade=False``.
    """
    if store.uri.startswith(("http://", "https://")):
        _probe_http(store.uri, timeout)
        return store
    if not store.is_database:
        return store
    if store.is_sqlite:
        db = _sqlite_file(store.uri)
        if db is None:
            return store
        if not db.parent.is_dir():
            raise RegistryError(f"tracking store {store.display_uri}: folder {db.parent} does not exist")
        if not db.exists():
            return store  # MLflow creates the tables at head on first use
    else:
        _probe_db(store, timeout)
    current, head = schema_revisions(store.uri, timeout)
    if current is None:
        return store  # an empty database gets MLflow's tables at head on first use
    if current == head:
        if store.is_sqlite:
            reroot_artifacts(store)
        return store
    shown = store.display_uri
    if not upgrade:
        raise RegistryError(
            f"tracking store {shown} was written by an older MLflow (schema revision {current}, "
            f"this MLflow expects {head}). Back it up, then run `mlflow db upgrade {shown}` or set "
            "registry.upgrade_schema: true; nothing was logged."
        )
    from mlflow.store.db.utils import _upgrade_db

    engine = _engine(store.uri, timeout)
    try:
        _upgrade_db(engine)
    finally:
        engine.dispose()
    after, _ = schema_revisions(store.uri, timeout)
    if after != head:  # pragma: no cover - alembic raises before this
        raise RegistryError(f"tracking store {shown}: upgrade stopped at {after}, expected {head}")
    return store


def _file_path(uri: str) -> Path | None:
    if not uri.startswith("file:"):
        return None
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(uri).path))


def reroot_artifacts(store: Store) -> list[tuple[str, str]]:
    """Point a moved SQLite store's experiments (and their runs) at its current artifact root.

    MLflow records artifact locations as absolute ``file://`` URIs, so a clone moved or copied to
    another folder would keep the old folder in every experiment and run, and the UI's artifact
    links would break. An experiment is re-rooted when its recorded folder no longer exists and
    was ``<old>/<artifact_root name>/<folder>``: it becomes ``<artifact_root>/<folder>``, and every
    run URI and logged-model location under the old folder is rewritten the same way. Locations
    that exist, or that do not follow the project's layout, are left alone. Returns the
    ``(old, new)`` locations rewritten.
    """
    import sqlalchemy as sa

    root = store.artifact_root
    if root is None or not store.is_sqlite:
        return []
    root = Path(root).resolve()
    engine = _engine(store.uri)
    moved: list[tuple[str, str]] = []
    try:
        with engine.begin() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            rows = conn.execute(sa.text("SELECT experiment_id, artifact_location FROM experiments")).all()
            for exp_id, location in rows:
                old = _file_path(location or "")
                if old is None or old.exists() or old.parent.name != root.name or old.parent == root:
                    continue
                new = (root / old.name).as_uri()
                moved.append((location, new))
                conn.execute(sa.text("UPDATE experiments SET artifact_location = :new WHERE experiment_id = :id"),
                             {"new": new, "id": exp_id})
                for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                    if table in tables:  # prefix swap; LIKE-free so no folder name is a pattern
                        conn.execute(sa.text(
                            f"UPDATE {table} SET {column} = :new || substr({column}, :n + 1) "
                            f"WHERE experiment_id = :id AND substr({column}, 1, :n) = :old"),
                            {"new": new, "old": location, "n": len(location), "id": exp_id})
    finally:
        engine.dispose()
    return moved


def open_store(tracking_uri: str, artifact_location: str | Path, repo_root: str | Path,
               upgrade: bool = False, timeout: float = 10.0):
    """Resolve, check and connect: returns ``(store, client)``."""
    store = check_store(resolve_store(tracking_uri, artifact_location, repo_root), upgrade, timeout)
    return store, store.client()
