"""Brennan et al. (2016) "Alice" story-listening fMRI at ROI level (``alice-brennan2016/``).

Layout and conventions are those of the dataset's README:

- ``roi_6mm/sNN-timecourses.txt``: 362 TRs x 6 ROIs (LATL RATL LPTL LIPL LPreM LIFG);
- TR = 2.0 s; the first 10 volumes were discarded, so row ``i`` was acquired at
  ``(i + 10) * 2`` s: ``t0 = 20.0``;
- the TextGrid's times count from scan start (20 s of silence pad the audio), so the scan
  clock *is* the stimulus clock here and the words are used as they are;
- ``regressors/sNN-rp_*.txt``: 6 SPM realignment parameters for all 372 volumes (x, y, z
  translations in mm, then rotations about x, y, z in radians), renamed to fMRIPrep's
  ``trans_x .. rot_z``; the 10 discarded rows are dropped. A subject whose file is missing or
  has a row count other than 372 gets no motion columns (its alignment to the kept volumes
  would be a guess) and a note in ``meta["notes"]`` and ``meta["warnings"]`` (the gate report
  shows it as a warning; in the copy checked when this was written, all 15 ROI subjects have
  a complete file);
- ``regressors/sNN-rate.txt``, ``sNN-sndpwr.txt``: the dataset's own HRF-convolved word-rate
  and sound-power predictors (362 values, already without the discarded volumes), kept as
  confound columns ``rate`` and ``sndpwr`` because later stages use them as a baseline;
- ``regressors/sept18-generic-predictors-under-hrf-with-logfrqhal.txt``: 12 HRF-convolved
  linguistic predictors (372 rows, the discarded volumes dropped), columns ``psy_01 .. psy_12``:
  the psycholinguistic baseline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError
from ..run import LoadFailure, Run
from .confounds import MOTION_COLUMNS
from .words import read_words

ROI_NAMES = ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"]
TR = 2.0
N_DISCARDED = 10
T0 = N_DISCARDED * TR
_SUBJECT = re.compile(r"^(s\d+)-timecourses\.txt$")


def is_alice_folder(path: str | Path) -> bool:
    """True when ``path`` has the Alice layout (``roi_6mm/``, ``regressors/``, ``stimulus/``)."""
    path = Path(path)
    return all((path / d).is_dir() for d in ("roi_6mm", "regressors", "stimulus"))


def alice_subjects(path: str | Path) -> list[str]:
    """Subjects with an ROI time-course file, e.g. ``["s18", "s22", ...]`` (numeric order)."""
    roi = Path(path) / "roi_6mm"
    if not roi.is_dir():
        raise DataError(roi, "Alice ROI folder not found")
    subs = [m.group(1) for f in roi.iterdir() if (m := _SUBJECT.match(f.name))]
    return sorted(subs, key=lambda s: int(s[1:]))


def _load_table(path: Path, n_cols: int | None = None, allow_nonfinite: bool = False) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        arr = np.loadtxt(path, ndmin=2)
    except ValueError as exc:
        raise DataError(path, f"not a whitespace-separated numeric table: {exc}") from None
    if n_cols is not None and arr.shape[1] != n_cols:
        raise DataError(path, f"expected {n_cols} columns, got {arr.shape[1]}")
    if not allow_nonfinite and not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise DataError(path, f"row {i} holds a non-finite value")
    return arr


def _motion(reg: Path, sub: str, n_trs: int, notes: list[str]) -> tuple[pd.DataFrame | None, str | None]:
    files = sorted(reg.glob(f"{sub}-rp_*.txt"))
    if not files:
        notes.append(f"no motion file {reg}/{sub}-rp_*.txt: confounds lack motion columns")
        return None, None
    if len(files) > 1:
        raise DataError(reg, f"{len(files)} motion files for {sub}: {[f.name for f in files]}; expected one")
    rp = _load_table(files[0], 6)
    expected = n_trs + N_DISCARDED
    if rp.shape[0] != expected:
        notes.append(
            f"motion file {files[0].name} has {rp.shape[0]} rows, expected {expected} "
            f"({n_trs} kept + {N_DISCARDED} discarded volumes); its alignment to the kept volumes is "
            "unknown, so confounds lack motion columns"
        )
        return None, str(files[0])
    return pd.DataFrame(rp[N_DISCARDED:], columns=list(MOTION_COLUMNS)), str(files[0])


PSY_FILE = "sept18-generic-predictors-under-hrf-with-logfrqhal.txt"
N_PSY = 12


def _psycholinguistic(reg: Path, n_trs: int, notes: list[str]) -> pd.DataFrame | None:
    """The dataset's 12 HRF-convolved linguistic predictors as ``psy_01 .. psy_12`` (kept TRs only).

    The dataset README lists them as word rate, log frequency, sentence break, top-down and
    bottom-up node counts, CFG surprisal, bigram/trigram lexical and part-of-speech surprisal;
    the file has no header, so the columns are numbered in file order rather than named.
    """
    path = reg / PSY_FILE
    if not path.is_file():
        notes.append(f"no {PSY_FILE}: the psycholinguistic baseline is left out")
        return None
    arr = _load_table(path, N_PSY)
    if arr.shape[0] != n_trs + N_DISCARDED:
        raise DataError(path, f"{arr.shape[0]} rows, expected {n_trs + N_DISCARDED} "
                        f"({n_trs} kept + {N_DISCARDED} discarded volumes)")
    return pd.DataFrame(arr[N_DISCARDED:], columns=[f"psy_{j + 1:02d}" for j in range(N_PSY)])


def load_alice(
    path: str | Path,
    subjects: Sequence[str] | None = None,
    name: str = "alice",
    failures: list[LoadFailure] | None = None,
) -> list[Run]:
    """Load the Alice ROI runs.

    Parameters
    ----------
    path : str or Path
        The ``alice-brennan2016`` folder.
    subjects : sequence of str, optional
        ``"s22"`` or ``"22"``; default: every subject with a ``roi_6mm`` file.
    name : str
        Dataset name of the runs.
    failures : list, optional
        When given, a subject whose files cannot be read (missing, not numeric, wrong shape,
        row counts that disagree) is appended to it as a :class:`~brainlike.data.run.LoadFailure`
        and the other subjects are loaded; by default the first such error is raised.

    Returns
    -------
    list of Run
        ``space="roi"``, data of shape (362, 6) with ``target_names`` :data:`ROI_NAMES`,
        ``tr=2.0``, ``t0=20.0``, task ``"alice"``; confounds ``trans_x .. rot_z`` (when usable),
        ``rate``, ``sndpwr``, ``psy_01 .. psy_12``. Non-finite values of an ROI file are kept as they are (with a
        note): the data gates' ``no_nan`` / ``no_nonfinite`` checks name the TR and the ROI.

    Raises
    ------
    DataError
        Missing folder, sub-folder or word alignment (always); a subject's missing or
        malformed file (without ``failures``).
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(path, "Alice dataset folder not found")
    for d in ("roi_6mm", "regressors", "stimulus"):
        if not (path / d).is_dir():
            raise DataError(path / d, "Alice dataset sub-folder not found (see the dataset README)")
    grids = sorted((path / "stimulus").glob("*.TextGrid"))
    if len(grids) != 1:
        raise DataError(path / "stimulus", f"expected one .TextGrid word alignment, found {len(grids)}")
    words = read_words(grids[0])
    available = alice_subjects(path)
    if subjects is None:
        subjects = available
    subjects = [s if str(s).startswith("s") else f"s{s}" for s in map(str, subjects)]
    if not subjects:
        raise DataError(path / "roi_6mm", "no sNN-timecourses.txt files")
    runs = []
    for sub in subjects:
        try:
            runs.append(_load_subject(path, sub, name, words, grids[0]))
        except DataError as exc:
            if failures is None:
                raise
            failures.append(LoadFailure.from_error(exc, name, sub, "alice"))
    return runs


