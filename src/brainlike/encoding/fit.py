"""Per-subject and group drivers: everything the ``encode`` stage computes, as arrays.

Shapes: T = TRs of the run, K = atoms, V = targets (20,484 fsaverage5 vertices or n ROIs),
S = subjects.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..config import EncodingConfig
from ..data.run import Run
from ..errors import ConfigError, DataError
from .baseline import baseline_bands, split_confounds, stimulus_columns
from .design import drift_basis, highpass, make_design
from .glm import run_glm_ar1
from .ridge import cross_validated_ridge, permutation_test_r
from .shared import prefilter, shared_encoding
from .sparse import sparse_fit
from .stats import fdr_bh, group_moderated, group_one_sample, two_sided_p


def fit_subject(
    atoms: np.ndarray,
    data: np.ndarray,
    confounds: pd.DataFrame | np.ndarray | None,
    frame_times: np.ndarray,
    cfg: EncodingConfig,
    atom_names: Sequence[str] | None = None,
    glm: bool = True,
    marginal: bool = False,
) -> dict[str, np.ndarray]:
    """GLM z-maps, cross-validated ridge scores and significance for one subject's run.

    Parameters
    ----------
    atoms : array of shape (T, K)
        Fixed regressors on this run's TR grid (temporal atoms, a random twin's atoms, or
        baseline regressors).
    data : array of shape (T, V)
        Brain data of the run.
    confounds : DataFrame or array of shape (T, n_confounds), or None
        Nuisance regressors (motion...); in the GLM design and removed with the drift basis
        inside every ridge split.
    frame_times : array of shape (T,)
        Acquisition times (s), for the cosine drift basis.
    cfg : EncodingConfig
    atom_names : sequence of K str, optional
    glm : bool
        Fit the GLM (False: ridge only, e.g. for baselines on ROI data).
    marginal : bool
        Also each atom's marginal GLM z (the atom alone with the nuisance regressors,
        :func:`~brainlike.encoding.glm.ar1_glm`): its whole effect, beside the joint fit's unique one.

    Returns
    -------
    dict of arrays:
        ``z``, ``t``, ``beta``, ``p`` (two-sided), ``q`` (BH per atom), ``significant`` (bool):
        (K, V) GLM contrast maps, one per atom (signed: + activation, - deactivation);
        ``estimable`` (K,) bool: False for an atom outside the design's row space (collinear
        with other columns to float32 precision), which is not tested (z 0, p and q 1);
        ``rho`` (V,) AR(1) coefficient; ``dof`` ();
        ``r``, ``r2`` (V,) fold-mean held-out Pearson r and R^2 of the ridge model;
        ``alpha`` (n_folds, V) chosen ridge penalties;
        ``r_p``, ``r_q``, ``r_significant`` (V,) permutation p, BH q and decision (when
        ``cfg.n_permutations > 0``);
        ``sparse_codes`` (K, V), ``sparse_r2`` (V,) (when ``cfg.lambda_f`` is set).
        ``z_marginal`` (K, V): each atom's marginal GLM z (when ``marginal``).
    """
    A = np.asarray(atoms, dtype=np.float64)
    Y = np.asarray(data)
    if A.ndim != 2 or Y.ndim != 2 or A.shape[0] != Y.shape[0]:
        raise DataError(None, f"atoms (T, K) and data (T, V) must share T; got {A.shape}, {Y.shape}", "data")
    K = A.shape[1]
    out: dict[str, np.ndarray] = {}
    X, names = make_design(A, frame_times, confounds, cfg.high_pass_s, atom_names)
    conf = _confound_block(X, names, K)  # after make_design dropped constant columns
    if glm:
        g = run_glm_ar1(Y, X, K, bins=cfg.ar_bins, batch_size=cfg.target_batch, device=cfg.device,
                        marginal=marginal)
        # an atom whose own effect is not estimable (outside the design's row space) is not
        # tested: z, t and beta 0, p and q 1, never significant; BH is per atom, so its absent
        # family changes no other atom's q
        ok = g["estimable"]
        p = np.where(ok[:, None], g["p_two_sided"], 1.0)
        rej, q = fdr_bh(p, cfg.fdr_alpha, axis=-1)
        z, t, beta = (np.where(ok[:, None], g[k], 0.0) for k in ("z", "t", "effect"))
        out.update(z=z, t=t, beta=beta, p=p, q=q, significant=rej & ok[:, None], estimable=ok,
                   rho=g["rho"], dof=np.float64(g["dof"]))
        if marginal:
            out["z_marginal"] = g["marginal_z"]
    common = dict(n_folds=cfg.n_folds, gap=cfg.gap_trs, frame_times=frame_times, high_pass_s=cfg.high_pass_s,
                  confounds=conf, highpass=cfg.highpass, batch_size=cfg.target_batch, device=cfg.device,
                  dtype=cfg.dtype)
    cv = cross_validated_ridge(A, Y, cfg.alphas, n_inner_folds=cfg.n_inner_folds, **common)
    out.update(r=cv["r"], r2=cv["r2"], alpha=cv["alpha"])
    if cfg.n_permutations > 0:
        perm = permutation_test_r(A, Y, cv["alpha_index"], cfg.alphas, cfg.n_permutations, cfg.seed,
                                  min(cfg.min_shift_trs, Y.shape[0] // 2), **common)
        rej, q = fdr_bh(perm["p"], cfg.fdr_alpha)
        out.update(r_p=perm["p"], r_q=q, r_significant=rej)
    if cfg.lambda_f is not None:
        B = drift_basis(frame_times, cfg.high_pass_s)
        B = B if conf is None else np.column_stack([conf, B])
        sp = sparse_fit(highpass(A, B), highpass(Y, B), cfg.lambda_f, batch_size=cfg.target_batch,
                        device=cfg.device, dtype=cfg.dtype)
        out.update(sparse_codes=sp["codes"], sparse_r2=sp["r2"])
    return out


def _n_conf(names: list[str], K: int) -> int:
    return sum(1 for n in names[K:] if not (n.startswith("drift_") or n == "constant"))


def _confound_block(X: np.ndarray, names: list[str], K: int) -> np.ndarray | None:
    n = _n_conf(names, K)
    return X[:, K:K + n] if n else None


def fit_group(subject_z: Sequence[np.ndarray] | np.ndarray, fdr_alpha: float = 0.05,
              test: str = "t") -> dict[str, np.ndarray]:
    """Group maps: one-sample test across subjects per atom and target, with BH-FDR per atom.

    Parameters
    ----------
    subject_z : array of shape (S, K, V) or sequence of S arrays (K, V)
        Subject-level GLM z-maps on a common space.
    fdr_alpha : float
    test : {'t', 'moderated_t', 'stouffer'}
        The one-sample t-test (:func:`~brainlike.encoding.stats.group_one_sample`, S - 1
        degrees of freedom), the empirical-Bayes moderated t
        (:func:`~brainlike.encoding.stats.group_moderated`, variances shrunk over targets), or
        fixed effects (:func:`fixed_effects_group`, also the only test of one subject).

    Returns
    -------
    dict with ``z``, ``t``, ``p`` (two-sided), ``q``, ``mean`` of shape (K, V), ``significant``
    (bool, (K, V)), ``positive`` / ``negative`` (bool, significant with z > 0 / z < 0), ``dof``
    (a float, or per atom (K,) for the moderated t, which also gives ``prior_dof`` / ``prior_var``).
    """
    z = np.stack(list(subject_z)) if not isinstance(subject_z, np.ndarray) else subject_z
    if test == "stouffer":
        return fixed_effects_group(z, fdr_alpha)
    if test == "t":
        g = group_one_sample(z)
    elif test == "moderated_t":
        g = group_moderated(z)
    else:
        raise ConfigError(f"group test must be 't', 'moderated_t' or 'stouffer', got {test!r}")
    rej, q = fdr_bh(g["p"], fdr_alpha, axis=-1)
    g.update(q=q, significant=rej, positive=rej & (g["z"] > 0), negative=rej & (g["z"] < 0))
    return g


def run_targets(run: Run, Y: np.ndarray, valid: np.ndarray,
                networks: tuple[list[str], np.ndarray] | None) -> tuple[list[str], np.ndarray, str]:
    """The few targets of a run: its ROIs as they are, or on fsaverage5 the mean time course of
    every network over the run's non-constant vertices.

    Returns
    -------
    labels : list of n str
    Yt : array of shape (T, n), float64
    kind : ``"roi"`` or ``"network"``
    """
    if run.space == "fsaverage5":
        if networks is None:
            raise DataError(None, "fsaverage5 runs need network targets (encoding.target_atlases)", "target_atlases")
        labels, masks = networks
        W = (masks & valid[None, :]).astype(np.float64)
        keep = W.sum(1) > 0
        W = W[keep] / W[keep].sum(1, keepdims=True)
        return [lab for lab, k in zip(labels, keep) if k], np.asarray(Y, dtype=np.float64) @ W.T, "network"
    names_t = run.target_names or [f"target_{j}" for j in range(Y.shape[1])]
    return [str(n) for n, ok in zip(names_t, valid) if ok], np.asarray(Y)[:, valid].astype(np.float64), "roi"


def vertex_config(cfg: EncodingConfig) -> EncodingConfig:
    """Settings of the vertex-wise fit on fsaverage5: the cheaper alpha grid and inner folds,
    permutations only when ``vertex_permutations`` (the one place that decides them)."""
    return cfg.model_copy(update={
        "alphas": cfg.vertex_alphas or cfg.alphas,
        "n_inner_folds": cfg.vertex_inner_folds or cfg.n_inner_folds,
        "n_permutations": cfg.n_permutations if cfg.vertex_permutations else 0,
    })


def targets_fit(X, Yt, frame, conf, cfg: EncodingConfig) -> dict[str, np.ndarray]:
    """Held-out r of a few targets with the full alpha grid and the permutation null."""
    common = dict(n_folds=cfg.n_folds, gap=cfg.gap_trs, frame_times=frame, high_pass_s=cfg.high_pass_s,
                  confounds=conf, highpass=cfg.highpass, batch_size=cfg.target_batch, device=cfg.device,
                  dtype=cfg.dtype)
    cv = cross_validated_ridge(X, Yt, cfg.alphas, n_inner_folds=cfg.n_inner_folds, **common)
    out = {"r": cv["r"], "r2": cv["r2"]}
    if cfg.n_permutations > 0:
        perm = permutation_test_r(X, Yt, cv["alpha_index"], cfg.alphas, cfg.n_permutations, cfg.seed,
                                  min(cfg.min_shift_trs, Yt.shape[0] // 2), return_null=True, **common)
        out.update(p=perm["p"], null=perm["null"], shifts=perm["shifts"])
    return out



def encode_run(
    regressors: np.ndarray,
    run: Run,
    cfg: EncodingConfig,
    networks: tuple[list[str], np.ndarray] | None = None,
    names: Sequence[str] | None = None,
) -> dict:
    """Maps and target scores of one run.

    Parameters
    ----------
    regressors : array of shape (T, K)
        Atoms (or baseline regressors) on the run's grid.
    run : Run
    cfg : EncodingConfig
    networks : (labels, masks of shape (n_networks, V)), optional
        Network targets of fsaverage5 runs (ignored for ``space: roi``).
    names : sequence of K str, optional

    Returns
    -------
    dict with ``maps`` (arrays over all V targets of the run, see the module docstring),
    ``targets`` (DataFrame: kind, target, r, r2, p, q), ``null`` ((n_permutations, n_targets)
    or None), ``shifts``, ``timing`` (seconds per part).
    """
    Y = np.asarray(run.data)
    T, V = Y.shape
    X = np.asarray(regressors, dtype=np.float64)
    if X.shape[0] != T:
        raise DataError(run.meta.get("source"), f"run {run.run_id}: {T} TRs but {X.shape[0]} regressor rows", "n_trs")
    ft = run.frame_times
    conf, _ = split_confounds(run, stimulus_columns(cfg))
    valid = Y.std(axis=0) > 0
    if not valid.any():
        raise DataError(run.meta.get("source"), f"run {run.run_id}: every target is constant", "data")
    surface = run.space == "fsaverage5"
    # ROI runs: the targets fit below has the permutations
    mcfg = vertex_config(cfg) if surface else cfg.model_copy(update={"n_permutations": 0})
    timing = {}
    t = time.perf_counter()
    fit = fit_subject(X, Y[:, valid], conf, ft, mcfg, atom_names=names, marginal=surface and cfg.marginal_maps)
    timing["maps_s"] = time.perf_counter() - t
    K = X.shape[1]
    maps = {
        "z": _scatter(fit["z"], valid, 0.0, np.float32),
        "significant": _scatter(fit["significant"], valid, False, bool),
        "r": _scatter(fit["r"], valid, np.nan, np.float32),
        "r2": _scatter(fit["r2"], valid, np.nan, np.float32),
        "alpha": _scatter(fit["alpha"], valid, np.nan, np.float32),
        "rho": _scatter(fit["rho"], valid, np.nan, np.float32),
        "valid": valid,
        "estimable": fit["estimable"],
    }
    if "r_p" in fit:
        maps["r_p"] = _scatter(fit["r_p"], valid, np.nan, np.float32)
    if "z_marginal" in fit:
        maps["z_marginal"] = _scatter(fit["z_marginal"], valid, 0.0, np.float32)
    assert maps["z"].shape == (K, V)
    # targets: ROIs as they are, or network means over this run's non-constant vertices
    t = time.perf_counter()
    labels, Yt, kind = run_targets(run, Y, valid, networks)
    C = None if conf is None else conf.to_numpy(np.float64)
    tf = targets_fit(X, Yt, ft, C, cfg)
    timing["targets_s"] = time.perf_counter() - t
    tab = pd.DataFrame({"kind": kind, "target": labels, "r": tf["r"], "r2": tf["r2"]})
    if "p" in tf:
        tab["p"] = tf["p"]
        tab["q"] = fdr_bh(tf["p"], cfg.fdr_alpha)[1]
    else:
        tab["p"] = tab["q"] = np.nan
    return {"maps": maps, "targets": tab, "null": tf.get("null"), "shifts": tf.get("shifts"), "timing": timing}


def _scatter(a: np.ndarray, valid: np.ndarray, fill, dtype) -> np.ndarray:
    a = np.asarray(a)
    out = np.full(a.shape[:-1] + (valid.size,), fill, dtype=dtype)
    out[..., valid] = a
    return out



def fixed_effects_group(subject_z: np.ndarray, fdr_alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Fixed-effects group maps: Stouffer's z = sum_s z_s / sqrt(S), BH-FDR per atom.

    Inference is about *these* subjects (is there an effect in the data at hand), not the
    population; with few subjects it has far more power than the one-sample t-test (whose
    S - 1 degrees of freedom make FDR over 20,484 vertices nearly unreachable at S = 4).

    Parameters
    ----------
    subject_z : array of shape (S, K, V)
    fdr_alpha : float

    Returns
    -------
    dict with ``z``, ``t`` (= z), ``mean`` (mean subject z), ``p``, ``q`` of shape (K, V),
    ``significant``, ``positive``, ``negative`` (bool, (K, V)) and ``dof`` (inf).
    """
    zs = np.asarray(subject_z, dtype=np.float64)
    z = zs.sum(0) / np.sqrt(zs.shape[0])
    p = two_sided_p(z)
    rej, q = fdr_bh(p, fdr_alpha, axis=-1)
    return {"z": z, "t": z, "mean": zs.mean(0), "p": p, "q": q, "significant": rej,
            "positive": rej & (z > 0), "negative": rej & (z < 0), "dof": np.inf}



