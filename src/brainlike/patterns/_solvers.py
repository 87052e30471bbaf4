"""Numerical core of the pattern bases: sparse dictionary learning as pure functions on torch.

Problem (ANs as samples; X has one column per artificial neuron)::

    min_{D, A}  (1/N) sum_n [ 0.5 * ||x_n - D a_n||_2^2 + lam * ||a_n||_1 ]
    s.t. ||d_k||_2 <= 1

with X of shape (T, N), D of shape (T, K) and A of shape (K, N). This is exactly the per-sample
cost that scikit-learn's ``MiniBatchDictionaryLearning(alpha=lam)`` minimises on ``X.T``
(its ``_minibatch_step`` reports ``(0.5 * ||X - code @ dictionary||^2 + alpha * |code|_1) /
batch_size``; its lasso solvers divide ``alpha`` by ``n_features`` only to undo the 1 /
n_samples of ``Lasso``), so both objectives are comparable number for number.

Algorithm (Mairal et al. 2010, "Online learning for matrix factorization and sparse coding",
JMLR 11, Alg. 1-2, with the finite-data-set variant of their section 3.4): ANs are visited in
batches of ``batch_size`` columns, in a fixed order. For each batch, the codes are recomputed by
a few FISTA steps with per-column adaptive restart (inexact coding: warm-started from that
batch's previous codes, or in the first epoch from soft(D^T x, lam), the exact solution for the
orthonormal SVD atoms); the sufficient statistics A_stat = sum_n a_n a_n^T (K x K) and B_stat =
sum_n x_n a_n^T (T x K) replace the batch's previous contribution by the new one (so they always
describe the latest code of every AN seen); then one block-coordinate sweep updates D. From the
second epoch on, the D step is the exact minimiser per column of the quadratic surrogate built
from all current codes, so no forgetting factor is needed and the visiting order only changes
the path. The first epoch, whose early codes come from far worse atoms, uses smaller batches
and lets D follow recency-weighted statistics (sklearn's and Mairal's forgetting, memory
``window`` batches) while the exact sums are kept for the later epochs. An atom that is
(almost) unused is re-drawn from the worst-reconstructed AN of the current batch. The reported
codes come from a final pass that codes every AN to convergence on the final atoms.

Determinism: a fixed batch layout (the scan regroups the stream into fixed blocks too), no
random draws after the SVD initialisation, contiguous float32 batches and a fixed CPU thread
count (one by default, see :func:`cpu_threads`) make the result bit-identical run to run on the
same device and torch build, whatever the machine's core count or the caller's chunking.

Memory: besides the caller's data, the fit holds the dense codes (K x N float32, 4 K N bytes),
one batch (T x batch_size float32) and O(T^2 + T K) statistics -- never a second copy of X.

Layout: the stream, its batching and the validation scan are in
:mod:`~brainlike.patterns._solver_stream`, the per-batch coding and atom-update steps in
:mod:`~brainlike.patterns._solver_steps`; this module holds the initialisation and the loops
(:func:`fit_dictionary`, :func:`encode`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import torch

from .._utils.compute import cpu_threads  # re-exported: the estimators call S.cpu_threads
from ._solver_steps import batch_cost, fista, lipschitz, soft_threshold, update_dict
from ._solver_stream import (
    Batches,
    ColumnError,  # noqa: F401 -- re-exported: the package imports it from here
    ScanResult,
    rebatch,
    resolve_device,  # noqa: F401 -- re-exported: the package and the estimator (S.resolve_device)
    scan,
    to_device,
)


def _flush_denormals(fn):
    """Run ``fn`` with subnormal floats flushed to zero, then restore torch's default.

    Codes and momenta decaying towards 0 become subnormal, and x86 arithmetic on subnormals is
    ~20x slower (measured: 45 ms vs 2 ms per FISTA step on 64 x 1024 codes); zero is what they
    round to anyway, so results stay deterministic.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ok = torch.set_flush_denormal(True)
        try:
            return fn(*args, **kwargs)
        finally:
            if ok:
                torch.set_flush_denormal(False)

    return wrapper


