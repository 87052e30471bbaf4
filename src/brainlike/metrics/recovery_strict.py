"""Strict recovery scoring (a map counts only for its planted network or a near-equivalent of
it), the oracle / null bounds of the benchmark, and the trained-minus-twin difference per kind."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import DataError
from ..networks.match import NetworkSet
from .recovery_lenient import link_truth

NEAR_EQUIVALENT_DICE = 0.6
STRICT_DEFINITION = (
    "strict: a linked (atom, sign) map counts for planted network P only when its link (column "
    "'linked': corrected link test and dice >= min_dice) is to P itself or to a near-equivalent of P "
    "(a network of another atlas whose Dice with P is >= near_equivalent_dice); best_dice = max Dice(map, P) "
    "over those maps (0 if none); links to the stimulus-independent (nuisance) network or its "
    "near-equivalents are counted apart; every other link is false"
)


def _key(atlas, network) -> str:
    return f"{atlas}/{network}"


def near_equivalents(networks: NetworkSet, planted: Sequence[Mapping],
                     min_dice: float = NEAR_EQUIVALENT_DICE) -> dict[str, list[str]]:
    """Networks of *other* atlases that stand for a planted network.

    Parameters
    ----------
    networks : NetworkSet
    planted : sequence of dict with ``atlas``, ``network``
    min_dice : float
        Near-equivalent: ``Dice(N, P) >= min_dice`` (Cole-Anticevic Frontoparietal for Yeo-7
        Frontoparietal: 0.63; Visual2 for Yeo-7 Visual: 0.71). Finer parcels of P (a single
        Yeo-17 network, Visual1) are not: they cover too little of P.

    Returns
    -------
    dict ``"atlas/network"`` of each planted network -> sorted list of ``"atlas/network"``.
    """
    size = networks.masks.sum(1).astype(np.float64)
    out = {}
    for p in planted:
        a, n = str(p["atlas"]), str(p["network"])
        m = networks.mask(a, n)
        inter = networks.masks[:, m].sum(1).astype(np.float64)
        dice = 2 * inter / np.maximum(size + m.sum(), 1)
        out[_key(a, n)] = sorted(
            _key(na, nn) for na, nn, d in zip(networks.atlas, networks.network, dice, strict=True)
            if na != a and d >= min_dice
        )
    return out


def _check_links(links: pd.DataFrame) -> None:
    need = ("atom", "sign", "atlas", "network", "dice", "linked")
    missing = [c for c in need if c not in links.columns]
    if missing:
        raise DataError(None, f"link table lacks columns {missing}; expected {list(need)}", field="links")


def score_planted(
    links: pd.DataFrame,
    planted: Sequence[Mapping],
    networks: NetworkSet,
    *,
    near_equivalent_dice: float = NEAR_EQUIVALENT_DICE,
) -> dict:
    """Strict score of one link table (one model, one stimulus) per planted network and kind.

    Parameters
    ----------
    links : DataFrame
        Columns atom, sign, atlas, network, dice, linked (``q`` optional): rows of *one* model.
        ``linked`` is the decision of the corrected link test; nothing else is used to link.
    planted : sequence of dict
        ``ground_truth.json``'s ``planted`` entries: feature, atlas, network, and ``kind``
        (timing | semantic | nuisance; missing -> ``"unknown"``).
    networks : NetworkSet
        The atlases of the link table (must hold every planted network).
    near_equivalent_dice : float
        See :func:`near_equivalents`.

    Returns
    -------
    dict
        JSON-ready: ``planted`` (per planted network: feature, kind, atlas, network,
        near_equivalents, best_dice, best_atom, best_sign, best_dice_any, linked, n_linked_maps,
        maps: the [atom, sign] pairs that count for it),
        ``by_kind`` (kind -> mean_best_dice, min_best_dice, n_networks), ``min_best_dice`` and
        ``max_best_dice`` over planted networks of the stimulus kinds (not nuisance),
        ``n_links``, ``n_true_links``, ``n_false_links`` (of which ``n_false_links_in_planted``
        go to a network lying mostly inside a planted one, e.g. a Yeo-17 parcel), ``n_nuisance_links``,
        ``nuisance_links`` (rows), ``precision_strict``, ``link_test`` (``"q"`` when the table
        has the corrected column ``q``, else ``"linked"``), ``definition``.
    """
    _check_links(links)
    if not planted:
        raise DataError(None, "ground truth lists no planted network", field="planted")
    near = near_equivalents(networks, planted, near_equivalent_dice)
    lk = links[links["linked"].astype(bool)]
    lk_keys = [_key(a, n) for a, n in zip(lk["atlas"], lk["network"], strict=True)]
    owner: dict[str, str] = {}  # linked network -> planted network it stands for
    for p in planted:
        k = _key(p["atlas"], p["network"])
        for n in [k, *near[k]]:
            owner.setdefault(n, k)
    kinds = {_key(p["atlas"], p["network"]): str(p.get("kind", "unknown")) for p in planted}
    entries = []
    for p in planted:
        atlas, network = str(p["atlas"]), str(p["network"])
        k = _key(atlas, network)
        rows = links[(links["atlas"] == atlas) & (links["network"] == network)]
        if rows.empty:
            raise DataError(None, f"link table has no rows for planted network {k}", field="network")
        dice_p = {(int(a), str(s)): float(d) for a, s, d in zip(rows["atom"], rows["sign"], rows["dice"], strict=True)}
        maps = {(int(a), str(s)) for a, s, n in zip(lk["atom"], lk["sign"], lk_keys, strict=True)
                if n == k or n in near[k]}
        best = max(maps, key=lambda m: dice_p.get(m, 0.0), default=None)
        any_best = rows.loc[rows["dice"].idxmax()]
        entries.append({
            "feature": p.get("feature"),
            "kind": kinds[k],
            "atlas": atlas,
            "network": network,
            "near_equivalents": near[k],
            "best_dice": dice_p.get(best, 0.0) if best is not None else 0.0,
            "best_atom": best[0] if best is not None else None,
            "best_sign": best[1] if best is not None else None,
            "best_dice_any": float(any_best["dice"]),
            "linked": best is not None,
            "n_linked_maps": len(maps),
            "maps": sorted([int(a), str(sg)] for a, sg in maps),
        })
    by_kind = {}
    for kind in sorted({e["kind"] for e in entries}):
        d = [e["best_dice"] for e in entries if e["kind"] == kind]
        by_kind[kind] = {"mean_best_dice": float(np.mean(d)), "min_best_dice": float(min(d)), "n_networks": len(d)}
    nuisance = {k for k, v in kinds.items() if v == "nuisance"}
    # the planted network holding most of each network (>= half of it), e.g. a Yeo-17 parcel
    truth = link_truth(networks, planted, 0.5)
    within = {_key(a, n): p for a, n, p in zip(truth["atlas"], truth["network"], truth["planted"], strict=True) if p}
    is_true = np.array([n in owner and owner[n] not in nuisance for n in lk_keys], bool)
    # any link into the nuisance network (itself, a near-equivalent or a parcel of it) is noise
    is_nuis = np.array([owner.get(n) in nuisance or within.get(n) in nuisance for n in lk_keys], bool) & ~is_true
    # false links to a parcel of a stimulus network: false under the strict rule, counted apart
    is_parcel = np.array([n in within for n in lk_keys], bool) & ~is_true & ~is_nuis
    stim = [e["best_dice"] for e in entries if e["kind"] != "nuisance"] or [0.0]
    return {
        "planted": entries,
        "by_kind": by_kind,
        "min_best_dice": float(min(stim)),
        "max_best_dice": float(max(stim)),
        "n_links": len(lk),
        "n_true_links": int(is_true.sum()),
        "n_false_links": int((~is_true & ~is_nuis).sum()),
        "n_false_links_in_planted": int(is_parcel.sum()),
        "n_nuisance_links": int(is_nuis.sum()),
        "nuisance_links": [
            {"atom": int(r.atom), "sign": str(r.sign), "atlas": str(r.atlas), "network": str(r.network),
             "dice": float(r.dice)}
            for r, x in zip(lk.itertuples(index=False), is_nuis, strict=True) if x
        ],
        "precision_strict": float(is_true.mean()) if len(lk) else None,
        "link_test": "q" if "q" in links.columns else "linked",
        "near_equivalent_dice": float(near_equivalent_dice),
        "definition": STRICT_DEFINITION,
    }


def recovery_bounds(
    oracle_links: pd.DataFrame,
    null_links: pd.DataFrame,
    planted: Sequence[Mapping],
    networks: NetworkSet,
    *,
    oracle_target: float = 0.8,
    null_target: float = 0.1,
    near_equivalent_dice: float = NEAR_EQUIVALENT_DICE,
) -> dict:
    """What the benchmark can score at best and by chance, through the same strict scoring.

    Parameters
    ----------
    oracle_links : DataFrame
        Link table of the oracle: the planted features themselves (canonical HRF) as the
        regressors, through encode -> networks (one model's rows).
    null_links : DataFrame
        Link table of the null: e.g. the oracle regressors circularly shifted.
    planted, networks, near_equivalent_dice
        As in :func:`score_planted`.
    oracle_target, null_target : float
        ``met`` = oracle reaches ``oracle_target`` on *every* planted network (nuisance
        included: the oracle has its regressor) and the null stays ``<= null_target`` on all.

    Returns
    -------
    dict
        ``oracle``: {``min_best_dice`` (over all planted networks), ``best_dice`` (per
        ``"atlas/network"``), ``n_false_links``}; ``null``: {``max_best_dice``, ``best_dice``,
        ``n_links``}; ``targets``; ``met`` (bool).
    """
    o = score_planted(oracle_links, planted, networks, near_equivalent_dice=near_equivalent_dice)
    n = score_planted(null_links, planted, networks, near_equivalent_dice=near_equivalent_dice)
    per = lambda s: {_key(e["atlas"], e["network"]): e["best_dice"] for e in s["planted"]}  # noqa: E731
    o_min = float(min(per(o).values()))
    n_max = float(max(per(n).values()))
    return {
        "oracle": {"min_best_dice": o_min, "best_dice": per(o), "n_false_links": o["n_false_links"]},
        "null": {"max_best_dice": n_max, "best_dice": per(n), "n_links": n["n_links"]},
        "targets": {"oracle_min_best_dice": oracle_target, "null_max_best_dice": null_target},
        "met": bool(o_min >= oracle_target and n_max <= null_target),
    }


def kind_difference(trained: Mapping, twin: Mapping) -> dict[str, float]:
    """Per feature kind: trained-model minus twin mean best Dice (two :func:`score_planted` results)."""
    return {
        k: float(trained["by_kind"][k]["mean_best_dice"] - twin["by_kind"][k]["mean_best_dice"])
        for k in trained["by_kind"] if k in twin["by_kind"]
    }
