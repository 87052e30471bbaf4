"""Design matrices of the encoding models: atoms + confounds + cosine drift + intercept.

Atoms are already on the TR grid (HRF applied upstream), so nothing is convolved here. The
cosine drift basis is nilearn's (``nilearn.signal.create_cosine_drift``, used by
``make_first_level_design_matrix(drift_model="cosine")``): DCT-II columns up to the
``1 / high_pass_s`` cut-off, plus a constant. The *same* basis is what :func:`highpass`
removes from regressors and from brain data, so the two are always filtered alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DataError


def cosine_drift(frame_times: np.ndarray, high_pass_s: float | None = 128.0) -> np.ndarray:
    """Cosine drift regressors (DCT-II) below ``1 / high_pass_s`` Hz, without the constant.

    Parameters
    ----------
    frame_times : array of shape (n_trs,)
        Acquisition times in seconds (equally spaced).
    high_pass_s : float or None
        Period of the cut-off in seconds; None gives no drift column.

    Returns
    -------
    drift : array of shape (n_trs, n_drift), float64
        ``sqrt(2 / n) cos(pi / n * (t + 0.5) * k)`` for ``k = 1..order`` with
        ``order = min(n - 1, floor(2 n dt / high_pass_s))``: the first columns of
        nilearn's ``create_cosine_drift(1 / high_pass_s, frame_times)``.
    """
    ft = np.asarray(frame_times, dtype=np.float64).reshape(-1)
    n = ft.size
    if n < 2:
        raise DataError(None, f"a drift basis needs at least 2 frames, got {n}", "frame_times")
    if high_pass_s is None:
        return np.zeros((n, 0))
    if not high_pass_s > 0:
        raise DataError(None, f"high_pass_s must be > 0 seconds, got {high_pass_s}", "high_pass_s")
    dt = (ft[-1] - ft[0]) / (n - 1)
    order = int(min(n - 1, np.floor(2 * n * (1.0 / high_pass_s) * dt)))
    k = np.arange(1, order + 1)
    t = np.arange(n)[:, None]
    return np.sqrt(2.0 / n) * np.cos((np.pi / n) * (t + 0.5) * k[None, :])


def drift_basis(frame_times: np.ndarray, high_pass_s: float | None = 128.0) -> np.ndarray:
    """Cosine drift columns then a constant column, shape (n_trs, n_drift + 1)."""
    d = cosine_drift(frame_times, high_pass_s)
    return np.column_stack([d, np.ones(d.shape[0])])


def make_design(
    atoms: np.ndarray,
    frame_times: np.ndarray,
    confounds: pd.DataFrame | np.ndarray | None = None,
    high_pass_s: float | None = 128.0,
    atom_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Design matrix ``[atoms | confounds | cosine drift | constant]``.

    Parameters
    ----------
    atoms : array of shape (n_trs, n_atoms)
        Fixed regressors on the TR grid (temporal atoms, or baseline regressors).
    frame_times : array of shape (n_trs,)
    confounds : DataFrame or array of shape (n_trs, n_confounds), optional
        Nuisance regressors (motion, ...); constant columns are dropped (the intercept has them).
    high_pass_s : float or None
        Cosine drift cut-off period (seconds).
    atom_names : sequence of str, optional
        Column names of the atoms (default ``atom_000``...).

    Returns
    -------
    X : array of shape (n_trs, n_atoms + n_confounds + n_drift + 1), float64
        The atoms are the first ``n_atoms`` columns, so contrast ``k`` is column ``k``.
    names : list of str
        Column names.
    """
    A = np.asarray(atoms, dtype=np.float64)
    if A.ndim != 2:
        raise DataError(None, f"atoms must be a 2-D (n_trs, n_atoms) array, got shape {A.shape}", "atoms")
    T = A.shape[0]
    ft = np.asarray(frame_times, dtype=np.float64).reshape(-1)
    if ft.size != T:
        raise DataError(None, f"atoms have {T} rows but frame_times has {ft.size} values", "frame_times")
    if not np.isfinite(A).all():
        raise DataError(None, "atoms contain non-finite values", "atoms")
    names = list(atom_names) if atom_names is not None else [f"atom_{k:03d}" for k in range(A.shape[1])]
    if len(names) != A.shape[1]:
        raise DataError(None, f"{len(names)} atom names for {A.shape[1]} atoms", "atom_names")
    cols, cnames = [A], names
    if confounds is not None:
        C, cn = _confound_array(confounds, T)
        keep = C.std(axis=0) > 1e-12 * (np.abs(C).max(axis=0) + 1e-300)
        cols.append(C[:, keep])
        cnames = cnames + [n for n, k in zip(cn, keep) if k]
    D = cosine_drift(ft, high_pass_s)
    cols += [D, np.ones((T, 1))]
    cnames = cnames + [f"drift_{k + 1}" for k in range(D.shape[1])] + ["constant"]
    return np.column_stack(cols), cnames


def _confound_array(confounds, T: int) -> tuple[np.ndarray, list[str]]:
    if isinstance(confounds, pd.DataFrame):
        C = confounds.to_numpy(dtype=np.float64)
        names = [str(c) for c in confounds.columns]
    else:
        C = np.asarray(confounds, dtype=np.float64)
        C = C[:, None] if C.ndim == 1 else C
        names = [f"confound_{j}" for j in range(C.shape[1])]
    if C.shape[0] != T:
        raise DataError(None, f"confounds have {C.shape[0]} rows, expected {T} (one per TR)", "confounds")
    bad = ~np.isfinite(C).all(axis=0)
    if bad.any():
        raise DataError(None, f"confound column(s) {[n for n, b in zip(names, bad) if b]} hold NaN/inf; "
                        "fill them (e.g. 0 for the first row of derivatives) before encoding", "confounds")
    return C, names


def highpass(A: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Residuals of the columns of ``A`` after least squares on ``basis``.

    Parameters
    ----------
    A : array of shape (n_trs, n_columns)
    basis : array of shape (n_trs, n_basis)
        Usually :func:`drift_basis` (cosines + constant) or rows of it.

    Returns
    -------
    array of shape (n_trs, n_columns), float64
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(basis, dtype=np.float64)
    if B.shape[1] == 0:
        return A.copy()
    return A - B @ (np.linalg.pinv(B) @ A)
