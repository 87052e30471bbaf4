"""Dice overlap and the spin-test null (Alexander-Bloch et al. 2018; Kong et al. NCT).

A spin is a uniformly random rotation of the fsaverage5 sphere. The left hemisphere is rotated
by R and the right by F R F with F = diag(-1, 1, 1) (the reflected rotation, so both
hemispheres spin mirror-symmetrically, as netneurotools / neuromaps' ``gen_spinsamples`` do).
Each spin becomes a permutation-like index array ``perm`` of shape (n_vertices,): the rotated
map is ``map[perm]``, i.e. every vertex v takes the value of the vertex whose rotated
position lies nearest to v (cKDTree on the sphere). Vertices outside ``valid`` (medial wall)
are neither sources nor targets: each valid vertex draws from its nearest *valid* rotated
vertex (so no medial-wall value is ever spun into cortex, in the spirit of Baum et al.
2020's reassignment), invalid vertices map to themselves. Rotations are drawn once from a seed and reused for every map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from .._utils.atomic import atomic_paths
from ..data.surfaces import load_fsaverage5
from ..errors import DataError

REFLECT = np.diag([-1.0, 1.0, 1.0])


def sphere_coords() -> np.ndarray:
    """fsaverage5 sphere coordinates, left hemisphere then right (nilearn's shipped mesh).

    Returns
    -------
    array of float64, shape (20484, 3)
    """
    mesh = load_fsaverage5()
    return np.concatenate(
        [np.asarray(mesh.sphere.parts[h].coordinates, dtype=np.float64) for h in ("left", "right")]
    )


def random_rotations(n: int, seed: int) -> np.ndarray:
    """``n`` rotation matrices drawn uniformly (Haar measure) on SO(3).

    Returns
    -------
    array of float64, shape (n, 3, 3)
    """
    return Rotation.random(n, random_state=np.random.default_rng(seed)).as_matrix().reshape(n, 3, 3)


_SPIN_BATCH = 50  # rotations per KD-tree query
_BOUND_SPACING = 0.7  # first search radius, in mean vertex spacings (answers do not depend on it)


def spin_permutations(
    n_spins: int,
    seed: int,
    valid: np.ndarray | None = None,
    coords: np.ndarray | None = None,
    rotations: np.ndarray | None = None,
) -> np.ndarray:
    """Index arrays of ``n_spins`` random rotations of the fsaverage5 sphere.

    Parameters
    ----------
    n_spins : int
    seed : int
        Seed of the rotations (ignored when ``rotations`` is given).
    valid : array of bool, shape (20484,), optional
        Vertices that take part (cortex); default all.
    coords : array of shape (20484, 3), optional
        Sphere coordinates (left then right hemisphere, each centred on the origin);
        default :func:`sphere_coords`.
    rotations : array of shape (n_spins, 3, 3), optional
        Left-hemisphere rotations; default :func:`random_rotations` ``(n_spins, seed)``.

    Returns
    -------
    array of int32, shape (n_spins, 20484)
        ``data[perm[s]]`` is ``data`` rotated by spin s.
    """
    coords = sphere_coords() if coords is None else np.asarray(coords, dtype=np.float64)
    n_v = coords.shape[0]
    if n_v % 2:
        raise ValueError(f"coords must hold two hemispheres of equal size, got {n_v} vertices")
    n_h = n_v // 2
    valid = np.ones(n_v, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if rotations is None:
        rotations = random_rotations(n_spins, seed)
    rotations = np.asarray(rotations, dtype=np.float64)
    if rotations.shape != (n_spins, 3, 3):
        raise ValueError(f"rotations must have shape ({n_spins}, 3, 3), got {rotations.shape}")
    perms = np.broadcast_to(np.arange(n_v, dtype=np.int32), (n_spins, n_v)).copy()
    for h in range(2):
        sl = np.arange(h * n_h, (h + 1) * n_h)
        src = sl[valid[sl]]  # vertices that can donate a value
        tgt = src  # vertices that receive one
        if src.size == 0:
            continue
        # One tree on the unrotated sources; rotating the sources by R and asking for the one
        # nearest x is the same as asking the unrotated tree for the one nearest R^T x.
        tree = cKDTree(coords[src])
        pts = coords[tgt]
        # The search is bounded at 0.7 of the mesh's mean vertex spacing, which prunes the tree
        # (queries 1.37x faster on fsaverage5, stage `spins` 43.9 -> 36.6 CPU-s); the few points
        # with no source that close (~5 %, near the medial wall) are asked again unbounded, so
        # every answer is the nearest source, as before.
        bound = _BOUND_SPACING * float(tree.query(coords[src], k=2)[0][:, 1].mean()) if src.size > 1 else np.inf
        # _SPIN_BATCH rotations per query: one call's threads split ~500k points instead of
        # ~10k (1.6x on 2 cores; each point's nearest neighbour is the same either way)
        for s0 in range(0, n_spins, _SPIN_BATCH):
            rots = rotations[s0 : s0 + _SPIN_BATCH]
            if h == 1:
                rots = REFLECT @ rots @ REFLECT
            # rows are points: (R^T x)^T = x^T R
            q = np.concatenate([pts @ rot for rot in rots])
            dist, nn = tree.query(q, k=1, workers=-1, distance_upper_bound=bound)
            far = ~np.isfinite(dist)
            if far.any():
                nn[far] = tree.query(q[far], k=1, workers=-1)[1]
            perms[s0 : s0 + len(rots), tgt] = src[nn].reshape(len(rots), tgt.size)
    return perms


def dice_matrix(maps: np.ndarray, networks: np.ndarray) -> np.ndarray:
    """Dice coefficient of every binary map with every network.

    ``Dice(A, B) = 2 |A & B| / (|A| + |B|)``, defined as 0 when both are empty.

    Parameters
    ----------
    maps : array of bool, shape (n_maps, n_vertices)
    networks : array of bool, shape (n_networks, n_vertices)

    Returns
    -------
    array of float64, shape (n_maps, n_networks)
    """
    a = np.asarray(maps, dtype=np.float32)
    b = np.asarray(networks, dtype=np.float32)
    inter = (a @ b.T).astype(np.float64)  # exact: 0/1 sums far below 2**24
    size = a.sum(1, dtype=np.float64)[:, None] + b.sum(1, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, 2.0 * inter / size, 0.0)


def spin_test(
    maps: np.ndarray,
    networks: np.ndarray,
    perms: np.ndarray,
    *,
    batch: int = 256,
    spins_per_chunk: int = 64,
    return_null: bool = False,
):
    """Dice of each map with each network and its spin-test p-value.

    ``p = (1 + #{s : Dice(map[perm_s], network) >= Dice(map, network)}) / (1 + n_spins)``.
    The networks stay fixed and the maps rotate.

    Implementation: the intersection of a rotated map with network n is
    ``sum_v N[n, v] * map[perm_s[v]] = (N P_s) @ map`` where ``N P_s`` is the sparse network
    matrix with its column indices sent through ``perm_s``. So the maps are never gathered:
    one sparse matrix per chunk of spins (networks + a cortex row, which gives the rotated
    map's size) times the dense (n_vertices, n_maps) block of maps.

    Parameters
    ----------
    maps : array of bool, shape (n_maps, n_vertices)
        Thresholded maps (False outside the valid vertices used to build ``perms``).
    networks : array of bool, shape (n_networks, n_vertices)
    perms : array of int, shape (n_spins, n_vertices)
        From :func:`spin_permutations`; must send valid vertices to valid vertices and
        leave the rest fixed (so the rotated map stays inside the valid vertices).
    batch : int
        Maps scored together (bounds memory: n_vertices x batch int16).
    spins_per_chunk : int
        Spins stacked into one sparse product.
    return_null : bool
        Also return the null Dice values.

    Returns
    -------
    dice : array of float64, shape (n_maps, n_networks)
    p : array of float64, shape (n_maps, n_networks)
    null : array of float32, shape (n_spins, n_maps, n_networks)
        Only when ``return_null``.
    """
    maps = np.asarray(maps, dtype=bool)
    networks = np.asarray(networks, dtype=bool)
    perms = np.asarray(perms)
    if maps.ndim != 2 or networks.ndim != 2 or perms.ndim != 2 or not (
        maps.shape[1] == networks.shape[1] == perms.shape[1]
    ):
        raise ValueError(
            f"shapes do not agree: maps {maps.shape}, networks {networks.shape}, perms {perms.shape} "
            "(expected (n_maps, V), (n_networks, V), (n_spins, V))"
        )
    n_maps, n_v = maps.shape
    n_net = networks.shape[0]
    n_spins = perms.shape[0]
    observed = dice_matrix(maps, networks)
    # An empty map rotates to an empty map: its null Dice is 0 >= its observed 0 for every spin
    # (p = 1 exactly). Most atoms' thresholded maps are empty, so only the others are spun.
    full = np.flatnonzero(maps.any(1))
    exceed = np.full(observed.shape, n_spins, dtype=np.int64)
    null = np.zeros((n_spins, n_maps, n_net), np.float32) if return_null else None
    if full.size:
        e, nl = _spin_exceed(maps[full], networks, perms, observed[full], batch, spins_per_chunk, return_null)
        exceed[full] = e
        if null is not None:
            null[:, full] = nl
    p = (1.0 + exceed) / (1.0 + n_spins)
    return (observed, p, null) if return_null else (observed, p)


def _spin_exceed(maps, networks, perms, observed, batch, spins_per_chunk, return_null):
    """Per (map, network): the number of spins whose Dice reaches the observed one (and the null)."""
    n_maps, n_v = maps.shape
    n_net = networks.shape[0]
    n_spins = perms.shape[0]
    # Rows: the networks, then an all-ones row that gives the rotated map's size. Counts are exact
    # integers <= n_vertices: int16 holds them on fsaverage5 and its products are ~1.5x faster than
    # float32 (less memory traffic per gathered row); float32 (exact to 2^24) beyond.
    dt = np.int16 if n_v <= np.iinfo(np.int16).max else np.float32
    base = sparse.csr_matrix(np.concatenate([networks, np.ones((1, n_v), bool)]).astype(dt))
    n_rows = base.shape[0]
    net_size = networks.sum(1, dtype=np.float64)[None, :, None]
    exceed = np.zeros(observed.shape, dtype=np.int64)
    null = np.empty((n_spins, n_maps, n_net), np.float32) if return_null else None
    blocks = [
        np.ascontiguousarray(maps[lo : lo + batch].T, dtype=dt) for lo in range(0, n_maps, batch)
    ]
    for s0 in range(0, n_spins, spins_per_chunk):
        chunk = perms[s0 : s0 + spins_per_chunk]
        n_c = chunk.shape[0]
        mat = sparse.csr_matrix(
            (
                np.tile(base.data, n_c),
                # np.take: a C-ordered gather; chunk[:, idx] comes out Fortran-ordered and its
                # ravel() copied it again, strided (~6x the gather itself)
                np.take(chunk, base.indices, axis=1).ravel(),
                np.concatenate([[0], (base.indptr[1:][None, :] + base.nnz * np.arange(n_c)[:, None]).ravel()]),
            ),
            shape=(n_c * n_rows, n_v),
        )
        for k, a_t in enumerate(blocks):
            lo = k * batch
            counts = np.asarray(mat @ a_t, dtype=np.float64).reshape(n_c, n_rows, -1)  # exact integer counts
            size = counts[:, -1:, :] + net_size  # (n_c, n_net, b)
            with np.errstate(invalid="ignore", divide="ignore"):
                d = np.where(size > 0, 2.0 * counts[:, :-1, :] / size, 0.0).transpose(0, 2, 1)  # (n_c, b, n_net)
            exceed[lo : lo + d.shape[1]] += (d >= observed[lo : lo + d.shape[1]][None] - 1e-12).sum(0)
            if null is not None:
                null[s0 : s0 + n_c, lo : lo + d.shape[1]] = d
    return exceed, null


def write_spins(perms: np.ndarray, path: str | Path) -> Path:
    """Save spin permutations as int16 ``.npy`` (fsaverage5 indices fit), atomically."""
    perms = np.asarray(perms)
    if perms.max(initial=0) > np.iinfo(np.int16).max:
        raise ValueError(f"vertex indices up to {perms.max()} do not fit int16")
    with atomic_paths(path) as (tmp,):
        with open(tmp, "wb") as f:
            np.save(f, perms.astype(np.int16), allow_pickle=False)
    return Path(path)


def read_spins(path: str | Path, n_spins: int, n_vertices: int) -> np.ndarray:
    """Spin permutations written by :func:`write_spins`, (n_spins, n_vertices) int16 as stored
    (an int32 copy cost ~1 s per stage; the spin test widens each chunk it uses).

    Raises
    ------
    DataError
        Missing file, or not ``n_spins`` x ``n_vertices`` (the ``spins`` stage is stale).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "spin permutations not found; run `dvc repro spins`")
    perms = np.load(path, allow_pickle=False)
    if perms.shape != (n_spins, n_vertices):
        raise DataError(path, f"expected ({n_spins}, {n_vertices}) spin permutations (networks.n_spins), "
                        f"got {perms.shape}; run `dvc repro spins`", "n_spins")
    return perms