def _combine_runs(maps: list[dict]) -> dict:
    if len(maps) == 1:
        return maps[0]
    out = {}
    for k in maps[0]:
        arr = np.stack([m[k] for m in maps])
        if arr.dtype == bool:
            # a target or an atom counts for the subject when it does in every run
            out[k] = arr.all(0) if k in ("valid", "estimable") else arr.any(0)
        else:
            out[k] = _nanmean(arr).astype(arr.dtype)
    return out



def _group_targets(target_r: list[pd.Series], nulls: list, subj_tabs: list[pd.DataFrame], cfg) -> pd.DataFrame:
    """Group row per target: mean r over subjects, permutation p of that mean."""
    kind = subj_tabs[0]["kind"].iloc[0] if len(subj_tabs[0]) else "roi"
    common = sorted(set.intersection(*(set(t.index) for t in target_r)), key=list(target_r[0].index).index)
    R = np.stack([t.loc[common].to_numpy() for t in target_r])  # (S, n)
    r2 = np.stack([tab.set_index("target").loc[common, "r2"].to_numpy() for tab in subj_tabs])
    tab = pd.DataFrame({"subject": "group", "kind": kind, "target": common, "r": R.mean(0), "r2": r2.mean(0)})
    if all(n is not None for n in nulls):
        idx = [[list(t.index).index(c) for c in common] for t in target_r]
        N = np.mean([n[:, i] for n, i in zip(nulls, idx)], axis=0)  # (n_perm, n)
        tab["p"] = (1.0 + (N >= tab["r"].to_numpy()[None, :]).sum(0)) / (1.0 + N.shape[0])
        tab["q"] = fdr_bh(tab["p"].to_numpy(), cfg.fdr_alpha)[1]
    else:
        tab["p"] = tab["q"] = np.nan
    return tab


