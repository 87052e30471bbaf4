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
FISTA with per-column adaptive restart, warm-started from that batch's previous codes; the
sufficient statistics A_stat = sum_n a_n a_n^T (K x K) and B_stat = sum_n x_n a_n^T (T x K)
replace the batch's previous contribution by the new one (so they always describe the latest
code of every AN seen); then one block-coordinate sweep updates D. Every step decreases the full
objective (codes: lasso on a fixed D; D: exact minimiser per column of the quadratic surrogate
built from all current codes), so no forgetting factor is needed and the visiting order only
changes the path. An atom that is (almost) unused is re-drawn from the worst-reconstructed AN
of the current batch.

Determinism: a fixed batch layout, no random draws after the SVD initialisation and contiguous
float32 batches make the result bit-identical run to run on the same device, torch build and
thread count (CPU GEMMs and reductions split work by size and thread count only).

Memory: besides the caller's data, the fit holds the dense codes (K x N float32, 4 K N bytes),
one batch (T x batch_size float32) and O(T^2 + T K) statistics -- never a second copy of X.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

Batches = Callable[[], Iterable]
"""A callable returning a fresh iterable of column chunks, each of shape (T, n_i)."""


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


class ColumnError(ValueError):
    """A bad AN column; ``column`` is its index in the stream (0-based)."""

    def __init__(self, column: int, problem: str):
        self.column = int(column)
        super().__init__(f"AN column {column}: {problem}")


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cpu' / 'cuda' / 'cuda:N' as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA device (torch {torch.__version__})")
    return torch.device(device)


def rebatch(chunks: Iterable, batch_size: int) -> Iterator[np.ndarray | torch.Tensor]:
    """Regroup a stream of column chunks (T, n_i) into batches of exactly ``batch_size`` columns.

    The last batch holds the remainder. A chunk that already covers a whole batch is sliced
    without copying; batches spanning chunks are concatenated (one batch of memory).
    """
    pending: list = []
    n_pending = 0
    for chunk in chunks:
        values = getattr(chunk, "values", chunk)
        start, n = 0, values.shape[1]
        while start < n:
            take = min(batch_size - n_pending, n - start)
            pending.append(values[:, start : start + take])
            n_pending += take
            start += take
            if n_pending == batch_size:
                yield pending[0] if len(pending) == 1 else _concat(pending)
                pending, n_pending = [], 0
    if n_pending:
        yield pending[0] if len(pending) == 1 else _concat(pending)


def _concat(parts: list):
    if isinstance(parts[0], torch.Tensor):
        return torch.cat([torch.as_tensor(p) for p in parts], dim=1)
    return np.concatenate(parts, axis=1)


def to_device(batch, device: torch.device) -> torch.Tensor:
    """One batch (T, b) as a contiguous float32 tensor on ``device`` (fixed layout -> fixed GEMMs)."""
    t = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.asarray(batch))
    return t.to(device=device, dtype=torch.float32).contiguous()


@dataclass
class ScanResult:
    """First pass over the data: sizes, per-column sums and the T x T second moment."""

    n_features: int
    n_samples: int
    gram_t: np.ndarray  # (T, T) float64: X X^T
    col_sq: np.ndarray  # (N,) float64: ||x_n||^2
    col_tss: np.ndarray  # (N,) float64: ||x_n - mean(x_n)||^2


def scan(batches: Batches, device: torch.device, need_gram: bool = True) -> ScanResult:
    """Validate every column (finite, not constant) and accumulate X X^T.

    Raises
    ------
    ColumnError
        For the first column with a non-finite value or zero variance over time.
    ValueError
        If the stream is empty or the chunks disagree on T.
    """
    T = None
    n = 0
    gram = None
    sq, tss = [], []
    for chunk in batches():
        values = getattr(chunk, "values", chunk)
        x = to_device(values, device)
        if x.ndim != 2:
            raise ValueError(f"each chunk must be a 2-D array (n_trs, n_ans), got shape {tuple(x.shape)}")
        if T is None:
            T = x.shape[0]
            gram = torch.zeros((T, T), dtype=torch.float64, device=device)
        elif x.shape[0] != T:
            raise ValueError(f"chunks disagree on the number of time points: {x.shape[0]} vs {T}")
        finite = torch.isfinite(x).all(dim=0)
        if not bool(finite.all()):
            raise ColumnError(n + int(torch.nonzero(~finite)[0]), "holds NaN or infinite values")
        spread = x.amax(dim=0) - x.amin(dim=0)
        if not bool((spread > 0).all()):
            raise ColumnError(n + int(torch.nonzero(spread <= 0)[0]), "is constant over time (zero variance)")
        x64 = x.double()
        if need_gram:
            gram += x64 @ x64.T
        sq.append((x64 * x64).sum(dim=0).cpu().numpy())
        tss.append(((x64 - x64.mean(dim=0, keepdim=True)) ** 2).sum(dim=0).cpu().numpy())
        n += x.shape[1]
    if T is None or n == 0:
        raise ValueError("no AN columns in the input (empty stream)")
    return ScanResult(T, n, gram.cpu().numpy() if need_gram else np.zeros((0, 0)), np.concatenate(sq), np.concatenate(tss))


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
    w, v = np.linalg.eigh(gram_t)
    D = v[:, np.argsort(-w, kind="stable")[:n_atoms]].copy()
    idx = np.abs(D).argmax(axis=0)
    D *= np.sign(D[idx, np.arange(D.shape[1])])[None, :]
    return D


