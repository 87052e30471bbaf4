"""Benchmark of the pattern-basis solver: torch online DL vs scikit-learn MiniBatchDictionaryLearning.

    python -m brainlike.bench patterns [--sk-epochs 1] [--out metrics/bench_patterns.json]

Two matrices: the embedded default's largest model (real Gemma-3 270M / MPNet activations when
``data/activations`` holds them, else synthetic of that size: 442 TRs x 11,520 ANs) and a
synthetic T=300 x N=200,000 matrix (HRF-smoothed sparse mixtures of 64 random patterns + noise,
unit-norm columns). Same K=64 and lambda for both solvers, measured side by side in one run:
scikit-learn fits with a bounded number of epochs (coordinate-descent codes, batch 256); its
final atoms are scored by the same converged lasso coding as ours; the torch solver's time to
reach that objective is its cumulative fit time at the first epoch whose atoms score <= it
(scoring time excluded for both).
"""

from __future__ import annotations

import argparse
import json
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


def compare(X: np.ndarray, name: str, K: int, lam: float, sk_epochs: int, torch_epochs: int) -> dict:
    from sklearn.decomposition import MiniBatchDictionaryLearning
    from sklearn.exceptions import ConvergenceWarning

    from brainlike.patterns import encode, fit_dictionary

    batches = lambda: [X]  # noqa: E731
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mb = MiniBatchDictionaryLearning(K, alpha=lam, fit_algorithm="cd", batch_size=256, max_iter=sk_epochs,
                                         random_state=0).fit(X.T)
    sk_s = time.perf_counter() - t
    comps = mb.components_ / np.maximum(np.linalg.norm(mb.components_, axis=1, keepdims=True), 1e-30)
    sk_obj = encode(batches, comps.T, lam)[2]
    curve = []

    def cb(epoch, D, elapsed):
        curve.append({"epoch": epoch, "elapsed_s": round(elapsed, 3), "objective": encode(batches, D, lam)[2]})

    t = time.perf_counter()
    res = fit_dictionary(batches, K, lam, n_iter=torch_epochs, tol=0, callback=cb)
    torch_total = time.perf_counter() - t
    hit = next((c for c in curve if c["objective"] <= sk_obj), None)
    out = {
        "matrix": name, "n_trs": int(X.shape[0]), "n_ans": int(X.shape[1]), "n_atoms": K, "lambda": lam,
        "sklearn": {"fit_s": round(sk_s, 2), "epochs": sk_epochs, "steps": int(mb.n_steps_), "objective": sk_obj,
                    "fit_algorithm": "cd", "batch_size": 256},
        "torch": {"curve": curve, "final_objective": res.objective, "wall_s_with_scoring": round(torch_total, 2),
                  "batch_size": 1024, "device": "cpu", "threads": torch.get_num_threads()},
        "torch_time_to_sklearn_objective_s": hit["elapsed_s"] if hit else None,
        "speedup": round(sk_s / hit["elapsed_s"], 2) if hit else None,
        "objective_ratio_torch_final_over_sklearn": round(res.objective / sk_obj, 5),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sk-epochs", type=int, default=1)
    ap.add_argument("--torch-epochs", type=int, default=10)
    ap.add_argument("--lam", type=float, default=0.1)
    ap.add_argument("--large-n", type=int, default=200_000)
    ap.add_argument("--activations", default="data/activations")
    ap.add_argument("--out", default="metrics/bench_patterns.json")
    args = ap.parse_args(argv)
    results = []
    Xe, name = _embedded_matrix(args.activations)
    results.append(compare(Xe, name, 64, args.lam, args.sk_epochs, args.torch_epochs))
    del Xe
    Xl = synthetic(300, args.large_n)
    results.append(compare(Xl, f"synthetic 300 x {args.large_n}", 64, args.lam, args.sk_epochs, args.torch_epochs))
    for r in results:
        print(f"{r['matrix']}: sklearn {r['sklearn']['fit_s']} s -> objective {r['sklearn']['objective']:.5f}; "
              f"torch reaches it in {r['torch_time_to_sklearn_objective_s']} s; speedup {r['speedup']}x; "
              f"torch final / sklearn objective {r['objective_ratio_torch_final_over_sklearn']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from brainlike._utils.atomic import write_text_atomic

    write_text_atomic(out, json.dumps({"results": results, "torch": torch.__version__,
                                       "note": "CPU; timings on a shared machine"}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
