"""Registry against a shared MLflow tracking server backed by PostgreSQL.

Runs under ``tools/pg_mlflow.sh``, which starts a temporary PostgreSQL cluster and an
``mlflow server`` on it and exports ``BRAINLIKE_TEST_TRACKING_URI`` (the server) and
``BRAINLIKE_TEST_PG_DSN`` (its backend database); skipped without them (plain ``make test``):

    tools/pg_mlflow.sh .venv/bin/python -m pytest -q tests/test_registry_server.py

Every test works in experiments of its own, so the tests never see each other's runs on the
shared server. The backend is checked to be PostgreSQL by reading the ``runs`` table directly.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from brainlike.registry import (  # noqa: E402
    ModelRecord,
    RegistryError,
    SubjectFitRecord,
    check_store,
    compare_table,
    log_model_fit,
    resolve_store,
)
from brainlike.registry.concurrency import TAG_DUPLICATE  # noqa: E402
from brainlike.registry.records import Artifact  # noqa: E402
from brainlike.registry.runs import child_runs, find_parent_runs  # noqa: E402

URI = os.environ.get("BRAINLIKE_TEST_TRACKING_URI", "")
DSN = os.environ.get("BRAINLIKE_TEST_PG_DSN", "")
TESTS = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    not (URI and DSN),
    reason="needs an MLflow server on PostgreSQL: run under tools/pg_mlflow.sh, which exports "
           "BRAINLIKE_TEST_TRACKING_URI and BRAINLIKE_TEST_PG_DSN",
)


def _registry_helpers():
    """make_records / PROV of the SQLite registry tests (one source for the test records)."""
    sys.path.insert(0, str(TESTS))
    import test_registry

    return test_registry


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = resolve_store(URI, "mlartifacts", tmp_path_factory.mktemp("repo"), env={})
    assert store.artifact_root is None  # the server keeps the artifacts
    return check_store(store, timeout=10)


@pytest.fixture
def exp_name(request) -> str:
    return f"brainlike-test/{request.node.name}-{uuid.uuid4().hex[:8]}"


def _sql(query: str, *args):
    import psycopg2

    conn = psycopg2.connect(DSN, connect_timeout=10)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall()
    finally:
        conn.close()


def _db_runs(experiment: str) -> dict[str, tuple[str, str]]:
    """run id -> (status, lifecycle stage) of an experiment, read from PostgreSQL's tables."""
    rows = _sql("SELECT r.run_uuid, r.status, r.lifecycle_stage FROM runs r JOIN experiments e "
                "ON r.experiment_id = e.experiment_id WHERE e.name = %s", experiment)
    return {r[0]: (r[1], r[2]) for r in rows}


def _api_runs(client, experiment: str) -> list:
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], max_results=5000)


def test_server_is_postgresql_backed(server, exp_name, tmp_path):
    version = _sql("SELECT version()")[0][0]
    assert version.startswith("PostgreSQL"), version
    from brainlike.registry.store import schema_revisions

    current, head = schema_revisions(resolve_store(DSN, "mlartifacts", tmp_path, env={}).uri)
    assert current == head  # the server migrated this database to MLflow's schema
    reg = _registry_helpers()
    rec, subs = reg.make_records(tmp_path / "art", n_subjects=2)[0]
    fit = log_model_fit(server, exp_name, rec, subs, reg.PROV)
    client = server.client()
    api = {r.info.run_id: (r.info.status, r.info.lifecycle_stage) for r in _api_runs(client, exp_name)}
    db = _db_runs(exp_name)
    assert len(api) == 3 and api == db  # the server's runs are exactly PostgreSQL's rows
    assert set(db) == set(fit.run_ids)
    tags = dict(_sql("SELECT key, value FROM tags WHERE run_uuid = %s", fit.parent_run_id))
    assert tags["brainlike.provenance_hash"] == fit.provenance_hash
    # artifacts go through the server (no shared disk): proxied URI, downloadable
    exp = client.get_experiment_by_name(exp_name)
    assert exp.artifact_location.startswith("mlflow-artifacts:")
    from brainlike.registry.artifacts import read_atom_gifti

    local = Path(client.download_artifacts(fit.parent_run_id, "atom_maps", str(tmp_path / "dl")))
    assert read_atom_gifti(local / "atoms.hemi-L.func.gii", local / "atoms.hemi-R.func.gii").shape == (4, 20484)


