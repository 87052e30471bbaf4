"""End to end through the library side of the stages encode -> networks -> metrics.

A small setting built here, no mocks: a prepared store with four fsaverage5 subjects (real
atlas geometry, smooth noise, atom 0 planted in Yeo-7 Visual, atom 3 planted negatively in
Cole-Anticevic Auditory) and three ROI subjects (atom 0 drives ROI 'A'), a trained model whose
K = 8 atoms include the planted time courses, and its random twin whose atoms do not. The planted
time courses are also the story's feature table, so the benchmark's oracle and null
(``encode_bounds``) run through the same chain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter1d

from brainlike.config import parse_params
from brainlike.data.run import Run
from brainlike.data.store import write_store
from brainlike.encoding.fit import fixed_effects_group
from brainlike.encoding.regressors import atoms_on_run
from brainlike.encoding.stage import run_baseline, run_bounds, run_encode
from brainlike.metrics.stage import run_metrics
from brainlike.networks import network_set
from brainlike.networks.links import read_links
from brainlike.networks.stage import run_networks

ROOT = Path(__file__).resolve().parents[1]
T, TR, K = 160, 2.0, 8
N_SURFACE = 4  # the group t-test has N_SURFACE - 1 dof: 2 subjects could never pass FDR
PLANTED = [{"feature": "atom_0", "atlas": "yeo7", "network": "Visual"},
           {"feature": "atom_3", "atlas": "cole_anticevic12", "network": "Auditory"}]


def _atoms(seed: int) -> np.ndarray:
    """K smooth unit-norm time courses (T, K)."""
    a = gaussian_filter1d(np.random.default_rng(seed).standard_normal((T, K)), 2.0, axis=0)
    a -= a.mean(0)
    return a / np.linalg.norm(a, axis=0)


def _words() -> pd.DataFrame:
    on = np.arange(10.0, T * TR - 20.0, 0.45)
    return pd.DataFrame({"word": ["la"] * on.size, "onset": on, "duration": np.full(on.size, 0.3)})


def _patterns(root: Path, model: str, stimulus: str, atoms: np.ndarray, n_layers: int = 3) -> None:
    d = root / model / stimulus
    d.mkdir(parents=True)
    df = pd.DataFrame(atoms, columns=[f"atom_{k:03d}" for k in range(K)])
    df.insert(0, "time_s", np.arange(T) * TR)
    df.insert(0, "tr_index", np.arange(T))
    df.to_parquet(d / "atoms.parquet", index=False)
    rng = np.random.default_rng(1)
    n = 60
    ans = pd.DataFrame({"an_id": np.arange(n), "tower": "text", "layer": np.arange(n) % n_layers,
                        "unit": np.arange(n) // n_layers, "delay": 0})
    ans.to_parquet(d / "ans.parquet", index=False)
    sub = ans.assign(atom=rng.integers(0, K, n), code=rng.standard_normal(n), is_max=True)
    sub.to_parquet(d / "subgroups.parquet", index=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory, atlas_root):
    """Prepared store + validation.json + patterns of two models; returns the params and paths."""
    tmp = tmp_path_factory.mktemp("study")
    nets = network_set(["yeo7", "cole_anticevic12"], atlas_root)
    vis, aud = nets.mask("yeo7", "Visual"), nets.mask("cole_anticevic12", "Auditory")
    atoms = _atoms(0)
    twin_atoms = _atoms(99)
    runs = []
    for s in range(N_SURFACE):
        rng = np.random.default_rng(10 + s)
        y = gaussian_filter1d(rng.standard_normal((T, nets.cortex.size)), 1.0, axis=0).astype(np.float32)
        y /= y.std(0)
        y[:, vis] += 1.5 * atoms[:, 0:1] / atoms[:, 0].std()
        y[:, aud] -= 1.5 * atoms[:, 3:4] / atoms[:, 3].std()
        y[:, ~nets.cortex] = 0.0  # medial wall: constant
        conf = pd.DataFrame(rng.standard_normal((T, 2)) * 0.1, columns=["trans_x", "rot_x"])
        runs.append(Run("embedded", f"{s + 1:02d}", "story", TR, "fsaverage5", y, conf, _words()))
    for s in range(3):
        rng = np.random.default_rng(20 + s)
        y = gaussian_filter1d(rng.standard_normal((T, 3)), 1.0, axis=0)
        y /= y.std(0)
        y[:, 0] += 0.8 * atoms[:, 0] / atoms[:, 0].std()
        conf = pd.DataFrame({"rate": gaussian_filter1d(rng.standard_normal(T), 2.0),
                             "sndpwr": gaussian_filter1d(rng.standard_normal(T), 2.0)})
        runs.append(Run("alice", f"{s + 1:02d}", "alice", TR, "roi", y, conf, _words(), target_names=["A", "B", "C"]))
    prepared = tmp / "prepared"
    truth = {"snr": 1.5, "tr": TR, "n_subjects": N_SURFACE, "planted": PLANTED}
    features = pd.DataFrame({"atom_0": atoms[:, 0], "atom_3": -atoms[:, 3], "unplanted": atoms[:, 5]})
    write_store(runs, prepared, sidecars={"embedded/ground_truth.json": json.dumps(truth),
                                          "embedded/features.parquet": features})
    metrics = tmp / "metrics"
    metrics.mkdir()
    (metrics / "validation.json").write_text(json.dumps({"valid_runs": [r.run_id for r in runs]}))
    patterns = tmp / "patterns"
    for stim in ("embedded_task-story", "alice_task-alice"):
        _patterns(patterns, "m", stim, atoms)
        _patterns(patterns, "m-random", stim, twin_atoms)
    params = parse_params({
        "paths": {"atlases": str(atlas_root), "prepared": str(prepared), "metrics": str(metrics)},
        "embedded": {"enabled": False},
        "models": {"m": {"generation": "g", "source": "pip:x", "trained": True},
                   "m-random": {"generation": "g", "source": "pip:x", "trained": False}},
        "patterns": {"output": str(patterns)},
        "encoding": {"output": str(tmp / "encoding"), "baseline_output": str(tmp / "baseline"),
                     "bounds_output": str(tmp / "bounds"),
                     "alphas": [1.0, 10.0, 100.0, 1000.0], "vertex_alphas": [10.0, 100.0], "vertex_inner_folds": 2,
                     "n_folds": 4, "n_inner_folds": 2, "gap_trs": 3, "n_permutations": 40, "min_shift_trs": 15,
                     "target_atlases": ["yeo7"]},
        "networks": {"output": str(tmp / "networks"), "n_spins": 1000, "atlases": ["yeo7", "cole_anticevic12"]},
    })
    return params


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread: these matrices are tiny, and two OpenMP threads on a busy 2-core
    machine (the rest of the suite, other jobs) spin-wait and run ~15x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def outputs(study, one_thread):
    p = study
    val = Path(p.paths.metrics) / "validation.json"
    enc = {m: run_encode(m, p.encoding, p.patterns.output, p.paths.prepared, val, p.paths.atlases, p.paths.metrics)
           for m in ("m", "m-random")}
    base = run_baseline(p.encoding, p.paths.prepared, val, p.paths.atlases, p.paths.metrics)
    bounds = run_bounds(p.encoding, p.encoding.bounds_output, p.paths.prepared, val, p.paths.atlases)
    net = run_networks(["m", "m-random"], p.networks, p.encoding.output, p.paths.atlases, p.networks.output,
                       p.paths.metrics, bounds_root=p.encoding.bounds_output)
    met = run_metrics(p)
    return {"encode": enc, "baseline": base, "bounds": bounds, "networks": net, "metrics": met}


def test_encode_outputs_shapes(study, outputs):
    d = Path(study.encoding.output) / "m" / "embedded_task-story"
    for f in ("sub-01.npz", "sub-02.npz", "group.npz", "targets.parquet", "encode.json"):
        assert (d / f).is_file(), f
    with np.load(d / "sub-01.npz") as s:
        assert s["z"].shape == (K, 20484) and s["significant"].shape == (K, 20484)
        assert s["r"].shape == (20484,) and s["alpha"].shape == (4, 20484)
        assert np.isnan(s["r"][~s["valid"]]).all() and (s["z"][:, ~s["valid"]] == 0).all()
    with np.load(d / "group.npz") as g:
        assert g["z"].shape == (K, 20484)
        # the planted atom is significant (positively) in most of Visual at the group level
        nets = network_set(["yeo7"], study.paths.atlases)
        assert g["positive"][0][nets.mask("yeo7", "Visual")].mean() > 0.5
    tab = pd.read_parquet(d / "targets.parquet")
    assert set(tab["subject"]) == {"01", "02", "03", "04", "group"} and (tab["kind"] == "network").all()
    assert len(tab[tab["subject"] == "group"]) == 7  # yeo7 networks
    vis = tab[(tab["subject"] == "group") & (tab["target"] == "yeo7/Visual")].iloc[0]
    assert vis["r"] > 0.3 and vis["p"] <= 2 / 41
    summ = json.loads((d / "encode.json").read_text())
    assert summ["group"]["r_top"] >= summ["group"]["r_mean"] and summ["n_subjects"] == N_SURFACE
    assert (Path(study.paths.metrics) / "encode" / "m.json").is_file()
    # the baseline was fitted once per stimulus: words on the surface, the dataset's columns on ROIs
    assert outputs["baseline"]["embedded_task-story"]["regressors"] == ["words:word_rate,envelope"]
    assert outputs["baseline"]["alice_task-alice"]["regressors"] == ["dataset:rate,sndpwr"]


def test_metrics_from_the_memo_are_the_same_bytes(study, outputs, tmp_path, monkeypatch):
    """run_metrics again (every model's bootstraps from build/memo) and without the memo: the
    four outputs are the bytes the first run wrote."""
    from brainlike._utils.reproducible import build_dir

    names = ("organization.json", "organization.parquet", "recovery.json", "alice.json")
    first = {n: (Path(study.paths.metrics) / n).read_bytes() for n in names}
    assert list((build_dir() / "memo").glob("*/metrics-model/*.pkl"))
    run_metrics(study, metrics_dir=tmp_path / "hit")
    monkeypatch.setenv("BRAINLIKE_MEMO", "0")
    run_metrics(study, metrics_dir=tmp_path / "off")
    for n in names:
        assert (tmp_path / "hit" / n).read_bytes() == first[n], n
        assert (tmp_path / "off" / n).read_bytes() == first[n], n


def test_networks_links_planted_atoms(study, outputs):
    links = read_links(study.networks.output)
    assert {"model", "stimulus", "atom", "sign", "atlas", "network", "dice", "p", "linked"} <= set(links.columns)
    assert set(links["model"]) == {"m", "m-random"}  # one table per model folder, read as one
    assert set(links["stimulus"]) == {"embedded_task-story"}  # ROI data are not matched
    lk = links[(links["model"] == "m") & links["linked"]]
    hit = lambda a, s, at, n: ((lk["atom"] == a) & (lk["sign"] == s) & (lk["atlas"] == at) & (lk["network"] == n)).any()  # noqa: E731
    assert hit(0, "+", "yeo7", "Visual")
    assert hit(3, "-", "cole_anticevic12", "Auditory")
    with np.load(Path(study.networks.output) / "m" / "embedded_task-story" / "maps.npz") as f:
        assert f["group"].shape == (K, 2, 20484) and f["subjects"].shape == (N_SURFACE, K, 2, 20484)
        assert f["group_marginal"].shape == (K, 2, 20484)
    # the marginal maps (each atom fitted alone) are linked beside the joint ones, the bounds' are not
    marg = read_links(study.networks.output, marginal=True)
    assert set(marg["model"]) == {"m", "m-random"} and len(marg) == len(links)
    lm = marg[(marg["model"] == "m") & marg["linked"]]
    assert ((lm["atom"] == 0) & (lm["sign"] == "+") & (lm["network"] == "Visual")).any()
    assert not (Path(study.networks.output) / "bounds" / "links_marginal.parquet").exists()
    with np.load(Path(study.encoding.output) / "m" / "embedded_task-story" / "group.npz") as g:
        assert g["z_marginal"].shape == (K, 20484)
    with np.load(Path(study.encoding.output) / "m" / "alice_task-alice" / "group.npz") as g:
        assert "z_marginal" not in g.files  # ROI data have no maps to link


def test_metrics_plumbing_with_the_models_own_atoms_planted(study, outputs):
    """Plumbing, not science: the study's signal is built from model ``m``'s own atoms, so ``m``
    passing recovery is by construction. What can fail here is the wiring (encode -> networks ->
    metrics: files, keys, CIs, the twin comparison); whether a real model finds a planted signal it
    did not make is the embedded benchmark's question (``test_recovery.py``, ``test_embedded.py``)."""
    mdir = Path(study.paths.metrics)
    org = json.loads((mdir / "organization.json").read_text())["models"]
    assert set(org) == {"m", "m-random"}
    assert org["m"]["n_linked_atoms"] >= 2 and org["m"]["twin"] == "m-random"
    assert org["m"]["n_linked_atoms_marginal"] >= 1 and "within_fbn_consistency_marginal" in org["m"]
    assert org["m"]["heldout"]["r_mean"] is not None and org["m"]["heldout_baseline"] is not None
    tidy = pd.read_parquet(mdir / "organization.parquet")
    assert list(tidy.columns) == ["model", "metric", "key", "value"] and len(tidy) > 10
    rec = json.loads((mdir / "recovery.json").read_text())
    assert rec["models"]["m"]["all_pass"], rec["summary"]["m"]
    assert rec["models"]["m"]["min_best_dice"] >= 0.6
    # the twin is scored on its own links: below m. At this planted strength (r ~0.8 per vertex)
    # the moderated t makes even its chance-correlated atoms map the planted networks (Visual
    # 0.87, Auditory 0.64 measured): why the benchmark's own strength is calibrated to real data
    assert rec["models"]["m-random"]["min_best_dice"] < rec["models"]["m"]["min_best_dice"] - 0.2
    alice = json.loads((mdir / "alice.json").read_text())["stimuli"]["alice_task-alice"]
    m = alice["models"]["m"]
    old = m["per_subject_fits"]
    assert old["rois"]["A"]["r"] > 0.3 and old["rois"]["A"]["p"] <= 2 / 41
    assert old["vs_twin"]["mean_difference"] > 0 and "verdict" in m
    a = m["shared"]["rois"]["A"]
    assert a["r"] > 0.3 and a["ci_low"] <= a["r"] <= a["ci_high"] and 0 < a["ceiling"] <= 1
    assert a["r_ceiled"] == pytest.approx(a["r"] / a["ceiling"], rel=1e-6)
    assert m["vs_twin_shared"]["mean_difference"] > 0 and m["vs_twin_shared"]["q"] is not None
    u = m["unique_over_baseline"]["rate_sndpwr"]
    assert {"delta_r2", "ci_low", "ci_high", "p", "q"} <= set(u) and u["delta_r2"] > 0
    assert set(alice["baseline"]) == {"A", "B", "C"}
    # one generation in this study: per-generation values and trained minus twin, no trend test
    gens = alice["trend"]["shared_r"]["generations"]
    assert len(gens) == 1 and gens[0]["trained"]["models"] == ["m"] and gens[0]["twin"]["models"] == ["m-random"]
    assert gens[0]["trained_minus_twin"]["mean_difference"] == pytest.approx(m["vs_twin_shared"]["mean_difference"])
    assert alice["trend"]["shared_r"]["trend"] == {}


def test_atoms_interpolated_on_another_grid():
    atoms = _atoms(0)
    times = np.arange(T) * TR
    run = Run("x", "01", "t", TR, "roi", np.zeros((T - 10, 1)), None, _words(), t0=TR * 5 + 0.5,
              target_names=["A"])
    got = atoms_on_run(atoms, times, run)
    assert got.shape == (T - 10, K)
    np.testing.assert_allclose(got[:, 2], np.interp(run.t0 + TR * np.arange(T - 10), times, atoms[:, 2]))


def test_fixed_effects_group_is_stouffer():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, 2, 500))
    z[:, 0, :50] += 3.0  # a consistent effect in 50 targets of atom 0
    g = fixed_effects_group(z, 0.05)
    np.testing.assert_allclose(g["z"], z.sum(0) / 2.0)
    assert g["positive"][0, :50].mean() > 0.9 and g["significant"][1].sum() <= 5
    assert not (g["positive"] & g["negative"]).any()


