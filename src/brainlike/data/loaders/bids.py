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
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from ...config import BidsDataset
from ...errors import ConfigError, DataError
from ..run import LoadFailure, Run
from ..surfaces import (
    N_FSAVERAGE5_HEMI,
    N_FSAVERAGE6_HEMI,
    fsaverage6_to_5,
    nan_vertices,
    project_volume_to_fsaverage5,
)
from .confounds import CONFOUNDS_SUFFIXES, MOTION_COLUMNS, read_confounds
from .words import read_words

TR_TOLERANCE = 0.01  # relative disagreement tolerated between stated, sidecar and header TR
MAX_NAN_FRACTION = 0.5  # more vertices outside the field of view than this: wrong space
_EXTENSIONS = (".func.gii", ".nii.gz", ".nii", ".json", ".tsv", ".gii")
_ENTITY = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9+.]+)$")
# Entities that identify a run's acquisition (confounds and sidecars share them).
_RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
_GIFTI_SPACES = {"fsaverage5": N_FSAVERAGE5_HEMI, "fsaverage6": N_FSAVERAGE6_HEMI}


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


# --------------------------------------------------------------------------- TR
def _sidecar_tr(sidecar: Path | None) -> float | None:
    if sidecar is None:
        return None
    try:
        doc = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(sidecar, f"sidecar is not valid JSON: {exc}") from None
    tr = doc.get("RepetitionTime") if isinstance(doc, dict) else None
    if tr is None:
        return None
    if not isinstance(tr, (int, float)) or not tr > 0:
        raise DataError(sidecar, f"RepetitionTime must be a positive number of seconds, got {tr!r}", "RepetitionTime")
    return float(tr)


def _header_tr(img) -> float | None:
    """4th zoom of a NIfTI header in seconds; None when absent or its time unit is unknown."""
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)) or img.ndim != 4:
        return None
    unit = img.header.get_xyzt_units()[1]
    scale = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(unit)
    tr = float(img.header.get_zooms()[3])
    if scale is None or not tr > 0:
        return None
    return tr * scale


def resolve_tr(
    func_path: Path,
    stated: float | None,
    sidecar: Path | None,
    sidecar_tr: float | None,
    header_tr: float | None,
) -> tuple[float, str]:
    """Pick the TR and say where it came from; raise when sources disagree by > 1 %."""
    found = []
    if sidecar_tr is not None:
        found.append((sidecar_tr, f"sidecar {sidecar} RepetitionTime", sidecar))
    if header_tr is not None:
        found.append((header_tr, "NIfTI header (pixdim[4])", func_path))
    if stated is not None:
        for value, where, path in found:
            if abs(value - stated) > TR_TOLERANCE * stated:
                raise DataError(
                    path,
                    f"TR mismatch: {where} says {value:g} s but the stated TR is {stated:g} s "
                    f"(more than {TR_TOLERANCE:.0%} apart); fix the file or the configured tr",
                    "RepetitionTime",
                )
        return float(stated), "stated"
    if not found:
        raise DataError(func_path, "no TR: no sidecar RepetitionTime, no header TR; set `tr` in the dataset config", "RepetitionTime")
    if len(found) == 2 and abs(found[0][0] - found[1][0]) > TR_TOLERANCE * found[0][0]:
        raise DataError(
            func_path,
            f"TR mismatch: {found[0][1]} says {found[0][0]:g} s but the NIfTI header says {found[1][0]:g} s; "
            "set `tr` in the dataset config to the true value",
            "RepetitionTime",
        )
    return found[0][0], "sidecar" if sidecar_tr is not None else "header"


# --------------------------------------------------------------------------- reading data
def read_gifti_pair(left: str | Path, right: str | Path) -> tuple[np.ndarray, str]:
    """Read both hemispheres of a GIfTI func run, returning fsaverage5 data.

    Returns
    -------
    data : array of shape (n_trs, 20484), float32
    native : {"fsaverage5", "fsaverage6"}
        The mesh the files were on.
    """
    hemis = []
    for path in (Path(left), Path(right)):
        arr = _read_gifti(path)
        n = arr.shape[1]
        if n not in _GIFTI_SPACES.values():
            raise DataError(
                path,
                f"GIfTI has {n} vertices; expected {N_FSAVERAGE5_HEMI} (fsaverage5) or {N_FSAVERAGE6_HEMI} "
                "(fsaverage6) per hemisphere",
                "vertices",
            )
        b = parse_bids_name(path)
        declared = b.get("space") if b is not None else None
        if declared in _GIFTI_SPACES and _GIFTI_SPACES[declared] != n:
            raise DataError(path, f"file name says space-{declared} ({_GIFTI_SPACES[declared]} vertices) but it holds {n}", "space")
        hemis.append((path, arr))
    (lp, la), (rp, ra) = hemis
    if la.shape != ra.shape:
        raise DataError(rp, f"right hemisphere has shape {ra.shape} (time x vertices) but the left one {lp} has {la.shape}")
    native = "fsaverage6" if la.shape[1] == N_FSAVERAGE6_HEMI else "fsaverage5"
    if native == "fsaverage6":
        la, ra = fsaverage6_to_5(la, lp), fsaverage6_to_5(ra, rp)
    return np.ascontiguousarray(np.concatenate([la, ra], axis=1), dtype=np.float32), native