def test_idempotence_predecessor_and_compare(server, exp_name, tmp_path):
    reg = _registry_helpers()
    client = server.client()
    first = [log_model_fit(server, exp_name, r, s, reg.PROV) for r, s in reg.make_records(tmp_path / "a")]
    again = [log_model_fit(server, exp_name, r, s, reg.PROV) for r, s in reg.make_records(tmp_path / "b")]
    assert [f.status for f in first] == ["created"] * 3 and [a.status for a in again] == ["unchanged"] * 3
    assert [a.parent_run_id for a in again] == [f.parent_run_id for f in first]
    assert len(_api_runs(client, exp_name)) == 12
    rec, subs = reg.make_records(tmp_path / "c")[1]
    rec.metrics["diversity"] = 0.123
    upd = log_model_fit(server, exp_name, rec, subs, reg.PROV)
    assert upd.status == "updated" and upd.parent_run_id == first[1].parent_run_id
    rec.inputs["data/patterns/minilm-l6"] = "md5-changed"
    new = log_model_fit(server, exp_name, rec, subs, reg.PROV)
    assert new.status == "created" and new.predecessor_run_id == first[1].parent_run_id
    assert client.get_run(first[1].parent_run_id).data.tags["brainlike.superseded_by"] == new.parent_run_id
    assert len(_api_runs(client, exp_name)) == 16 and len(_db_runs(exp_name)) == 16
    df = compare_table(client, exp_name)
    assert list(df["model"]) == ["minilm-l6", "minilm-l6-random", "gemma3-270m"]
    assert df.set_index("model").loc["minilm-l6", "run_id"] == new.parent_run_id
    assert df.set_index("model").loc["minilm-l6", "diversity"] == pytest.approx(0.123)


# -- two OS processes logging to the server at once -------------------------------------------
N_SUBJECTS = 3


def small_fit(model: str, folder: Path, tag: str = "") -> tuple[ModelRecord, list[SubjectFitRecord]]:
    """A small model fit with one artifact file; same ``model`` -> same provenance hash."""
    folder.mkdir(parents=True, exist_ok=True)
    art = folder / f"{model}.txt"
    art.write_text(f"{model} {tag}\n")
    rec = ModelRecord(dataset="race", model=model, generation="g1", generation_order=1, trained=True,
                      params={"patterns": {"n_atoms": 4}}, metrics={"diversity": 0.5, "balance": 0.4},
                      inputs={"data/patterns": f"md5-{model}"}, artifacts=[Artifact(art, "notes")])
    subs = [SubjectFitRecord(f"{s:02d}", params={"n_trs": 100}, metrics={"heldout_r_mean": 0.01 * s},
                             inputs={"bold": f"sha{s}"}) for s in range(1, N_SUBJECTS + 1)]
    return rec, subs


