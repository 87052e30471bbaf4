"""The regressors of an encoding fit: a model's atoms on a run's grid, the benchmark's bounds.

- :func:`load_atoms` / :func:`atoms_on_run`: the temporal atoms of one (model, stimulus)
  patterns folder, on the TR grid of one run;
- :func:`bound_regressors`: for an embedded stimulus, the **oracle** -- the planted features
  themselves (canonical HRF, unit-norm columns, in the order of the ground truth's
  ``planted``; :func:`~brainlike.data.embedded.oracle_regressors`), the most any model can
  recover at the planted strength and subject count -- and the **null** -- the same columns
  each circularly shifted by a seeded lag of at least ``min_shift_trs``
  (:func:`~brainlike.data.embedded.circular_shift_null`): same spectra, timing destroyed --
  then made orthogonal to every planted feature and its temporal derivative after the run's
  high-pass (:func:`null_regressors`). A shift alone does not destroy a slow feature's overlap
  with the planted responses: on the default story the shifted columns kept correlations up to
  0.27 with the planted features, and that null "recovered" the planted networks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.embedded import circular_shift_null, oracle_regressors
from ..data.embedded.sidecars import sidecar_paths
from ..data.run import Run
from ..errors import DataError
from .design import drift_basis, highpass
from ..patterns.outputs import ATOMS_FILE
from ..stimulus import EMBEDDED_DATASET, dataset_of, task_of


def load_atoms(folder: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Temporal atoms of one (model, stimulus) patterns folder.

    Returns
    -------
    atoms : array of shape (T, K), float64
    times : array of shape (T,), stimulus-clock time (s) of each row
    names : list of K str (``atom_000`` ...)
    """
    path = Path(folder) / ATOMS_FILE
    if not path.is_file():
        raise DataError(path, "atoms file not found (run `dvc repro patterns`)")
    df = pd.read_parquet(path)
    names = [c for c in df.columns if c.startswith("atom_")]
    if "time_s" not in df.columns or not names:
        raise DataError(path, "expected columns tr_index, time_s, atom_000 ...", "time_s")
    A = df[names].to_numpy(np.float64)
    if not np.isfinite(A).all():
        raise DataError(path, "atoms hold NaN/inf", names[0])
    return A, df["time_s"].to_numpy(np.float64), names


def atoms_on_run(atoms: np.ndarray, times: np.ndarray, run: Run, source: str | Path | None = None) -> np.ndarray:
    """The atoms on the run's TR grid, shape (run.n_trs, K).

    The dictionary is fitted on the grid heard by most runs; a run on that grid gets the atoms
    as they are. A run on another grid (other t0, TR or length) gets them linearly
    interpolated in stimulus time; rows outside the atoms' time span are 0 (the atoms' value
    before the story starts is a constant that the intercept absorbs anyway).

    Raises
    ------
    DataError
        If less than half of the run's rows fall inside the atoms' time span.
    """
    ft = run.frame_times
    if ft.size == times.size and np.allclose(ft, times, atol=1e-6):
        return atoms
    inside = (ft >= times[0] - 1e-9) & (ft <= times[-1] + 1e-9)
    if inside.mean() < 0.5:
        raise DataError(source, f"run {run.run_id} ({ft[0]:.1f}-{ft[-1]:.1f} s) barely overlaps the atoms' "
                        f"time span ({times[0]:.1f}-{times[-1]:.1f} s); expected the same stimulus clock", "time_s")
    return np.stack([np.interp(ft, times, a, left=0.0, right=0.0) for a in atoms.T], axis=1)


BOUND_NAMES = ("oracle", "null")


def planted_answer(prepared: str | Path, stimulus: str) -> tuple[Path, Path] | None:
    """(ground truth json, features parquet) of an embedded stimulus; None for real data."""
    if dataset_of(stimulus) != EMBEDDED_DATASET:
        return None
    return sidecar_paths(prepared, task_of(stimulus))


def bound_regressors(prepared: str | Path, stimulus: str, min_shift: int, seed: int,
                     high_pass_s: float | None = 128.0) -> dict[str, tuple]:
    """The oracle and null regressors of one embedded stimulus, as encode's atoms tuples.

    Returns
    -------
    dict ``{"oracle": (X, times, names, source), "null": (...)}``; X of shape (n_trs, n_planted),
    times = ``tr * arange(n_trs)`` (the stimulus clock of the planted features), names
    ``atom_000`` ... in the order of the ground truth's ``planted``.
    """
    answer = planted_answer(prepared, stimulus)
    if answer is None:
        raise DataError(None, f"{stimulus} is not an embedded stimulus: it has no planted answer", "stimulus")
    truth_path, features_path = answer
    if not truth_path.is_file() or not features_path.is_file():
        raise DataError(truth_path, f"no ground truth / features for {stimulus}; re-run `dvc repro prepare`")
    truth = json.loads(truth_path.read_text())
    for key in ("tr", "planted"):
        if key not in truth:
            raise DataError(truth_path, f"ground truth has no {key!r}; re-run `dvc repro prepare`", key)
    oracle = oracle_regressors(pd.read_parquet(features_path), truth["planted"])
    times = float(truth["tr"]) * np.arange(oracle.shape[0])
    names = [f"atom_{i:03d}" for i in range(oracle.shape[1])]
    null = null_regressors(oracle, times, min_shift, seed, high_pass_s)
    return {"oracle": (oracle, times, names, features_path.as_posix()),
            "null": (null, times, names, features_path.as_posix())}


def null_regressors(oracle: np.ndarray, frame_times: np.ndarray, min_shift: int, seed: int,
                    high_pass_s: float | None = 128.0) -> np.ndarray:
    """The benchmark's null: the oracle's columns circularly shifted, with no planted signal left.

    Each column is shifted by its own seeded lag (:func:`~brainlike.data.embedded.circular_shift_null`),
    high-passed like the data (cosine basis of ``high_pass_s`` + constant), and projected off
    the high-passed span of the oracle at lags -1, 0 and +1 TR. That span holds the oracle's
    AR(1)-prewhitened versions for every coefficient (``x_t - rho x_{t-1}``) and its temporal
    derivative (the subjects' HRF delays around the canonical one), so the null stays
    orthogonal to the planted features inside the GLM of every vertex, not only before it.
    Columns are unit-norm.

    Parameters
    ----------
    oracle : array of shape (T, K)
    frame_times : array of shape (T,)
    min_shift : int
        Smallest lag in TRs (either way).
    seed : int
    high_pass_s : float or None

    Returns
    -------
    array of shape (T, K), float64
    """
    oracle = np.asarray(oracle, dtype=np.float64)
    basis = drift_basis(np.asarray(frame_times, dtype=np.float64), high_pass_s)
    lag, lead = np.zeros_like(oracle), np.zeros_like(oracle)
    lag[1:], lead[:-1] = oracle[:-1], oracle[1:]
    span = highpass(np.column_stack([oracle, lag, lead]), basis)
    q, _ = np.linalg.qr(span)
    r = highpass(circular_shift_null(oracle, min_shift, seed), basis)
    r -= q @ (q.T @ r)
    norm = np.linalg.norm(r, axis=0)
    if (norm < 1e-8).any():
        raise DataError(None, f"a null column lies in the span of the planted features (norms {norm.round(6).tolist()})",
                        "planted")
    return r / norm
