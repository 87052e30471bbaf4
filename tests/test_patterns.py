"""Pattern bases: recovery of a known dictionary, parity with scikit-learn, determinism, streaming,
bad inputs, and the stage outputs on a small activation store."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from brainlike.activations.store import SIDECAR, LayerWriter
from brainlike.config import PatternsConfig
from brainlike.errors import DataError
from brainlike.patterns import SparseDictionary, run_patterns


def _known(T=80, K=12, N=3000, k_active=3, noise=0.01, seed=0):
    """X = D A + noise with unit-norm random atoms and k_active non-zeros per column."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((T, K))
    D /= np.linalg.norm(D, axis=0)
    A = np.zeros((K, N))
    rows = np.stack([rng.choice(K, k_active, replace=False) for _ in range(N)], axis=1)
    A[rows, np.arange(N)[None, :]] = rng.choice([-1, 1], (k_active, N)) * rng.uniform(0.5, 2.0, (k_active, N))
    X = D @ A + noise * rng.standard_normal((T, N))
    return X.astype(np.float32), D


@pytest.fixture(scope="module")
def known():
    return _known()


@pytest.fixture(scope="module")
def fitted(known):
    X, _ = known
    return SparseDictionary(n_atoms=12, lambda_an=0.05, n_iter=60, batch_size=512, device="cpu").fit(X)


def test_recovers_known_dictionary(known, fitted):
    _, D = known
    cos = np.abs(D.T @ fitted.atoms_)
    r, c = linear_sum_assignment(-cos)
    assert cos[r, c].mean() >= 0.95
    assert np.allclose(np.linalg.norm(fitted.atoms_, axis=0), 1.0, atol=1e-5)
    assert sp.isspmatrix_csr(fitted.codes_) and fitted.codes_.shape == (12, 3000)
    assert 0.9 < fitted.r2_ <= 1.0
    # objective_ is what it says: mean per AN of 0.5||x - Da||^2 + lambda |a|_1
    X, _ = known
    A = fitted.codes_.toarray()
    obj = (0.5 * ((X - fitted.atoms_ @ A).astype(np.float64) ** 2).sum() + 0.05 * np.abs(A).sum()) / X.shape[1]
    assert fitted.objective_ == pytest.approx(obj, rel=1e-4)


def test_objective_not_worse_than_sklearn(known, fitted):
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.exceptions import ConvergenceWarning

    X, _ = known
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mb = MiniBatchDictionaryLearning(12, alpha=0.05, fit_algorithm="cd", batch_size=256, max_iter=20,
                                         random_state=0, transform_algorithm="lasso_cd", transform_alpha=0.05,
                                         transform_max_iter=2000).fit(X.T)
        code = mb.transform(X.T)
    sk_obj = (0.5 * ((X.T - code @ mb.components_).astype(np.float64) ** 2).sum() + 0.05 * np.abs(code).sum()) / X.shape[1]
    assert fitted.objective_ <= 1.01 * sk_obj


def test_deterministic_bit_for_bit(known):
    X, _ = known
    one, two = (SparseDictionary(n_atoms=12, lambda_an=0.05, n_iter=8, batch_size=512, device="cpu").fit(X)
                for _ in range(2))
    assert np.array_equal(one.atoms_, two.atoms_)
    assert (one.codes_ != two.codes_).nnz == 0


def test_streaming_equals_in_memory(known):
    X, _ = known
    X = X[:, :1500]
    est = dict(n_atoms=8, lambda_an=0.05, n_iter=5, batch_size=256, device="cpu")
    mem = SparseDictionary(**est).fit(X)
    edges = [0, 100, 700, 701, 1200, 1500]  # chunks that do not align with batches
    stream = SparseDictionary(**est).fit(lambda: (X[:, a:b].copy() for a, b in zip(edges[:-1], edges[1:])))
    assert np.array_equal(mem.atoms_, stream.atoms_)
    assert np.array_equal(mem.codes_.toarray(), stream.codes_.toarray())
    with pytest.raises(TypeError, match="callable"):
        SparseDictionary(**est).fit(iter([X]))