def init_svd(gram_t: np.ndarray, n_atoms: int) -> np.ndarray:
    """Initial atoms: the ``n_atoms`` leading left singular vectors of X (eigenvectors of X X^T).

    Parameters
    ----------
    gram_t : array of shape (T, T)
    n_atoms : int

    Returns
    -------
    D : array of shape (T, n_atoms), float64, orthonormal columns, sign fixed so that each
        column's largest-magnitude entry is positive (deterministic).
    """
    T = gram_t.shape[0]
    # only the top n_atoms eigenpairs (ascending order from LAPACK; reversed to descending)
    w, v = scipy.linalg.eigh(gram_t, subset_by_index=[T - n_atoms, T - 1])
    D = v[:, np.argsort(-w, kind="stable")].copy()
    idx = np.abs(D).argmax(axis=0)
    D *= np.sign(D[idx, np.arange(D.shape[1])])[None, :]
    return D


@dataclass
class FitResult:
    """Output of :func:`fit_dictionary`."""

    atoms: np.ndarray  # (T, K) float32, unit-norm columns
    codes: np.ndarray  # (K, N) float32, dense
    objective: float  # mean per AN, final codes of the final atoms
    rss: np.ndarray  # (N,) float64 residual sum of squares per AN
    tss: np.ndarray  # (N,) float64 total sum of squares (about the AN's mean)
    n_epochs: int
    trace: list[dict] = field(default_factory=list)  # one entry per epoch
    n_redrawn: int = 0


def _epoch(batches: Batches, D32: torch.Tensor, D: np.ndarray, codes: torch.Tensor, col_sq: torch.Tensor,
           A_stat: np.ndarray, B_stat: np.ndarray, lam: float, batch_size: int, device: torch.device,
           fista_iter: int, fista_tol: float, n_sweeps: int, first: bool,
           window: int | None = None) -> tuple[float, torch.Tensor, int, int]:
    """One pass over all batches; returns (objective sum, final float32 atoms, fista iters, redrawn).

    ``first``: the codes were never computed (first epoch). FISTA then starts from soft(D^T x,
    lam) -- the exact lasso solution when D^T D = I, as for the SVD atoms -- and, if ``window``
    (in columns) is set, the atoms follow statistics that forget old batches once ``window``
    columns have been seen (their codes came from much worse atoms; Mairal et al. 2010, section 3.4.2). The
    exact sums in A_stat / B_stat are kept as well, so later epochs replace codes as usual.
    """
    total, iters, redrawn_n = 0.0, 0, 0
    K = D.shape[1]
    decay = first and window is not None
    A_use, B_use = (np.zeros_like(A_stat), np.zeros_like(B_stat)) if decay else (A_stat, B_stat)
    G = D32.T @ D32
    L = lipschitz(G)
    off = 0
    for raw in rebatch(batches(), batch_size):
        x = to_device(raw, device)
        b = x.shape[1]
        sl = slice(off, off + b)
        C = D32.T @ x
        a_old = codes[:, sl]
        a_new, it = fista(G, C, lam, soft_threshold(C, lam) if first else a_old, L, fista_iter, fista_tol)
        iters += it
        rss = batch_cost(col_sq[sl], a_new, C, G, lam)
        total += float(0.5 * rss.sum() + lam * a_new.abs().double().sum())
        if first:  # the previous codes are all zero
            dA = (a_new @ a_new.T).double().cpu().numpy()
            dB = (x @ a_new.T).double().cpu().numpy()
        else:
            dA = (a_new @ a_new.T - a_old @ a_old.T).double().cpu().numpy()
            dB = (x @ (a_new - a_old).T).double().cpu().numpy()
        A_stat += dA
        B_stat += dB
        if decay:
            beta = 1.0 - b / max(off + b, window)
            A_use *= beta
            A_use += dA
            B_use *= beta
            B_use += dB
        fb = None
        if np.diag(A_use).min() <= _UNUSED_TOL * max(float(np.trace(A_use)) / K, 1e-300):
            # only when some atom is (almost) unused: replacements from the worst-coded ANs
            n_fb = min(K, b)
            worst = torch.topk(rss, n_fb).indices if n_fb < b else torch.argsort(rss, descending=True, stable=True)
            fb = x[:, worst].double()
            fb = (fb / torch.linalg.vector_norm(fb, dim=0).clamp_min(1e-30)).cpu().numpy()
        D, redrawn = update_dict(D, A_use, B_use, n_sweeps, unused_tol=_UNUSED_TOL, fallback=fb)
        redrawn_n += len(redrawn)
        D32 = torch.from_numpy(D).to(device=device, dtype=torch.float32)
        G = D32.T @ D32
        L = lipschitz(G)
        codes[:, sl] = a_new
        off += b
    return total, D32, iters, redrawn_n


_UNUSED_TOL = 1e-10

FIRST_UPDATES = 64
"""Dictionary updates the first epoch aims for (see ``first_batch_size`` of :func:`fit_dictionary`)."""


