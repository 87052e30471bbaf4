"""BIDS file names and the files of a run: func files by entities, confounds, sidecars, words.

How the names are matched (entity order, fMRIPrep versions, several candidates for one run) is
described in :mod:`~brainlike.data.loaders.bids`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from .confounds import CONFOUNDS_SUFFIXES

_EXTENSIONS = (".func.gii", ".nii.gz", ".nii", ".json", ".tsv", ".gii")
_ENTITY = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9+.]+)$")
# Entities that identify a run's acquisition (confounds and sidecars share them).
_RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")


@dataclass(frozen=True)
class BidsName:
    """A parsed BIDS file name: ``entities`` in file order, ``suffix`` and ``extension``."""

    path: Path
    entities: dict
    suffix: str
    extension: str

    def get(self, key: str, default=None):
        return self.entities.get(key, default)

    @property
    def run_prefix(self) -> str:
        """``sub-X[_ses-Y]_task-Z[...]_run-N``: the entities shared by a run's files."""
        return "_".join(f"{k}-{self.entities[k]}" for k in _RUN_ENTITIES if k in self.entities)


def parse_bids_name(path: str | Path) -> BidsName | None:
    """Parse ``sub-01_task-x_run-1_space-y_desc-preproc_bold.nii.gz``; None if not BIDS-like."""
    path = Path(path)
    name = path.name
    ext = next((e for e in _EXTENSIONS if name.endswith(e)), None)
    if ext is None or not name.startswith("sub-"):
        return None
    parts = name[: -len(ext)].split("_")
    entities: dict = {}
    for part in parts[:-1]:
        m = _ENTITY.match(part)
        if m is None:
            return None
        entities[m.group(1)] = m.group(2)
    last = parts[-1]
    m = _ENTITY.match(last)
    if m is not None:  # no suffix (non-standard derivatives, e.g. ..._desc-clean.func.gii)
        entities[m.group(1)] = m.group(2)
        last = ""
    return BidsName(path, entities, last, ext)


# --------------------------------------------------------------------------- discovery
def find_func_files(
    root: str | Path,
    task: str,
    func: str = "volume",
    space: str = "MNI152NLin2009cAsym",
    subjects: Sequence[str] | None = None,
) -> list[tuple[BidsName, ...]]:
    """Func files of ``task`` under ``root`` (searched recursively, ``func/`` folders only).

    Returns
    -------
    list of tuples
        ``(volume,)`` for volumes, ``(left, right)`` for GIfTI, sorted by subject, session, run.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "BIDS dataset folder not found")
    wanted = None if subjects is None else {str(s).removeprefix("sub-") for s in subjects}
    groups: dict[tuple, dict[str, list[BidsName]]] = {}
    for f in sorted(root.rglob("sub-*")):
        if f.parent.name != "func" or not f.is_file():
            continue
        b = parse_bids_name(f)
        if b is None or b.get("task") != task or b.get("space") != space:
            continue
        if wanted is not None and b.get("sub") not in wanted:
            continue
        if func == "volume":
            if b.extension not in (".nii.gz", ".nii") or b.suffix != "bold" or b.get("desc") != "preproc":
                continue
            slot = "vol"
        else:
            # fMRIPrep < 20.2 wrote no suffix: ..._space-fsaverage6_hemi-L.func.gii
            if b.extension != ".func.gii" or b.suffix not in ("bold", "") or b.get("hemi") not in ("L", "R"):
                continue
            slot = b.get("hemi")
        groups.setdefault(_sort_key(b), {}).setdefault(slot, []).append(b)
    if wanted is not None:
        found = {k[0] for k in groups}
        lost = sorted(wanted - found)
        if lost:
            raise DataError(root, f"no {func} func file for task {task!r}, space {space!r} for subject(s) {lost}", "subjects")
    out = []
    for key in sorted(groups):
        slots = groups[key]
        for slot, files in slots.items():
            plain = [f for f in files if f.get("desc") is None]
            if len(files) > 1 and len(plain) == 1:  # fMRIPrep's own file beside derived ones
                slots[slot] = files = plain
            if len(files) > 1:
                raise DataError(
                    files[0].path.parent,
                    f"{len(files)} candidate func files for the same run: {[f.path.name for f in files]}; "
                    "point the dataset path at a single derivatives folder",
                )
        if func == "volume":
            out.append((slots["vol"][0],))
        else:
            for hemi in ("L", "R"):
                if hemi not in slots:
                    other = slots["R" if hemi == "L" else "L"][0]
                    raise DataError(other.path, f"the hemi-{hemi} GIfTI of this run is missing; both hemispheres are needed")
            out.append((slots["L"][0], slots["R"][0]))
    return out


def _sort_key(b: BidsName) -> tuple:
    def num(v):
        return (0, int(v), "") if v is not None and v.isdigit() else (1, 0, v or "")

    return (b.get("sub"), num(b.get("ses")), num(b.get("run")), b.get("acq") or "", b.get("echo") or "")


def find_confounds(func_path: str | Path) -> Path | None:
    """The fMRIPrep confounds table beside ``func_path`` (newest naming first), or None."""
    b = parse_bids_name(func_path)
    if b is None:
        return None
    for suffix in CONFOUNDS_SUFFIXES:
        cand = b.path.parent / f"{b.run_prefix}{suffix}"
        if cand.is_file():
            return cand
    return None


def find_sidecar(func_path: str | Path, root: str | Path | None = None) -> Path | None:
    """JSON sidecar of ``func_path``: same name, else BIDS inheritance up to ``root``."""
    func_path = Path(func_path)
    b = parse_bids_name(func_path)
    same = func_path.parent / (func_path.name[: -len(b.extension)] + ".json" if b else func_path.stem + ".json")
    if same.is_file():
        return same
    if b is None or b.get("task") is None:
        return None
    names = [f"{b.run_prefix}_bold.json", f"sub-{b.get('sub')}_task-{b.get('task')}_bold.json", f"task-{b.get('task')}_bold.json"]
    folder = func_path.parent
    stop = Path(root).resolve() if root is not None else None
    for _ in range(6):  # func/ -> ses-/ -> sub-/ -> root (-> derivatives parents)
        for n in names:
            if (folder / n).is_file():
                return folder / n
        if stop is not None and folder.resolve() == stop or folder.parent == folder:
            break
        folder = folder.parent
    return None


def find_words_file(func_path: str | Path) -> Path | None:
    """A word table beside a func file: ``<run>_events.tsv``, else the only TextGrid / align.json."""
    func_path = Path(func_path)
    b = parse_bids_name(func_path)
    if b is not None:
        for name in (f"{b.run_prefix}_events.tsv", f"{b.run_prefix}_words.tsv"):
            if (func_path.parent / name).is_file():
                return func_path.parent / name
    for pattern in ("*.TextGrid", "*.textgrid", "*align*.json"):
        hits = sorted(func_path.parent.glob(pattern))
        if len(hits) == 1:
            return hits[0]
    return None


def _hemi_pair(path: Path) -> tuple[Path, Path]:
    b = parse_bids_name(path)
    if b is None or b.get("hemi") not in ("L", "R"):
        raise DataError(path, "GIfTI func file name lacks a hemi-L or hemi-R entity; pass (left, right) explicitly", "hemi")
    other = "R" if b.get("hemi") == "L" else "L"
    sibling = path.parent / path.name.replace(f"hemi-{b.get('hemi')}", f"hemi-{other}", 1)
    if not sibling.is_file():
        raise DataError(sibling, f"hemi-{other} GIfTI of {path.name} not found; both hemispheres are needed")
    return (path, sibling) if other == "R" else (sibling, path)
