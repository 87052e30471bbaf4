"""Organization metrics of the AN sub-groups: effective atoms, layer entropy, polarity, modality share.

Sub-group of atom k = the ANs with a non-zero code on k; an AN is *assigned* to the atom of its
largest |code| (``is_max``). Polarity and modality share are the vision-language (paper B) ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .links import _need, fbn_couplings

SUBGROUP_COLUMNS = ("an", "layer", "unit", "tower", "atom", "code", "is_max")


def _subgroup_table(subgroups: pd.DataFrame) -> pd.DataFrame:
    """Accept the patterns stage's ``an_id`` for the AN id column."""
    if "an" not in subgroups.columns and "an_id" in subgroups.columns:
        return subgroups.rename(columns={"an_id": "an"})
    return subgroups


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
