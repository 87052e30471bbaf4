"""Encoding layer: GLM vs nilearn, ridge vs scikit-learn, planted coupling, nulls, slow drifts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nilearn.glm.contrasts import compute_contrast
from nilearn.glm.first_level import make_first_level_design_matrix, run_glm
from scipy import stats
from sklearn.linear_model import Lasso, Ridge, RidgeCV
from sklearn.metrics import r2_score

from brainlike.config import EncodingConfig
from brainlike.encoding import (
    RidgeEncoder,
    block_folds,
    cross_validated_ridge,
    drift_basis,
    fdr_bh,
    fit_group,
    fit_subject,
    fold_arrays,
    group_moderated,
    group_one_sample,
    inner_folds,
    make_design,
    permutation_test_r,
    ridge_loo,
    run_glm_ar1,
    sparse_fit,
    t_to_z,
    word_baseline,
)
from brainlike.encoding.design import cosine_drift
from brainlike.errors import ConfigError, DataError

TR = 1.5
ALPHAS = np.logspace(-1, 4, 8)


def _ar1(rng, T, V, rho):
    e = rng.standard_normal((T, V))
    out = np.empty_like(e)
    out[0] = e[0]
    for t in range(1, T):
        out[t] = rho * out[t - 1] + e[t]
    return out


def _smooth(rng, T, K, width=3.0):
    """Autocorrelated regressors (white noise smoothed by a Gaussian kernel), z-scored."""
    k = np.exp(-0.5 * (np.arange(-10, 11) / width) ** 2)
    X = np.stack([np.convolve(rng.standard_normal(T + 20), k, "same")[10:-10] for _ in range(K)], 1)
    return (X - X.mean(0)) / X.std(0)


@pytest.fixture(scope="module")
def glm_case():
    rng = np.random.default_rng(0)
    T, K, V = 180, 5, 400
    ft = np.arange(T) * TR
    A = _smooth(rng, T, K)
    conf = pd.DataFrame(rng.standard_normal((T, 2)), columns=["trans_x", "rot_z"])
    X, names = make_design(A, ft, conf, 128.0)
    Y = A @ (rng.standard_normal((K, V)) * 0.3) + _ar1(rng, T, V, rng.uniform(-0.3, 0.8, V)) + 100.0
    return A, X, names, Y, ft, conf


def test_drift_basis_equals_nilearn(glm_case):
    A, X, names, Y, ft, conf = glm_case
    dm = make_first_level_design_matrix(ft, drift_model="cosine", high_pass=1 / 128.0,
                                        add_regs=np.column_stack([A, conf]), add_reg_names=names[:7])
    assert list(dm.columns)[-1] == "constant"
    np.testing.assert_allclose(X, dm.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(drift_basis(ft, 128.0)[:, :-1], cosine_drift(ft, 128.0))


def test_glm_z_equals_nilearn(glm_case):
    A, X, names, Y, ft, _ = glm_case
    K = A.shape[1]
    ours = run_glm_ar1(Y, X, K, batch_size=97)  # small batches exercise the batching
    labels, results = run_glm(Y, X, noise_model="ar1", bins=100)
    assert len(results) > 10  # several AR bins really used
    for k in range(K):
        con = compute_contrast(labels, results, np.eye(X.shape[1])[k])
        np.testing.assert_allclose(ours["z"][k], con.z_score(), atol=1e-8, rtol=0)
        np.testing.assert_allclose(ours["t"][k], con.stat(), atol=1e-8, rtol=0)
        np.testing.assert_allclose(ours["p"][k], con.p_value(), atol=1e-10, rtol=0)
        np.testing.assert_allclose(ours["effect"][k], con.effect_size(), atol=1e-10, rtol=0)
    assert ours["dof"] == T_minus_rank(X)


def T_minus_rank(X):
    return X.shape[0] - np.linalg.matrix_rank(X)


def test_marginal_glm_is_each_atom_fitted_alone(glm_case):
    """The marginal t of atom k equals the t of the whitened OLS of [x_k, nuisance] (same rho),
    computed here by least squares, one atom and one target at a time."""
    from brainlike.encoding.glm import ar1_glm

    A, X, names, Y, ft, _ = glm_case
    K = A.shape[1]
    fit = ar1_glm(Y, X, batch_size=97, marginal=K)
    C = X[:, K:]
    assert fit.marginal_dof == X.shape[0] - np.linalg.matrix_rank(C) - 1
    for v in range(0, Y.shape[1], 37):
        def white(M, r=fit.rho[v]):
            M = np.asarray(M, dtype=np.float64)
            out = M.copy()
            out[1:] -= r * M[:-1]
            return out
        y = white(Y[:, v])
        for k in range(K):
            D = white(np.column_stack([A[:, k], C]))
            b, *_ = np.linalg.lstsq(D, y, rcond=None)
            res = y - D @ b
            se = np.sqrt(res @ res / fit.marginal_dof * np.linalg.pinv(D.T @ D)[0, 0])
            assert fit.marginal_t[k, v] == pytest.approx(b[0] / se, abs=1e-9)
    # the joint fit is untouched by asking for the marginal one
    np.testing.assert_array_equal(ar1_glm(Y, X, batch_size=97).beta, fit.beta)
    # an atom that is a nuisance column (here a drift regressor) has no marginal effect: t = 0
    drift = next(i for i, n in enumerate(names) if n.startswith("drift_"))
    Xd = np.column_stack([X[:, drift], X[:, 1:]])  # atom 0 replaced by the drift column
    assert np.all(ar1_glm(Y, Xd, marginal=K).marginal_t[0] == 0)


@pytest.mark.parametrize("gap", [0.0, 1e-8], ids=["collinear", "collinear-to-float32"])
def test_atom_outside_the_row_space_is_untested(gap):
    """Three atoms whose third is the sum of the first two (exactly, or up to 1e-8 of its scale,
    below the float32 precision the atoms come from, as for the VLM twins on the movie): no
    atom's own effect is estimable, so no atom may get a z (NaN: untested) or be significant."""
    from brainlike.encoding.glm import ar1_glm, glm_contrasts

    rng = np.random.default_rng(0)
    T, V = 120, 50
    a = rng.standard_normal((T, 2))
    A = np.column_stack([a, a.sum(axis=1) + gap * rng.standard_normal(T)])
    X = np.column_stack([A, np.ones(T)])
    Y = a @ np.array([[1.0] * V, [0.5] * V]) + rng.standard_normal((T, V))
    z = glm_contrasts(ar1_glm(Y, X), np.eye(3, 4))["z"]
    assert np.isnan(z).all()


