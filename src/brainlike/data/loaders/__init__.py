"""Loaders: user datasets -> :class:`~brainlike.data.run.Run`.

``load_dataset(cfg)`` follows a params.yaml ``datasets`` entry; ``load_path(path)`` guesses
what a path is (for ``brainlike validate PATH...``).
"""

from __future__ import annotations

from pathlib import Path

from ...config import AliceDataset, BidsDataset
from ...errors import DataError
from ..run import LoadFailure, Run
from ..store import MANIFEST, iter_runs, read_run
from .alice import is_alice_folder, load_alice
from .bids import find_confounds, find_words_file, load_bids_dataset, load_bids_run, parse_bids_name
from .confounds import MOTION_COLUMNS, read_confounds
from .words import read_textgrid, read_words

__all__ = [
    "load_alice",
    "load_bids_dataset",
    "load_bids_run",
    "load_dataset",
    "load_path",
    "read_confounds",
    "read_textgrid",
    "read_words",
]


def load_dataset(cfg: AliceDataset | BidsDataset, failures: list[LoadFailure] | None = None) -> list[Run]:
    """Load every run of one ``datasets`` entry of params.yaml, dispatching on ``cfg.kind``.

    With ``failures`` (a list), a run whose files cannot be read is appended to it as a
    :class:`~brainlike.data.run.LoadFailure` and the others are loaded; without, it raises.
    """
    if isinstance(cfg, AliceDataset):
        return load_alice(cfg.path, cfg.subjects, name=cfg.name, failures=failures)
    if isinstance(cfg, BidsDataset):
        return load_bids_dataset(cfg, failures=failures)
    raise TypeError(f"no loader for dataset config of type {type(cfg).__name__} (kind {getattr(cfg, 'kind', None)!r})")


def load_path(
    path: str | Path,
    words: str | Path | None = None,
    *,
    tr: float | None = None,
    words_offset_s: float = 0.0,
    failures: list[LoadFailure] | None = None,
) -> list[Run]:
    """Load whatever ``path`` is.

    ``failures``: as in :func:`load_dataset`, for an Alice folder (a subject that cannot be
    read is recorded there and the other subjects are loaded).

    Recognised, in this order:

    - a prepared-data store root (holds ``manifest.json``): every run it lists;
    - a prepared run folder (holds ``run.json``);
    - an Alice folder (``roi_6mm/``, ``regressors/``, ``stimulus/``): every subject;
    - a BIDS func file (``sub-*.nii[.gz]`` or ``sub-*.func.gii``): with ``words`` or the word
      file beside it (``<run>_events.tsv``, else the only ``*.TextGrid`` / ``*align*.json``),
      and the fMRIPrep confounds beside it when there are some (motion columns).

    Raises
    ------
    DataError
        The path does not exist or is none of the above.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "not found")
    if path.is_dir():
        if (path / MANIFEST).is_file():
            return list(iter_runs(path))
        if (path / "run.json").is_file():
            return [read_run(path)]
        if is_alice_folder(path):
            return load_alice(path, failures=failures)
        raise DataError(
            path,
            "folder not recognised: expected a prepared store (manifest.json), a prepared run (run.json) "
            "or an Alice folder (roi_6mm/, regressors/, stimulus/); for a BIDS dataset give a func file "
            "or a params.yaml datasets entry",
        )
    b = parse_bids_name(path)
    if b is None or b.extension not in (".nii", ".nii.gz", ".func.gii"):
        raise DataError(path, "file not recognised: expected a BIDS func file sub-*_task-*_bold.nii[.gz] or .func.gii")
    words_path = Path(words) if words is not None else find_words_file(path)
    if words_path is None:
        raise DataError(path, "no word timing file beside this func file (<run>_events.tsv, *.TextGrid, *align*.json); pass words=")
    conf = find_confounds(path)
    return [
        load_bids_run(
            path,
            words_path,
            conf,
            confound_columns=MOTION_COLUMNS if conf is not None else (),
            tr=tr,
            words_offset_s=words_offset_s,
        )
    ]
