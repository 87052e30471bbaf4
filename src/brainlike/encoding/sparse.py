"""Sparse fit: Lasso of every target on the fixed atoms (sparse coding with a fixed dictionary).

FISTA (Beck & Teboulle 2009) with all targets of a batch as the columns of one code matrix:
each iteration is two matrix products, so thousands of vertices cost about as much as one.
Objective per target (scikit-learn's ``Lasso``, no intercept: centre or high-pass first)::

    (1 / (2 n_trs)) ||y - D a||^2 + lambda_f ||a||_1
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ._backend import check_device, to_numpy, to_tensor, torch_dtype


def sparse_fit(
    D: np.ndarray,
    Y: np.ndarray,
    lambda_f: float,
    max_iter: int = 5000,
    tol: float = 1e-8,
    batch_size: int = 8192,
    device: str = "cpu",
    dtype: str = "float64",
) -> dict[str, np.ndarray]:
    """Lasso codes of every target on a fixed dictionary.

    Parameters
    ----------
    D : array of shape (n_trs, n_atoms)
        Fixed regressors (temporal atoms).
    Y : array of shape (n_trs, n_targets)
        Brain data, already centred / high-passed.
    lambda_f : float
        L1 weight (scikit-learn's ``alpha``), > 0.
    max_iter : int
    tol : float
        Stop when the largest code change in an iteration is below ``tol`` times the largest code.
    batch_size : int
    device, dtype : str

    Returns
    -------
    dict with ``codes`` (n_atoms, n_targets), ``r2`` (n_targets,) in-sample R^2 of the sparse
    fit, ``n_iter`` (int, the most iterations a batch needed).
    """
    if not lambda_f > 0:
        raise ConfigError(f"lambda_f must be > 0, got {lambda_f}")
    D = np.asarray(D, dtype=np.float64)
    Y = np.asarray(Y)
    if D.ndim != 2 or Y.ndim != 2 or D.shape[0] != Y.shape[0]:
        raise DataError(None, f"D (n_trs, n_atoms) and Y (n_trs, n_targets) must share n_trs; got "
                        f"{D.shape}, {Y.shape}", "data")
    dev, dt = check_device(device), torch_dtype(dtype)
    n, K = D.shape
    Dt = to_tensor(D, dev, dt)
    G = Dt.T @ Dt / n
    L = float(torch.linalg.eigvalsh(G).max())
    if L <= 0:
        raise DataError(None, "the dictionary is all zeros", "atoms")
    step, thr = 1.0 / L, lambda_f / L
    codes = np.empty((K, Y.shape[1]))
    r2 = np.empty(Y.shape[1])
    most = 0
    for s in range(0, Y.shape[1], batch_size):
        e = min(Y.shape[1], s + batch_size)
        Yb = to_tensor(Y[:, s:e], dev, dt)
        DtY = Dt.T @ Yb / n
        A = torch.zeros(K, e - s, dtype=dt, device=dev)
        Z, t = A.clone(), 1.0
        for it in range(1, max_iter + 1):
            grad = G @ Z - DtY
            W = Z - step * grad
            A_new = torch.sign(W) * torch.clamp(W.abs() - thr, min=0)
            t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
            Z = A_new + ((t - 1) / t_new) * (A_new - A)
            delta = float((A_new - A).abs().max())
            scale = float(A_new.abs().max())
            A, t = A_new, t_new
            if delta <= tol * max(scale, 1e-12):
                break
        most = max(most, it)
        codes[:, s:e] = to_numpy(A)
        res = Yb - Dt @ A
        sst = ((Yb - Yb.mean(0)) ** 2).sum(0)
        r2[s:e] = to_numpy(1 - (res ** 2).sum(0) / torch.where(sst > 0, sst, torch.ones_like(sst)))
    return {"codes": codes, "r2": r2, "n_iter": most}
