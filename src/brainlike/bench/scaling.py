"""Scaling curves: encode time vs number of targets, dictionary time vs number of ANs.

    python -m brainlike.bench scaling [--quick] [--out metrics/bench_scaling.json]

- ``encode``: the vertex-wise fit the encode stage runs on every fsaverage5 run
  (:func:`brainlike.encoding.fit_subject` with the stage's vertex settings from params.yaml:
  AR(1) GLM z-maps of every atom + block-CV ridge with ``vertex_alphas`` / ``vertex_inner_folds``,
  no vertex permutations), on synthetic AR(1) data of T TRs x V targets with K atoms, torch on
  ``encoding.threads`` threads as in the stage. The per-run network-target fit (full alpha grid,
  ``n_permutations`` circular shifts on ~19 network means) does not grow with V; it is timed
  once (``targets_fit_s``).
- ``dictionary``: :class:`brainlike.patterns.SparseDictionary` (the patterns stage's estimator)
  on synthetic unit-norm ANs (T x N, :func:`brainlike.bench.patterns.synthetic`), K atoms,
  a fixed number of epochs (``tol=0``); the per-epoch times come from the fit's callback, so a
  fit of E epochs is projected as ``first + (E - 1) * epoch + final``.

Each curve gets a log-log slope (:func:`loglog_slope`) over the points above the overhead floor.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

ENCODE_N = (1000, 2500, 5000, 10_000, 20_000, 40_000, 80_000)
DICT_N = (10_000, 30_000, 100_000, 300_000, 1_000_000)


def loglog_slope(n, t, floor_factor: float = 4.0, min_points: int = 3) -> dict:
    """Least-squares slope of log t on log n over the points above the overhead floor.

    The floor is the smallest time measured; points with ``t >= floor_factor * floor`` are
    fitted (where the cost grows with n rather than with fixed overheads); if fewer than
    ``min_points`` qualify, the ``min_points`` largest n are fitted.

    Parameters
    ----------
    n, t : arrays of shape (n_points,), positive
    floor_factor : float
    min_points : int

    Returns
    -------
    dict with ``slope``, ``intercept`` (of log t = intercept + slope log n, natural logs),
    ``fitted`` (bool per point), ``rule`` (text).
    """
    n = np.asarray(n, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if n.shape != t.shape or n.size < 2 or (n <= 0).any() or (t <= 0).any():
        raise ValueError(f"need >= 2 positive (n, t) pairs of one shape, got n={n.tolist()}, t={t.tolist()}")
    fitted = t >= floor_factor * t.min()
    if fitted.sum() < min(min_points, n.size):
        fitted = np.zeros(n.size, bool)
        fitted[np.argsort(n)[-min(min_points, n.size):]] = True
    slope, intercept = np.polyfit(np.log(n[fitted]), np.log(t[fitted]), 1)
    return {"slope": float(slope), "intercept": float(intercept), "fitted": fitted.tolist(),
            "rule": f"np.polyfit(log n, log t, 1) over points with t >= {floor_factor} x the smallest t "
                    f"(else the {min_points} largest n)"}


def predict(fit: dict, n: float) -> float:
    """Seconds at ``n`` from a :func:`loglog_slope` result."""
    return float(np.exp(fit["intercept"] + fit["slope"] * np.log(n)))


def encode_data(T: int, K: int, V: int, seed: int = 0) -> dict:
    """Synthetic run: K smooth unit-variance atoms, V targets with AR(1) noise (rho ~ U(0, 0.6))."""
    rng = np.random.default_rng(seed)
    kern = np.exp(-0.5 * (np.arange(-8, 9) / 2.5) ** 2)
    A = np.stack([np.convolve(rng.standard_normal(T + 16), kern, "same")[8:-8] for _ in range(K)], 1)
    A = (A - A.mean(0)) / A.std(0)
    Y = np.empty((T, V), np.float32)
    for s in range(0, V, 20_000):
        v = min(20_000, V - s)
        rho = rng.uniform(0.0, 0.6, v)
        e = rng.standard_normal((T, v))
        for t in range(1, T):
            e[t] += rho * e[t - 1]
        W = rng.standard_normal((K, v)) * (rng.random((K, v)) < 0.05) * 0.3
        Y[:, s:s + v] = A @ W + e + 100.0
    return {"A": A, "Y": Y, "frame_times": np.arange(T) * 1.5, "confounds": rng.standard_normal((T, 6)).cumsum(0) * 0.05}


def _encoding_cfg(params: str | Path | None):
    from brainlike.config import EncodingConfig, load_params
    from brainlike.encoding.fit import vertex_config

    cfg = load_params(params).encoding if params and Path(params).is_file() else EncodingConfig()
    vertex = vertex_config(cfg)
    return cfg, vertex


def encode_curve(ns=ENCODE_N, T: int = 440, K: int = 64, repeats: int = 1, params: str | Path | None = "params.yaml",
                 n_network_targets: int = 19) -> dict:
    """Seconds of the stage's vertex-wise fit (GLM + block-CV ridge) for each number of targets."""
    import pandas as pd
    import torch

    from brainlike.encoding import fit_subject
    from brainlike.encoding.fit import targets_fit

    cfg, vcfg = _encoding_cfg(params)
    d = encode_data(T, K, max(ns))
    conf = pd.DataFrame(d["confounds"], columns=[f"motion_{i}" for i in range(6)])
    old = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        fit_subject(d["A"], d["Y"][:, :256], conf, d["frame_times"], vcfg)  # warm-up
        points = []
        for n in ns:
            Yn = np.ascontiguousarray(d["Y"][:, :n])
            best = np.inf
            for _ in range(repeats):
                t = time.perf_counter()
                fit_subject(d["A"], Yn, conf, d["frame_times"], vcfg)
                best = min(best, time.perf_counter() - t)
            points.append({"n": int(n), "seconds": round(best, 4), "load_1min": os.getloadavg()[0]})
        # the per-run network-target fit (full grid + permutations), independent of V
        Yt = d["Y"][:, :n_network_targets * 64].astype(np.float64).reshape(T, n_network_targets, 64).mean(2)
        t = time.perf_counter()
        targets_fit(d["A"], Yt, d["frame_times"], d["confounds"], cfg)
        targets_s = time.perf_counter() - t
    finally:
        torch.set_num_threads(old)
    fit = loglog_slope([p["n"] for p in points], [p["seconds"] for p in points])
    for p, f in zip(points, fit["fitted"]):
        p["fitted"] = f
    return {
        "curve": "encode_vs_targets", "x": "targets (vertices)", "n_trs": T, "n_atoms": K, "repeats": repeats,
        "code_path": "brainlike.encoding.fit_subject with the encode stage's fsaverage5 settings "
                     f"(GLM AR(1) + block-CV ridge, alphas {vcfg.alphas}, {vcfg.n_folds} outer x "
                     f"{vcfg.n_inner_folds} inner folds, gap {vcfg.gap_trs}, no vertex permutations), "
                     f"torch threads {cfg.threads}",
        "points": points, "fit": fit,
        "targets_fit_s": round(targets_s, 3),
        "targets_fit": f"{n_network_targets} network means, alphas {cfg.alphas}, {cfg.n_inner_folds} inner folds, "
                       f"{cfg.n_permutations} circular-shift permutations (independent of V)",
    }


