"""The TR of a BIDS func run: JSON sidecar, NIfTI header or the stated value, checked against
each other (rules in :mod:`~brainlike.data.loaders.bids`)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib

from ...errors import DataError

TR_TOLERANCE = 0.01  # relative disagreement tolerated between stated, sidecar and header TR


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
