"""BIDS / fMRIPrep func runs -> :class:`~brainlike.data.run.Run` on fsaverage5.

Func files are found by BIDS entities, not by glob patterns, so entity order does not matter
(fMRIPrep 20 writes ``_space-fsaverage6_hemi-L_bold.func.gii``, 21+ ``_hemi-L_space-...``):

- volumes: ``sub-<s>[_ses-<x>]_task-<task>[_run-<r>]_space-<space>[_res-*]_desc-preproc_bold.nii[.gz]``,
  projected to fsaverage5 with :func:`~brainlike.data.surfaces.project_volume_to_fsaverage5`;
- surfaces: ``..._space-fsaverage5|fsaverage6_hemi-L|R[_bold].func.gii``, both hemispheres,
  fsaverage6 decimated to fsaverage5 by the icosahedral nesting (fMRIPrep < 20.2 wrote no
  ``_bold`` suffix; where several files fit one run, the one without a ``desc-`` entity is
  fMRIPrep's own and is taken, otherwise it is an error).

TR: ``RepetitionTime`` of the JSON sidecar (same name with ``.json``, else BIDS inheritance
``[sub-<s>_]task-<task>_bold.json`` up to the dataset root), else the NIfTI header's 4th zoom
(when its time unit is set), else the stated ``tr``. A stated ``tr`` wins, but a sidecar or
header value more than 1 % away from it is an error, as is a sidecar that disagrees with the
header: a wrong TR shifts every regressor.

Time convention (see :mod:`brainlike.data.run`): word onsets stay on the clock of the word
file (the *stimulus clock*); ``words_offset_s`` is the scan time at which the stimulus clock
reads 0, and row ``i`` of the data is the volume whose acquisition started at scan time
``i * TR``. So row ``i`` sits at stimulus time ``i * TR - words_offset_s`` and
``t0 = -words_offset_s``. BIDS ``events.tsv`` onsets are already scan times: use
``words_offset_s = 0``. A Gentle alignment or a TextGrid of the story audio counts from the
start of the audio: ``words_offset_s`` is when the audio started in the scan (e.g. after the
non-steady-state volumes). A slice-timing reference other than the volume start can be folded
into ``words_offset_s`` too.

Layout: file names and discovery are in :mod:`~brainlike.data.loaders.bids_files`, the TR in
:mod:`~brainlike.data.loaders.bids_tr`, reading the data in
:mod:`~brainlike.data.loaders.bids_func`; this module assembles runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ...config import BidsDataset
from ...errors import ConfigError, DataError
from ..run import LoadFailure, Run
from .bids_files import (
    BidsName,
    _hemi_pair,
    find_confounds,
    find_func_files,
    find_sidecar,
    find_words_file,  # noqa: F401 -- re-exported: the loaders package imports it from here
    parse_bids_name,
)
from .bids_func import _GIFTI_SPACES, _load_volume, _surface_data, read_gifti_pair
from .bids_tr import _header_tr, _sidecar_tr, resolve_tr
from .confounds import CONFOUNDS_SUFFIXES, MOTION_COLUMNS, read_confounds
from .words import read_words


def load_bids_run(
    func_path: str | Path | tuple[str | Path, str | Path],
    words_path: str | Path,
    confounds_path: str | Path | None = None,
    *,
    confound_columns: Sequence[str] | None = MOTION_COLUMNS,
    tr: float | None = None,
    words_offset_s: float = 0.0,
    dataset: str = "bids",
    task: str | None = None,
    subject: str | None = None,
    root: str | Path | None = None,
) -> Run:
    """Load one BIDS func run (volume or GIfTI pair) with its words and confounds.

    Parameters
    ----------
    func_path : path or (left, right)
        A ``.nii[.gz]`` volume in MNI space, or a ``.func.gii`` of either hemisphere (the other
        is found by swapping the ``hemi-`` entity), or an explicit (left, right) pair.
    words_path : path
        Events ``.tsv``, Praat ``.TextGrid`` or Gentle ``align.json`` (see :func:`read_words`).
    confounds_path : path, optional
        fMRIPrep confounds TSV; by default the one beside the func file. When none is found and
        ``confound_columns`` is non-empty, that is an error (pass ``confound_columns=()``).
    confound_columns : sequence of str or None
        Columns to keep (``None``: all; empty: no confounds).
    tr : float, optional
        Stated TR; overrides the files but must agree with them within 1 %.
    words_offset_s : float
        Scan time (s) at which the word file's clock reads 0; ``t0 = -words_offset_s``.
    dataset, task, subject : str, optional
        Identity; ``task``/``subject`` default to the file's ``task-``/``sub-`` entities.
    root : path, optional
        Dataset root bounding the sidecar inheritance search.

    Returns
    -------
    Run
        ``space="fsaverage5"``, data of shape (n_trs, 20484). ``meta`` holds the source files,
        the TR's origin, the native mesh and the vertices that came out NaN (outside a
        volume's field of view, or NaN in a GIfTI): ``nan_vertices``, indices, set to 0 in
        ``data`` (with a warning); more than half of them for a volume is an error. Vertices
        of a volume that are NaN because of NaN voxels *inside* the field of view are broken
        data: ``nan_in_brain_vertices``, left NaN (with a warning and an entry in
        ``meta["warnings"]``) so that the data gates reject the run.

    Raises
    ------
    DataError
        Missing files, TR disagreement, volume count differing from the confounds rows,
        GIfTI vertex counts that are not fsaverage5/6, words outside the scan.
    """
    if isinstance(func_path, (tuple, list)):
        left, right = (Path(p) for p in func_path)
        func = left
    else:
        func = Path(func_path)
        left = right = None
    if not func.is_file():
        raise DataError(func, "func file not found")
    if left is None and func.name.endswith(".func.gii"):
        left, right = _hemi_pair(func)
        func = left  # the left file names the run in messages and meta
    b = parse_bids_name(func)
    meta: dict = {"source": str(func)}

    if left is not None:
        data, native = read_gifti_pair(left, right)
        meta |= {"source_right": str(right), "native_space": native}
        header_tr = None
        img = None  # no volume: the data are on the surface already
    else:
        img = _load_volume(func)
        header_tr = _header_tr(img)
        n_vol = img.shape[3]
        meta["native_space"] = b.get("space") if b is not None else "volume"
        data = None  # projected once the cheap checks (TR, confounds) have passed
    sidecar = find_sidecar(func, root)
    tr_value, tr_origin = resolve_tr(func, tr, sidecar, _sidecar_tr(sidecar), header_tr)
    meta |= {"tr_origin": tr_origin, "sidecar": None if sidecar is None else str(sidecar)}

    # confounds before the projection: a row-count mismatch is cheap to detect
    n_t = data.shape[0] if left is not None else n_vol
    confounds = _read_run_confounds(func, b, confounds_path, confound_columns, n_t, meta)

    words = read_words(words_path)
    meta["words_source"] = str(words_path)
    meta["words_info"] = {k: v for k, v in words.attrs.items() if k != "source"}
    meta["words_offset_s"] = float(words_offset_s)

    data = _surface_data(func, left, img, data, meta)

    sub = subject or (b.get("sub") if b is not None else None) or func.name.split("_")[0]
    run = Run(
        dataset=dataset,
        subject=str(sub),
        task=task or (b.get("task") if b is not None else None) or "unknown",
        tr=tr_value,
        space="fsaverage5",
        data=data,
        confounds=confounds,
        words=words,
        t0=-float(words_offset_s),
        meta=meta | ({"bids_entities": dict(b.entities)} if b is not None else {}),
    )
    run.check_words_within_scan()
    return run


def _read_run_confounds(func: Path, b: BidsName | None, confounds_path: str | Path | None,
                        confound_columns: Sequence[str] | None, n_t: int, meta: dict) -> pd.DataFrame | None:
    """The run's confounds (None when ``confound_columns`` is empty), checked to have ``n_t`` rows.

    The table is ``confounds_path`` or the one beside ``func``; its path goes to ``meta``.
    """
    conf_path = Path(confounds_path) if confounds_path is not None else find_confounds(func)
    want_confounds = confound_columns is None or len(confound_columns) > 0
    confounds = None
    if conf_path is None and want_confounds:
        raise DataError(
            func,
            f"no fMRIPrep confounds table beside it (looked for {b.run_prefix if b else func.name}"
            f"{{{', '.join(CONFOUNDS_SUFFIXES)}}}); give confounds_path or confound_columns=()",
            "confounds",
        )
    if conf_path is not None and want_confounds:
        confounds = read_confounds(conf_path, confound_columns)
        if len(confounds) != n_t:
            raise DataError(
                func,
                f"{n_t} volumes but the confounds table {conf_path} has {len(confounds)} rows; "
                "both must describe the same volumes",
                "confounds",
            )
        meta["confounds_source"] = str(conf_path)
    return confounds


def load_bids_dataset(cfg: BidsDataset, failures: list[LoadFailure] | None = None) -> list[Run]:
    """Load every run of ``cfg.task`` under ``cfg.path`` (see the module docstring).

    One words file (``cfg.words``, relative to ``cfg.path``) serves every subject: it describes
    the stimulus. A subject with several runs of the task gets ``subject = "<sub>_run-<r>"``
    (and ``_ses-<x>``) so that run ids stay unique. With ``failures`` (a list), a run whose
    files cannot be read is appended to it as a :class:`~brainlike.data.run.LoadFailure` and
    the other runs are loaded; without, the first such error is raised.

    Returns
    -------
    list of Run, sorted by subject, session and run.
    """
    root = Path(cfg.path)
    if cfg.func == "gifti" and cfg.space not in _GIFTI_SPACES:
        raise ConfigError(f"dataset {cfg.name!r}: func = gifti needs space fsaverage5 or fsaverage6, got {cfg.space!r}")
    words = cfg.words if cfg.words.is_absolute() else root / cfg.words
    if not words.is_file():
        raise DataError(words, f"word timing file of dataset {cfg.name!r} not found", "words")
    found = find_func_files(root, cfg.task, cfg.func, cfg.space, cfg.subjects)
    if not found:
        pattern = (
            f"sub-*_task-{cfg.task}[_run-*]_space-{cfg.space}_desc-preproc_bold.nii.gz"
            if cfg.func == "volume"
            else f"sub-*_task-{cfg.task}[_run-*]_space-{cfg.space}_hemi-L|R_bold.func.gii"
        )
        raise DataError(root, f"no func files matching {pattern} in any sub-*/func/ folder")
    per_sub: dict[str, int] = {}
    for files in found:
        per_sub[files[0].get("sub")] = per_sub.get(files[0].get("sub"), 0) + 1
    runs = []
    for files in found:
        b = files[0]
        subject = b.get("sub")
        if per_sub[subject] > 1:
            subject += "".join(f"_{k}-{b.get(k)}" for k in ("ses", "run", "acq", "echo") if b.get(k) is not None)
        try:
            runs.append(
                load_bids_run(
                    tuple(f.path for f in files) if len(files) == 2 else files[0].path,
                    words,
                    confound_columns=cfg.confounds,
                    tr=cfg.tr,
                    words_offset_s=cfg.words_offset_s,
                    dataset=cfg.name,
                    task=cfg.task,
                    subject=subject,
                    root=root,
                )
            )
        except DataError as exc:
            if failures is None:
                raise
            failures.append(LoadFailure.from_error(exc, cfg.name, subject, cfg.task))
    return runs
