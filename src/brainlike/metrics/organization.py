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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd

from ..errors import DataError

SUBGROUP_COLUMNS = ("an", "layer", "unit", "tower", "atom", "code", "is_max")
LINK_NEEDED = ("atom", "sign", "atlas", "network", "dice", "linked")


def _need(table: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataError(None, f"{what} lacks columns {missing}; expected {list(cols)}", field=what)


def _subgroup_table(subgroups: pd.DataFrame) -> pd.DataFrame:
    """Accept the patterns stage's ``an_id`` for the AN id column."""
    if "an" not in subgroups.columns and "an_id" in subgroups.columns:
        return subgroups.rename(columns={"an_id": "an"})
    return subgroups


def _fbn(atlas: str, network: str) -> str:
    return f"{atlas}/{network}"


def _num(x) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else x


def _linked(links: pd.DataFrame) -> pd.DataFrame:
    _need(links, LINK_NEEDED, "links")
    return links[links["linked"].astype(bool)]


def fbn_couplings(links: pd.DataFrame) -> dict[str, dict[int, int]]:
    """Atoms linked to each FBN and the sign of the coupling (+1 / -1).

    When an atom is linked to one FBN with both signs (its positive and negative maps both
    overlap it), the sign with the larger Dice is kept.

    Returns
    -------
    dict
        ``{fbn: {atom: +1 or -1}}`` for FBNs with at least one link.
    """
    out: dict[str, dict[int, int]] = {}
    lk = _linked(links).sort_values("dice", ascending=False, kind="stable")
    for row in lk.itertuples(index=False):
        d = out.setdefault(_fbn(row.atlas, row.network), {})
        d.setdefault(int(row.atom), 1 if row.sign == "+" else -1)
    return out


def atoms_per_fbn(links: pd.DataFrame) -> dict[str, dict[str, int]]:
    """``atoms_per_fbn``: number of distinct atoms linked to each FBN, per sign.

    ``n_+(f) = |{k : (k, '+') linked to f}|``, ``n_-(f)`` likewise; every network of the
    table is listed (zeros included) so models compare key by key.

    Returns
    -------
    dict
        ``{fbn: {'+': n_plus, '-': n_minus}}``.
    """
    _need(links, LINK_NEEDED, "links")
    out = {}
    for (atlas, network), g in links.groupby(["atlas", "network"], sort=False):
        lk = g[g["linked"].astype(bool)]
        out[_fbn(atlas, network)] = {s: int(lk.loc[lk["sign"] == s, "atom"].nunique()) for s in ("+", "-")}
    return out


def compactness(links: pd.DataFrame, n_atoms: int) -> float:
    """``compactness = |{k : atom k has >= 1 link}| / K``."""
    return _linked(links)["atom"].nunique() / float(n_atoms)


def _corr(atoms: np.ndarray, ids) -> np.ndarray:
    x = np.asarray(atoms, dtype=np.float64)[:, list(ids)]
    x = x - x.mean(0)
    norm = np.linalg.norm(x, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = x / norm
    return x.T @ x


def within_fbn_consistency(atoms: np.ndarray, links: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """``within_fbn_consistency``: how alike the atoms linked to one FBN behave over time.

    For FBN f with linked atoms k_1..k_m (m >= 2) and coupling signs s_k (+1 / -1, see
    :func:`fbn_couplings`): ``c_f = mean_{i<j} s_i s_j r(D_i, D_j)`` with r the Pearson
    correlation of the temporal atoms. The sign flip makes an atom that deactivates the
    network count as its negative (so two atoms that drive f the same way score +).
    Model value: ``mean_f c_f`` over FBNs with m >= 2 (NaN when there is none).

    Parameters
    ----------
    atoms : array of shape (n_trs, n_atoms)

    Returns
    -------
    value : float
    per_fbn : dict of str to float
    """
    return fbn_pair_means(atoms, fbn_couplings(links))[0]


def within_fbn_consistency_unsigned(atoms: np.ndarray, links: pd.DataFrame) -> tuple[float, dict[str, float]]:
    """The same without the coupling signs: ``c_f = mean_{i<j} r(D_i, D_j)`` over the atoms
    linked to f with either sign -- do the atoms that land on one network share a time course?

    Returns
    -------
    value : float
    per_fbn : dict of str to float
    """
    return fbn_pair_means(atoms, fbn_couplings(links))[1]


def fbn_pair_means(atoms: np.ndarray, couplings: dict[str, dict[int, int]]) -> tuple[tuple, tuple]:
    """Signed and unsigned ``(value, per_fbn)``: the mean over FBNs with >= 2 linked atoms of the
    mean pairwise r, times s_i s_j for the signed one, from the couplings of :func:`fbn_couplings`
    (computed once when the atoms are resampled, links fixed)."""
    signed, unsigned = {}, {}
    for fbn, coupled in couplings.items():
        if len(coupled) < 2:
            continue
        ids = sorted(coupled)
        r = _corr(atoms, ids)
        upper = np.triu_indices(len(ids), 1)
        s = np.array([coupled[k] for k in ids], dtype=np.float64)
        signed[fbn] = float(np.mean((r * np.outer(s, s))[upper]))
        unsigned[fbn] = float(np.mean(r[upper]))

    def model(per):
        return float(np.mean(list(per.values()))) if per else float("nan")

    return (model(signed), signed), (model(unsigned), unsigned)


def diversity(atoms: np.ndarray, links: pd.DataFrame) -> float:
    """``diversity = 1 - mean_{i<j} |r(D_i, D_j)|`` over pairs of linked atoms (any FBN, any sign).

    1: linked atoms are uncorrelated; 0: they are all the same time course up to sign.
    NaN with fewer than two linked atoms.
    """
    return diversity_of(atoms, linked_atoms(links))


def linked_atoms(links: pd.DataFrame) -> list[int]:
    """Sorted ids of the atoms with at least one link."""
    return sorted(_linked(links)["atom"].unique().tolist())


def diversity_of(atoms: np.ndarray, ids: list[int]) -> float:
    """:func:`diversity` over the atoms ``ids`` (see :func:`linked_atoms`)."""
    if len(ids) < 2:
        return float("nan")
    r = _corr(atoms, ids)
    return float(1.0 - np.mean(np.abs(r[np.triu_indices(len(ids), 1)])))


def effective_atoms(subgroups: pd.DataFrame, n_atoms: int) -> float:
    """Effective number of atoms ``exp(H(p))``, ``H(p) = -sum_k p_k ln p_k``.

    ``p_k`` = share of ANs exclusively assigned to atom k (rows with ``is_max``), over all
    K atoms. Ranges from 1 (every AN on one atom) to K (ANs spread evenly).
    """
    subgroups = _subgroup_table(subgroups)
    _need(subgroups, ("atom", "is_max"), "subgroups")
    counts = np.bincount(
        subgroups.loc[subgroups["is_max"].astype(bool), "atom"].to_numpy(np.int64), minlength=n_atoms
    ).astype(np.float64)
    if counts.sum() == 0:
        return float("nan")
    p = counts[counts > 0] / counts.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def balance(diversity_value: float, consistency_value: float) -> float:
    """``balance = 2 d c+ / (d + c+)``: harmonic mean of diversity d and consistency c+ = max(c, 0).

    Negative consistency counts as 0 (a harmonic mean of a negative number is meaningless);
    0 when d + c+ = 0; NaN when either is undefined.
    """
    d, c = float(diversity_value), float(consistency_value)
    if not (math.isfinite(d) and math.isfinite(c)):
        return float("nan")
    c = max(c, 0.0)
    return 0.0 if d + c <= 0 else 2.0 * d * c / (d + c)


def signed_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two signed maps, each bool (2, n_vertices) (positive row, negative row).

    ``(2 |A+ & B+| + 2 |A- & B-|) / (|A+| + |A-| + |B+| + |B-|)``: vertices count as shared
    only with the same sign. NaN when both maps are empty.
    """
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    den = a.sum() + b.sum()
    if den == 0:
        return float("nan")
    return float(2.0 * ((a[0] & b[0]).sum() + (a[1] & b[1]).sum()) / den)


def cross_subject_consistency(subject_maps: np.ndarray) -> tuple[float, np.ndarray]:
    """``cross_subject_consistency``: mean pairwise Dice of subject-level maps, per atom.

    ``csc_k = mean_{i<j} signedDice(M_ik, M_jk)`` over subject pairs where at least one of the
    two maps is non-empty (:func:`signed_dice`); model value = mean of ``csc_k`` over atoms
    where it is defined.

    Parameters
    ----------
    subject_maps : array of bool, shape (n_subjects, n_atoms, 2, n_vertices)

    Returns
    -------
    value : float
    per_atom : array of float64, shape (n_atoms,) (NaN where undefined)
    """
    m = np.asarray(subject_maps, bool)
    if m.ndim != 4 or m.shape[2] != 2:
        raise DataError(None, f"expected subject maps of shape (n_subjects, n_atoms, 2, V), got {m.shape}", field="subject_maps")
    n_sub, n_atoms = m.shape[:2]
    per = np.full(n_atoms, np.nan)
    if n_sub >= 2:
        for k in range(n_atoms):
            vals = [signed_dice(m[i, k], m[j, k]) for i, j in combinations(range(n_sub), 2)]
            vals = [v for v in vals if math.isfinite(v)]
            if vals:
                per[k] = float(np.mean(vals))
    ok = np.isfinite(per)
    return (float(per[ok].mean()) if ok.any() else float("nan")), per


def _layer_hist(layers: np.ndarray, n_layers: int) -> np.ndarray:
    return np.bincount(np.asarray(layers, np.int64), minlength=n_layers)[:n_layers].astype(np.float64)


def layer_entropy(subgroups: pd.DataFrame, n_atoms: int, n_layers: int) -> np.ndarray:
    """Normalised layer-distribution entropy of each sub-group.

    Sub-group k = ANs with a non-zero code on atom k; ``q_l`` = share of them in layer l;
    ``h_k = -sum_l q_l ln q_l / ln L`` (L = number of layers), in [0, 1]: 0 = one layer,
    1 = spread evenly over all layers.

    Returns
    -------
    array of float64, shape (n_atoms,) (NaN for empty sub-groups or L < 2)
    """
    subgroups = _subgroup_table(subgroups)
    _need(subgroups, ("atom", "layer", "code"), "subgroups")
    out = np.full(n_atoms, np.nan)
    if n_layers < 2:
        return out
    sg = subgroups[subgroups["code"] != 0]
    for k, g in sg.groupby("atom"):
        h = _layer_hist(g["layer"].to_numpy(), n_layers)
        q = h[h > 0] / h.sum()
        if 0 <= int(k) < n_atoms:
            out[int(k)] = float(-(q * np.log(q)).sum() / np.log(n_layers))
    return out


def redundancy(links: pd.DataFrame, maps: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    """``redundancy`` (paper B): atoms linked to the same FBN and how alike their maps are.

    For FBN f with linked atoms k_1..k_m and coupling signs s_k:
    ``n_f = m`` and ``dice_f = mean_{i<j} Dice(M_{k_i, s_i}, M_{k_j, s_j})`` over their
    thresholded group maps (each atom's map of the sign it is linked with); ``dice_f`` is
    None when m < 2.

    Parameters
    ----------
    maps : array of bool, shape (n_atoms, 2, n_vertices)

    Returns
    -------
    dict
        ``{fbn: {'n_atoms': m, 'mean_dice': dice_f}}`` for FBNs with >= 1 link.
    """
    maps = np.asarray(maps, bool)
    out = {}
    for fbn, coupled in fbn_couplings(links).items():
        ids = sorted(coupled)
        vals = []
        for i, j in combinations(ids, 2):
            a, b = maps[i, 0 if coupled[i] > 0 else 1], maps[j, 0 if coupled[j] > 0 else 1]
            den = a.sum() + b.sum()
            vals.append(2.0 * (a & b).sum() / den if den else 0.0)
        out[fbn] = {"n_atoms": len(ids), "mean_dice": float(np.mean(vals)) if vals else None}
    return out


def _coupled_ans(links: pd.DataFrame, subgroups: pd.DataFrame) -> dict[str, dict[int, pd.DataFrame]]:
    """Per FBN, the ANs coupled positively (+1) and negatively (-1) through linked atoms.

    An AN's coupling through atom k is ``sign(link of k) * sign(code on k)``: an AN with a
    negative code carries the atom's time course reversed.
    """
    sg = subgroups[subgroups["code"] != 0]
    by_atom = {int(k): g for k, g in sg.groupby("atom")}
    out = {}
    for fbn, coupled in fbn_couplings(links).items():
        parts = []
        for k, s in coupled.items():
            g = by_atom.get(k)
            if g is not None and len(g):
                parts.append(g.assign(_pol=s * np.sign(g["code"].to_numpy(np.float64))))
        if parts:
            allp = pd.concat(parts, ignore_index=True)
            out[fbn] = {s: allp[allp["_pol"] == s].drop_duplicates("an") for s in (1, -1)}
    return out


def polarity(links: pd.DataFrame, subgroups: pd.DataFrame, n_layers: int) -> dict[str, float | None]:
    """``polarity`` (paper B): do the ANs that drive an FBN up and down sit in the same layers?

    ``pol_f = r(q+_f, q-_f)``: Pearson correlation over layers of the layer profiles (share of
    ANs per layer) of the ANs positively and negatively coupled to FBN f (coupling of an AN
    through linked atom k = sign of the link x sign of its code). Near 1: same layers;
    negative: mirrored. None when either side is empty, L < 3, or a profile is flat.

    Returns
    -------
    dict
        ``{fbn: pol_f}`` for FBNs with >= 1 link.
    """
    subgroups = _subgroup_table(subgroups)
    _need(subgroups, ("an", "atom", "layer", "code"), "subgroups")
    out = {}
    for fbn, sides in _coupled_ans(links, subgroups).items():
        pos, neg = sides[1], sides[-1]
        val = None
        if len(pos) and len(neg) and n_layers >= 3:
            hp = _layer_hist(pos["layer"].to_numpy(), n_layers)
            hn = _layer_hist(neg["layer"].to_numpy(), n_layers)
            hp, hn = hp / hp.sum(), hn / hn.sum()
            if hp.std() > 0 and hn.std() > 0:
                val = float(np.corrcoef(hp, hn)[0, 1])
        out[fbn] = val
    return out


def modality_share(subgroups: pd.DataFrame) -> dict[int, dict[str, float]]:
    """Modality share of each sub-group (paper B): ``share_k(t) = |{ANs of sub-group k in tower t}| / |sub-group k|``.

    Towers are the table's ``tower`` tags (e.g. 'text', 'vision', 'fusion').

    Returns
    -------
    dict
        ``{atom: {tower: share}}`` for non-empty sub-groups; each inner dict sums to 1.
    """
    subgroups = _subgroup_table(subgroups)
    _need(subgroups, ("atom", "tower", "code"), "subgroups")
    sg = subgroups[subgroups["code"] != 0]
    out = {}
    for k, g in sg.groupby("atom"):
        share = g["tower"].astype(str).value_counts(normalize=True).sort_index()
        out[int(k)] = {str(t): float(v) for t, v in share.items()}
    return out


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