def _barrier(folder: Path, name: str, me: int, parties: int = 2, timeout: float = 120.0) -> None:
    """Wait until every process has reached barrier ``name`` (files in ``folder``)."""
    (folder / f"{name}.{me}").write_text("ready")
    deadline = time.monotonic() + timeout
    while not all((folder / f"{name}.{i}").exists() for i in range(parties)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier {name} in {folder}")
        time.sleep(0.001)


def worker(spec_path: str) -> None:
    """One logging process: for each job, meet the other process at a barrier, then log."""
    spec = json.loads(Path(spec_path).read_text())
    folder, me = Path(spec["folder"]), spec["me"]
    store = resolve_store(spec["uri"], "mlartifacts", folder, env={})
    out = []
    for i, job in enumerate(spec["jobs"]):
        fits = [small_fit(m, folder / f"p{me}" / f"j{i}", tag=f"from process {me}") for m in job["models"]]
        _barrier(folder, f"job{i}", me)
        for rec, subs in fits:
            f = log_model_fit(store, job["experiment"], rec, subs)
            out.append({"job": i, "model": rec.model, "parent": f.parent_run_id, "status": f.status,
                        "subjects": f.subject_run_ids})
    Path(spec["result"]).write_text(json.dumps(out))


def run_pair(tmp_path: Path, jobs_per_process: list[list[dict]]) -> list[list[dict]]:
    """Run two worker processes on the server at once; their results, in process order."""
    procs, results = [], []
    for me, jobs in enumerate(jobs_per_process):
        spec = tmp_path / f"spec{me}.json"
        result = tmp_path / f"result{me}.json"
        spec.write_text(json.dumps({"folder": str(tmp_path), "me": me, "uri": URI, "jobs": jobs,
                                    "result": str(result)}))
        code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_registry_server as t; t.worker({str(spec)!r})"
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
        results.append(result)
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out
    return [json.loads(r.read_text()) for r in results]


def test_two_processes_different_models(server, exp_name, tmp_path):
    """Both create the experiment at once, then log different models: every run exactly once."""
    a, b = ["m-a1", "m-a2"], ["m-b1", "m-b2"]
    res = run_pair(tmp_path, [[{"experiment": exp_name, "models": a}], [{"experiment": exp_name, "models": b}]])
    client = server.client()
    exps = [e for e in client.search_experiments(filter_string=f"name = '{exp_name}'")]
    assert len(exps) == 1
    runs = _api_runs(client, exp_name)
    parents = [r for r in runs if r.data.tags.get("brainlike.level") == "model"]
    assert sorted(r.data.tags["brainlike.model"] for r in parents) == sorted(a + b)
    assert len(runs) == len(a + b) * (1 + N_SUBJECTS)
    assert all(r.info.status == "FINISHED" for r in runs)
    logged = {x["parent"] for r in res for x in r} | {s for r in res for x in r for s in x["subjects"].values()}
    assert logged == {r.info.run_id for r in runs}
    assert all(x["status"] == "created" for r in res for x in r)
    db = _db_runs(exp_name)
    assert set(db) == logged and all(v == ("FINISHED", "active") for v in db.values())


ROUNDS = 4


def test_two_processes_same_fit_keep_one_run(server, tmp_path):
    """The same model and provenance from two processes at once: one parent survives, nothing lost.

    Each round uses a fresh experiment, so both processes also race to create it."""
    base = f"brainlike-test/race-{uuid.uuid4().hex[:8]}"
    jobs = [{"experiment": f"{base}/{i}", "models": ["same-model"]} for i in range(ROUNDS)]
    res = run_pair(tmp_path, [jobs, jobs])
    client = server.client()
    exp_ids = [client.get_experiment_by_name(f"{base}/{i}").experiment_id for i in range(ROUNDS)]
    survivors = [len(find_parent_runs(client, e, "same-model")) for e in exp_ids]
    assert survivors == [1] * ROUNDS, f"parent runs left per round: {survivors}"
    discarded = []
    for i, exp_id in enumerate(exp_ids):
        active = client.search_runs([exp_id], max_results=1000)
        parents = find_parent_runs(client, exp_id, "same-model")
        pid = parents[0].info.run_id
        kids = child_runs(client, exp_id, pid)
        assert sorted(k.data.tags["brainlike.subject"] for k in kids) == [f"{s:02d}" for s in range(1, N_SUBJECTS + 1)]
        assert len(active) == 1 + N_SUBJECTS and all(r.info.status == "FINISHED" for r in active)
        # both processes were told the surviving run; exactly one created it
        mine = [x for r in res for x in r if x["job"] == i]
        assert {x["parent"] for x in mine} == {pid}, mine
        assert sorted(x["status"] for x in mine)[0] == "created"
        assert [x["status"] for x in mine].count("created") == 1, mine
        assert all(x["subjects"] == {k.data.tags["brainlike.subject"]: k.info.run_id for k in kids} for x in mine)
        # what PostgreSQL holds: the survivor and its children active, any loser deleted and marked
        db = _db_runs(f"{base}/{i}")
        assert {k for k, v in db.items() if v[1] == "active"} == {r.info.run_id for r in active}
        deleted = [client.get_run(rid) for rid, (_, stage) in db.items() if stage == "deleted"]
        assert all(r.data.tags.get(TAG_DUPLICATE) == pid for r in deleted)
        discarded.append(sum(r.data.tags.get("brainlike.level") == "model" for r in deleted))
    # a discarded parent means both processes had created one: they really raced (before the
    # claim-and-check scheme, every round of this test left two parent runs)
    print(f"same-fit race: duplicate parents created then discarded per round: {discarded}")
    assert any(discarded), "the two processes never overlapped; the race was not exercised"


# -- a PostgreSQL URI as the tracking URI itself ------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgresql_tracking_uri_directly(tmp_path, exp_name):
    """``registry.tracking_uri: postgresql://...`` logs straight into the database the server reads."""
    store = resolve_store(DSN, "mlartifacts", tmp_path, env={})
    assert store.is_database and store.artifact_root == tmp_path / "mlartifacts"
    check_store(store, timeout=10)
    reg = _registry_helpers()
    rec, subs = reg.make_records(tmp_path / "art", n_subjects=1)[2]
    fit = log_model_fit(store, exp_name, rec, subs, reg.PROV)
    assert log_model_fit(store, exp_name, rec, subs, reg.PROV).status == "unchanged"
    from mlflow import MlflowClient

    via_server = _api_runs(MlflowClient(URI), exp_name)
    assert {r.info.run_id for r in via_server} == set(fit.run_ids) == set(_db_runs(exp_name))
    assert (tmp_path / "mlartifacts").is_dir()


def test_postgresql_uri_errors(tmp_path):
    user_pw_db = DSN.split("@")[0] + "@127.0.0.1:{port}/mlflow"
    port = _closed_port()
    bad = resolve_store(user_pw_db.format(port=port), "mlartifacts", tmp_path, env={})
    t0 = time.monotonic()
    with pytest.raises(RegistryError, match=rf"127\.0\.0\.1:{port}.*unreachable.*registry\.tracking_uri") as exc:
        check_store(bad, timeout=5)
    assert time.monotonic() - t0 < 30
    password = DSN.split("@")[0].rsplit(":", 1)[1]
    assert password not in str(exc.value)  # the password is never printed
    host_port = DSN.split("@")[1].split("/")[0]
    nodb = resolve_store(DSN.split("@")[0] + f"@{host_port}/no_such_db", "mlartifacts", tmp_path, env={})
    with pytest.raises(RegistryError, match="no_such_db"):
        check_store(nodb, timeout=5)


def test_postgresql_old_schema_refused_then_migrated(tmp_path):
    """A PostgreSQL store at an older MLflow schema: refused untouched, then migrated on request."""
    import psycopg2
    import sqlalchemy as sa
    from alembic import command
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    from brainlike.registry.store import schema_revisions

    name = f"old_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(DSN, connect_timeout=10)
    admin.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        store = resolve_store(DSN.rsplit("/", 1)[0] + "/" + name, "mlartifacts", tmp_path, env={})
        cfg = _get_alembic_config(store.uri)
        script = ScriptDirectory.from_config(cfg)
        old = script.get_revision(script.get_current_head()).down_revision
        engine = sa.create_engine(store.uri)
        InitialBase.metadata.create_all(engine)  # what MLflow creates first, then migrates
        engine.dispose()
        command.upgrade(cfg, old)
        with pytest.raises(RegistryError, match=rf"older MLflow \(schema revision {old}.*mlflow db upgrade"):
            check_store(store)
        assert schema_revisions(store.uri)[0] == old
        check_store(store, upgrade=True)
        head = script.get_current_head()
        assert schema_revisions(store.uri) == (head, head)
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _claim(client, exp_id: str, model: str, phash: str, start_time: int, finish: bool) -> str:
    """A parent run of the same fit as another process (or a host with another clock) leaves it."""
    run = client.create_run(exp_id, start_time=start_time, run_name=model,
                            tags={"brainlike.level": "model", "brainlike.model": model,
                                  "brainlike.provenance_hash": phash})
    if finish:
        client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_settling_rules(server, exp_name, tmp_path):
    """The order the concurrent registrations settle by, driven step by step."""
    import threading

    from brainlike.registry import provenance_hash
    from brainlike.registry.runs import ensure_experiment

    client = server.client()
    rec, subs = small_fit("settle", tmp_path)
    phash = provenance_hash(rec, subs)
    exp_id = ensure_experiment(client, exp_name)
    now = int(time.time() * 1000)
    # two FINISHED registrations (hosts whose clocks disagree): the earliest start stays
    late = _claim(client, exp_id, "settle", phash, now, finish=True)
    early = _claim(client, exp_id, "settle", phash, now - 5000, finish=True)
    fit = log_model_fit(server, exp_name, rec, subs)
    assert fit.parent_run_id == early and fit.status == "updated"  # the early one had no metrics yet
    gone = client.get_run(late)
    assert gone.info.lifecycle_stage == "deleted" and gone.data.tags[TAG_DUPLICATE] == early
    # a RUNNING registration that goes first is waited for, then reused
    rec2, subs2 = small_fit("settle-2", tmp_path)
    rival = _claim(client, exp_id, "settle-2", provenance_hash(rec2, subs2), now - 1000, finish=False)
    threading.Timer(1.5, client.set_terminated, (rival, "FINISHED")).start()
    t0 = time.monotonic()
    fit2 = log_model_fit(server, exp_name, rec2, subs2)
    assert fit2.parent_run_id == rival and time.monotonic() - t0 >= 1.4
    assert len(find_parent_runs(client, exp_id, "settle-2", finished_only=False)) == 1
    # ... but not forever: a stuck one is named
    rec3, subs3 = small_fit("settle-3", tmp_path)
    stuck = _claim(client, exp_id, "settle-3", provenance_hash(rec3, subs3), now - 1000, finish=False)
    with pytest.raises(RegistryError, match=rf"settle-3: run {stuck} .* still RUNNING.*set_terminated"):
        log_model_fit(server, exp_name, rec3, subs3, wait_s=1.0)
    # a RUNNING one that goes later does not hold this one up, and is settled when it finishes
    rec4, subs4 = small_fit("settle-4", tmp_path)
    later = _claim(client, exp_id, "settle-4", provenance_hash(rec4, subs4), now + 60_000, finish=False)
    fit4 = log_model_fit(server, exp_name, rec4, subs4)
    assert fit4.status == "created" and fit4.parent_run_id != later
    client.set_terminated(later, "FINISHED")  # it finished without looking: the next registration settles it
    assert log_model_fit(server, exp_name, rec4, subs4).parent_run_id == fit4.parent_run_id
    assert client.get_run(later).info.lifecycle_stage == "deleted"
