"""The link table as the organization metrics read it, and the metrics of the links alone.

Required columns, linked rows, the FBN key ``"<atlas>/<network>"`` and the atom-FBN couplings
(which atoms drive each network, with which sign) that the metrics over atoms, maps and
sub-groups share; ``atoms_per_fbn`` and ``compactness`` count links only.
"""

from __future__ import annotations

import pandas as pd

from ..errors import DataError

LINK_NEEDED = ("atom", "sign", "atlas", "network", "dice", "linked")


def _need(table: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DataError(None, f"{what} lacks columns {missing}; expected {list(cols)}", field=what)


def _fbn(atlas: str, network: str) -> str:
    return f"{atlas}/{network}"


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


def linked_atoms(links: pd.DataFrame) -> list[int]:
    """Sorted ids of the atoms with at least one link."""
    return sorted(_linked(links)["atom"].unique().tolist())