def test_estimable_atom_beside_collinear_ones_is_tested_and_stable():
    """A rank-deficient design (atoms 0-2 collinear to 1e-8) with a fourth, independent atom:
    only the fourth is tested, with ``dof = T - rank``; its z and the untested atoms' absence
    do not move when the atoms are rounded to float32 (the precision they come from), while
    the full-rank fit without the collinear atoms gives the same z to 1e-6."""
    from brainlike.encoding.glm import ar1_glm, glm_contrasts

    rng = np.random.default_rng(3)
    T, V = 200, 40
    a = _smooth(rng, T, 3)
    A = np.column_stack([a[:, :2], a[:, :2].sum(1) + 1e-8 * rng.standard_normal(T), a[:, 2]])
    X, _ = make_design(A, np.arange(T) * TR, None, 128.0)
    Y = 0.8 * a[:, [2]] + _ar1(rng, T, V, 0.3)
    fit = ar1_glm(Y, X)
    assert fit.rank == X.shape[1] - 1 and fit.dof == T - fit.rank
    g = glm_contrasts(fit, np.eye(4, X.shape[1]))
    assert g["estimable"].tolist() == [False, False, False, True]
    assert np.isnan(g["z"][:3]).all() and (g["z"][3] > 3).all()
    g32 = glm_contrasts(ar1_glm(Y, make_design(A.astype(np.float32), np.arange(T) * TR, None, 128.0)[0]),
                        np.eye(4, X.shape[1]))
    assert g32["estimable"].tolist() == g["estimable"].tolist()
    np.testing.assert_allclose(g32["z"][3], g["z"][3], rtol=1e-4)
    # the same atom in a full-rank design (one of the collinear three dropped): the same fitted
    # space, so the same estimate and z (the dof are the same too: T - rank either way)
    Xf = np.delete(X, 2, axis=1)
    gf = glm_contrasts(ar1_glm(Y, Xf), np.eye(3, Xf.shape[1]))
    np.testing.assert_allclose(g["z"][3], gf["z"][2], rtol=1e-6)


