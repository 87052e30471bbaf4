"""The real resting-state background of the semi-synthetic runs, and its per-subject versions.

Source
    The one real resting-state run shipped with the ``brainspace`` package
    (``sub-010188_ses-02_task-rest_acq-AP_run-01``, fsaverage5, 10,242 vertices x 652 frames per
    hemisphere, already confound-regressed). Its frames are treated as TRs of ``cfg.tr`` (the
    source TR does not enter: only the temporal structure in samples is reused). The series is
    extended by time reversal, ``[x, x reversed]``, into a seamless periodic signal of 1,304 frames
    (no jump where it wraps), tiled again if a run needs more.

    ``phase_randomised``: per subject, the Fourier phases of that periodic signal are replaced by
    random ones, the *same* phases at every vertex, then the first ``n_trs`` frames are kept. This
    keeps each vertex's power spectrum and the cross-spectra between vertices (so the spatial
    covariance of resting-state networks), and destroys the original time course.
    ``segments``: subject ``s`` gets ``n_trs`` contiguous frames of the periodic signal starting at
    ``(offset + s * 1304 / n_subjects) mod 1304`` (``offset`` seeded); segments past the end of the
    original continue into its time reversal, and runs longer than 1,304 frames repeat it.

Confounds
    The brainspace confounds file lines up frame by frame with the run; columns 7-12 are the six
    rigid-body motion parameters in FSL mcflirt order (3 rotations in rad, 3 translations in mm,
    inferred from their scales) and are returned under fMRIPrep names. They undergo exactly the
    same extension and segment choice / phase randomisation as the data, so data and motion keep
    their real relation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..run import N_VERTICES_FSAVERAGE5

BRAINSPACE_RUN = "sub-010188_ses-02_task-rest_acq-AP_run-01"
N_SOURCE_FRAMES = 652
# Columns 6..11 (0-based) of the confounds txt, mcflirt order, -> fMRIPrep names.
MOTION_COLUMNS = {"rot_x": 6, "rot_y": 7, "rot_z": 8, "trans_x": 9, "trans_y": 10, "trans_z": 11}
CONFOUND_NAMES = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_CHUNK = 4096  # vertices per FFT batch: bounds the surrogate's working memory (~40 MB)


def background_files() -> dict[str, Path]:
    """Paths of the brainspace resting-state run: keys ``lh``, ``rh``, ``confounds``."""
    import brainspace

    root = Path(brainspace.__file__).parent / "datasets" / "preprocessing"
    return {
        "lh": root / f"{BRAINSPACE_RUN}.fsa5.lh.mgz",
        "rh": root / f"{BRAINSPACE_RUN}.fsa5.rh.mgz",
        "confounds": root / f"{BRAINSPACE_RUN}_confounds.txt",
    }


def load_background() -> tuple[np.ndarray, np.ndarray]:
    """The real resting-state run and its motion parameters.

    Returns
    -------
    data : array of shape (652, 20484), float32
        Left hemisphere vertices then right.
    motion : array of shape (652, 6), float64
        Columns :data:`CONFOUND_NAMES`.
    """
    import nibabel as nib

    files = background_files()
    hemis = []
    for h in ("lh", "rh"):
        try:
            x = np.asarray(nib.load(files[h]).dataobj, dtype=np.float32).reshape(-1, N_SOURCE_FRAMES)
        except (OSError, ValueError) as exc:
            raise DataError(files[h], f"cannot read the resting-state background: {exc}") from None
        hemis.append(x)
    data = np.ascontiguousarray(np.concatenate(hemis).T)
    if data.shape != (N_SOURCE_FRAMES, N_VERTICES_FSAVERAGE5):
        raise DataError(
            files["lh"],
            f"expected {N_VERTICES_FSAVERAGE5} vertices x {N_SOURCE_FRAMES} frames, got {data.shape[::-1]}",
        )
    try:
        conf = np.loadtxt(files["confounds"], ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(files["confounds"], f"cannot read the confounds: {exc}") from None
    if conf.shape[0] != N_SOURCE_FRAMES or conf.shape[1] <= max(MOTION_COLUMNS.values()):
        raise DataError(files["confounds"], f"expected {N_SOURCE_FRAMES} rows and >= 12 columns, got {conf.shape}")
    motion = conf[:, [MOTION_COLUMNS[c] for c in CONFOUND_NAMES]]
    return data, motion


def _periodic(x: np.ndarray, n: int) -> np.ndarray:
    """Time-reversal extension ``[x, x[::-1]]`` tiled to a multiple of its period that is >= n.

    x : array of shape (T, ...) -> array of shape (2 T k, ...), k = ceil(n / 2T).
    """
    period = np.concatenate([x, x[::-1]])
    return np.concatenate([period] * math.ceil(n / len(period)))


def phase_randomise(x: np.ndarray, n: int, rng: np.random.Generator, chunk: int = _CHUNK) -> np.ndarray:
    """Phase-randomised surrogate of a multichannel series, cropped to n frames.

    The time-reversal periodic extension of ``x`` (:func:`_periodic`, length L) is Fourier
    transformed, every frequency's phase is shifted by one random angle shared by all columns
    (0 at DC and at Nyquist, so the result is real), and the inverse transform is cropped.

    Parameters
    ----------
    x : array of shape (T, V)
    n : int
        Frames wanted.
    rng : Generator
        Source of the phases; draws L // 2 + 1 numbers.

    Returns
    -------
    array of shape (n, V), dtype of ``x``
    """
    import scipy.fft

    length = 2 * len(x) * math.ceil(n / (2 * len(x)))
    n_freq = length // 2 + 1
    phases = rng.uniform(0.0, 2.0 * np.pi, n_freq)
    phases[0] = 0.0
    if length % 2 == 0:
        phases[-1] = 0.0
    rot = np.exp(1j * phases)[:, None].astype(np.result_type(x.dtype, np.complex64))
    out = np.empty((n, x.shape[1]), dtype=x.dtype)
    for start in range(0, x.shape[1], chunk):
        block = _periodic(x[:, start : start + chunk], n)
        spec = scipy.fft.rfft(block, axis=0)
        out[:, start : start + chunk] = scipy.fft.irfft(spec * rot, n=length, axis=0)[:n]
    return out


def segment(x: np.ndarray, n: int, start: int) -> np.ndarray:
    """``n`` contiguous frames of the periodic extension of ``x`` from ``start`` (wrapping).

    x : array of shape (T, ...) -> array of shape (n, ...).
    """
    period = np.concatenate([x, x[::-1]])
    return period[(start + np.arange(n)) % len(period)]