def fit_dictionary(batches: Batches, n_atoms: int, lam: float, *, n_iter: int = 30, batch_size: int = 1024,
                   device: str | torch.device = "cpu", tol: float = 1e-4, fista_iter: int = 10,
                   first_iter: int = 5, first_batch_size: int | None = None,
                   fista_tol: float = 1e-3, final_iter: int = 500, final_tol: float = 1e-6, n_sweeps: int = 1,
                   scan_result: ScanResult | None = None, D0: np.ndarray | None = None,
                   callback: Callable[[int, np.ndarray, float], None] | None = None,
                   window: int | None = 8, num_threads: int | None = 1) -> FitResult:
    """Learn D (T, K) and codes A (K, N) from a re-iterable stream of AN chunks.

    Parameters
    ----------
    batches : callable
        Returns a fresh iterable of arrays (or objects with ``.values``) of shape (T, n_i); it is
        called once for the scan, once per epoch and once for the final pass, and must yield the
        same columns in the same order every time.
    n_atoms : int
        K.
    lam : float
        L1 weight (see the module docstring for the objective).
    n_iter : int
        Maximum number of epochs (full passes with dictionary updates).
    batch_size : int
        ANs per code step and dictionary update.
    device : str or torch.device
    tol : float
        Stop when an epoch lowers the objective by less than ``tol`` (relative).
    fista_iter, fista_tol : int, float
        FISTA budget per batch during learning. Codes are warm-started from the previous epoch
        and only have to be good enough to move the atoms (inexact coding, as in Mairal et al.
        2010); the reported codes come from the final pass.
    first_iter : int
        FISTA budget per batch in the first epoch, whose codes start from soft(D^T x, lam) (exact
        for the orthonormal SVD atoms) and are replaced in the second epoch anyway.
    first_batch_size : int, optional
        Batch size of the first epoch. Default: small enough for at least :data:`FIRST_UPDATES`
        dictionary updates in it, within [batch_size / 4, batch_size] -- more, smaller updates
        while the atoms are far from the optimum, where few columns would give few.
    window : int or None, default 8
        In the first epoch the atoms follow sufficient statistics that weight batches by
        recency (linearly growing weights, then exponential forgetting with a memory of about
        ``window`` first-epoch batches), as scikit-learn and Mairal et al. (2010, section 3.4.2)
        do: the codes of early batches came from much worse atoms. None: plain sums. Later
        epochs always use the exact sums over the latest code of every AN.
    final_iter, final_tol : int, float
        FISTA budget of the final pass that codes every AN on the final atoms.
    n_sweeps : int
        Block-coordinate sweeps over the atoms per batch.
    scan_result : ScanResult, optional
        A previous :func:`scan` of the same stream (saves a pass).
    D0 : array of shape (T, K), optional
        Initial atoms (default: SVD of X).
    callback : callable(epoch, atoms (T, K) float64, elapsed_s), optional
        Called after each epoch (for benchmarks); elapsed_s counts from the call of this function
        (scan and initialisation included) and excludes the callback's own run time.
    num_threads : int or None, default 1
        CPU threads for the fit (see :func:`cpu_threads`); None keeps the process's setting.

    Returns
    -------
    FitResult
    """
    with cpu_threads(num_threads):
        return _fit(batches, n_atoms, lam, n_iter=n_iter, batch_size=batch_size, device=torch.device(device),
                    tol=tol, fista_iter=fista_iter, first_iter=first_iter,
                    first_batch_size=first_batch_size, fista_tol=fista_tol,
                    final_iter=final_iter, final_tol=final_tol, n_sweeps=n_sweeps, scan_result=scan_result, D0=D0,
                    callback=callback, window=window)


