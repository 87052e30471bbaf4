"""Scikit-learn style estimator over the dictionary-learning core (see ``_solvers``)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import _solvers as S

#: Default L1 weight for unit-norm AN columns (how the ``patterns`` stage feeds ANs). With
#: unit-norm atoms and columns, an atom enters an AN's code only if its correlation with the
#: AN's residual exceeds lambda; 0.1 gave reconstruction R^2 = 0.58 and 15 non-zeros per AN on
#: MPNet-base (12 x 768 ffn_out ANs, embedded story, K = 64), in the 0.5-0.6 range the paper
#: reports -- the papers do not give their value.
DEFAULT_LAMBDA = 0.1


def _as_batches(X) -> tuple[S.Batches, np.ndarray | None]:
    """An array (T, N) or a callable returning chunks -> (re-iterable batches, array or None)."""
    if callable(X):
        return X, None
    if isinstance(X, Iterable) and not isinstance(X, np.ndarray) and not hasattr(X, "shape"):
        raise TypeError("pass a callable returning a fresh iterable of chunks (a one-shot iterator cannot be "
                        "read once per epoch), e.g. lambda: activation_set.iter_chunks()")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-D array of shape (n_trs, n_ans), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return (lambda: [arr]), arr


class SparseDictionary(BaseEstimator):
    """Sparse dictionary of temporal patterns over artificial neurons (ANs as samples).

    Learns X ~ D A with X of shape (n_trs, n_ans), unit-norm atoms D of shape (n_trs, n_atoms)
    and sparse codes A of shape (n_atoms, n_ans), minimising the mean per AN of
    ``0.5 ||x_n - D a_n||^2 + lambda ||a_n||_1`` -- the per-sample cost of scikit-learn's
    ``MiniBatchDictionaryLearning(alpha=lambda)`` applied to ``X.T``.

    Parameters
    ----------
    n_atoms : int, default=64
        K; must not exceed n_trs or n_ans.
    lambda_an : float, default=0.1
        L1 weight (> 0), in the units of X; see :data:`DEFAULT_LAMBDA` for unit-norm ANs.
    target_sparsity : float, optional
        Mean number of non-zero codes per AN to reach; if set, lambda is chosen by a log-scale
        bisection of short fits on a subsample of ``search_subsample`` ANs and ``lambda_an`` is
        only the search's first guess. The chosen value is ``lambda_``.
    batch_size : int, default=1024
        ANs per code step and dictionary update.
    n_iter : int, default=30
        Maximum number of epochs.
    tol : float, default=1e-4
        Stop when an epoch lowers the objective by less than this fraction.
    seed : int, default=0
        Seed of the only random draw (the lambda-search subsample); the fit itself starts from
        the SVD of X and is deterministic.
    solver : {'torch', 'sklearn'}, default='torch'
        'sklearn' runs ``MiniBatchDictionaryLearning`` (coordinate descent codes, same K, lambda,
        batch size, epochs and seed; needs X in memory) and codes the ANs with
        ``sparse_encode(algorithm='lasso_cd')``, for comparison.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
    search_subsample : int, default=8192
    n_threads : int or None, default=1
        CPU threads of the torch solver (torch and numpy's BLAS, restored afterwards). One is
        fastest for these small GEMMs on a shared machine and makes the bit-for-bit result
        independent of the machine's core count; None keeps the process's setting.

    Attributes
    ----------
    atoms_ : array of shape (n_trs, n_atoms), float32, unit-norm columns
    codes_ : scipy.sparse.csr_matrix of shape (n_atoms, n_ans), float32
    lambda_ : float, the L1 weight used
    objective_ : float, mean per AN of the objective at the final codes
    r2_ : float, 1 - sum of squared residuals / sum of squares about each AN's mean
    rss_, tss_ : arrays of shape (n_ans,), per-AN residual and total sums of squares
    sparsity_ : float, mean number of non-zero codes per AN
    n_iter_ : int, epochs run
    trace_ : list of dict, per-epoch objective and timing
    n_unused_atoms_ : int, atoms with no non-zero code
    device_ : str
    fit_time_s_ : float
    """

    def __init__(self, n_atoms: int = 64, lambda_an: float = DEFAULT_LAMBDA, target_sparsity: float | None = None,
                 batch_size: int = 1024, n_iter: int = 30, tol: float = 1e-4, seed: int = 0,
                 solver: str = "torch", device: str = "auto", search_subsample: int = 8192, n_threads: int | None = 1):
        self.n_atoms = n_atoms
        self.lambda_an = lambda_an
        self.target_sparsity = target_sparsity
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.tol = tol
        self.seed = seed
        self.solver = solver
        self.device = device
        self.search_subsample = search_subsample
        self.n_threads = n_threads

    # ------------------------------------------------------------------ validation
    def _check_params(self) -> None:
        if not (isinstance(self.n_atoms, (int, np.integer)) and self.n_atoms >= 1):
            raise ValueError(f"n_atoms must be a positive integer, got {self.n_atoms!r}")
        if not (np.isfinite(self.lambda_an) and self.lambda_an > 0):
            raise ValueError(f"lambda_an must be > 0 (the L1 weight of the codes), got {self.lambda_an!r}")
        if self.target_sparsity is not None and not (0 < self.target_sparsity < self.n_atoms):
            raise ValueError(f"target_sparsity must be in (0, n_atoms={self.n_atoms}), got {self.target_sparsity!r}")
        if not (isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.n_iter, (int, np.integer)) and self.n_iter >= 1):
            raise ValueError(f"n_iter must be a positive integer, got {self.n_iter!r}")
        if self.solver not in ("torch", "sklearn"):
            raise ValueError(f"solver must be 'torch' or 'sklearn', got {self.solver!r}")
        if self.n_threads is not None and not (isinstance(self.n_threads, (int, np.integer)) and self.n_threads >= 1):
            raise ValueError(f"n_threads must be a positive integer or None, got {self.n_threads!r}")
        if not (self.device in ("auto", "cpu") or str(self.device).startswith("cuda")):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, callback: Callable | None = None) -> SparseDictionary:
        """Learn atoms and codes.

        Parameters
        ----------
        X : array of shape (n_trs, n_ans), or callable
            The AN matrix, or a callable returning a fresh iterable of chunks of shape
            (n_trs, n_i) (arrays or objects with ``.values``, e.g. ``AnChunk``), read once for
            the scan, once per epoch and once for the final coding: the fit then holds one batch
            of X at a time plus the dense codes (4 * n_atoms * n_ans bytes).
        y : ignored
        callback : callable(epoch, atoms, elapsed_s), optional
            Called after each epoch (torch solver only).

        Raises
        ------
        ValueError
            On a bad hyper-parameter, K > n_trs or K > n_ans, or a constant / non-finite AN column
            (the message names its index).
        """
        self._check_params()
        t0 = time.perf_counter()
        dev = S.resolve_device(self.device)
        batches, arr = _as_batches(X)
        with S.cpu_threads(self.n_threads):
            sc = S.scan(batches, dev, need_gram=self.solver == "torch")
        T, N, K = sc.n_features, sc.n_samples, int(self.n_atoms)
        if K > T:
            raise ValueError(f"n_atoms={K} exceeds the number of time points n_trs={T}: at most {T} atoms")
        if K > N:
            raise ValueError(f"n_atoms={K} exceeds the number of ANs n_ans={N}: at most {N} atoms")
        lam = float(self.lambda_an)
        if self.target_sparsity is not None:
            lam = self._search_lambda(batches, arr, N, dev)
        self.lambda_ = lam
        if self.solver == "torch":
            res = S.fit_dictionary(batches, K, lam, n_iter=int(self.n_iter), batch_size=int(self.batch_size),
                                   device=dev, tol=self.tol, scan_result=sc, callback=callback,
                                   num_threads=self.n_threads)
            atoms, codes, rss = res.atoms, res.codes, res.rss
            self.n_iter_, self.trace_ = res.n_epochs, res.trace
            self.objective_ = res.objective
        else:
            atoms, codes, rss, self.objective_, self.n_iter_ = self._fit_sklearn(batches, arr, K, lam)
            self.trace_ = []
        atoms, codes = _canonical(atoms, codes)
        self.atoms_ = atoms
        self.codes_ = sp.csr_matrix(codes)
        self.rss_, self.tss_ = rss, sc.col_tss
        self.r2_ = float(1.0 - rss.sum() / sc.col_tss.sum())
        self.sparsity_ = float(self.codes_.nnz / N)
        self.n_unused_atoms_ = int((np.diff(self.codes_.indptr) == 0).sum())
        self.device_ = str(dev)
        self.fit_time_s_ = time.perf_counter() - t0
        return self

    def _fit_sklearn(self, batches, arr, K: int, lam: float):
        from sklearn.decomposition import MiniBatchDictionaryLearning, sparse_encode
        from sklearn.exceptions import ConvergenceWarning

        X = arr if arr is not None else np.concatenate([getattr(c, "values", c) for c in batches()], axis=1)
        Xs = np.ascontiguousarray(X.T, dtype=np.float32)  # sklearn wants (n_samples, n_features)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            mb = MiniBatchDictionaryLearning(n_components=K, alpha=lam, max_iter=int(self.n_iter),
                                             fit_algorithm="cd", batch_size=int(self.batch_size),
                                             random_state=int(self.seed), tol=self.tol).fit(Xs)
            comps = mb.components_ / np.maximum(np.linalg.norm(mb.components_, axis=1, keepdims=True), 1e-30)
            code = sparse_encode(Xs, comps, algorithm="lasso_cd", alpha=lam, max_iter=1000)
        rss = ((Xs - code @ comps).astype(np.float64) ** 2).sum(axis=1)
        obj = float((0.5 * rss.sum() + lam * np.abs(code).sum()) / Xs.shape[0])
        return comps.T.astype(np.float32), code.T.astype(np.float32), rss, obj, int(mb.n_iter_)

    def _search_lambda(self, batches, arr, N: int, dev) -> float:
        """Log-scale bisection of lambda to reach ``target_sparsity`` non-zeros per AN on a subsample."""
        rng = np.random.default_rng(self.seed)
        m = min(N, int(self.search_subsample))
        cols = np.sort(rng.choice(N, m, replace=False))
        if arr is not None:
            sub = np.ascontiguousarray(arr[:, cols], dtype=np.float32)
        else:
            parts, off = [], 0
            for c in batches():
                v = np.asarray(getattr(c, "values", c))
                sel = cols[(cols >= off) & (cols < off + v.shape[1])] - off
                parts.append(np.asarray(v[:, sel], dtype=np.float32))
                off += v.shape[1]
            sub = np.concatenate(parts, axis=1)
        K = min(int(self.n_atoms), m)
        target = float(self.target_sparsity)
        # lambda >= max ||x_n|| zeroes every code (unit-norm atoms); search below it.
        hi = float(np.linalg.norm(sub, axis=0).max())
        lo = hi * 1e-4
        with S.cpu_threads(self.n_threads):
            sc = S.scan(lambda: [sub], dev)
        log_lo, log_hi = np.log(lo), np.log(hi)
        lam, best = float(self.lambda_an), None
        lam = float(np.clip(lam, lo, hi))
        for _ in range(14):
            r = S.fit_dictionary(lambda: [sub], K, lam, n_iter=min(int(self.n_iter), 10),
                                 batch_size=int(self.batch_size), device=dev, tol=self.tol, scan_result=sc,
                                 num_threads=self.n_threads)
            nnz = float((r.codes != 0).sum() / m)
            if best is None or abs(nnz - target) < abs(best[1] - target):
                best = (lam, nnz)
            if abs(nnz - target) <= 0.05 * target:
                break
            if nnz > target:
                log_lo = np.log(lam)
            else:
                log_hi = np.log(lam)
            lam = float(np.exp(0.5 * (log_lo + log_hi)))
        self.lambda_search_ = {"subsample": m, "chosen": best[0], "subsample_sparsity": best[1], "target": target}
        return float(best[0])

    # ------------------------------------------------------------------ use
    def transform(self, X) -> sp.csr_matrix:
        """Codes of the columns of X on the fitted atoms.

        Parameters
        ----------
        X : array of shape (n_trs, n) or callable returning chunks

        Returns
        -------
        codes : scipy.sparse.csr_matrix of shape (n_atoms, n)
        """
        check_is_fitted(self, "atoms_")
        batches, _ = _as_batches(X)
        codes, _, _ = S.encode(batches, self.atoms_, self.lambda_, batch_size=int(self.batch_size),
                               device=S.resolve_device(self.device), num_threads=self.n_threads)
        return sp.csr_matrix(codes)

    def score(self, X, y=None) -> float:
        """Mean per-column objective of X on the fitted atoms (lower is better)."""
        check_is_fitted(self, "atoms_")
        batches, _ = _as_batches(X)
        return S.encode(batches, self.atoms_, self.lambda_, batch_size=int(self.batch_size),
                        device=S.resolve_device(self.device), num_threads=self.n_threads)[2]


def _canonical(atoms: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic order and sign: atoms by decreasing total |code|, each with sum of codes >= 0.

    Parameters
    ----------
    atoms : array of shape (T, K)
    codes : array of shape (K, N)
    """
    sign = np.where(codes.sum(axis=1, dtype=np.float64) < 0, -1.0, 1.0).astype(atoms.dtype)
    atoms, codes = atoms * sign[None, :], codes * sign[:, None]
    order = np.argsort(-np.abs(codes).sum(axis=1, dtype=np.float64), kind="stable")
    return np.ascontiguousarray(atoms[:, order]), np.ascontiguousarray(codes[order])
