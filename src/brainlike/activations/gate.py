"""The `activations` data gate (Great Expectations suite of the validation layer) on a stored set."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import ValidationConfig
from ..errors import DataError
from .store import ActivationSet


def gate_activation_set(folder: str | Path, cfg: ValidationConfig | None = None, gates=None) -> list:
    """Validate every (grid, layer) of a stored activation set, one layer in memory at a time.

    Returns the failures (``brainlike.validation.Failure``); empty when the set passes: finite
    values, one row per TR of the grid, constant ANs below ``max_constant_an_fraction``.
    ``gates``: a ``brainlike.validation.Gates`` of ``cfg`` to reuse (default: a new one).
    """
    import pandas as pd

    from ..validation import Gates
    from ..validation.frames import activation_frames

    aset = ActivationSet(folder)
    gates = gates or Gates(cfg)
    failures = []
    for gid, grid in aset.grids.items():
        # Summaries are built chunk by chunk (bounded memory) and validated once per grid.
        nonfinite, units = None, []
        for chunk in aset.iter_chunks(gid):
            r, u = activation_frames(chunk.values)
            nonfinite = r["n_nonfinite"].to_numpy() if nonfinite is None else nonfinite + r["n_nonfinite"].to_numpy()
            units.append(u.assign(tower=chunk.tower, layer=chunk.layer))
        units_df = pd.concat(units, ignore_index=True).assign(unit=lambda d: range(len(d)))
        rows = pd.DataFrame({"row": range(len(nonfinite)), "n_nonfinite": nonfinite})
        name = f"{Path(folder).parent.name}/{Path(folder).name}/{gid}"
        failures += gates.validate_activation_summaries(rows, units_df, grid["n_trs"], name)
    return failures


# The gate in a helper process (Executor.side_process): GX's import (~4 s) and its context
# are built once there, on the other core, while the stage loads the model and runs it.
_HELPER_GATES = None


def warm_gates(cfg: ValidationConfig | None = None) -> None:
    """Initializer of a gate helper process: import GX and build the suites now."""
    global _HELPER_GATES
    from ..validation import Gates

    _HELPER_GATES = Gates(cfg)


def gate_in_helper(folder: str | Path, cfg: ValidationConfig | None = None) -> list:
    """:func:`gate_activation_set` with the helper's suites (built by :func:`warm_gates`)."""
    return gate_activation_set(folder, cfg, gates=_HELPER_GATES)


def enforce_activation_gate(folder: str | Path, cfg: ValidationConfig | None = None,
                            failures: list | None = None) -> None:
    """Run :func:`gate_activation_set` (or take its ``failures``, run elsewhere); on failure
    remove the set and raise :class:`DataError`.

    A set that fails the gate must not look complete to later stages.
    """
    if failures is None:
        failures = gate_activation_set(folder, cfg)
    if failures:
        shutil.rmtree(folder, ignore_errors=True)
        lines = "\n".join(f"  - {f.message()}" for f in failures[:20])
        more = f"\n  ... and {len(failures) - 20} more" if len(failures) > 20 else ""
        raise DataError(folder, f"activations failed the data gate (output removed):\n{lines}{more}")
