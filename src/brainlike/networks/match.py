"""Link atoms to functional brain networks: threshold, Dice, spin test (README: network matching).

The driver :func:`match_networks` takes an atom's group z-maps as arrays (the encoding layer
computes them) and returns the long link table
``(model, atom, sign, atlas, network, dice, p, q, linked, map_vertices)``: one row per atom,
sign and network of every atlas. An atom-sign map is linked to a network when its spin-test
p, Benjamini-Hochberg corrected over the model's whole link family (``q``), is below
``spin_alpha`` and ``dice >= min_dice``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.atlases import Atlas, load_atlas
from ..encoding.stats import fdr_bh
from ..errors import DataError
from .spin import spin_test
from .threshold import SIGNS, threshold_maps

LINK_COLUMNS = ["model", "atom", "sign", "atlas", "network", "dice", "p", "q", "linked", "map_vertices"]


@dataclass(frozen=True, eq=False)
class NetworkSet:
    """Every network of several atlases as rows of one mask matrix.

    Attributes
    ----------
    atlas, network : list of str, length n_networks
        Atlas and network name of each row.
    masks : array of bool, shape (n_networks, 20484)
    cortex : array of bool, shape (20484,)
        Vertices with a network in at least one atlas; the rest (label 0 in every atlas) is
        the medial wall, which is never tested nor spun into.
    """

    atlas: list[str]
    network: list[str]
    masks: np.ndarray
    cortex: np.ndarray

    @property
    def keys(self) -> list[tuple[str, str]]:
        return list(zip(self.atlas, self.network))

    def mask(self, atlas: str, network: str) -> np.ndarray:
        """Mask of one network, shape (20484,); DataError naming the valid keys if absent."""
        for i, key in enumerate(self.keys):
            if key == (atlas, network):
                return self.masks[i]
        raise DataError(
            None,
            f"no network {network!r} in atlas {atlas!r}; have: "
            + ", ".join(f"{a}/{n}" for a, n in self.keys),
            field="network",
        )


def network_set_from_atlases(atlases: Sequence[Atlas]) -> NetworkSet:
    """Stack the networks of ``atlases`` (in order, networks in id order)."""
    if not atlases:
        raise DataError(None, "at least one atlas is needed", field="atlases")
    atl, net, masks = [], [], []
    cortex = np.zeros(atlases[0].labels.shape, bool)
    for a in atlases:
        cortex |= a.labels != 0
        for name in a.networks:
            atl.append(a.name)
            net.append(name)
            masks.append(a.mask(name))
    return NetworkSet(atl, net, np.stack(masks), cortex)


def network_set(names: Sequence[str], root: str | Path) -> NetworkSet:
    """Read the atlases ``names`` from the atlas folder ``root`` (``paths.atlases``)."""
    return network_set_from_atlases([load_atlas(n, root) for n in names])


def match_networks(
    group_z: np.ndarray,
    networks: NetworkSet,
    perms: np.ndarray,
    *,
    threshold: str = "fdr",
    fdr_alpha: float = 0.05,
    top_fraction: float = 0.05,
    spin_alpha: float = 0.05,
    min_dice: float = 0.2,
    correction: str = "bh",
    valid: np.ndarray | None = None,
    model: str = "",
    atom_ids: Sequence[int] | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Threshold each atom's group map, score it against every network, spin-test, link.

    Parameters
    ----------
    group_z : array of shape (n_atoms, 20484)
        Group z-map of each atom.
    networks : NetworkSet
    perms : array of int, shape (n_spins, 20484)
        :func:`~brainlike.networks.spin.spin_permutations` built with ``valid=networks.cortex``.
    threshold, fdr_alpha, top_fraction
        See :func:`~brainlike.networks.threshold.threshold_map`.
    spin_alpha, min_dice : float
        Link rule: ``q < spin_alpha and dice >= min_dice``.
    correction : {"bh", "none"}
        ``bh``: q = Benjamini-Hochberg adjusted spin p over the whole link family of the call
        (every atom x sign x atlas x network whose thresholded map is non-empty; an empty map
        is no test and gets q = 1); ``none``: q = p (uncorrected, for comparison only).
    valid : array of bool, shape (20484,), optional
        Extra vertex mask (e.g. non-constant vertices of the data), and-ed with the cortex.
    model : str
        Written in the table's ``model`` column.
    atom_ids : sequence of int, optional
        Atom labels (default 0..n_atoms-1).

    Returns
    -------
    table : DataFrame
        Columns ``LINK_COLUMNS``; n_atoms x 2 x n_networks rows.
    maps : array of bool, shape (n_atoms, 2, 20484)
        The thresholded maps (sign axis: 0 '+', 1 '-').
    """
    group_z = np.asarray(group_z)
    n_v = networks.masks.shape[1]
    if group_z.ndim != 2 or group_z.shape[1] != n_v:
        raise DataError(None, f"expected group z-maps of shape (n_atoms, {n_v}), got {group_z.shape}", field="group_z")
    n_atoms = group_z.shape[0]
    atom_ids = list(range(n_atoms)) if atom_ids is None else list(atom_ids)
    if len(atom_ids) != n_atoms:
        raise DataError(None, f"{len(atom_ids)} atom ids for {n_atoms} maps", field="atom_ids")
    ok = networks.cortex if valid is None else networks.cortex & np.asarray(valid, bool)
    maps = threshold_maps(group_z, method=threshold, fdr_alpha=fdr_alpha, top_fraction=top_fraction, valid=ok)
    flat = maps.reshape(n_atoms * 2, n_v)
    dice, p = spin_test(flat, networks.masks, perms)
    n_net = networks.masks.shape[0]
    table = pd.DataFrame(
        {
            "model": model,
            "atom": np.repeat(np.asarray(atom_ids, dtype=np.int64), 2 * n_net),
            "sign": np.tile(np.repeat(np.array(SIGNS), n_net), n_atoms),
            "atlas": np.tile(np.asarray(networks.atlas, dtype=object), 2 * n_atoms),
            "network": np.tile(np.asarray(networks.network, dtype=object), 2 * n_atoms),
            "dice": dice.ravel(),
            "p": p.ravel(),
            "map_vertices": np.repeat(flat.sum(1), n_net).astype(np.int64),
        }
    )
    table["q"] = link_q(table["p"].to_numpy(), table["map_vertices"].to_numpy() > 0, correction, spin_alpha)
    table["linked"] = (table["q"] < spin_alpha) & (table["dice"] >= min_dice)
    return table[LINK_COLUMNS], maps


