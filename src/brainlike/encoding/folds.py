"""Contiguous-block cross-validation folds: time order kept, a gap of dropped TRs at block edges.

Cross-validation never shuffles TRs. A run is cut into ``n_folds`` contiguous test blocks;
training rows closer than ``gap`` TRs to the test block are dropped (the BOLD response and slow
noise leak across block edges). Inner folds cut an outer split's training rows the same way.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError


def block_folds(n_samples: int, n_folds: int, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous test blocks with a gap of excluded training rows on each side.

    Parameters
    ----------
    n_samples : int
    n_folds : int
        Number of test blocks (``>= 2``), of near-equal length, in time order.
    gap : int
        Training rows within ``gap`` TRs of a test block are dropped.

    Returns
    -------
    list of (train, test) index arrays (int), one per fold.
    """
    return _blocks(np.arange(int(n_samples)), n_folds, gap)


def inner_folds(train: np.ndarray, n_folds: int, gap: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous-block folds within the (sorted) training rows ``train`` of an outer split.

    Blocks are contiguous in the order of ``train``; the gap is measured in TRs of the run.
    """
    return _blocks(np.sort(np.asarray(train)), n_folds, gap)


def _blocks(rows: np.ndarray, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n = rows.size
    if n_folds < 2:
        raise ConfigError(f"n_folds must be >= 2, got {n_folds}")
    if gap < 0:
        raise ConfigError(f"gap must be >= 0 TRs, got {gap}")
    edges = np.round(np.linspace(0, n, n_folds + 1)).astype(int)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        test = rows[a:b]
        train = rows[(rows < test[0] - gap) | (rows > test[-1] + gap)]
        if test.size < 3 or train.size < 3:
            raise DataError(None, f"{n} rows cannot make {n_folds} folds with a gap of {gap} TRs", "n_folds")
        out.append((train, test))
    return out