def dictionary_curve(ns=DICT_N, T: int = 300, K: int = 64, epochs: int = 3, lam: float = 0.1) -> dict:
    """Seconds of a fixed-epoch SparseDictionary fit for each number of ANs (synthetic, T x N)."""
    from brainlike.patterns import SparseDictionary

    from .patterns import synthetic

    points = []
    for n in ns:
        X = synthetic(T, int(n), K=K, seed=3)
        elapsed: list[float] = []
        est = SparseDictionary(n_atoms=K, lambda_an=lam, n_iter=epochs, tol=0.0, device="cpu")
        t = time.perf_counter()
        est.fit(X, callback=lambda e, D, el: elapsed.append(el))
        total = time.perf_counter() - t
        del X
        first = elapsed[0]
        per_epoch = (elapsed[-1] - elapsed[0]) / max(len(elapsed) - 1, 1)
        points.append({"n": int(n), "seconds": round(total, 4), "epochs": int(est.n_iter_),
                       "first_epoch_s": round(first, 4), "epoch_s": round(per_epoch, 4),
                       "final_s": round(total - elapsed[-1], 4), "r2": round(est.r2_, 4),
                       "load_1min": os.getloadavg()[0]})
    fit = loglog_slope([p["n"] for p in points], [p["seconds"] for p in points])
    ep = loglog_slope([p["n"] for p in points], [p["epoch_s"] for p in points])
    for p, f in zip(points, fit["fitted"]):
        p["fitted"] = f
    return {
        "curve": "dictionary_vs_ans", "x": "artificial neurons", "n_trs": T, "n_atoms": K, "lambda": lam,
        "epochs": epochs,
        "code_path": "brainlike.patterns.SparseDictionary(tol=0, device='cpu', 1 thread) on synthetic unit-norm ANs "
                     "(first epoch includes the scan and SVD initialisation; final = full-convergence coding)",
        "points": points, "fit": fit, "epoch_fit": ep,
    }