def _read_gifti(path: Path) -> np.ndarray:
    """(n_trs, n_vertices) from one darray per volume, or one 2-D darray."""
    if not path.is_file():
        raise DataError(path, "GIfTI func file not found")
    try:
        img = nib.load(str(path))
        arrays = [np.asarray(d.data) for d in img.darrays]
    except Exception as exc:  # nibabel raises many types on corrupt XML / encodings
        raise DataError(path, f"cannot read GIfTI: {exc}") from None
    if not arrays:
        raise DataError(path, "GIfTI holds no data arrays")
    if len(arrays) == 1 and arrays[0].ndim == 2:
        a = arrays[0]
        # vertices x time is the usual layout; accept time x vertices when unambiguous
        return a.T if a.shape[0] in _GIFTI_SPACES.values() or a.shape[1] not in _GIFTI_SPACES.values() else a
    if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
        raise DataError(path, f"expected one 1-D data array per volume, got shapes {sorted({a.shape for a in arrays})}")
    return np.stack(arrays, axis=0)


def _load_volume(path: Path):
    if not path.is_file():
        raise DataError(path, "func file not found")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, OSError, EOFError...
        raise DataError(path, f"cannot read NIfTI: {exc}") from None
    if img.ndim != 4:
        raise DataError(path, f"expected a 4-D (x, y, z, time) volume, got shape {img.shape}")
    return img


# --------------------------------------------------------------------------- public API
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
    else:
        img = _load_volume(func)
        header_tr = _header_tr(img)
        n_vol = img.shape[3]
        meta["native_space"] = b.get("space") if b is not None else "volume"
    sidecar = find_sidecar(func, root)
    tr_value, tr_origin = resolve_tr(func, tr, sidecar, _sidecar_tr(sidecar), header_tr)
    meta |= {"tr_origin": tr_origin, "sidecar": None if sidecar is None else str(sidecar)}

    # confounds before the projection: a row-count mismatch is cheap to detect
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
    n_t = data.shape[0] if left is not None else n_vol
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

    words = read_words(words_path)
    meta["words_source"] = str(words_path)
    meta["words_info"] = {k: v for k, v in words.attrs.items() if k != "source"}
    meta["words_offset_s"] = float(words_offset_s)

    in_brain = np.array([], dtype=np.int64)
    if left is None:
        data = project_volume_to_fsaverage5(img, warn=False)
        bad = nan_vertices(data)
        if bad.size:
            bad, in_brain = _split_nan_vertices(img, bad)
    else:
        bad = nan_vertices(data)
    if left is None and bad.size > MAX_NAN_FRACTION * data.shape[1]:
        raise DataError(
            func,
            f"{bad.size} of {data.shape[1]} fsaverage5 vertices fall outside the volume's field of view; "
            "expected a volume in MNI space (space- entity) covering the cortex",
            "space",
        )
    if bad.size:
        # a vertex without signal stays a constant 0 column, which the validation gates count
        why = "outside the field of view" if left is None else "holding NaN"
        warnings.warn(f"{func}: {bad.size} fsaverage5 vertices {why} were set to 0", stacklevel=2)
        data[:, bad] = 0.0
    if in_brain.size:
        # NaN voxels inside the field of view are broken data, not missing coverage: they stay
        # NaN so that the data gates (no_nan / no_nonfinite) reject the run
        n_tr = int(np.isnan(data[:, in_brain]).any(axis=1).sum())
        msg = (
            f"{in_brain.size} fsaverage5 vertices inside the field of view hold NaN from NaN voxels of the "
            f"volume (in {n_tr} of {data.shape[0]} volumes); left NaN, so the data gates reject this run"
        )
        warnings.warn(f"{func}: {msg}", stacklevel=2)
        meta.setdefault("warnings", []).append(msg)
    meta["nan_vertices"] = bad.tolist()
    meta["nan_in_brain_vertices"] = in_brain.tolist()

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


def _split_nan_vertices(img, bad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split NaN vertices of a projected volume into outside-the-field-of-view and NaN-voxel ones.

    The mask of NaN voxels (1 where a voxel is NaN in any volume, else 0) is finite, so its
    projection is NaN exactly where the vertex lies outside the image; a vertex that is NaN in
    the data but finite in the mask projection got its NaN from NaN voxels inside the image.

    Parameters
    ----------
    img : nibabel image, 3-D or 4-D
    bad : array of int
        Indices of vertices holding NaN in the projected data.

    Returns
    -------
    outside, in_brain : arrays of int
        A partition of ``bad``.
    """
    vox = np.asanyarray(img.dataobj)
    nan_vox = np.isnan(vox).any(axis=-1) if vox.ndim == 4 else np.isnan(vox)
    if not nan_vox.any():
        return bad, np.array([], dtype=np.int64)
    mask = nib.Nifti1Image(nan_vox.astype(np.float32), img.affine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        proj = project_volume_to_fsaverage5(mask, warn=False)[0]
    inside = np.isfinite(proj[bad])
    return bad[~inside], bad[inside]


def _hemi_pair(path: Path) -> tuple[Path, Path]:
    b = parse_bids_name(path)
    if b is None or b.get("hemi") not in ("L", "R"):
        raise DataError(path, "GIfTI func file name lacks a hemi-L or hemi-R entity; pass (left, right) explicitly", "hemi")
    other = "R" if b.get("hemi") == "L" else "L"
    sibling = path.parent / path.name.replace(f"hemi-{b.get('hemi')}", f"hemi-{other}", 1)
    if not sibling.is_file():
        raise DataError(sibling, f"hemi-{other} GIfTI of {path.name} not found; both hemispheres are needed")
    return (path, sibling) if other == "R" else (sibling, path)


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