def test_target_sparsity_reached(known):
    X, _ = known
    est = SparseDictionary(n_atoms=12, target_sparsity=3.0, n_iter=5, batch_size=512, device="cpu",
                           search_subsample=600).fit(X)
    assert est.lambda_search_["subsample_sparsity"] == pytest.approx(3.0, rel=0.15)
    assert est.sparsity_ == pytest.approx(3.0, rel=0.3)


@pytest.mark.parametrize("kw, X_shape, match", [
    (dict(n_atoms=50), (40, 500), "n_atoms=50 exceeds the number of time points n_trs=40"),
    (dict(n_atoms=20), (40, 10), "n_atoms=20 exceeds the number of ANs n_ans=10"),
    (dict(lambda_an=0.0), (40, 500), "lambda_an must be > 0"),
    (dict(lambda_an=-1.0), (40, 500), "lambda_an must be > 0"),
    (dict(solver="spams"), (40, 500), "solver must be"),
])
def test_bad_parameters(kw, X_shape, match):
    X = np.random.default_rng(0).standard_normal(X_shape).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        SparseDictionary(**({"n_atoms": 4} | kw), device="cpu").fit(X)


def test_constant_and_nan_columns_named():
    X = np.random.default_rng(0).standard_normal((40, 300)).astype(np.float32)
    X[:, 123] = 2.0
    with pytest.raises(ValueError, match="AN column 123: is constant"):
        SparseDictionary(n_atoms=4, device="cpu").fit(X)
    X[:, 123] = np.nan
    with pytest.raises(ValueError, match="AN column 123: holds NaN"):
        SparseDictionary(n_atoms=4, device="cpu").fit(X)


def test_config_rejects_bad_values():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="lambda_an"):
        PatternsConfig(lambda_an=0)
    with pytest.raises(ValidationError, match="target_sparsity"):
        PatternsConfig(n_atoms=8, target_sparsity=9)
    with pytest.raises(ValidationError, match="solver"):
        PatternsConfig(solver="spams")


def _store(root, X, n_layers, constant=None):
    """A minimal activation folder in the store's format (as written by the extraction)."""
    T, N = X.shape
    folder = root / "toy" / "stim"
    gid = f"tr1.5_t0+0_n{T}"
    (folder / gid).mkdir(parents=True)
    width = N // n_layers
    files = []
    for layer in range(n_layers):
        vals = X[:, layer * width:(layer + 1) * width].copy()
        if constant is not None and constant[0] == layer:
            vals[:, constant[1]] = 1.0
        w = LayerWriter(folder / gid / f"L{layer:03d}.arrow", T)
        w.write("text", layer, np.arange(width), np.zeros(width), vals)
        w.close()
        files.append({"tower": "text", "layer": layer, "file": f"L{layer:03d}.arrow", "n_rows": width})
    side = {"params_hash": "x", "model": {"name": "toy"}, "site": "ffn_out",
            "grids": [{"id": gid, "tr": 1.5, "t0": 0.0, "n_trs": T, "run_ids": ["r1"], "files": files}]}
    (folder / SIDECAR).write_text(json.dumps(side))
    return folder


