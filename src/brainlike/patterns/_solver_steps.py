"""The two alternating steps of online dictionary learning, on one batch at a time.

Sparse coding for fixed atoms (:func:`fista`, with :func:`lipschitz`, :func:`soft_threshold` and
the Gram-form cost :func:`batch_cost`) and the block-coordinate atom update from the sufficient
statistics (:func:`update_dict`). The loops that drive them are in
:mod:`~brainlike.patterns._solvers`.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def lipschitz(G: torch.Tensor) -> float:
    """Largest eigenvalue of the (K, K) Gram matrix (the gradient's Lipschitz constant)."""
    return float(torch.linalg.eigvalsh(G.double()).max().clamp_min(1e-12))


def soft_threshold(z: torch.Tensor, thr: float) -> torch.Tensor:
    """sign(z) * max(|z| - thr, 0), computed as z - clip(z, -thr, thr) (2 kernels, same values)."""
    return z - z.clamp(-thr, thr)


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
    # gradient step y - step (G y - C) as one GEMM: (I - step G) y + step C
    M = torch.eye(G.shape[0], dtype=G.dtype, device=G.device).sub_(G, alpha=step)
    Cs = C * step
    a_prev = A0
    y = A0
    t = torch.ones(A0.shape[1], dtype=A0.dtype, device=A0.device)
    it = 0
    for it in range(1, max_iter + 1):
        z = torch.addmm(Cs, M, y)
        a = z.sub_(z.clamp(-thr, thr))
        diff = a - a_prev
        # O'Donoghue & Candes 2015 gradient restart: drop momentum where it points uphill.
        restart = (y - a).mul_(diff).sum(dim=0) > 0
        t_new = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
        mom = ((t - 1.0) / t_new).masked_fill_(restart, 0.0)
        t = t_new.masked_fill_(restart, 1.0)
        y = torch.addcmul(a, diff, mom[None, :])
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
    # atoms as contiguous rows (K, T): each step reads and writes one row; A_stat is symmetric
    Dt = np.ascontiguousarray(D.T)
    Bt = np.ascontiguousarray(B_stat.T)
    for _ in range(n_sweeps):
        for k in range(K):
            akk = A_stat[k, k]
            if akk > floor:
                u = Dt[k] + (Bt[k] - A_stat[k] @ Dt) / akk
                Dt[k] = u / max(math.sqrt(float(u @ u)), 1.0)
            elif fallback is not None and len(redrawn) < fallback.shape[1] and k not in redrawn:
                Dt[k] = fallback[:, len(redrawn)]
                redrawn.append(k)
    D[...] = Dt.T
    return D, redrawn
