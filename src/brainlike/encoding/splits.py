"""Nuisance handling of one cross-validation split, applied identically to the design and the data.

``highpass="fold"`` regresses the nuisance basis out of the training rows using the training rows
only, and out of the test rows using the test rows only; otherwise each split is centred on its
training means (the modes are described in :mod:`brainlike.encoding.ridge`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ._backend import to_numpy, to_tensor

Highpass = Literal["fold", "run", "none"]


def _residualise(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    # least squares on B via its SVD (B may be rank deficient on a short block)
    U, s, _ = torch.linalg.svd(B, full_matrices=False)
    U = U[:, s > s.max() * max(B.shape) * torch.finfo(B.dtype).eps]
    return A - U @ (U.T @ A)


@dataclass
class _Split:
    train: np.ndarray
    test: np.ndarray


class _Prep:
    """Nuisance handling of one split, applied identically to X and to Y."""

    def __init__(self, mode: Highpass, basis: torch.Tensor, split: _Split):
        self.mode, self.basis, self.split = mode, basis, split
        # index tensors once: indexing a tensor with a numpy array converts it on every call
        self._idx = (torch.as_tensor(split.train, dtype=torch.long), torch.as_tensor(split.test, dtype=torch.long))

    def __call__(self, A: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tr, te = (i.to(A.device) for i in self._idx)
        if self.mode == "fold":
            return _residualise(A[tr], self.basis[tr]), _residualise(A[te], self.basis[te])
        mu = A[tr].mean(0, keepdim=True)
        return A[tr] - mu, A[te] - mu

    def rolled(self, X: torch.Tensor, shifts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """This split's (train, test) of ``np.roll(X, k, axis=0)`` for every k: (B, n, P) each.

        Rolled rows are gathered by index (row t of the roll by k is row (t - k) mod T), so no
        rolled copy of the whole design is made.
        """
        T = X.shape[0]
        k = torch.as_tensor(np.asarray(shifts, dtype=np.int64), device=X.device)[:, None]
        if self.mode == "fold":
            pairs = [self(X[(torch.arange(T, device=X.device) - kk) % T]) for kk in k]
            return torch.stack([a for a, _ in pairs]), torch.stack([b for _, b in pairs])
        tr, te = (i.to(X.device) for i in self._idx)
        xtr = X[(tr[None, :] - k) % T]
        mu = xtr.mean(1, keepdim=True)
        return xtr - mu, X[(te[None, :] - k) % T] - mu


def fold_arrays(
    X: np.ndarray,
    Y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    basis: np.ndarray | None,
    highpass: Highpass = "fold",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (X_train, Y_train, X_test, Y_test) a split is fitted and scored on.

    Parameters
    ----------
    X : array of shape (n_trs, n_features)
    Y : array of shape (n_trs, n_targets)
    train, test : int arrays
    basis : array of shape (n_trs, n_basis) or None
        Nuisance basis (:func:`~brainlike.encoding.design.drift_basis`, confounds...);
        with ``highpass="run"``, X and Y must already be filtered.
    highpass : {"fold", "run", "none"}

    Returns
    -------
    tuple of float64 arrays
    """
    dev, dt = torch.device("cpu"), torch.float64
    B = to_tensor(basis if basis is not None else np.ones((X.shape[0], 1)), dev, dt)
    prep = _Prep(highpass, B, _Split(np.asarray(train), np.asarray(test)))
    xtr, xte = prep(to_tensor(X, dev, dt))
    ytr, yte = prep(to_tensor(Y, dev, dt))
    return to_numpy(xtr), to_numpy(ytr), to_numpy(xte), to_numpy(yte)
