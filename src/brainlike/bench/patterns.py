"""Benchmark of the pattern-basis solver: torch online DL vs scikit-learn MiniBatchDictionaryLearning.

    python -m brainlike.bench patterns [--sk-epochs 1] [--out metrics/bench_patterns.json]

Two matrices: the embedded default's largest model (real Gemma-3 270M / MPNet activations when
``data/activations`` holds them, else synthetic of that size: 442 TRs x 11,520 ANs) and a
synthetic T=300 x N=200,000 matrix (HRF-smoothed sparse mixtures of 64 random patterns + noise,
unit-norm columns). Same K=64 and lambda for both solvers, measured side by side in one process,
``--repeats`` interleaved pairs, one CPU thread each: scikit-learn fits with a bounded number of
epochs (coordinate-descent codes, batch 256); both solvers' atoms are scored by the same converged
lasso coding; the torch solver's time to reach sklearn's objective is its wall time from the call
(scan and initialisation included) to the end of the first epoch whose atoms score <= it
(scoring excluded). See :func:`compare`.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def synthetic(T: int, N: int, K: int = 64, seed: int = 0) -> np.ndarray:
    """(T, N) float32 unit-norm columns: sparse (4 of K) mixtures of smooth patterns + 30 % noise."""
    rng = np.random.default_rng(seed)
    kernel = np.exp(-0.5 * (np.arange(-6, 7) / 2.0) ** 2)
    D = np.apply_along_axis(lambda c: np.convolve(c, kernel, "same"), 0, rng.standard_normal((T, K)))
    D /= np.linalg.norm(D, axis=0)
    X = np.empty((T, N), np.float32)
    for s in range(0, N, 20000):
        n = min(20000, N - s)
        A = np.zeros((K, n))
        rows = rng.integers(0, K, size=(4, n))
        A[rows, np.arange(n)[None, :]] = rng.standard_normal((4, n))
        x = D @ A + 0.3 * rng.standard_normal((T, n)) / np.sqrt(T)
        X[:, s:s + n] = x / np.linalg.norm(x, axis=0)
    return X


def _embedded_matrix(root: str = "data/activations") -> tuple[np.ndarray, str]:
    for model in ("gemma3-270m", "mpnet-base"):
        side = sorted(Path(root, model).glob("*/activations.json"))
        if side:
            from brainlike.activations import ActivationSet

            X, _ = ActivationSet(side[0].parent).matrix()
            return (X / np.linalg.norm(X, axis=0, keepdims=True)).astype(np.float32), f"real:{model}"
    return synthetic(442, 18 * 640, seed=1), "synthetic (442 x 11520, the size of gemma3-270m ffn_out)"


def _sklearn_fit(Xs: np.ndarray, K: int, lam: float, epochs: int, threads: int | None):
    """One MiniBatchDictionaryLearning fit on (N, T) data; returns (seconds, unit-norm atoms (T, K), steps)."""
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=threads):
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        mb = MiniBatchDictionaryLearning(K, alpha=lam, fit_algorithm="cd", batch_size=256, max_iter=epochs,
                                         random_state=0).fit(Xs)
        s = time.perf_counter() - t
    comps = mb.components_ / np.maximum(np.linalg.norm(mb.components_, axis=1, keepdims=True), 1e-30)
    return s, comps.T, int(mb.n_steps_)


def compare(X: np.ndarray, name: str, K: int, lam: float, sk_epochs: int, torch_epochs: int, repeats: int,
            sk_default_threads: bool) -> dict:
    """Time-to-sklearn's-objective of the torch solver vs sklearn, interleaved in one process.

    Each repeat runs both solvers back to back (alternating which goes first) with one CPU thread
    each (torch via ``num_threads=1``, scikit-learn's BLAS via threadpoolctl; one thread was the
    faster setting for both on the shared 2-core machine). Both sets of final atoms are scored by
    the same converged lasso coding (:func:`brainlike.patterns.encode`, FISTA to 1e-6, untimed).
    The torch time counts from the call of ``fit_dictionary`` (scan of X, SVD initialisation
    and epochs) to the end of the first epoch whose atoms score <= sklearn's, scoring excluded;
    scikit-learn's time is its ``fit`` on a C-contiguous (N, T) copy made beforehand. Both fits
    are deterministic, so the objectives are the same in every repeat and only times vary.
    """
    from brainlike.patterns import encode, fit_dictionary

    batches = lambda: [X]  # noqa: E731
    Xs = np.ascontiguousarray(X.T)  # sklearn's layout, made outside its timing
    load = [os.getloadavg()[0]]
    sk_obj, hit_epoch, curve, res = None, None, None, None
    rows = []
    for rep in range(repeats):
        row = {}
        for which in (("sklearn", "torch") if rep % 2 == 0 else ("torch", "sklearn")):
            if which == "sklearn":
                s, atoms, steps = _sklearn_fit(Xs, K, lam, sk_epochs, 1)
                row["sklearn_s"] = round(s, 3)
                if sk_obj is None:
                    sk_obj = encode(batches, atoms, lam)[2]
                continue
            times: list[float] = []
            if curve is None:  # first torch run: score every epoch (untimed) to find the hit epoch
                curve = []

                def cb(epoch, D, elapsed):
                    times.append(elapsed)
                    curve.append({"epoch": epoch, "elapsed_s": round(elapsed, 3),
                                  "objective": encode(batches, D, lam)[2]})

                res = fit_dictionary(batches, K, lam, n_iter=torch_epochs, tol=0, callback=cb)
            else:  # later runs: same deterministic path, timed up to the hit epoch only
                fit_dictionary(batches, K, lam, n_iter=hit_epoch or torch_epochs, tol=0, final_iter=0,
                               callback=lambda e, D, el: times.append(el))
            if sk_obj is not None and hit_epoch is None:
                hit_epoch = next((c["epoch"] for c in curve if c["objective"] <= sk_obj), None)
            row["torch_epoch_s"] = [round(t, 3) for t in times]
        row["torch_s"] = row["torch_epoch_s"][hit_epoch - 1] if hit_epoch else None
        row["speedup"] = round(row["sklearn_s"] / row["torch_s"], 2) if hit_epoch else None
        row["load_1min"] = os.getloadavg()[0]
        rows.append(row)
    if hit_epoch is None:
        speed = None
    else:
        speed = {"median": float(np.median([r["speedup"] for r in rows])), "min": min(r["speedup"] for r in rows),
                 "max": max(r["speedup"] for r in rows),
                 "ratio_of_medians": round(float(np.median([r["sklearn_s"] for r in rows])
                                                 / np.median([r["torch_s"] for r in rows])), 2)}
    out = {
        "matrix": name, "n_trs": int(X.shape[0]), "n_ans": int(X.shape[1]), "n_atoms": K, "lambda": lam,
        "sklearn": {"epochs": sk_epochs, "steps": steps, "objective": sk_obj, "fit_algorithm": "cd",
                    "batch_size": 256, "threads": 1},
        "torch": {"curve": curve, "hit_epoch": hit_epoch, "final_objective": res.objective,
                  "settings": {k: v.default for k, v in inspect.signature(fit_dictionary).parameters.items()
                               if k in ("batch_size", "first_batch_size", "fista_iter", "first_iter", "window",
                                        "device", "num_threads")}},
        "repeats": rows,
        "speedup": speed,
        "objective_ratio_torch_hit_over_sklearn": (round(curve[hit_epoch - 1]["objective"] / sk_obj, 5)
                                                   if hit_epoch else None),
        "objective_ratio_torch_final_over_sklearn": round(res.objective / sk_obj, 5),
    }
    if sk_default_threads:  # context: sklearn with its default BLAS threads (one run, after the repeats)
        s, atoms, _ = _sklearn_fit(Xs, K, lam, sk_epochs, None)
        out["sklearn_default_threads_s"] = round(s, 3)
    load.append(os.getloadavg()[0])
    out["load_1min_start_end"] = load
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sk-epochs", type=int, default=1)
    ap.add_argument("--torch-epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved sklearn/torch pairs per matrix")
    ap.add_argument("--lam", type=float, default=0.1)
    ap.add_argument("--large-n", type=int, default=200_000)
    ap.add_argument("--no-sk-default-threads", action="store_true",
                    help="skip the extra sklearn run with its default thread count")
    ap.add_argument("--activations", default="data/activations")
    ap.add_argument("--out", default="metrics/bench_patterns.json")
    args = ap.parse_args(argv)
    results = []
    Xe, name = _embedded_matrix(args.activations)
    results.append(compare(Xe, name, 64, args.lam, args.sk_epochs, args.torch_epochs, args.repeats,
                           not args.no_sk_default_threads))
    del Xe
    Xl = synthetic(300, args.large_n)
    results.append(compare(Xl, f"synthetic 300 x {args.large_n}", 64, args.lam, args.sk_epochs, args.torch_epochs,
                           args.repeats, not args.no_sk_default_threads))
    for r in results:
        sp = r["speedup"] or {}
        print(f"{r['matrix']}: sklearn objective {r['sklearn']['objective']:.5f}; torch reaches it at epoch "
              f"{r['torch']['hit_epoch']}; speedup median {sp.get('median')}x "
              f"(min {sp.get('min')}, max {sp.get('max')}); "
              f"per repeat {[(x['sklearn_s'], x['torch_s']) for x in r['repeats']]}; load {r['load_1min_start_end']}; "
              f"torch final / sklearn objective {r['objective_ratio_torch_final_over_sklearn']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from brainlike._utils.atomic import write_text_atomic

    write_text_atomic(out, json.dumps({"results": results, "torch": torch.__version__,
                                       "cpu_count": os.cpu_count(),
                                       "note": "CPU, one thread per solver, interleaved repeats on a shared machine "
                                               "(load_1min recorded per repeat)"}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
