"""Organization metrics of one model (README: organization metrics; the names are the project's).

Inputs are plain arrays and tables:

- ``atoms``: the temporal atoms D, array of shape (n_trs, n_atoms); column k is atom k;
- ``links``: the link table of :func:`brainlike.networks.match_networks`
  (model, atom, sign, atlas, network, dice, p, linked, ...);
- ``subgroups``: the AN sub-group table, one row per (AN, atom) with a non-zero code:
  ``an`` (or the patterns stage's ``an_id``), ``layer, unit, tower, atom, code, is_max`` (``is_max``: atom k holds the AN's largest
  |code|, i.e. the AN's exclusive assignment);
- ``maps``: thresholded group maps, bool (n_atoms, 2, n_vertices); ``subject_maps``: the same
  per subject, bool (n_subjects, n_atoms, 2, n_vertices) (sign axis: 0 '+', 1 '-').

An FBN is written ``"<atlas>/<network>"``. Undefined values (too few atoms, empty maps) are
``None`` in the JSON dict and absent from the tidy table; nothing is silently zero.

The metrics live with the input they read: :mod:`.links` (link counts, couplings),
:mod:`.temporal` (atoms), :mod:`.maps` (thresholded maps), :mod:`.subgroups` (ANs); this module
gathers them into one JSON-ready dict per model and a tidy table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..errors import DataError
from .links import LINK_NEEDED, _linked, _need, atoms_per_fbn, compactness
from .maps import cross_subject_consistency, redundancy
from .subgroups import SUBGROUP_COLUMNS, _subgroup_table, effective_atoms, layer_entropy, modality_share, polarity
from .temporal import balance, diversity, within_fbn_consistency, within_fbn_consistency_unsigned


def _num(x) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def organization_metrics(
    atoms: np.ndarray,
    links: pd.DataFrame,
    subgroups: pd.DataFrame,
    *,
    maps: np.ndarray | None = None,
    subject_maps: np.ndarray | None = None,
    n_layers: int | None = None,
    paper_b: bool | None = None,
) -> dict:
    """Every organization metric of one model, JSON-ready.

    Parameters
    ----------
    atoms : array of shape (n_trs, n_atoms)
    links : DataFrame
        Link table of this model.
    subgroups : DataFrame
        AN sub-group table (``SUBGROUP_COLUMNS``).
    maps : array of bool, shape (n_atoms, 2, n_vertices), optional
        Thresholded group maps (needed for ``redundancy``).
    subject_maps : array of bool, shape (n_subjects, n_atoms, 2, n_vertices), optional
        Thresholded subject maps (needed for ``cross_subject_consistency``).
    n_layers : int, optional
        Layers of the model (default: largest layer in ``subgroups`` + 1).
    paper_b : bool, optional
        Add the vision-language metrics (redundancy, polarity, modality share). Default: when
        ``subgroups`` has more than one tower tag.

    Returns
    -------
    dict
        Scalars and ``{key: value}`` dicts; undefined values are None.
    """
    atoms = np.asarray(atoms)
    if atoms.ndim != 2:
        raise DataError(None, f"expected atoms of shape (n_trs, n_atoms), got {atoms.shape}", field="atoms")
    n_atoms = atoms.shape[1]
    subgroups = _subgroup_table(subgroups)
    _need(subgroups, SUBGROUP_COLUMNS, "subgroups")
    _need(links, LINK_NEEDED, "links")
    bad = sorted(set(links["atom"].astype(int)) - set(range(n_atoms)))
    if bad:
        raise DataError(None, f"link table names atoms {bad[:5]} outside 0..{n_atoms - 1}", field="atom")
    if n_layers is None:
        n_layers = int(subgroups["layer"].max()) + 1 if len(subgroups) else 0
    lk = _linked(links)
    linked_ids = sorted(lk["atom"].unique().astype(int).tolist())
    cons, cons_per = within_fbn_consistency(atoms, links)
    cons_u, cons_u_per = within_fbn_consistency_unsigned(atoms, links)
    div = diversity(atoms, links)
    ent = layer_entropy(subgroups, n_atoms, n_layers)
    out: dict = {
        "n_atoms": n_atoms,
        "n_layers": n_layers,
        "n_links": int(len(lk)),
        "n_linked_atoms": len(linked_ids),
        "n_linked_fbns": int(lk.groupby(["atlas", "network"]).ngroups),
        "compactness": compactness(links, n_atoms),
        "atoms_per_fbn": atoms_per_fbn(links),
        "within_fbn_consistency": _num(cons),
        "within_fbn_consistency_per_fbn": {k: _num(v) for k, v in cons_per.items()},
        "within_fbn_consistency_unsigned": _num(cons_u),
        "within_fbn_consistency_unsigned_per_fbn": {k: _num(v) for k, v in cons_u_per.items()},
        "diversity": _num(div),
        "effective_atoms": _num(effective_atoms(subgroups, n_atoms)),
        "balance": _num(balance(div, cons)),
        "layer_entropy": {int(k): _num(v) for k, v in enumerate(ent) if math.isfinite(v)},
        "layer_entropy_mean": _num(np.nanmean(ent)) if np.isfinite(ent).any() else None,
        "layer_entropy_linked_mean": (
            _num(np.nanmean(ent[linked_ids])) if linked_ids and np.isfinite(ent[linked_ids]).any() else None
        ),
    }
    eff = out["effective_atoms"]
    out["effective_atoms_fraction"] = None if eff is None else eff / n_atoms
    if subject_maps is not None:
        csc, csc_per = cross_subject_consistency(subject_maps)
        out["cross_subject_consistency"] = _num(csc)
        out["cross_subject_consistency_per_atom"] = {int(k): float(v) for k, v in enumerate(csc_per) if math.isfinite(v)}
        lk_vals = csc_per[linked_ids] if linked_ids else np.array([])
        out["cross_subject_consistency_linked"] = (
            _num(np.nanmean(lk_vals)) if np.isfinite(lk_vals).any() else None
        )
    if paper_b is None:
        paper_b = subgroups["tower"].astype(str).nunique() > 1
    if paper_b:
        if maps is not None:
            red = redundancy(links, maps)
            multi = [v for v in red.values() if v["n_atoms"] >= 2]
            out["redundancy"] = red
            out["redundancy_mean_atoms_per_linked_fbn"] = (
                float(np.mean([v["n_atoms"] for v in red.values()])) if red else None
            )
            out["redundancy_mean_dice"] = float(np.mean([v["mean_dice"] for v in multi])) if multi else None
        pol = polarity(links, subgroups, n_layers)
        vals = [v for v in pol.values() if v is not None]
        out["polarity"] = pol
        out["polarity_mean"] = float(np.mean(vals)) if vals else None
        share = modality_share(subgroups)
        out["modality_share"] = share
        towers = sorted({t for d in share.values() for t in d})
        out["modality_share_linked_mean"] = {
            t: float(np.mean([share[k].get(t, 0.0) for k in linked_ids if k in share]))
            for t in towers
            if any(k in share for k in linked_ids)
        }
    return out


def _flatten(value, prefix: str = ""):
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}|{k}" if prefix else str(k))
    elif value is None:
        return
    elif isinstance(value, (bool, int, float, np.integer, np.floating)):
        if math.isfinite(float(value)):
            yield prefix, float(value)


def tidy_metrics(per_model: Mapping[str, Mapping]) -> pd.DataFrame:
    """Long table ``(model, metric, key, value)`` of :func:`organization_metrics` dicts.

    Scalars have ``key = ''``; nested values have their keys joined by ``|`` (e.g.
    ``atoms_per_fbn``, ``yeo7/Visual|+``). None / NaN values are left out.
    """
    rows = []
    for model, metrics in per_model.items():
        for name, value in metrics.items():
            if isinstance(value, Mapping):
                rows += [(model, name, k, v) for k, v in _flatten(value)]
            else:
                rows += [(model, name, "", v) for _, v in _flatten(value)]
    return pd.DataFrame(rows, columns=["model", "metric", "key", "value"])