def curve_rows(curves: list[dict]) -> list[dict]:
    """Long rows for the DVC plot: measured points and the fitted power law over the fitted range."""
    rows = []
    for c in curves:
        label = f"{c['curve']} (slope {c['fit']['slope']:.2f})"
        for p in c["points"]:
            rows.append({"curve": label, "kind": "measured", "n": p["n"], "seconds": p["seconds"],
                         "fitted": p["fitted"]})
        for p in c["points"]:
            if p["fitted"]:
                rows.append({"curve": label, "kind": "power-law fit", "n": p["n"],
                             "seconds": round(predict(c["fit"], p["n"]), 4), "fitted": True})
    return rows


def write_curves(curves: list[dict], json_path: Path, csv_path: Path) -> None:
    """``json_path``: the curves with their fits; ``csv_path``: long rows for ``dvc plots``."""
    import pandas as pd

    from brainlike._utils.atomic import atomic_path, write_text_atomic

    write_text_atomic(Path(json_path), json.dumps({"curves": curves}, indent=1) + "\n")
    with atomic_path(Path(csv_path)) as tmp:
        pd.DataFrame(curve_rows(curves)).to_csv(tmp, index=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brainlike.bench scaling")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="metrics/bench_scaling.json")
    ap.add_argument("--csv", default="metrics/bench_scaling.csv")
    args = ap.parse_args(argv)
    curves = run(args.quick, args.params)
    write_curves(curves, Path(args.out), Path(args.csv))
    for c in curves:
        print(c["curve"], [(p["n"], p["seconds"]) for p in c["points"]], f"slope {c['fit']['slope']:.3f}")
    return 0


def run(quick: bool = False, params: str | Path | None = "params.yaml") -> list[dict]:
    """Both curves at their default sizes (``quick``: tiny sizes for tests)."""
    if quick:
        return [encode_curve((200, 400, 800), T=120, K=8, params=params, n_network_targets=4),
                dictionary_curve((1000, 2000, 4000), T=60, K=8, epochs=2)]
    return [encode_curve(params=params), dictionary_curve()]


if __name__ == "__main__":
    raise SystemExit(main())


# --- projected cost of a Narratives-scale study --------------------------------------------
#: Narratives (Nastase et al. 2021, Scientific Data 8:250): 345 subjects, 891 functional scans,
#: 27 stories, ~4.6 h of unique stimuli, ~43,000 words, TR 1.5 s.
NARRATIVES = {"n_subjects": 345, "n_scans": 891, "n_stories": 27, "stimulus_hours": 4.6, "n_words": 43_000,
              "tr_s": 1.5}

#: Models of the projection: ANs stored by the default site (ffn_out; the 7B: LLaMA-7B FFN width
#: 11,008 x 32 layers) and the extraction bench entry whose tokens/s it uses.
#: Non-embedding parameters scale the 7B's tokens/s from Gemma-3-270M's measured rate (forward
#: FLOPs ~ 2 x non-embedding parameters per token): Gemma-3-270M has ~100M transformer + ~170M
#: embedding parameters, LLaMA-7B ~6.5B non-embedding.
PROJECTED_MODELS = {
    "minilm-l6": {"n_ans": 6 * 384, "extract_from": "minilm-l6", "flop_scale": 1.0},
    "gemma3-270m": {"n_ans": 18 * 640, "extract_from": "gemma3-270m", "flop_scale": 1.0},
    "7b (32 x 11008)": {"n_ans": 32 * 11008, "extract_from": "gemma3-270m", "flop_scale": 6.5e9 / 100e6},
}

PROJECTION_FORMULA = (
    "per model: extract = n_stories x tokens_processed_per_story / tokens_per_s; "
    "dictionary = n_stories x t_dict(N, T_story, E) with t_dict = [first(N) + (E - 1) x epoch(N) + final(N)] x "
    "T_story / T_curve (power laws fitted to the dictionary curve); "
    "encode = n_scans x [t_encode(V) + t_targets] x T_scan / T_curve (power law of the encode curve, "
    "targets fit measured once); total = extract + dictionary + encode; "
    "wall on W workers = sum over phases of ceil(n_units / W) x unit time (ideal division of equal units: "
    "stories for extract and dictionary, scans for encode; no scheduling or I/O overhead)"
)


def _fit_of(points: list[dict], key: str) -> dict:
    return loglog_slope([p["n"] for p in points], [max(p[key], 1e-6) for p in points])


def narratives_projection(enc: dict, dic: dict, extract_models: list[dict] | None, n_atoms_epochs: int = 30,
                          vertices=(20_484, 81_924), workers=(1, 2, 100)) -> dict:
    """Projected cost of running every stage on Narratives, per model (see :data:`PROJECTION_FORMULA`).

    Parameters
    ----------
    enc, dic : the curves of :func:`encode_curve` and :func:`dictionary_curve`
    extract_models : entries of the extraction benchmark (tokens/s), or None (extraction left out)
    n_atoms_epochs : int, the patterns stage's epochs (``patterns.n_iter``; the embedded fits run all 30)
    vertices : fsaverage5 and fsaverage6 target counts
    workers : single-threaded workers (1 = serial)
    """
    N = NARRATIVES
    T_story = N["stimulus_hours"] * 3600 / N["tr_s"] / N["n_stories"]  # mean story length in TRs
    T_scan = T_story  # mean scan length: stories weighted equally (per-story scan counts not used)
    words_story = N["n_words"] / N["n_stories"]
    dp = dic["points"]
    for p in dp:
        p["first_final_s"] = p["seconds"] - (p["epochs"] - 1) * p["epoch_s"]
    f_epoch, f_ff = _fit_of(dp, "epoch_s"), _fit_of(dp, "first_final_s")
    ext = {e["model"]: e for e in (extract_models or [])}
    out_models = {}
    for name, m in PROJECTED_MODELS.items():
        n = m["n_ans"]
        t_dict = (predict(f_ff, n) + (n_atoms_epochs - 1) * predict(f_epoch, n)) * T_story / dic["n_trs"]
        row = {"n_ans": n, "t_dict_per_story_s": round(t_dict, 2), "dictionary_s": round(N["n_stories"] * t_dict, 1)}
        e = ext.get(m["extract_from"])
        if e is not None:
            tok_per_word = e["tokens_processed"] / e["n_words"]  # includes window overlap and special tokens
            tps = e["tokens_per_s_hooked"] / m["flop_scale"]
            t_ext = words_story * tok_per_word / tps
            row.update(tokens_per_s=round(tps, 2), tokens_per_s_source=(
                "measured" if m["flop_scale"] == 1.0 else f"{m['extract_from']} measured / {m['flop_scale']:.0f} (FLOPs)"),
                extract_per_story_s=round(t_ext, 1), extract_s=round(N["n_stories"] * t_ext, 1))
        else:
            t_ext = None
        for V in vertices:
            t_scan = (predict(enc["fit"], V) + enc["targets_fit_s"]) * T_scan / enc["n_trs"]
            phases = [(N["n_stories"], t_dict), (N["n_scans"], t_scan)] + ([(N["n_stories"], t_ext)] if t_ext else [])
            serial = sum(k * t for k, t in phases)
            row[f"V{V}"] = {
                "t_encode_per_scan_s": round(t_scan, 2), "encode_s": round(N["n_scans"] * t_scan, 1),
                "serial_core_hours": round(serial / 3600, 3),
                "wall_s": {str(w): round(sum(-(-k // w) * t for k, t in phases), 1) for w in workers},
                "wall_hours": {str(w): round(sum(-(-k // w) * t for k, t in phases) / 3600, 4) for w in workers},
                "extrapolated_beyond_curve": bool(V > max(p["n"] for p in enc["points"])),
            }
        out_models[name] = row
    return {
        "formula": PROJECTION_FORMULA,
        "inputs": N | {"mean_story_trs": round(T_story, 1), "mean_scan_trs": round(T_scan, 1),
                       "epochs": n_atoms_epochs, "t_targets_s": enc["targets_fit_s"],
                       "encode_T_curve": enc["n_trs"], "dictionary_T_curve": dic["n_trs"],
                       "cost_linear_in_T": "assumed (the GEMMs are linear in T; the per-split SVDs of T x K designs too)",
                       "threads_per_worker": 1},
        "fits": {"encode": {"slope": enc["fit"]["slope"]}, "dictionary_epoch": {"slope": f_epoch["slope"]},
                 "dictionary_first_final": {"slope": f_ff["slope"]}},
        "models": out_models,
        "note": "extraction tokens/s were measured with torch's default threads (2 on this machine); "
                "encode and dictionary on 1 thread. A random twin costs as much as its model.",
    }
