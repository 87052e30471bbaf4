"""Benchmark of the encoding layer (not a timed test).

    python -m brainlike.bench encode [--only glm,ridge] [--vertices 20484] [--trs 440] [--atoms 64]
                                     [--nilearn-subset 2048] [--out metrics/bench_encode.json]

Synthetic data of the real shape (fsaverage5: 20,484 vertices x ~440 TRs x 64 atoms, AR(1)
noise, 6 motion-like confounds). Each measurement is one entry of ``MEASUREMENTS`` (name ->
function(args) -> dict); the JSON file keeps entries written by earlier runs, so a new
measurement (e.g. spin-test rotations/s) is one more function and one more dict entry.

- ``glm``: :func:`brainlike.encoding.run_glm_ar1` (all vertices) vs nilearn ``run_glm`` +
  ``compute_contrast`` z for every atom. nilearn runs on ``--nilearn-subset`` vertices and its
  time is extrapolated to all vertices by an affine fit through two subset sizes (its cost is
  a loop over AR bins plus work linear in the vertices; stated in the output); z agreement is measured on that subset.
- ``ridge``: :func:`brainlike.encoding.cross_validated_ridge` (5 outer x 4 inner contiguous
  blocks, per-target alpha) vs scikit-learn ``RidgeCV(alpha_per_target=True)`` (efficient
  leave-one-out, itself one SVD: the fastest per-target-alpha CV scikit-learn has), plus our
  LOO twin :func:`brainlike.encoding.ridge_loo` vs the same ``RidgeCV`` (identical estimator,
  identical alphas).
- ``himalaya``: :func:`brainlike.encoding.cross_validated_ridge` vs himalaya's ``RidgeCV`` (numpy
  backend, float64), like for like: the same drift removal once over the run
  (``highpass="run"``: cosine basis + constant regressed out of X and Y), the same 5 outer
  contiguous blocks, and in each outer fold ``RidgeCV(fit_intercept=True, cv=<our 4 inner blocks
  as positions in the training rows>, score_func=r2_score, local_alpha=True)`` on the training
  rows (the same alpha grid, per-target alpha = first maximum of the mean inner R^2), then its
  predictions of the test block. Agreement: chosen alphas and held-out predictions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _data(args) -> dict:
    rng = np.random.default_rng(0)
    T, K, V = args.trs, args.atoms, args.vertices
    tr = 1.5
    ft = np.arange(T) * tr
    k = np.exp(-0.5 * (np.arange(-8, 9) / 2.5) ** 2)
    A = np.stack([np.convolve(rng.standard_normal(T + 16), k, "same")[8:-8] for _ in range(K)], 1)
    A = (A - A.mean(0)) / A.std(0)
    conf = rng.standard_normal((T, 6)).cumsum(0) * 0.05
    rho = rng.uniform(0.0, 0.6, V)
    E = np.empty((T, V))
    e = rng.standard_normal((T, V))
    E[0] = e[0]
    for t in range(1, T):
        E[t] = rho * E[t - 1] + e[t]
    W = rng.standard_normal((K, V)) * (rng.random((K, V)) < 0.05) * 0.3
    Y = (A @ W + E + 100.0).astype(np.float32)
    return {"A": A, "conf": conf, "ft": ft, "Y": Y}


def _time(fn, repeats: int = 1) -> tuple[float, object]:
    best, out = np.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_glm(args, d: dict) -> dict:
    from nilearn.glm.contrasts import compute_contrast
    from nilearn.glm.first_level import run_glm

    from brainlike.encoding import make_design, run_glm_ar1

    A, Y = d["A"], d["Y"]
    X, _ = make_design(A, d["ft"], d["conf"], 128.0)
    K, V = A.shape[1], Y.shape[1]
    run_glm_ar1(Y[:, :256], X, K)  # warm-up (torch / LAPACK initialisation)
    ours_s, ours = _time(lambda: run_glm_ar1(Y, X, K), args.repeats)
    n_sub = min(args.nilearn_subset, V)
    sub = np.random.default_rng(1).choice(V, n_sub, replace=False)

    def nilearn_glm(cols):
        Ys = Y[:, cols].astype(np.float64)
        labels, res = run_glm(Ys, X, noise_model="ar1", bins=100)
        return np.stack([compute_contrast(labels, res, np.eye(X.shape[1])[k]).z_score() for k in range(K)])

    # both subset sizes timed args.repeats times, interleaved, best of each: on a loaded machine a
    # single pair can come out with the half subset slower than the whole one
    nl_s, half_s, z_nl = np.inf, np.inf, None
    for _ in range(getattr(args, "nilearn_repeats", None) or args.repeats):
        s, z_nl = _time(lambda: nilearn_glm(sub), 1)
        nl_s = min(nl_s, s)
        if n_sub < V:
            half_s = min(half_s, _time(lambda: nilearn_glm(sub[: n_sub // 2]), 1)[0])
    scaling = "measured on all vertices"
    if n_sub >= V:
        nl_full = nl_s
    else:
        # affine extrapolation a + b * V from two subset sizes: the per-AR-bin cost does not grow
        # with the vertices, so a plain linear scaling would overstate nilearn's time
        b = (nl_s - half_s) / (n_sub - n_sub // 2)
        if b > 0:
            nl_full = nl_s + b * (V - n_sub)
            scaling = f"affine in vertices from {n_sub // 2} and {n_sub} vertices (best of {getattr(args, 'nilearn_repeats', None) or args.repeats} each)"
        else:  # timing noise exceeded the signal: no extrapolation, the ratio is a lower bound
            nl_full = nl_s
            scaling = (f"affine extrapolation failed ({n_sub // 2} vertices took {half_s:.2f} s, {n_sub} took "
                       f"{nl_s:.2f} s): nilearn's time on {n_sub} vertices only, so the ratio is a lower bound")
    dz = float(np.abs(ours["z"][:, sub] - z_nl).max())
    return {
        "shape": {"trs": int(Y.shape[0]), "vertices": int(V), "atoms": int(K), "regressors": int(X.shape[1])},
        "ours_s": round(ours_s, 3),
        "nilearn_s_subset": round(nl_s, 3),
        "nilearn_subset_vertices": int(n_sub),
        "nilearn_s_scaled_to_all": round(nl_full, 3),
        "nilearn_s_half_subset": round(half_s, 3) if n_sub < V else None,
        "nilearn_scaling": scaling,
        "speedup": round(nl_full / ours_s, 2),
        "max_abs_z_diff_on_subset": dz,
        "n_ar_bins": int(len(np.unique(ours["rho"]))),
    }


def bench_ridge(args, d: dict) -> dict:
    from sklearn.linear_model import RidgeCV

    from brainlike.encoding import cross_validated_ridge, ridge_loo

    A, Y, ft = d["A"], d["Y"], d["ft"]
    alphas = np.logspace(-1, 6, 8)
    cross_validated_ridge(A, Y[:, :256], alphas, frame_times=ft)  # warm-up
    cv_s, cv = _time(lambda: cross_validated_ridge(A, Y, alphas, n_folds=5, gap=5, n_inner_folds=4,
                                                   frame_times=ft, high_pass_s=128.0), args.repeats)
    Y64 = Y.astype(np.float64)
    sk_s, sk = _time(lambda: RidgeCV(alphas=alphas, alpha_per_target=True).fit(A, Y64), 1)
    loo_s, loo = _time(lambda: ridge_loo(A, Y64, alphas), args.repeats)
    try:
        import himalaya  # noqa: F401

        him = "compared like for like in the 'himalaya' entry"
    except ImportError:
        him = "not installed in this environment (no comparison)"
    return {
        "alphas": alphas.tolist(),
        "block_cv_s": round(cv_s, 3),
        "block_cv_fits": "5 outer folds x (4 inner folds x 8 alphas + 1 refit), gap 5 TRs, fold-wise high-pass",
        "block_cv_mean_r": round(float(cv["r"].mean()), 4),
        "sklearn_ridgecv_loo_s": round(sk_s, 3),
        "ours_loo_s": round(loo_s, 3),
        "loo_speedup_vs_sklearn": round(sk_s / loo_s, 2),
        "block_cv_vs_sklearn_loo_time_ratio": round(sk_s / cv_s, 2),
        "loo_alpha_agreement": float(np.mean(loo["alpha"] == sk.alpha_)),
        "loo_max_abs_coef_diff": float(np.abs(loo["coef"] - sk.coef_.T).max()),
        "himalaya": him,
    }


def himalaya_block_cv(A: np.ndarray, Y: np.ndarray, alphas: np.ndarray, ft: np.ndarray, n_folds: int = 5,
                      gap: int = 5, n_inner_folds: int = 4, high_pass_s: float = 128.0) -> dict:
    """Our nested block CV (``highpass="run"``) re-done with himalaya's ``RidgeCV`` in every outer fold.

    Returns ``alpha`` (n_folds, V), ``r_folds`` (n_folds, V) and ``prediction`` (n_test_total, V)
    in the layout of :func:`brainlike.encoding.cross_validated_ridge`.
    """
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HRidgeCV
    from himalaya.scoring import r2_score

    from brainlike.encoding.design import drift_basis
    from brainlike.encoding.ridge import block_folds, inner_folds

    set_backend("numpy", on_error="raise")
    B = drift_basis(ft, high_pass_s)  # the basis cross_validated_ridge uses (cosines + constant)
    Q, _ = np.linalg.qr(B)
    Xf = np.asarray(A, np.float64)
    Xf = Xf - Q @ (Q.T @ Xf)
    Yf = np.asarray(Y, np.float64)
    Yf = Yf - Q @ (Q.T @ Yf)
    alpha, r, preds = [], [], []
    for train, test in block_folds(Y.shape[0], n_folds, gap):
        cv = [(np.searchsorted(train, tr), np.searchsorted(train, te)) for tr, te in inner_folds(train, n_inner_folds, gap)]
        m = HRidgeCV(alphas=alphas, fit_intercept=True, cv=cv,
                     solver_params=dict(score_func=r2_score, local_alpha=True)).fit(Xf[train], Yf[train])
        p = m.predict(Xf[test])
        y = Yf[test]
        pc, yc = p - p.mean(0), y - y.mean(0)
        r.append((pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0)))
        alpha.append(np.asarray(m.best_alphas_))
        preds.append(p - Yf[train].mean(0))  # our predictions are of the train-centred test rows
    return {"alpha": np.stack(alpha), "r_folds": np.stack(r), "prediction": np.concatenate(preds)}


def bench_himalaya(args, d: dict) -> dict:
    """Block-CV ridge vs himalaya RidgeCV, same folds, same alpha grid, per-target alphas."""
    import himalaya

    from brainlike.encoding import cross_validated_ridge

    A, ft = d["A"], d["ft"]
    n_t = min(getattr(args, "himalaya_targets", None) or d["Y"].shape[1], d["Y"].shape[1])
    Y = np.ascontiguousarray(d["Y"][:, :n_t])  # the same targets for both
    alphas = np.logspace(-1, 6, 8)
    kw = dict(n_folds=5, gap=5, n_inner_folds=4, frame_times=ft, high_pass_s=128.0, highpass="run")
    cross_validated_ridge(A, Y[:, :256], alphas, **kw)  # warm-up
    himalaya_block_cv(A, Y[:, :256], alphas, ft)
    ours_s, ours, him_s, him = np.inf, None, np.inf, None
    for rep in range(args.repeats):  # interleaved, alternating which goes first
        for which in (("ours", "him") if rep % 2 == 0 else ("him", "ours")):
            if which == "ours":
                s, ours = _time(lambda: cross_validated_ridge(A, Y, alphas, return_predictions=True, **kw))
                ours_s = min(ours_s, s)
            else:
                s, him = _time(lambda: himalaya_block_cv(A, Y, alphas, ft))
                him_s = min(him_s, s)
    scale = np.abs(ours["prediction"]).max()
    return {
        "himalaya_version": himalaya.__version__, "backend": "numpy float64",
        "shape": {"trs": int(Y.shape[0]), "targets": int(n_t), "atoms": int(A.shape[1])},
        "alphas": alphas.tolist(),
        "cv": "5 outer contiguous blocks x 4 inner blocks, gap 5 TRs, drifts removed once over the run "
              "(highpass='run'), per-target alpha by mean inner R^2",
        "ours_s": round(ours_s, 3), "himalaya_s": round(him_s, 3), "repeats": args.repeats,
        "speedup": round(him_s / ours_s, 2),
        # himalaya returns exp(-log(alpha)): equal to the grid value up to rounding
        "alpha_agreement": float(np.mean(np.isclose(ours["alpha"], him["alpha"], rtol=1e-9, atol=0))),
        "max_abs_r_diff": float(np.abs(ours["r_folds"] - him["r_folds"]).max()),
        "max_abs_prediction_diff_rel": float(np.abs(ours["prediction"] - him["prediction"]).max() / scale),
    }


def bench_spin(args: argparse.Namespace, d: dict) -> dict:
    """Spin-test throughput: rotations/s and rotated-map Dice against every atlas network."""
    from brainlike.networks import spin_benchmark

    return spin_benchmark(n_spins=1000, n_maps=2 * args.atoms, atlas_root="data/atlases")


MEASUREMENTS: dict[str, Callable[[argparse.Namespace, dict], dict]] = {
    "glm": bench_glm,
    "ridge": bench_ridge,
    "himalaya": bench_himalaya,
    "spin": bench_spin,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brainlike.bench encode")
    ap.add_argument("--only", default=",".join(MEASUREMENTS), help="comma-separated measurements")
    ap.add_argument("--vertices", type=int, default=20484)
    ap.add_argument("--trs", type=int, default=440)
    ap.add_argument("--atoms", type=int, default=64)
    ap.add_argument("--nilearn-subset", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--himalaya-targets", type=int, default=4096,
                    help="targets (the first ones) of the himalaya comparison; 0: all")
    ap.add_argument("--out", default="metrics/bench_encode.json")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in MEASUREMENTS]
    if unknown:
        ap.error(f"unknown measurement(s) {unknown}; choose from {list(MEASUREMENTS)}")
    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    import torch

    result["machine"] = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                         "platform": platform.platform(), "device": "cpu"}
    d = _data(args) if {"glm", "ridge", "himalaya"} & set(names) else {}
    for name in names:
        res = MEASUREMENTS[name](args, d)
        result[name] = res
        print(name, json.dumps(res))
    if "glm" in result and "speedup" in result["glm"]:
        print(f"GLM: ours {result['glm']['ours_s']} s vs nilearn {result['glm']['nilearn_s_scaled_to_all']} s "
              f"-> {result['glm']['speedup']}x (goal >= 3x), max |dz| = {result['glm']['max_abs_z_diff_on_subset']:.2e}")
    if "ridge" in result and "ours_loo_s" in result["ridge"]:
        r = result["ridge"]
        print(f"ridge: block CV {r['block_cv_s']} s; sklearn RidgeCV(LOO) {r['sklearn_ridgecv_loo_s']} s; "
              f"our LOO {r['ours_loo_s']} s -> {r['loo_speedup_vs_sklearn']}x")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    return 0