def lipschitz(G: torch.Tensor) -> float:
    """Largest eigenvalue of the (K, K) Gram matrix (the gradient's Lipschitz constant)."""
    return float(torch.linalg.eigvalsh(G.double()).max().clamp_min(1e-12))


def soft_threshold(z: torch.Tensor, thr: float) -> torch.Tensor:
    return torch.sign(z) * torch.clamp(z.abs() - thr, min=0.0)


def fista(G: torch.Tensor, C: torch.Tensor, lam: float, A0: torch.Tensor, L: float,
          max_iter: int = 50, tol: float = 1e-4, check_every: int = 5) -> tuple[torch.Tensor, int]:
    """Lasso codes for a fixed dictionary by FISTA with per-column gradient restart.

    Solves, column by column, ``min_a 0.5 a^T G a - a^T c + lam ||a||_1`` (= 0.5||x - D a||^2 +
    lam ||a||_1 up to a constant, with G = D^T D and C = D^T X).

    Parameters
    ----------
    G : tensor of shape (K, K)
    C : tensor of shape (K, b)
    lam : float
    A0 : tensor of shape (K, b), warm start
    L : float, largest eigenvalue of G
    max_iter : int
    tol : float
        Stop when ||a_i - a_{i-1}||_F <= tol * ||a_i||_F (checked every ``check_every`` steps).

    Returns
    -------
    A : tensor of shape (K, b)
    n_iter : int
    """
    step, thr = 1.0 / L, lam / L
    a_prev = A0
    y = A0
    t = torch.ones(A0.shape[1], dtype=A0.dtype, device=A0.device)
    it = 0
    for it in range(1, max_iter + 1):
        a = soft_threshold(y - step * (G @ y - C), thr)
        diff = a - a_prev
        # O'Donoghue & Candes 2015 gradient restart: drop momentum where it points uphill.
        restart = ((y - a) * diff).sum(dim=0) > 0
        t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
        mom = torch.where(restart, torch.zeros_like(t), (t - 1.0) / t_new)
        t = torch.where(restart, torch.ones_like(t), t_new)
        y = a + mom[None, :] * diff
        a_prev = a
        if it % check_every == 0 or it == max_iter:
            if float(torch.linalg.vector_norm(diff)) <= tol * max(float(torch.linalg.vector_norm(a)), 1e-30):
                break
    return a_prev, it


def batch_cost(xx: torch.Tensor, A: torch.Tensor, C: torch.Tensor, G: torch.Tensor, lam: float) -> torch.Tensor:
    """Per-column ``0.5 ||x - D a||^2`` (float64) and L1 from Gram quantities.

    Parameters
    ----------
    xx : tensor of shape (b,), ||x_n||^2 (float64)
    A, C : tensors of shape (K, b)
    G : tensor of shape (K, K)

    Returns
    -------
    rss : tensor of shape (b,), float64, ||x_n - D a_n||^2 (clamped at 0)
    """
    A64, C64 = A.double(), C.double()
    rss = xx - 2.0 * (A64 * C64).sum(dim=0) + (A64 * (G.double() @ A64)).sum(dim=0)
    return rss.clamp_min(0.0)