def test_untested_atom_is_never_significant_in_subject_or_group():
    """fit_subject reports an atom outside the row space as ``estimable`` False with z 0, p 1
    and no significant target, however strongly the data follow it."""
    rng = np.random.default_rng(5)
    T, V = 160, 30
    a = _smooth(rng, T, 2)
    A = np.column_stack([a, a.sum(1)])
    Y = 2.0 * a.sum(1)[:, None] + _ar1(rng, T, V, 0.2)
    out = fit_subject(A, Y, None, np.arange(T) * TR, EncodingConfig(n_permutations=0))
    assert not out["estimable"].any()
    assert not out["significant"].any() and (out["z"] == 0).all() and (out["p"] == 1).all()
    g = fit_group(np.stack([out["z"], out["z"] * 0.5, out["z"]]), test="moderated_t")
    assert not g["significant"].any()


def test_marginal_map_keeps_the_sign_the_joint_fit_flips():
    """Suppression: with y = a1 - 0.3 a2 and r(a1, a2) = 0.9, a2's unique (joint) effect is
    negative while a2 itself moves with y (cov = 0.9 - 0.3 > 0): the joint z of a2 is negative,
    its marginal z positive."""
    rng = np.random.default_rng(4)
    T, V = 400, 60
    ft = np.arange(T) * TR
    a1 = _smooth(rng, T, 1)[:, 0]
    a2 = 0.9 * a1 + np.sqrt(1 - 0.81) * _smooth(rng, T, 1)[:, 0]
    A = np.column_stack([a1, a2])
    Y = (a1 - 0.3 * a2)[:, None] + _ar1(rng, T, V, 0.3) * 0.5
    X, _ = make_design(A, ft, None, 128.0)
    g = run_glm_ar1(Y, X, 2, marginal=True)
    assert (g["z"][1] < -2).mean() > 0.9
    assert (g["marginal_z"][1] > 2).mean() > 0.9
    assert (g["marginal_z"][0] > 2).all()


def test_planted_coupling_recovered_and_fdr_controls_null():
    rng = np.random.default_rng(1)
    T, K, V = 200, 4, 300
    ft = np.arange(T) * TR
    A = _smooth(rng, T, K)
    Y = _ar1(rng, T, V, 0.4)
    Y[:, :30] += 0.8 * A[:, [2]]  # atom 2 drives the first 30 targets (+)
    Y[:, 30:60] -= 0.8 * A[:, [2]]  # and suppresses the next 30 (-)
    cfg = EncodingConfig(n_permutations=0)
    out = fit_subject(A, Y, None, ft, cfg)
    assert (out["z"][2, :30] > 3).all() and (out["z"][2, 30:60] < -3).all()
    assert out["significant"][2, :60].all()
    assert out["significant"][2, 60:].mean() <= 0.05
    # null: circularly shifted design -> false positive rate at or below alpha over repeats
    fp = []
    for shift in range(20, 180, 20):
        Z = fit_subject(np.roll(A, shift, axis=0), Y[:, 60:], None, ft, cfg)
        fp.append(Z["significant"].mean())
    assert np.mean(fp) <= 0.05, fp


def test_fdr_matches_scipy():
    rng = np.random.default_rng(2)
    p = np.concatenate([rng.uniform(size=(3, 200)), rng.uniform(0, 1e-3, size=(3, 20))], axis=1)
    rej, q = fdr_bh(p, 0.05, axis=-1)
    for k in range(3):
        np.testing.assert_allclose(q[k], stats.false_discovery_control(p[k], method="bh"), rtol=1e-12)
    assert (rej == (q <= 0.05)).all() and rej[:, -20:].all()


@pytest.fixture(scope="module")
def ridge_case():
    rng = np.random.default_rng(3)
    T, K, V = 240, 6, 30
    X = _smooth(rng, T, K, 1.0)
    W = rng.standard_normal((K, V)) * (np.arange(V) % 2 == 0)
    Y = X @ W * 0.4 + rng.standard_normal((T, V))
    ft = np.arange(T) * TR
    out = cross_validated_ridge(X, Y, ALPHAS, n_folds=4, gap=3, n_inner_folds=3, frame_times=ft,
                                high_pass_s=128.0, batch_size=7, return_predictions=True)
    return X, Y, ft, out


