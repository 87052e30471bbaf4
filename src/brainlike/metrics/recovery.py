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


# ---------------------------------------------------------------- strict scoring and bounds

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


# ---------------------------------------------------------------- bootstrap over subjects


def bootstrap_indices(n_subjects: int, n_boot: int, seed: int) -> np.ndarray:
    """Subject resamples with replacement, shape (n_boot, n_subjects); share them between a
    trained model and its twin so that their difference is paired."""
    if n_subjects < 2 or n_boot < 1:
        raise DataError(None, f"a bootstrap needs >= 2 subjects and >= 1 resample, got {n_subjects}, {n_boot}",
                        field="n_subjects")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB007]))
    return rng.integers(0, n_subjects, (n_boot, n_subjects))


def bootstrap_best_dice(
    subject_z: np.ndarray,
    scored: Mapping,
    networks: NetworkSet,
    indices: np.ndarray,
    *,
    threshold: str = "fdr",
    fdr_alpha: float = 0.05,
    top_fraction: float = 0.05,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Best Dice of every planted network when the group map is rebuilt on resampled subjects.

    The maps that count for each planted network are those of the full-sample strict score
    (``scored``: :func:`score_planted`; a link test per resample would cost a spin test each);
    per resample the group map is the one-sample t-test across the drawn subjects with BH-FDR
    (as the encoding stage), thresholded as the networks stage does, and its Dice with the
    planted network is taken. A planted network without a linked map scores 0 in every resample.

    Parameters
    ----------
    subject_z : array of shape (S, K, V)
        Subject GLM z-maps of one model (``sub-*.npz`` ``z``).
    scored : dict from :func:`score_planted` for the same model (full sample)
    networks : NetworkSet
    indices : int array of shape (n_boot, S) from :func:`bootstrap_indices`
    threshold, fdr_alpha, top_fraction : as the ``networks`` stage
    valid : bool array of shape (V,), optional (and-ed with the cortex)

    Returns
    -------
    array of shape (n_boot, n_planted), in the order of ``scored["planted"]``
    """
    from ..encoding.fit import fit_group
    from ..networks.threshold import SIGNS, threshold_maps

    z = np.asarray(subject_z, np.float64)
    if z.ndim != 3 or z.shape[2] != networks.masks.shape[1]:
        raise DataError(None, f"expected subject z of shape (S, K, {networks.masks.shape[1]}), got {z.shape}",
                        field="subject_z")
    ok = networks.cortex if valid is None else networks.cortex & np.asarray(valid, bool)
    entries = scored["planted"]
    # every map any planted network counts, so each resample thresholds only those
    wanted: dict[tuple[int, str], int] = {}
    for e in entries:
        for a, s in e.get("maps", []) or ([(e["best_atom"], e["best_sign"])] if e["linked"] else []):
            wanted.setdefault((int(a), str(s)), len(wanted))
    out = np.zeros((len(indices), len(entries)))
    if not wanted:
        return out
    atoms = sorted({a for a, _ in wanted})
    col = {a: i for i, a in enumerate(atoms)}
    pmasks = [networks.mask(e["atlas"], e["network"]) for e in entries]
    for b, idx in enumerate(np.asarray(indices)):
        g = fit_group(z[idx][:, atoms], fdr_alpha)
        maps = threshold_maps(g["z"], method=threshold, fdr_alpha=fdr_alpha, top_fraction=top_fraction, valid=ok)
        for j, (e, pm) in enumerate(zip(entries, pmasks, strict=True)):
            pairs = e.get("maps", []) or ([(e["best_atom"], e["best_sign"])] if e["linked"] else [])
            best = 0.0
            for a, s in pairs:
                m = maps[col[int(a)], SIGNS.index(str(s))]
                den = m.sum() + pm.sum()
                best = max(best, 2.0 * float((m & pm).sum()) / den if den else 0.0)
            out[b, j] = best
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of ``samples`` along ``axis``: (lo, hi)."""
    a = (1.0 - level) / 2.0
    s = np.asarray(samples, np.float64)
    return np.quantile(s, a, axis=axis), np.quantile(s, 1.0 - a, axis=axis)


def paired_kind_difference(trained_boot: np.ndarray, twin_boot: np.ndarray, kinds: Sequence[str],
                           trained: Mapping, twin: Mapping, level: float = 0.95) -> dict[str, dict]:
    """Trained minus twin mean best Dice per feature kind, with a paired bootstrap CI.

    Parameters
    ----------
    trained_boot, twin_boot : arrays of shape (n_boot, n_planted)
        :func:`bootstrap_best_dice` of the two models on the *same* ``indices``.
    kinds : sequence of n_planted str (``scored["planted"][j]["kind"]``)
    trained, twin : full-sample :func:`score_planted` results (the point estimate)

    Returns
    -------
    dict kind -> {``difference``, ``lo``, ``hi``, ``n_networks``}
    """
    kinds = np.asarray(list(kinds))
    point = kind_difference(trained, twin)
    out = {}
    for k in sorted(set(kinds)):
        sel = kinds == k
        d = trained_boot[:, sel].mean(1) - twin_boot[:, sel].mean(1)
        lo, hi = percentile_ci(d, level)
        out[str(k)] = {"difference": point.get(str(k)), "lo": float(lo), "hi": float(hi), "n_networks": int(sel.sum())}
    return out
