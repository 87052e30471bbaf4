"""Confidence intervals of the organization metrics, each with its stated resampling unit.

The organization metrics of a model come from one dictionary and one set of group maps, so
subjects are not a resampling unit here (re-running the spin tests per resample would cost
``n_boot`` networks stages). The units, stated in every output:

- ``time`` -- the metrics built from correlations of the temporal atoms
  (``within_fbn_consistency`` (+ ``_unsigned``), ``diversity``, ``balance``): moving-block
  bootstrap of the atoms' TRs (blocks of ``block_trs``, which keeps the autocorrelation within a
  block), the links held fixed: the uncertainty of the correlations given the links;
- ``atoms`` -- ``compactness``: Wilson score interval of (linked atoms) / K; per-atom values
  (``cross_subject_consistency``, ``layer_entropy_mean``, ``layer_entropy_linked_mean``,
  ``modality_share_linked_mean``): percentile bootstrap over atoms;
- ``fbns`` -- per-network values (``redundancy_mean_dice``, ``polarity_mean``): bootstrap over
  the networks that define them.

:func:`marginal_consistency` gives both consistencies on the links of the *marginal* maps (each
atom fitted alone), with the same time bootstrap.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .links import fbn_couplings, linked_atoms
from .temporal import balance, diversity_of, fbn_pair_means


def block_resamples(n_rows: int, block: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """Row indices of ``n_boot`` moving-block bootstrap resamples, shape (n_boot, n_rows)."""
    block = max(1, min(int(block), n_rows))
    n_blocks = math.ceil(n_rows / block)
    starts = np.random.default_rng(seed).integers(0, n_rows - block + 1, size=(int(n_boot), n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(int(n_boot), -1)
    return idx[:, :n_rows]


def _pct(values, ci: float) -> tuple[float | None, float | None]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return None, None
    lo, hi = np.percentile(v, [50 * (1 - ci), 50 * (1 + ci)])
    return float(lo), float(hi)


def _mean_boot(values, n_boot: int, ci: float, seed: int) -> tuple[float | None, float | None]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size < 2:
        return None, None
    idx = np.random.default_rng(seed).integers(0, v.size, size=(int(n_boot), v.size))
    return _pct(v[idx].mean(1), ci)


def wilson(k: int, n: int, ci: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion k / n."""
    if n <= 0:
        return None, None
    z = stats.norm.ppf(0.5 + ci / 2)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def organization_cis(atoms: np.ndarray, links: pd.DataFrame, metrics: dict, n_boot: int = 1000, ci: float = 0.95,
                     seed: int = 0, block_trs: int = 20) -> dict:
    """``{<metric>_ci_low, <metric>_ci_high}`` for every scalar organization metric, plus ``ci_units``.

    Parameters
    ----------
    atoms : array of shape (n_trs, n_atoms)
    links : link table of the model (the one the metrics were computed from)
    metrics : the dict of :func:`~brainlike.metrics.organization.organization_metrics`
    n_boot, ci, seed : resamples, coverage, seed
    block_trs : block length (TRs) of the time bootstrap
    """
    A = np.asarray(atoms, dtype=np.float64)
    out: dict = {}
    units: dict = {}

    def put(name, lohi, unit):
        if metrics.get(name) is None:
            return
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = lohi
        units[name] = unit

    boots = {"within_fbn_consistency": [], "within_fbn_consistency_unsigned": [], "diversity": [], "balance": []}
    couplings, ids = fbn_couplings(links), linked_atoms(links)  # links are held fixed: read them once
    # nothing to resample where every time metric is undefined (fewer than two linked atoms)
    timed = any(metrics.get(name) is not None for name in boots)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for rows in block_resamples(A.shape[0], block_trs, n_boot, seed) if timed else ():
            Ab = A[rows]
            (c, _), (c_unsigned, _) = fbn_pair_means(Ab, couplings)
            d = diversity_of(Ab, ids)
            boots["within_fbn_consistency"].append(c)
            boots["within_fbn_consistency_unsigned"].append(c_unsigned)
            boots["diversity"].append(d)
            boots["balance"].append(balance(d, c))
    unit_time = f"time: moving-block bootstrap of TRs (blocks of {block_trs}), links fixed"
    for name, vals in boots.items():
        put(name, _pct(vals, ci), unit_time)
    put("compactness", wilson(int(metrics.get("n_linked_atoms") or 0), int(metrics["n_atoms"]), ci),
        "atoms: Wilson score interval")
    per_atom = {
        "cross_subject_consistency": list((metrics.get("cross_subject_consistency_per_atom") or {}).values()),
        "layer_entropy_mean": list((metrics.get("layer_entropy") or {}).values()),
    }
    linked = set(ids)
    per_atom["layer_entropy_linked_mean"] = [v for k, v in (metrics.get("layer_entropy") or {}).items()
                                             if int(k) in linked]
    for name, vals in per_atom.items():
        put(name, _mean_boot(vals, n_boot, ci, seed), "atoms: bootstrap over atoms")
    red = metrics.get("redundancy") or {}
    put("redundancy_mean_dice", _mean_boot([v.get("mean_dice") for v in red.values() if isinstance(v, dict)
                                            and (v.get("n_atoms") or 0) >= 2], n_boot, ci, seed),
        "fbns: bootstrap over networks")
    pol = metrics.get("polarity") or {}
    put("polarity_mean", _mean_boot(list(pol.values()), n_boot, ci, seed), "fbns: bootstrap over networks")
    out["ci_units"] = units
    out["ci_level"] = ci
    return out