def _nanmean(a: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=0)


def shared_fit(
    runs: Sequence[Run],
    regressors_for,
    cfg: EncodingConfig,
    networks: tuple[list[str], np.ndarray] | None = None,
) -> dict:
    """Shared-response fits of one stimulus (:func:`~brainlike.encoding.shared.shared_encoding`).

    Every run is reduced to its targets (:func:`run_targets`) and filtered over the whole run
    by the cosine basis plus its own nuisance confounds; runs of one subject are averaged. The
    atoms (``regressors_for(run)``) and the baseline bands (:func:`baseline_bands`, averaged
    over runs) are filtered by the cosine basis alone.

    Parameters
    ----------
    runs : valid runs of one stimulus
    regressors_for : callable Run -> array of shape (T, K)
    cfg : EncodingConfig
    networks : network targets of fsaverage5 runs

    Returns
    -------
    dict: ``status`` ("ok" or why nothing was fitted), and when fitted ``kind``, ``targets``,
    ``subjects`` and the arrays of :func:`~brainlike.encoding.shared.shared_encoding`.
    """
    grids = {(r.n_trs, round(float(r.t0), 6), round(float(r.tr), 6), r.space) for r in runs}
    subjects = sorted({str(r.subject) for r in runs})
    if len(grids) != 1:
        return {"status": f"runs are on {len(grids)} different TR grids or spaces: no shared response"}
    if len(subjects) < 2:
        return {"status": f"{len(subjects)} subject: a shared response needs at least 2"}
    first = runs[0]
    ft = first.frame_times
    per_subject: dict[str, list[np.ndarray]] = {}
    labels = None
    for run in runs:
        Y = np.asarray(run.data)
        valid = Y.std(axis=0) > 0
        lab, Yt, kind = run_targets(run, Y, valid, networks)
        conf, _ = split_confounds(run, stimulus_columns(cfg))
        Yt = pd.DataFrame(prefilter(Yt, ft, cfg.high_pass_s, None if conf is None else conf.to_numpy(np.float64)),
                          columns=lab)
        labels = lab if labels is None else [x for x in labels if x in lab]
        per_subject.setdefault(str(run.subject), []).append(Yt)
    Ys = np.stack([np.mean([t[labels].to_numpy() for t in per_subject[s]], axis=0) for s in subjects])
    X = np.mean([np.asarray(regressors_for(r), dtype=np.float64) for r in runs], axis=0)
    bands: dict[str, list[np.ndarray]] = {}
    for r in runs:
        for name, B in baseline_bands(r, cfg).items():
            bands.setdefault(name, []).append(B)
    base = {n: prefilter(np.mean(b, axis=0), ft, cfg.high_pass_s) for n, b in bands.items() if len(b) == len(runs)}
    res = shared_encoding(
        Ys, prefilter(X, ft, cfg.high_pass_s), base, cfg.alphas, cfg.band_scales, n_folds=cfg.n_folds,
        gap=cfg.gap_trs, n_inner_folds=cfg.n_inner_folds, n_permutations=cfg.n_permutations,
        min_shift=min(cfg.min_shift_trs, first.n_trs // 2), seed=cfg.seed, n_boot=cfg.n_boot, ci=cfg.ci_level,
        device=cfg.device, dtype=cfg.dtype)
    return res | {"status": "ok", "kind": kind, "targets": list(labels), "subjects": subjects}