def _load_subject(path: Path, sub: str, name: str, words: pd.DataFrame, grid: Path) -> Run:
    reg = path / "regressors"
    src = path / "roi_6mm" / f"{sub}-timecourses.txt"
    data = _load_table(src, len(ROI_NAMES), allow_nonfinite=True)
    n_trs = data.shape[0]
    notes: list[str] = []
    if not np.isfinite(data).all():
        bad = np.flatnonzero(~np.isfinite(data).all(axis=1))
        notes.append(f"{src.name}: {bad.size} row(s) hold a non-finite value (first: row {int(bad[0])})")
    motion, motion_src = _motion(reg, sub, n_trs, notes)
    extra = {}
    for col in ("rate", "sndpwr"):
        f = reg / f"{sub}-{col}.txt"
        values = _load_table(f, 1)[:, 0]
        if values.size != n_trs:
            raise DataError(f, f"{values.size} rows but {src.name} has {n_trs} volumes; expected one value per kept TR")
        extra[col] = values
    psy = _psycholinguistic(reg, n_trs, notes)
    confounds = pd.concat(
        [df for df in (motion, pd.DataFrame(extra), psy) if df is not None], axis=1
    )
    run = Run(
        dataset=name,
        subject=sub,
        task="alice",
        tr=TR,
        space="roi",
        data=data,
        confounds=confounds,
        words=words.copy(),
        t0=T0,
        target_names=list(ROI_NAMES),
        meta={
            "source": str(src),
            "words_source": str(grid),
            "confounds_source": motion_src or str(reg / f"{sub}-rate.txt"),
            "regressor_sources": {"rate": str(reg / f"{sub}-rate.txt"), "sndpwr": str(reg / f"{sub}-sndpwr.txt")},
            "motion_source": motion_src,
            "n_discarded_volumes": N_DISCARDED,
            "words_info": {k: v for k, v in words.attrs.items() if k != "source"},
            "notes": notes,
            # shown in the gate report: each note here means missing motion columns or non-finite data
            "warnings": list(notes),
        },
    )
    run.check_words_within_scan()
    return run
