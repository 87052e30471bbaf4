"""The AN stream of the dictionary solver: fixed-size batches on a device, and the first pass.

Callers hand the solver a re-iterable stream of column chunks (:data:`Batches`); every pass
regroups it into fixed batches (:func:`rebatch`) so that results do not depend on the caller's
chunking. :func:`scan` is the first pass: it validates every column and accumulates what the
initialisation and the R^2 need.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

Batches = Callable[[], Iterable]
"""A callable returning a fresh iterable of column chunks, each of shape (T, n_i)."""


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


SCAN_BATCH = 4096
"""Columns per scan step: fixed, so the accumulated X X^T does not depend on how the caller chunks X."""

GRAM_EXACT_BLOCKS = 4
"""Scan blocks whose every column enters X X^T; later blocks contribute every
:data:`GRAM_STRIDE`-th column, weighted by the stride (X X^T only seeds the SVD initialisation,
and for 200,000 ANs the exact product took 3/4 of the scan)."""

GRAM_STRIDE = 8


def scan(batches: Batches, device: torch.device, need_gram: bool = True) -> ScanResult:
    """Validate every column (finite, not constant) and accumulate X X^T.

    The stream is regrouped into blocks of :data:`SCAN_BATCH` columns, so the result is the same
    bit for bit however X is chunked; X X^T is a float32 GEMM per block accumulated in float64,
    exact over the first :data:`GRAM_EXACT_BLOCKS` blocks and estimated from every
    :data:`GRAM_STRIDE`-th column after them (it only seeds the SVD initialisation); the
    per-column sums are float64 and exact.

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

    def checked():
        nonlocal T
        for chunk in batches():
            values = getattr(chunk, "values", chunk)
            if not hasattr(values, "ndim"):
                values = np.asarray(values)
            if values.ndim != 2:
                raise ValueError(f"each chunk must be a 2-D array (n_trs, n_ans), got shape {tuple(values.shape)}")
            if T is None:
                T = values.shape[0]
            elif values.shape[0] != T:
                raise ValueError(f"chunks disagree on the number of time points: {values.shape[0]} vs {T}")
            yield values

    for raw in rebatch(checked(), SCAN_BATCH):
        x = to_device(raw, device)
        if gram is None:
            gram = torch.zeros((T, T), dtype=torch.float64, device=device)
        x64 = x.double()
        ones = torch.ones((1, T), dtype=torch.float64, device=device)
        # column sums as GEMVs (a strided reduction over dim 0 was 2x slower)
        col_sq = (ones @ (x64 * x64))[0]
        # a float32 square cannot overflow float64, so a non-finite sum means a non-finite entry
        finite = torch.isfinite(col_sq)
        if not bool(finite.all()):
            raise ColumnError(n + int(torch.nonzero(~finite)[0]), "holds NaN or infinite values")
        spread = x.amax(dim=0) - x.amin(dim=0)
        if not bool((spread > 0).all()):
            raise ColumnError(n + int(torch.nonzero(spread <= 0)[0]), "is constant over time (zero variance)")
        if need_gram:
            if n < GRAM_EXACT_BLOCKS * SCAN_BATCH:
                gram += (x @ x.T).double()
            else:
                xs = x[:, ::GRAM_STRIDE].contiguous()
                gram += (xs @ xs.T).double().mul_(GRAM_STRIDE)
        sq.append(col_sq.cpu().numpy())
        # sum of squares about the mean = ||x||^2 - (sum x)^2 / T, exact to ~1e-16 (1 + mean^2 / var) T
        # relative in float64
        col_sum = (ones @ x64)[0]
        tss.append((col_sq - col_sum * col_sum / T).clamp_min_(0.0).cpu().numpy())
        n += x.shape[1]
    if T is None or n == 0:
        raise ValueError("no AN columns in the input (empty stream)")
    return ScanResult(T, n, gram.cpu().numpy() if need_gram else np.zeros((0, 0)), np.concatenate(sq), np.concatenate(tss))