def marginal_consistency(atoms: np.ndarray, links: pd.DataFrame, n_boot: int = 1000, ci: float = 0.95,
                         seed: int = 0, block_trs: int = 20) -> dict:
    """Both within-FBN consistencies on the links of the marginal maps, with time-bootstrap CIs.

    The joint GLM's maps are each atom's *unique* effect: of two collinear atoms that drive a
    network alike, the joint fit can give one the opposite sign, and the signed consistency then
    counts the pair as opposed. A marginal map (the atom fitted alone with the nuisance
    regressors) is the atom's whole effect, so its link sign says how the atom itself moves with
    the network: atoms linked to one network with the same sign should then correlate positively.

    Parameters
    ----------
    atoms : array of shape (n_trs, n_atoms)
    links : link table of the model's marginal maps (``links_marginal.parquet``)
    n_boot, ci, seed, block_trs : as in :func:`organization_cis`

    Returns
    -------
    dict with ``n_links_marginal``, ``n_linked_atoms_marginal``, ``within_fbn_consistency_marginal``
    (+ ``_per_fbn``, ``_ci_low``, ``_ci_high``) and the same for ``within_fbn_consistency_unsigned_marginal``;
    undefined values (no FBN with two linked atoms) are None.
    """
    A = np.asarray(atoms, dtype=np.float64)
    couplings = fbn_couplings(links)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        (c, c_per), (cu, cu_per) = fbn_pair_means(A, couplings)
        boots: tuple[list, list] = ([], [])
        if np.isfinite(c) or np.isfinite(cu):
            for rows in block_resamples(A.shape[0], block_trs, n_boot, seed):
                (cb, _), (cub, _) = fbn_pair_means(A[rows], couplings)
                boots[0].append(cb)
                boots[1].append(cub)
    out: dict = {"n_links_marginal": int(links["linked"].sum()), "n_linked_atoms_marginal": len(linked_atoms(links))}
    for name, value, per, vals in (("within_fbn_consistency_marginal", c, c_per, boots[0]),
                                   ("within_fbn_consistency_unsigned_marginal", cu, cu_per, boots[1])):
        ok = math.isfinite(value)
        out[name] = float(value) if ok else None
        out[f"{name}_per_fbn"] = {k: float(v) for k, v in per.items() if math.isfinite(v)}
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _pct(vals, ci) if ok else (None, None)
    return out