def test_stage_outputs(tmp_path, known):
    X, _ = known
    X = X[:, :1200]
    X = (X - X.mean(0)) / X.std(0)
    _store(tmp_path / "acts", X, n_layers=3)
    cfg = PatternsConfig(output=tmp_path / "patterns", n_atoms=12, lambda_an=0.1, n_iter=20, batch_size=256, device="cpu")
    m = run_patterns("toy", cfg, tmp_path / "acts", tmp_path / "metrics")["stim"]
    out = tmp_path / "patterns" / "toy" / "stim"
    atoms = pd.read_parquet(out / "atoms.parquet")
    assert atoms.shape == (80, 14) and list(atoms.columns[:3]) == ["tr_index", "time_s", "atom_000"]
    codes = sp.load_npz(out / "codes.npz")
    assert codes.shape == (12, 1200)
    sub = pd.read_parquet(out / "subgroups.parquet")
    assert len(sub) == codes.nnz and set(sub.columns) >= {"an_id", "tower", "layer", "unit", "atom", "code", "is_max"}
    assert sub.groupby("an_id")["is_max"].sum().max() == 1
    hist = pd.read_parquet(out / "layer_hist.parquet")
    assert hist.groupby("atom")["n_ans"].sum().sum() == codes.nnz
    assert (out / "layer_hist.png").stat().st_size > 1000
    side = json.loads((out / "patterns.json").read_text())
    assert side["activations"]["sidecar_sha256"] and side["params"]["n_atoms"] == 12
    assert set(m["r2_by_layer"]) == {"0", "1", "2"} and 0.5 < m["r2"] <= 1.0
    metrics = json.loads((tmp_path / "metrics" / "patterns" / "toy.json").read_text())
    assert metrics["stimuli"]["stim"]["sparsity"] == pytest.approx(codes.nnz / 1200, abs=1e-3)


def test_stage_constant_an_names_layer_and_unit(tmp_path):
    X = np.random.default_rng(1).standard_normal((30, 90)).astype(np.float32)
    _store(tmp_path / "acts", X, n_layers=3, constant=(2, 5))
    cfg = PatternsConfig(output=tmp_path / "patterns", n_atoms=4, n_iter=2, batch_size=32, device="cpu")
    with pytest.raises(DataError, match="layer=2 unit=5.*constant"):
        run_patterns("toy", cfg, tmp_path / "acts", tmp_path / "metrics")
    assert not (tmp_path / "patterns" / "toy").exists()
    with pytest.raises(DataError, match="no extracted activations"):
        run_patterns("other", cfg, tmp_path / "acts", tmp_path / "metrics")


def test_stage_links_unchanged_stimuli_from_the_memo(tmp_path, monkeypatch):
    """A stimulus removed (another dataset taken out): the remaining one comes from the memo with
    the bytes and metrics a fit gives (checked with BRAINLIKE_MEMO=0); a changed one is refitted."""
    import shutil

    from brainlike._utils.reproducible import build_dir

    X = np.random.default_rng(3).standard_normal((40, 90)).astype(np.float32)
    folder = _store(tmp_path / "acts", X, n_layers=3)
    shutil.copytree(folder, folder.parent / "stim2")
    cfg = PatternsConfig(output=tmp_path / "patterns", n_atoms=4, n_iter=3, batch_size=32, device="cpu")

    def run():
        if (tmp_path / "patterns").exists():
            shutil.rmtree(tmp_path / "patterns")  # DVC deletes a stage's outputs before it runs
        m = run_patterns("toy", cfg, tmp_path / "acts", tmp_path / "metrics")
        out = tmp_path / "patterns" / "toy"
        files = {f.relative_to(out).as_posix(): f.read_bytes() for f in sorted(out.rglob("*")) if f.is_file()}
        fit = json.loads((build_dir() / "timings" / "patterns@toy.json").read_text())["timings"]["stimuli"]
        return m, files, (tmp_path / "metrics" / "patterns" / "toy.json").read_bytes(), fit

    m1, f1, j1, _ = run()
    shutil.rmtree(folder.parent / "stim2")
    m2, f2, j2, fit = run()
    assert fit == {"stim": {"fit_s": None}}  # from the memo
    assert m2 == {"stim": m1["stim"]} and f2 == {k: v for k, v in f1.items() if k.startswith("stim/")}
    monkeypatch.setenv("BRAINLIKE_MEMO", "0")
    m3, f3, j3, fit = run()
    assert fit["stim"]["fit_s"] is not None and (m3, f3, j3) == (m2, f2, j2)
    monkeypatch.delenv("BRAINLIKE_MEMO")
    shutil.rmtree(tmp_path / "acts")
    _store(tmp_path / "acts", X[::-1].copy(), n_layers=3)  # other activations in the same folder: refitted
    m4, f4, _, fit = run()
    assert fit["stim"]["fit_s"] is not None and f4["stim/codes.npz"] != f2["stim/codes.npz"]
