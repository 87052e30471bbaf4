"""The JSON summary of one subject's (or the group's) fit: held-out r, GLM and permutation counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import EncodingConfig


def _top_mean(r: np.ndarray, fraction: float) -> float | None:
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return None
    n = max(1, int(np.ceil(fraction * r.size)))
    return float(np.sort(r)[-n:].mean())


def _num(x) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def summarise(maps: dict, targets: pd.DataFrame, cfg: EncodingConfig) -> dict:
    """JSON summary of one subject's (or the group's) maps and target scores.

    ``r_mean`` = mean held-out r over non-constant targets; ``r_top`` = mean r of the top
    ``cfg.top_fraction_r`` of them (the top decile by default); ``n_glm_significant`` = targets
    significant (BH-FDR per atom) for at least one atom; ``n_atoms_significant`` = atoms with at
    least one significant target; ``n_atoms_untested`` = atoms whose own effect is not
    estimable (outside the design's row space), hence not tested; ``n_targets_significant`` =
    permutation-tested targets with BH q < fdr_alpha.
    """
    valid = maps["valid"]
    r = maps["r"][valid]
    sig = maps["significant"][:, valid]
    out = {
        "n_targets": int(valid.sum()),
        "r_mean": _num(np.nanmean(r)) if np.isfinite(r).any() else None,
        "r_top": _top_mean(r, cfg.top_fraction_r),
        "r2_mean": _num(np.nanmean(maps["r2"][valid])) if np.isfinite(maps["r2"][valid]).any() else None,
        "n_glm_significant": int(sig.any(0).sum()),
        "n_atoms_significant": int(sig.any(1).sum()),
    }
    if "estimable" in maps:  # atoms outside the design's row space are not tested
        out["n_atoms_untested"] = int((~np.asarray(maps["estimable"])).sum())
    if len(targets):
        out["targets_r_mean"] = _num(targets["r"].mean())
        out["targets_r_max"] = _num(targets["r"].max())
        out["n_targets_significant"] = int((targets["q"] < cfg.fdr_alpha).sum()) if targets["q"].notna().any() else None
    return out