def test_ridge_cv_equals_sklearn_ridge(ridge_case):
    X, Y, ft, out = ridge_case
    B = drift_basis(ft, 128.0)
    preds = []
    for f, (train, test) in enumerate(block_folds(len(X), 4, 3)):
        assert np.abs(np.subtract.outer(train, test)).min() > 3  # the gap
        xtr, ytr, xte, yte = fold_arrays(X, Y, train, test, B)
        P = np.column_stack([Ridge(alpha=out["alpha"][f, v]).fit(xtr, ytr[:, v]).predict(xte)
                             for v in range(Y.shape[1])])
        preds.append(P)
        r = [np.corrcoef(P[:, v], yte[:, v])[0, 1] for v in range(Y.shape[1])]
        np.testing.assert_allclose(out["r_folds"][f], r, atol=1e-10)
        np.testing.assert_allclose(out["r2_folds"][f], r2_score(yte, P, multioutput="raw_values"), atol=1e-10)
        # the alpha each target got is the one a brute-force scikit-learn inner CV picks
        score = np.zeros((len(ALPHAS), Y.shape[1]))
        for itr, ite in inner_folds(train, 3, 3):
            a, b, c, d = fold_arrays(X, Y, itr, ite, B)
            for i, al in enumerate(ALPHAS):
                score[i] += r2_score(d, Ridge(alpha=al).fit(a, b).predict(c), multioutput="raw_values")
        np.testing.assert_array_equal(out["alpha_index"][f], np.argmax(score, axis=0))
    np.testing.assert_allclose(out["prediction"], np.concatenate(preds), atol=1e-10)
    np.testing.assert_allclose(out["r"], out["r_folds"].mean(0))
    assert out["r"][::2].mean() > 0.3 and abs(out["r"][1::2].mean()) < 0.1