def test_encode_and_networks_publish_data_and_metrics_together(study, outputs, tmp_path):
    """An unwritable metrics folder: the stage fails naming it, and its data output stays as it was."""
    from brainlike.errors import OutputError

    p = study
    blocked = tmp_path / "metrics"
    blocked.write_text("a file where the metrics folder should be")  # unwritable, even for root
    enc_out, net_out = tmp_path / "encoding", tmp_path / "networks"
    for out in (enc_out / "m", net_out / "m"):
        out.mkdir(parents=True)
        (out / "old.txt").write_text("old")
    val = Path(p.paths.metrics) / "validation.json"
    cfg = p.encoding.model_copy(update={"output": str(enc_out)})
    with pytest.raises(OutputError, match=r"metrics/encode/m\.json: cannot write"):
        run_encode("m", cfg, p.patterns.output, p.paths.prepared, val, p.paths.atlases, blocked)
    with pytest.raises(OutputError, match=r"metrics/networks/m\.json: cannot write"):
        run_networks(["m"], p.networks, p.encoding.output, p.paths.atlases, net_out, blocked)
    for out in (enc_out / "m", net_out / "m"):
        assert sorted(f.name for f in out.iterdir()) == ["old.txt"], out  # the previous data, untouched
    assert not list(tmp_path.rglob(".*.tmp"))  # no temporary left beside either output


