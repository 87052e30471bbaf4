"""fMRIPrep confounds tables.

Accepted files: ``*_desc-confounds_timeseries.tsv`` (fMRIPrep >= 20), the older
``*_desc-confounds_regressors.tsv`` (1.2-1.5, same column names) and the oldest
``*_bold_confounds.tsv`` (< 1.2), whose CamelCase motion names (``X``, ``RotX``,
``FramewiseDisplacement``...) are renamed to the current ones so one configuration serves all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...errors import DataError

CONFOUNDS_SUFFIXES = (
    "_desc-confounds_timeseries.tsv",
    "_desc-confounds_regressors.tsv",
    "_bold_confounds.tsv",
)
MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
_OLD_NAMES = {
    "X": "trans_x",
    "Y": "trans_y",
    "Z": "trans_z",
    "RotX": "rot_x",
    "RotY": "rot_y",
    "RotZ": "rot_z",
    "FramewiseDisplacement": "framewise_displacement",
    "stdDVARS": "std_dvars",
    "non-stdDVARS": "dvars",
    "GlobalSignal": "global_signal",
    "WhiteMatter": "white_matter",
}
# Columns computed from differences between volumes: undefined (n/a) at the first volume.
_DIFFERENCE_COLUMNS = re.compile(r"derivative|^framewise_displacement$|^(std_|non_std_)?dvars$|^rmsd$")


def read_confounds(path: str | Path, columns: Sequence[str] | None = MOTION_COLUMNS) -> pd.DataFrame:
    """Read an fMRIPrep confounds TSV and keep the configured columns.

    The leading NaN rows of difference columns (``*_derivative1*``, ``framewise_displacement``,
    ``dvars``, ``std_dvars``, ``rmsd``) are set to 0: the first volume has no predecessor, and 0
    is fMRIPrep's and nilearn's usual fill. Any other missing value is an error.

    Parameters
    ----------
    path : str or Path
    columns : sequence of str or None
        Columns to keep, in this order; ``None`` keeps every column.

    Returns
    -------
    DataFrame of shape (n_volumes, n_columns), float64

    Raises
    ------
    DataError
        Missing file, unreadable table, a missing column (named, with what is available) or a
        non-numeric / missing value outside the leading rows of a difference column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "confounds file not found")
    try:
        table = pd.read_csv(path, sep="\t", na_values=["n/a", "NaN", "nan"], keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read as a tab-separated confounds table: {exc}") from None
    table = table.rename(columns={k: v for k, v in _OLD_NAMES.items() if k in table.columns and v not in table.columns})
    if columns is not None:
        columns = list(columns)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            shown = ", ".join(map(str, table.columns[:40])) + (" ..." if table.shape[1] > 40 else "")
            raise DataError(
                path,
                f"confounds column(s) {missing} not found; available: {shown}",
                missing[0],
            )
        table = table[columns]
    out = pd.DataFrame(index=table.index)
    for col in table.columns:
        values = np.array(pd.to_numeric(table[col], errors="coerce"), dtype=np.float64)  # writable copy
        nan = ~np.isfinite(values)
        if nan.any() and _DIFFERENCE_COLUMNS.search(str(col)):
            lead = int(np.argmin(nan)) if not nan.all() else nan.size
            values[:lead] = 0.0
            nan[:lead] = False
        if nan.any():
            i = int(np.flatnonzero(nan)[0])
            raise DataError(path, f"row {i} is missing or not numeric ({table[col].iloc[i]!r}); expected a number", str(col))
        out[str(col)] = values
    return out.reset_index(drop=True)
