"""Matching atom maps to functional brain networks: thresholds, Dice, spin test, links.

README "Matching atoms to brain networks". Pure functions on arrays plus one driver
(:func:`match_networks`); z-maps come in as arrays (only the encoding layer's BH-FDR is used here).
"""

from .links import read_bound_links, read_links
from .match import LINK_COLUMNS, NetworkSet, match_from_config, match_networks, network_set, network_set_from_atlases
from .spin import dice_matrix, random_rotations, sphere_coords, spin_permutations, spin_test
from .threshold import SIGNS, bh_reject, p_from_z, threshold_map, threshold_maps

__all__ = [
    "LINK_COLUMNS",
    "SIGNS",
    "NetworkSet",
    "bh_reject",
    "dice_matrix",
    "match_from_config",
    "match_networks",
    "network_set",
    "network_set_from_atlases",
    "p_from_z",
    "random_rotations",
    "read_bound_links",
    "read_links",
    "sphere_coords",
    "spin_benchmark",
    "spin_permutations",
    "spin_test",
    "threshold_map",
    "threshold_maps",
]


def spin_benchmark(*args, **kwargs):
    """See :func:`brainlike.networks.bench.spin_benchmark` (imported on call: it reads atlases)."""
    from .bench import spin_benchmark as _run

    return _run(*args, **kwargs)