def test_bounds_run_the_same_chain(study, outputs):
    """The oracle (the planted features) reaches both planted networks; the null (the same
    columns circularly shifted) links nothing; both land in recovery.json as the bounds."""
    assert set(outputs["bounds"]) == {"oracle", "null"}
    assert set(outputs["bounds"]["oracle"]) == {"embedded_task-story"}  # ROI data have no planted answer
    d = Path(study.encoding.bounds_output) / "oracle" / "embedded_task-story"
    with np.load(d / "group.npz") as g:
        assert g["z"].shape == (2, 20484)  # the planted columns only, in the ground truth's order
    b = pd.read_parquet(Path(study.networks.output) / "bounds" / "links.parquet")
    assert set(b["model"]) == {"oracle", "null"} and not b[b["model"] == "null"]["linked"].any()
    assert set(read_links(study.networks.output)["model"]) == {"m", "m-random"}  # the bounds are not models
    rec = json.loads((Path(study.paths.metrics) / "recovery.json").read_text())
    bounds = rec["bounds"]
    assert bounds["stimulus"] == "embedded_task-story" and bounds["n_subjects"] == N_SURFACE
    assert bounds["oracle"]["min_best_dice"] >= 0.6 and bounds["null"]["max_best_dice"] == 0.0
    assert bounds == rec["by_stimulus"]["embedded_task-story"]["bounds"] | {"stimulus": "embedded_task-story",
                                                                            "n_subjects": N_SURFACE}
    assert set(json.loads((Path(study.paths.metrics) / "networks" / "bounds.json").read_text())["models"]) == {
        "oracle", "null"}