def link_q(p: np.ndarray, tested: np.ndarray, correction: str = "bh", alpha: float = 0.05) -> np.ndarray:
    """Adjusted spin p-values of one link family (BH over the tested rows; untested rows q = 1).

    Parameters
    ----------
    p : array of shape (n,)
    tested : bool array of shape (n,)
        Rows with a non-empty map.
    correction : {"bh", "none"}
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.ones_like(p)
    tested = np.asarray(tested, bool)
    if correction == "none":
        q[tested] = p[tested]
    elif correction == "bh":
        if tested.any():
            q[tested] = fdr_bh(p[tested], alpha)[1]
    else:
        raise DataError(None, f"correction {correction!r}: expected 'bh' or 'none'", "link_correction")
    return q


def match_from_config(group_z, networks: NetworkSet, perms, cfg, *, model: str = "", valid=None, atom_ids=None):
    """:func:`match_networks` with the settings of a ``NetworksConfig`` (params.yaml ``networks``)."""
    return match_networks(
        group_z,
        networks,
        perms,
        threshold=cfg.threshold,
        fdr_alpha=cfg.fdr_alpha,
        top_fraction=cfg.top_fraction,
        spin_alpha=cfg.spin_alpha,
        min_dice=cfg.min_dice,
        correction=cfg.link_correction,
        valid=valid,
        model=model,
        atom_ids=atom_ids,
    )