def update_dict(D: np.ndarray, A_stat: np.ndarray, B_stat: np.ndarray, n_sweeps: int = 1,
                unused_tol: float = 1e-10, fallback: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
    """Block-coordinate update of the atoms from the sufficient statistics (Mairal 2010, Alg. 2).

    Parameters
    ----------
    D : array of shape (T, K), float64, updated in place
    A_stat : array of shape (K, K), sum of a a^T
    B_stat : array of shape (T, K), sum of x a^T
    n_sweeps : int
    unused_tol : float
        An atom with A_stat[k, k] <= unused_tol * trace(A_stat) / K is re-drawn.
    fallback : array of shape (T, r), optional
        Unit-norm replacement atoms (worst-reconstructed columns, best first).

    Returns
    -------
    D : the updated array
    redrawn : list of int, atoms re-drawn from ``fallback``
    """
    K = D.shape[1]
    floor = unused_tol * max(float(np.trace(A_stat)) / K, 1e-300)
    redrawn: list[int] = []
    for _ in range(n_sweeps):
        for k in range(K):
            akk = A_stat[k, k]
            if akk > floor:
                u = D[:, k] + (B_stat[:, k] - D @ A_stat[:, k]) / akk
                D[:, k] = u / max(float(np.linalg.norm(u)), 1.0)
            elif fallback is not None and len(redrawn) < fallback.shape[1] and k not in redrawn:
                D[:, k] = fallback[:, len(redrawn)]
                redrawn.append(k)
    return D, redrawn


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
           fista_iter: int, fista_tol: float, n_sweeps: int, update: bool) -> tuple[float, torch.Tensor, int, int]:
    """One pass over all batches; returns (objective sum, final float32 atoms, fista iters, redrawn)."""
    total, iters, redrawn_n = 0.0, 0, 0
    G = D32.T @ D32
    L = lipschitz(G)
    off = 0
    for raw in rebatch(batches(), batch_size):
        x = to_device(raw, device)
        b = x.shape[1]
        sl = slice(off, off + b)
        C = D32.T @ x
        a_old = codes[:, sl]
        a_new, it = fista(G, C, lam, a_old, L, fista_iter, fista_tol)
        iters += it
        rss = batch_cost(col_sq[sl], a_new, C, G, lam)
        total += float(0.5 * rss.sum() + lam * a_new.abs().double().sum())
        if update:
            delta = a_new - a_old
            dA = (a_new @ a_new.T - a_old @ a_old.T).double().cpu().numpy()
            dB = (x @ delta.T).double().cpu().numpy()
            A_stat += dA
            B_stat += dB
            n_fb = min(D.shape[1], b)
            worst = torch.topk(rss, n_fb).indices if n_fb < b else torch.argsort(rss, descending=True, stable=True)
            fb = x[:, worst].double()
            fb = (fb / torch.linalg.vector_norm(fb, dim=0).clamp_min(1e-30)).cpu().numpy()
            D, redrawn = update_dict(D, A_stat, B_stat, n_sweeps, fallback=fb)
            redrawn_n += len(redrawn)
            D32 = torch.from_numpy(D).to(device=device, dtype=torch.float32)
            G = D32.T @ D32
            L = lipschitz(G)
        codes[:, sl] = a_new
        off += b
    return total, D32, iters, redrawn_n


@_flush_denormals
def fit_dictionary(batches: Batches, n_atoms: int, lam: float, *, n_iter: int = 30, batch_size: int = 1024,
                   device: str | torch.device = "cpu", tol: float = 1e-4, fista_iter: int = 30,
                   fista_tol: float = 1e-3, final_iter: int = 500, final_tol: float = 1e-6, n_sweeps: int = 1,
                   scan_result: ScanResult | None = None, D0: np.ndarray | None = None,
                   callback: Callable[[int, np.ndarray, float], None] | None = None) -> FitResult:
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
        FISTA budget per batch during learning (codes are warm-started, so a few steps suffice).
    final_iter, final_tol : int, float
        FISTA budget of the final pass that codes every AN on the final atoms.
    n_sweeps : int
        Block-coordinate sweeps over the atoms per batch.
    scan_result : ScanResult, optional
        A previous :func:`scan` of the same stream (saves a pass).
    D0 : array of shape (T, K), optional
        Initial atoms (default: SVD of X).
    callback : callable(epoch, atoms (T, K) float64, elapsed_s), optional
        Called after each epoch (for benchmarks); its own run time is excluded from elapsed_s.

    Returns
    -------
    FitResult
    """
    device = torch.device(device)
    sc = scan_result if scan_result is not None else scan(batches, device, need_gram=D0 is None)
    T, N = sc.n_features, sc.n_samples
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
    spent = 0.0
    epoch = 0
    for epoch in range(1, n_iter + 1):
        t0 = time.perf_counter()
        total, D32, iters, redrawn = _epoch(batches, D32, D, codes, col_sq, A_stat, B_stat, lam, batch_size, device,
                                            fista_iter, fista_tol, n_sweeps, update=True)
        spent += time.perf_counter() - t0
        n_redrawn += redrawn
        obj = total / N
        trace.append({"epoch": epoch, "objective": obj, "fista_iter_mean": iters / math.ceil(N / batch_size),
                      "redrawn": redrawn, "elapsed_s": spent})
        if callback is not None:
            callback(epoch, D.copy(), spent)
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


@_flush_denormals
def encode(batches: Batches, atoms: np.ndarray, lam: float, *, batch_size: int = 1024,
           device: str | torch.device = "cpu", max_iter: int = 500, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray, float]:
    """Lasso codes of every column on fixed atoms (also the objective evaluator of the benchmark).

    Parameters
    ----------
    batches : callable returning an iterable of arrays of shape (T, n_i)
    atoms : array of shape (T, K)
    lam : float

    Returns
    -------
    codes : array of shape (K, N) float32
    rss : array of shape (N,) float64
    objective : float, mean per column of 0.5 ||x - D a||^2 + lam ||a||_1
    """
    device = torch.device(device)
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
