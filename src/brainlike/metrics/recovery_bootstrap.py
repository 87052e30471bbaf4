"""Bootstrap over subjects of the strict best Dice, and the paired trained-minus-twin interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..networks.match import NetworkSet
from .recovery_strict import kind_difference


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
    test: str = "t",
) -> np.ndarray:
    """Best Dice of every planted network when the group map is rebuilt on resampled subjects.

    The maps that count for each planted network are those of the full-sample strict score
    (``scored``: :func:`score_planted`; a link test per resample would cost a spin test each);
    per resample the group map is the encoding stage's group test (``test``) across the drawn
    subjects with BH-FDR, thresholded as the networks stage does, and its Dice with the planted
    network is taken. A planted network without a linked map scores 0 in every resample. The
    maps depend on the drawn subjects only as a multiset, so each distinct draw is computed once
    (35 of them for 4 subjects).

    Parameters
    ----------
    subject_z : array of shape (S, K, V)
        Subject GLM z-maps of one model (``sub-*.npz`` ``z``).
    scored : dict from :func:`score_planted` for the same model (full sample)
    networks : NetworkSet
    indices : int array of shape (n_boot, S) from :func:`bootstrap_indices`
    threshold, fdr_alpha, top_fraction : as the ``networks`` stage
    valid : bool array of shape (V,), optional (and-ed with the cortex)
    test : the encoding stage's ``group_test`` (see :func:`~brainlike.encoding.fit.fit_group`)

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
    # the maps each planted network counts; each resample thresholds only those
    pairs = [[(int(a), str(s)) for a, s in e.get("maps", []) or ([(e["best_atom"], e["best_sign"])]
                                                               if e["linked"] else [])] for e in entries]
    wanted = {p for ps in pairs for p in ps}
    out = np.zeros((len(indices), len(entries)))
    if not wanted:
        return out
    atoms = sorted({a for a, _ in wanted})
    col = {a: i for i, a in enumerate(atoms)}
    pmasks = [networks.mask(e["atlas"], e["network"]) for e in entries]
    seen: dict[tuple, np.ndarray] = {}
    for b, idx in enumerate(np.asarray(indices)):
        key = tuple(sorted(int(i) for i in idx))
        if key not in seen:
            g = fit_group(z[list(key)][:, atoms], fdr_alpha, test=test)
            maps = threshold_maps(g["z"], method=threshold, fdr_alpha=fdr_alpha, top_fraction=top_fraction, valid=ok)
            row = np.zeros(len(entries))
            for j, (ps, pm) in enumerate(zip(pairs, pmasks, strict=True)):
                for a, s in ps:
                    m = maps[col[a], SIGNS.index(s)]
                    den = m.sum() + pm.sum()
                    row[j] = max(row[j], 2.0 * float((m & pm).sum()) / den if den else 0.0)
            seen[key] = row
        out[b] = seen[key]
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