@_flush_denormals
def _fit(batches: Batches, n_atoms: int, lam: float, *, n_iter, batch_size, device, tol, fista_iter, first_iter,
         first_batch_size, fista_tol, final_iter, final_tol, n_sweeps, scan_result, D0, callback, window) -> FitResult:
    start = time.perf_counter()
    in_callback = 0.0
    sc = scan_result if scan_result is not None else scan(batches, device, need_gram=D0 is None)
    T, N = sc.n_features, sc.n_samples
    if first_batch_size is None:
        first_batch_size = min(batch_size, max(batch_size // 4, math.ceil(N / FIRST_UPDATES), 1))
    window_cols = None if window is None else window * first_batch_size
    D = (init_svd(sc.gram_t, n_atoms) if D0 is None else np.array(D0, dtype=np.float64, copy=True))
    D /= np.maximum(np.linalg.norm(D, axis=0, keepdims=True), 1e-30)
    D32 = torch.from_numpy(D).to(device=device, dtype=torch.float32)
    codes = torch.zeros((n_atoms, N), dtype=torch.float32, device=device)
    col_sq = torch.from_numpy(sc.col_sq).to(device)
    A_stat = np.zeros((n_atoms, n_atoms))
    B_stat = np.zeros((T, n_atoms))
    trace: list[dict] = []
    prev = math.inf
    n_redrawn = 0
    epoch = 0
    for epoch in range(1, n_iter + 1):
        first = epoch == 1
        bs = first_batch_size if first else batch_size
        total, D32, iters, redrawn = _epoch(batches, D32, D, codes, col_sq, A_stat, B_stat, lam, bs, device,
                                            first_iter if first else fista_iter, fista_tol, n_sweeps,
                                            first=first, window=window_cols)
        n_redrawn += redrawn
        obj = total / N
        elapsed = time.perf_counter() - start - in_callback
        trace.append({"epoch": epoch, "objective": obj, "fista_iter_mean": iters / math.ceil(N / bs),
                      "redrawn": redrawn, "elapsed_s": elapsed})
        if callback is not None:
            t_cb = time.perf_counter()
            callback(epoch, D.copy(), elapsed)
            in_callback += time.perf_counter() - t_cb
        if prev - obj <= tol * abs(obj) and redrawn == 0:
            break
        prev = obj
    # Final pass: unit-norm atoms, every AN coded to convergence on them.
    D /= np.maximum(np.linalg.norm(D, axis=0, keepdims=True), 1e-30)
    D32 = torch.from_numpy(D).to(device=device, dtype=torch.float32)
    G = D32.T @ D32
    L = lipschitz(G)
    rss_all = torch.zeros(N, dtype=torch.float64, device=device)
    total, off = 0.0, 0
    for raw in rebatch(batches(), batch_size):
        x = to_device(raw, device)
        sl = slice(off, off + x.shape[1])
        C = D32.T @ x
        a, _ = fista(G, C, lam, codes[:, sl], L, final_iter, final_tol)
        # exact residual (not the Gram identity) for the reported R^2
        rss_all[sl] = ((x - D32 @ a).double() ** 2).sum(dim=0)
        total += float(0.5 * rss_all[sl].sum() + lam * a.abs().double().sum())
        codes[:, sl] = a
        off += x.shape[1]
    return FitResult(D32.cpu().numpy(), codes.cpu().numpy(), total / N, rss_all.cpu().numpy(), sc.col_tss,
                     epoch, trace, n_redrawn)


def encode(batches: Batches, atoms: np.ndarray, lam: float, *, batch_size: int = 1024,
           device: str | torch.device = "cpu", max_iter: int = 500, tol: float = 1e-6,
           num_threads: int | None = 1) -> tuple[np.ndarray, np.ndarray, float]:
    """Lasso codes of every column on fixed atoms (also the objective evaluator of the benchmark).

    Parameters
    ----------
    batches : callable returning an iterable of arrays of shape (T, n_i)
    atoms : array of shape (T, K)
    lam : float
    num_threads : int or None, default 1
        CPU threads (see :func:`cpu_threads`).

    Returns
    -------
    codes : array of shape (K, N) float32
    rss : array of shape (N,) float64
    objective : float, mean per column of 0.5 ||x - D a||^2 + lam ||a||_1
    """
    with cpu_threads(num_threads):
        return _encode(batches, atoms, lam, batch_size, torch.device(device), max_iter, tol)


@_flush_denormals
def _encode(batches, atoms, lam, batch_size, device, max_iter, tol):
    D32 = torch.as_tensor(np.asarray(atoms), dtype=torch.float32).to(device)
    G = D32.T @ D32
    L = lipschitz(G)
    out, rss, total, n = [], [], 0.0, 0
    for raw in rebatch(batches(), batch_size):
        x = to_device(raw, device)
        C = D32.T @ x
        a, _ = fista(G, C, lam, torch.zeros_like(C), L, max_iter, tol)
        r = ((x - D32 @ a).double() ** 2).sum(dim=0)
        total += float(0.5 * r.sum() + lam * a.abs().double().sum())
        out.append(a.cpu().numpy())
        rss.append(r.cpu().numpy())
        n += x.shape[1]
    return np.concatenate(out, axis=1), np.concatenate(rss), total / n