def test_ridge_loo_equals_sklearn_ridgecv():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((120, 7)) + 3
    Y = X @ rng.standard_normal((7, 25)) * rng.uniform(0, 1, 25) + rng.standard_normal((120, 25)) + 1
    ours = ridge_loo(X, Y, ALPHAS, batch_size=6)
    sk = RidgeCV(alphas=ALPHAS, alpha_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(ours["alpha"], sk.alpha_)
    np.testing.assert_allclose(ours["coef"], sk.coef_.T, atol=1e-10)
    np.testing.assert_allclose(ours["intercept"], sk.intercept_, atol=1e-10)
    np.testing.assert_allclose(ours["best_score"], sk.best_score_, atol=1e-10)


def test_ridge_encoder_api(ridge_case):
    X, Y, ft, out = ridge_case
    m = RidgeEncoder(alphas=ALPHAS, n_folds=4, gap=3, n_inner_folds=3, tr=TR).fit(X, Y)
    np.testing.assert_allclose(m.cv_r_, out["r"])
    assert m.coef_.shape == (X.shape[1], Y.shape[1]) and m.predict(X).shape == Y.shape
    assert m.score(X, Y) > 0
    with pytest.raises(DataError):
        m.predict(X[:, :3])


def test_slow_drifts_give_no_spurious_negative_r():
    """Regressors and data share slow drifts that are orthogonal over the run (no coupling)."""
    rng = np.random.default_rng(5)
    T, K, V = 400, 6, 300
    ft = np.arange(T) * TR
    D = cosine_drift(ft, 128.0)
    X = rng.standard_normal((T, K)) + D[:, [0, 2]] @ rng.standard_normal((2, K)) * 20
    Y = rng.standard_normal((T, V)) + D[:, [1, 3]] @ rng.standard_normal((2, V)) * 20
    kw = dict(n_folds=5, gap=5, n_inner_folds=4, frame_times=ft, high_pass_s=128.0)
    bad = cross_validated_ridge(X, Y, ALPHAS, highpass="none", **kw)
    good = cross_validated_ridge(X, Y, ALPHAS, highpass="fold", **kw)
    assert bad["r"].mean() < -0.08  # the failure the high-pass prevents
    assert abs(good["r"].mean()) < 0.02
    assert 0.35 < (good["r"] < 0).mean() < 0.65


def test_permutation_p_uniform_under_null_and_small_with_signal():
    rng = np.random.default_rng(6)
    T, K, V = 200, 4, 200
    ft = np.arange(T) * TR
    X = _smooth(rng, T, K, 1.0)
    Y = rng.standard_normal((T, V))
    Y[:, :10] += X @ rng.standard_normal((K, 10))
    kw = dict(n_folds=4, gap=3, frame_times=ft, high_pass_s=128.0)
    cv = cross_validated_ridge(X, Y, ALPHAS, n_inner_folds=3, **kw)
    perm = permutation_test_r(X, Y, cv["alpha_index"], ALPHAS, n_permutations=99, seed=0, min_shift=15, **kw)
    np.testing.assert_allclose(perm["r"], cv["r"], atol=1e-12)
    assert (perm["p"][:10] == 0.01).all()
    pn = perm["p"][10:]
    assert stats.kstest(pn, "uniform").pvalue > 0.01
    assert 0.3 < pn.mean() < 0.7


@pytest.mark.parametrize("highpass", ["fold", "run", "none"])
def test_permutation_null_equals_refits_of_rolled_designs(highpass):
    """The batched null (rolled rows gathered by index, one eigh per batch of shifts) is the
    per-shift SVD refit of np.roll(X, k) with the same alphas, to rounding."""
    rng = np.random.default_rng(16)
    T, K, V = 160, 5, 30
    X = _smooth(rng, T, K, 1.0)
    Y = X @ rng.standard_normal((K, V)) + rng.standard_normal((T, V))
    kw = dict(n_folds=4, gap=3, frame_times=np.arange(T) * TR, high_pass_s=128.0, highpass=highpass)
    cv = cross_validated_ridge(X, Y, ALPHAS, n_inner_folds=3, **kw)
    perm = permutation_test_r(X, Y, cv["alpha_index"], ALPHAS, n_permutations=7, seed=1, min_shift=15,
                              return_null=True, **kw)
    if highpass == "run":  # the run is filtered once, then the filtered design is rolled
        B = drift_basis(kw["frame_times"], 128.0)
        X, Y = (A - B @ np.linalg.lstsq(B, A, rcond=None)[0] for A in (X, Y))
        kw["highpass"] = "none"
    for k, null in zip(perm["shifts"], perm["null"], strict=True):
        ref = permutation_test_r(np.roll(X, int(k), axis=0), Y, cv["alpha_index"], ALPHAS, n_permutations=1,
                                 min_shift=15, **kw)["r"]
        np.testing.assert_allclose(null, ref, rtol=0, atol=1e-10, err_msg=f"shift {k}")


def test_sparse_fit_equals_sklearn_lasso():
    rng = np.random.default_rng(7)
    D = rng.standard_normal((150, 8))
    Y = D @ (rng.standard_normal((8, 12)) * (rng.random((8, 12)) < 0.3)) + 0.1 * rng.standard_normal((150, 12))
    ours = sparse_fit(D, Y, 0.05, tol=1e-12, max_iter=20000, batch_size=5)
    sk = np.stack([Lasso(alpha=0.05, fit_intercept=False, tol=1e-12, max_iter=100000).fit(D, Y[:, v]).coef_
                   for v in range(12)], 1)
    np.testing.assert_allclose(ours["codes"], sk, atol=1e-6)
    assert (ours["codes"] == 0).any()


def test_group_one_sample_equals_scipy():
    rng = np.random.default_rng(8)
    maps = rng.standard_normal((6, 3, 50)) + np.array([0.0, 1.5, -1.5])[None, :, None]
    g = group_one_sample(maps)
    ref = stats.ttest_1samp(maps, 0.0, axis=0)
    np.testing.assert_allclose(g["t"], ref.statistic, rtol=1e-12)
    np.testing.assert_allclose(g["p"], ref.pvalue, rtol=1e-10)
    np.testing.assert_allclose(np.abs(g["z"]), stats.norm.isf(ref.pvalue / 2), rtol=1e-6)
    assert (np.sign(g["z"]) == np.sign(g["t"])).all()
    grp = fit_group(list(maps), 0.05)
    assert grp["positive"][1].mean() > 0.5 and grp["negative"][2].mean() > 0.5 and grp["significant"][0].mean() < 0.2



def test_squeeze_var_recovers_the_prior_of_simulated_variances():
    from brainlike.encoding.stats import squeeze_var

    rng = np.random.default_rng(3)
    d0, s02, d = 8.0, 2.0, 3
    sigma2 = s02 * d0 / rng.chisquare(d0, 40000)  # scaled inverse chi-square prior
    s2 = sigma2 * rng.chisquare(d, sigma2.size) / d
    post, d0_hat, s02_hat = squeeze_var(s2, d)
    assert d0_hat == pytest.approx(d0, rel=0.15) and s02_hat == pytest.approx(s02, rel=0.05)
    # the posterior lies between the sample variance and the prior, closer to the truth
    assert np.mean((post - sigma2) ** 2) < 0.5 * np.mean((s2 - sigma2) ** 2)
    # variances no more spread than sampling explains: d0 = inf, every target gets s0^2
    post, d0_hat, s02_hat = squeeze_var(1.5 * rng.chisquare(d, 40000) / d, d)
    assert d0_hat == np.inf and s02_hat == pytest.approx(1.5, rel=0.05) and np.all(post == s02_hat)
    with pytest.raises(DataError, match="at least 3 targets"):
        squeeze_var(np.array([1.0, 0.0]), d)


@pytest.mark.parametrize("d0", [np.inf, 5.0])
def test_moderated_t_is_uniform_under_the_null_and_beats_the_t_test(d0):
    """4 subjects: the moderated t's p-values are uniform where no target has an effect (KS),
    BH keeps its false discoveries at alpha, and with an effect it finds far more than the t-test."""
    rng = np.random.default_rng(11)
    S, V = 4, 20000
    sd = np.sqrt(1.7 * (d0 / rng.chisquare(d0, V) if np.isfinite(d0) else np.ones(V)))
    null = rng.standard_normal((S, 2, V)) * sd
    g = group_moderated(null)
    assert stats.kstest(g["p"].ravel(), "uniform").pvalue > 0.01
    if np.isfinite(d0):
        assert g["prior_dof"][0] == pytest.approx(d0, rel=0.3)
    np.testing.assert_allclose(np.abs(g["z"]), stats.norm.isf(g["p"] / 2), rtol=1e-6)
    fdr = [fit_group(rng.standard_normal((S, 1, V)) * sd, 0.05, test="moderated_t")["significant"].sum()
           for _ in range(20)]
    assert np.mean(np.array(fdr) > 0) <= 0.15  # family-wise under the complete null: BH's alpha
    eff = null.copy()
    eff[:, :, :1000] += 2.0 * sd[:1000]
    mod, plain = fit_group(eff, 0.05, test="moderated_t"), fit_group(eff, 0.05, test="t")
    hits = mod["positive"][:, :1000].mean()
    assert hits > 0.15 and hits > 5 * plain["positive"][:, :1000].mean()
    assert mod["positive"][:, 1000:].mean() < 0.01
    with pytest.raises(ConfigError, match="moderated_t"):
        fit_group(eff, 0.05, test="z")

@pytest.mark.parametrize("dof", [3.0, 17.5, 287.0, 1e12])
def test_t_to_z_is_nilearns_contrast_z_bit_for_bit(dof):
    """p and z of t statistics are nilearn's ``Contrast`` p-value and z-score, bit for bit: one
    tail per value (the smaller), and the other derived as scipy derives it."""
    from nilearn.glm.contrasts import Contrast

    rng = np.random.default_rng(5)
    t = np.concatenate([rng.standard_normal(20000) * s for s in (1e-3, 1.0, 4.0, 40.0)]
                       + [[0.0, -0.0, 1e-300, -1e-300, 60.0, -60.0, np.nan]])
    p, z = t_to_z(t, dof)
    c = Contrast(effect=np.ones((1, t.size)), variance=np.ones(t.size), dim=1, dof=dof, stat_type="t")
    c.stat_ = t
    want_p = c.p_value()
    want_z = c.z_score()
    np.testing.assert_array_equal(p, want_p)
    np.testing.assert_array_equal(z, want_z)
    # and the bytes of the two-call form it replaced (both tails computed), signed zeros included
    from scipy import special

    df = min(dof, 1e10)  # nilearn's dofmax
    p2 = special.stdtr(df, -t)
    z2 = -special.ndtri(np.clip(p2, 1e-300, 1 - 1e-16))
    z2[z2 < 0] = special.ndtri(np.clip(special.stdtr(df, t[z2 < 0]), 1e-300, 1 - 1e-16))
    assert p.tobytes() == p2.tobytes() and z.tobytes() == z2.tobytes()


def test_word_baseline():
    words = pd.DataFrame({"word": ["a", "little", "lighthouse", "stone"], "onset": [1.0, 2.0, 3.0, 10.0],
                          "duration": [0.2, 0.4, 0.5, 0.3]})
    ft = np.arange(30) * TR
    b = word_baseline(words, ft)
    assert list(b.columns) == ["word_rate", "envelope"] and b.shape == (30, 2)
    assert np.argmax(b["word_rate"].to_numpy()) * TR > 3  # HRF peak after the words
    assert b["envelope"].sum() > b["word_rate"].sum()  # several multi-syllable words


def test_bad_inputs_raise_data_error():
    with pytest.raises(DataError, match="share n_trs"):
        run_glm_ar1(np.zeros((10, 3)), np.ones((9, 2)), 1)
    with pytest.raises(DataError, match="NaN"):
        make_design(np.zeros((10, 1)), np.arange(10.0), pd.DataFrame({"fd": [np.nan] + [0.0] * 9}))
