"""Speed of the spin test, for ``python -m brainlike.bench encode``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from ..data.atlases import list_networks
from ..errors import DataError
from .match import network_set
from .spin import sphere_coords, spin_permutations, spin_test


def spin_benchmark(
    n_spins: int = 1000,
    n_maps: int = 128,
    atlas_root: str = "data/atlases",
    seed: int = 0,
) -> dict:
    """Time the spin test at the sizes of the embedded default.

    Two rates: generating the rotation index arrays (rotations/s, cKDTree on the fsaverage5
    sphere) and scoring rotated maps against every network of every atlas (map-spins/s, i.e.
    n_maps x n_spins rotated maps scored per second). Maps are real-geometry: each is a
    randomly chosen network of the atlases, so map sizes are realistic. Uses the atlas folder
    when it exists, else 36 Voronoi parcels of the sphere stand in for the networks.

    Returns
    -------
    dict
        JSON-ready: sizes, seconds and rates.
    """
    coords = sphere_coords()
    root = Path(atlas_root)
    source = "atlases"
    try:
        nets = network_set(list(list_networks(root)), root)
        masks, valid = nets.masks, nets.cortex
    except DataError:  # no atlas store: stand-in parcels on the real sphere
        source = "voronoi"
        rng = np.random.default_rng(seed)
        seeds = rng.choice(coords.shape[0], 36, replace=False)
        lab = cKDTree(coords[seeds]).query(coords)[1]
        masks = np.stack([lab == i for i in range(36)])
        valid = np.ones(coords.shape[0], bool)
    t = time.perf_counter()
    perms = spin_permutations(n_spins, seed, valid=valid, coords=coords)
    t_perm = time.perf_counter() - t
    rng = np.random.default_rng(seed + 1)
    maps = masks[rng.integers(0, masks.shape[0], n_maps)]
    t = time.perf_counter()
    spin_test(maps, masks, perms)
    t_test = time.perf_counter() - t
    return {
        "n_vertices": int(coords.shape[0]),
        "n_spins": int(n_spins),
        "n_maps": int(n_maps),
        "n_networks": int(masks.shape[0]),
        "networks_source": source,
        "rotation_seconds": round(t_perm, 4),
        "rotations_per_s": round(n_spins / t_perm, 2),
        "spin_test_seconds": round(t_test, 4),
        "map_spins_per_s": round(n_maps * n_spins / t_test, 1),
        "network_dice_per_s": round(n_maps * n_spins * masks.shape[0] / t_test, 1),
    }

