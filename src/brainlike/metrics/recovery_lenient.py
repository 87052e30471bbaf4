"""The scored answer: recovered atom -> network links versus the planted ground truth.

On the embedded default the stimulus features drive known atlas networks
(``ground_truth.json``: ``planted: [{feature, atlas, network, n_vertices}]``). The pipeline
never sees that list; this module compares its link table with it.

Definitions (documented in the README):

- *linked map*: an (atom, sign) thresholded group map with at least one link.
- ``best_dice`` of planted network P = ``max Dice(M, P)`` over linked maps M (0 when no map is
  linked; ``best_dice_any`` takes the max over every map, linked or not).
- a link row (atom, sign, atlas, network N) is *true* when N lies mostly inside one planted
  network: ``|N & P| / |N| >= true_link_overlap`` for some planted P. The planted network
  itself (containment 1) is true; so are its finer parcels in another atlas (a Yeo-17
  sub-network of a planted Yeo-7 network) and its near-equivalents in another atlas (Cole's
  Frontoparietal for Yeo's), which a pipeline cannot be blamed for finding; anything mostly
  outside every planted network is false.
- ``precision`` = true links / links; ``precision_strict`` counts only links to the exact
  planted (atlas, network) as true; ``precision_networks`` = true / linked distinct networks.
- ``recall`` = share of planted networks linked exactly (their own atlas and network) by at
  least one map; ``recall_overlap`` = share with at least one true link corresponding to them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..networks.match import NetworkSet

DEFINITION = (
    "best_dice: max Dice between the planted network and any linked (atom, sign) group map; "
    "a link is true when >= true_link_overlap of the linked network's vertices lie in one planted "
    "network; precision = true links / links; recall = planted networks linked exactly / planted networks"
)


def link_truth(networks: NetworkSet, planted: Sequence[Mapping], true_link_overlap: float = 0.5) -> pd.DataFrame:
    """Which planted network (if any) each network of ``networks`` corresponds to.

    Returns
    -------
    DataFrame
        One row per network: atlas, network, planted (``"atlas/network"`` of the planted network
        holding the largest share of it, or None), containment (that share), exact (bool).
    """
    keys = [(str(p["atlas"]), str(p["network"])) for p in planted]
    pm = np.stack([networks.mask(a, n) for a, n in keys]).astype(np.float32)  # DataError if unknown
    size = networks.masks.sum(1).astype(np.float64)
    inter = networks.masks.astype(np.float32) @ pm.T  # (n_networks, n_planted)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(size[:, None] > 0, inter / size[:, None], 0.0)
    best = share.argmax(1)
    cont = share[np.arange(len(best)), best]
    ok = cont >= true_link_overlap
    return pd.DataFrame(
        {
            "atlas": networks.atlas,
            "network": networks.network,
            "planted": [f"{keys[b][0]}/{keys[b][1]}" if o else None for b, o in zip(best, ok)],
            "containment": cont,
            "exact": [(a, n) in keys for a, n in networks.keys],
        }
    )


def score_recovery(
    links: pd.DataFrame,
    planted: Sequence[Mapping],
    networks: NetworkSet,
    *,
    true_link_overlap: float = 0.5,
    min_recovery_dice: float = 0.6,
) -> dict:
    """Score one model's link table against the planted ground truth.

    Parameters
    ----------
    links : DataFrame
        One model's link table (columns atom, sign, atlas, network, dice, linked).
    planted : sequence of dict
        ``ground_truth.json``'s ``planted`` entries (feature, atlas, network[, n_vertices]).
    networks : NetworkSet
        The atlases the links were computed on (must include every planted network).
    true_link_overlap : float
        See the module docstring.
    min_recovery_dice : float
        ``passes`` of a planted network: ``best_dice >= min_recovery_dice``.

    Returns
    -------
    dict
        JSON-ready: ``planted`` (one entry per planted network), ``n_links``, ``n_true_links``,
        ``precision``, ``precision_strict``, ``precision_networks``, ``recall``,
        ``recall_overlap``, ``f1``, ``min_best_dice``, ``all_pass``, ``definition``.
    """
    need = ("atom", "sign", "atlas", "network", "dice", "linked")
    missing = [c for c in need if c not in links.columns]
    if missing:
        raise DataError(None, f"link table lacks columns {missing}", field="links")
    if not planted:
        raise DataError(None, "ground truth lists no planted network", field="planted")
    truth = link_truth(networks, planted, true_link_overlap)
    lk = links[links["linked"].astype(bool)].merge(truth, on=["atlas", "network"], how="left")
    linked_maps = set(zip(lk["atom"].astype(int), lk["sign"]))
    entries = []
    for p in planted:
        atlas, network = str(p["atlas"]), str(p["network"])
        key = f"{atlas}/{network}"
        rows = links[(links["atlas"] == atlas) & (links["network"] == network)]
        if rows.empty:
            raise DataError(None, f"link table has no rows for planted network {key}", field="network")
        on_linked = rows[[(int(a), s) in linked_maps for a, s in zip(rows["atom"], rows["sign"])]]
        best = on_linked.loc[on_linked["dice"].idxmax()] if len(on_linked) else None
        any_best = rows.loc[rows["dice"].idxmax()]
        entries.append(
            {
                "feature": p.get("feature"),
                "atlas": atlas,
                "network": network,
                "n_vertices": p.get("n_vertices"),
                "best_dice": float(best["dice"]) if best is not None else 0.0,
                "best_atom": int(best["atom"]) if best is not None else None,
                "best_sign": str(best["sign"]) if best is not None else None,
                "best_dice_any": float(any_best["dice"]),
                "linked_exact": bool(((lk["atlas"] == atlas) & (lk["network"] == network)).any()),
                "linked_overlap": bool((lk["planted"] == key).any()),
                "n_linked_maps": int(((lk["atlas"] == atlas) & (lk["network"] == network)).sum()),
            }
        )
        entries[-1]["passes"] = entries[-1]["best_dice"] >= min_recovery_dice
    n_links = len(lk)
    true = lk["planted"].notna()
    nets_linked = lk.drop_duplicates(["atlas", "network"])
    precision = float(true.mean()) if n_links else None
    recall = float(np.mean([e["linked_exact"] for e in entries]))
    f1 = None if not precision or not recall else 2 * precision * recall / (precision + recall)
    return {
        "n_planted": len(entries),
        "n_links": int(n_links),
        "n_true_links": int(true.sum()),
        "precision": precision,
        "precision_strict": float(lk["exact"].mean()) if n_links else None,
        "precision_networks": float(nets_linked["planted"].notna().mean()) if n_links else None,
        "recall": recall,
        "recall_overlap": float(np.mean([e["linked_overlap"] for e in entries])),
        "f1": f1,
        "min_best_dice": float(min(e["best_dice"] for e in entries)),
        "all_pass": bool(all(e["passes"] for e in entries)),
        "true_link_overlap": float(true_link_overlap),
        "min_recovery_dice": float(min_recovery_dice),
        "planted": entries,
        "false_links": [
            {"atom": int(r.atom), "sign": r.sign, "atlas": r.atlas, "network": r.network, "dice": float(r.dice)}
            for r in lk[~true].itertuples(index=False)
        ],
        "definition": DEFINITION,
    }


def score_recovery_by_model(links: pd.DataFrame, planted, networks: NetworkSet, **kwargs) -> dict[str, dict]:
    """:func:`score_recovery` for each model of a multi-model link table (``model`` column)."""
    if "model" not in links.columns:
        raise DataError(None, "link table lacks column 'model'", field="links")
    return {str(m): score_recovery(g, planted, networks, **kwargs) for m, g in links.groupby("model", sort=True)}