def test_a_changed_dataset_refits_only_its_own_cells(study, outputs, tmp_path, monkeypatch):
    """DVC re-runs encode@<model> and networks@<model> whole when another dataset changes their
    input folders; the stimuli whose inputs are unchanged come from the memo, byte for byte what a
    fit writes (checked with ``BRAINLIKE_MEMO=0``), and only the changed one is fitted."""
    import shutil

    from brainlike._utils.reproducible import build_dir

    p = study
    val = Path(p.paths.metrics) / "validation.json"
    patterns = tmp_path / "patterns"
    shutil.copytree(p.patterns.output, patterns)

    def files(d):
        return {f.relative_to(d).as_posix(): f.read_bytes() for f in sorted(Path(d).rglob("*")) if f.is_file()}

    cfg = p.encoding.model_copy(update={"output": str(tmp_path / "enc")})

    def encode():
        run_encode("m", cfg, patterns, p.paths.prepared, val, p.paths.atlases, tmp_path / "metrics")
        timings = json.loads((build_dir() / "timings" / "encode@m.json").read_text())["timings"]["stimuli"]
        return files(tmp_path / "enc" / "m"), timings

    first, _ = encode()
    # another dataset's input changes: the Alice atoms of model m
    _ = shutil.rmtree(patterns / "m" / "alice_task-alice"), _patterns(patterns, "m", "alice_task-alice", _atoms(5))
    second, timings = encode()
    assert timings["embedded_task-story"] == {"memo": True} and "total_s" in timings["alice_task-alice"]
    story = [k for k in second if k.startswith("embedded_task-story/")]
    assert story and all(first[k] == second[k] for k in story)
    assert any(first[k] != v for k, v in second.items() if k.startswith("alice_task-alice/sub-"))
    # the cells of a memo run are what a full fit writes
    monkeypatch.setenv("BRAINLIKE_MEMO", "0")
    off, timings = encode()
    assert "total_s" in timings["embedded_task-story"] and off == second
    monkeypatch.delenv("BRAINLIKE_MEMO")
    # networks: a second run of an unchanged encoding folder is linked from the memo, the same bytes
    nets = [run_networks(["m"], p.networks, tmp_path / "enc", p.paths.atlases, tmp_path / out, tmp_path / out)
            for out in ("net1", "net2")]
    assert nets[0] == nets[1] and files(tmp_path / "net1" / "m") == files(tmp_path / "net2" / "m")
    # the second found every (model, stimulus) in the memo: it did not even build the rotations
    assert json.loads((build_dir() / "timings" / "networks@m.json").read_text())["timings"]["spins_s"] == 0.0
