"""Network matching: FDR/top-fraction thresholds, Dice, spin-test null, links."""

from __future__ import annotations


import numpy as np
import pytest
from scipy import stats

from brainlike.config import NetworksConfig
from brainlike.errors import ConfigError
from brainlike.networks import (
    LINK_COLUMNS,
    bh_reject,
    dice_matrix,
    match_from_config,
    match_networks,
    network_set,
    p_from_z,
    random_rotations,
    sphere_coords,
    spin_benchmark,
    spin_permutations,
    spin_test,
    threshold_map,
    threshold_maps,
)

NAMES = ["yeo7", "yeo17", "cole_anticevic12"]
N_SPINS = 200


@pytest.fixture(scope="module")
def nets(atlas_root):
    return network_set(NAMES, atlas_root)


@pytest.fixture(scope="module")
def perms(nets):
    return spin_permutations(N_SPINS, seed=0, valid=nets.cortex)


# --- thresholds ---------------------------------------------------------------------------


def test_p_from_z_is_two_sided_normal():
    z = np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 8.0, np.nan])
    ref = 2 * stats.norm.sf(np.abs(z))
    np.testing.assert_allclose(p_from_z(z)[:-1], ref[:-1], rtol=1e-12)
    assert np.isnan(p_from_z(z)[-1])


def test_bh_matches_scipy():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=900), rng.uniform(0, 1e-3, size=100)])
    for alpha in (0.01, 0.05, 0.2):
        ref = stats.false_discovery_control(p, method="bh") <= alpha
        np.testing.assert_array_equal(bh_reject(p, alpha), ref)
    # NaN p-values are not tests: same answer as leaving them out
    p_nan = p.copy()
    p_nan[::7] = np.nan
    keep = np.isfinite(p_nan)
    out = bh_reject(p_nan, 0.05)
    assert not out[~keep].any()
    np.testing.assert_array_equal(out[keep], stats.false_discovery_control(p_nan[keep]) <= 0.05)
    assert not bh_reject(np.full(10, 0.9), 0.05).any()


def test_fdr_threshold_recovers_planted_signed_networks(nets):
    rng = np.random.default_rng(1)
    n_v = nets.masks.shape[1]
    pos_net, neg_net = nets.mask("cole_anticevic12", "Auditory"), nets.mask("yeo7", "Visual")
    z = rng.standard_normal(n_v)
    z[pos_net] += 6.0
    z[neg_net] -= 6.0
    constant = rng.uniform(size=n_v) < 0.02  # e.g. vertices with no signal in the data
    z[~nets.cortex] = 50.0  # must never show: medial wall is not tested
    valid = nets.cortex & ~constant
    maps = threshold_map(z, method="fdr", fdr_alpha=0.05, valid=valid)
    assert maps.shape == (2, n_v) and maps.dtype == bool
    assert not (maps[0] & maps[1]).any()
    assert not maps[:, ~valid].any()
    d = dice_matrix(maps, np.stack([pos_net & valid, neg_net & valid]))
    # recall is near complete; Dice is below 1 by the (allowed) false discoveries
    assert maps[0][pos_net & valid].mean() > 0.99 and maps[1][neg_net & valid].mean() > 0.99
    assert d[0, 0] > 0.85 and d[1, 1] > 0.9
    # false discoveries: the BH guarantee is on the expectation; one draw stays well below 2 x alpha
    declared = maps.any(0)
    null = valid & ~pos_net & ~neg_net
    assert (declared & null).sum() / declared.sum() < 0.1
    # the same set as scipy's BH on the valid vertices' two-sided p
    ref = stats.false_discovery_control(2 * stats.norm.sf(np.abs(z[valid]))) <= 0.05
    np.testing.assert_array_equal(declared[valid], ref)


def test_fdr_on_pure_noise_declares_little(nets):
    rng = np.random.default_rng(2)
    fp = [threshold_map(rng.standard_normal(nets.cortex.size), valid=nets.cortex).any(0).sum() for _ in range(20)]
    # under the global null BH controls the family-wise error at alpha: most maps are empty
    assert np.mean(np.array(fp) > 0) <= 0.2


def test_top_fraction():
    z = np.array([5.0, 4.0, 3.0, -1.0, -2.0, -6.0, 0.5, np.nan, 9.0, 1.0])
    valid = np.ones(10, bool)
    valid[8] = False  # the largest z is outside the cortex
    maps = threshold_map(z, method="top_fraction", top_fraction=0.2, valid=valid)
    # 9 finite valid vertices -> ceil(0.2 * 9) = 2 per sign
    np.testing.assert_array_equal(np.flatnonzero(maps[0]), [0, 1])
    np.testing.assert_array_equal(np.flatnonzero(maps[1]), [4, 5])
    many = threshold_maps(np.stack([z, -z]), method="top_fraction", top_fraction=0.2, valid=valid)
    np.testing.assert_array_equal(many[1, 0], maps[1])
    with pytest.raises(ValueError):
        threshold_map(z, method="median")


# --- Dice ---------------------------------------------------------------------------------


def test_dice_matrix_against_sets():
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(5, 300)) < 0.2
    b = rng.uniform(size=(4, 300)) < 0.3
    a[4] = False  # empty map
    d = dice_matrix(a, b)
    for i in range(5):
        for j in range(4):
            sa, sb = set(np.flatnonzero(a[i])), set(np.flatnonzero(b[j]))
            ref = 2 * len(sa & sb) / (len(sa) + len(sb)) if sa or sb else 0.0
            assert d[i, j] == pytest.approx(ref, abs=1e-12)
    assert dice_matrix(b[:1], b[:1])[0, 0] == 1.0


# --- spin test ----------------------------------------------------------------------------


def test_rotations_are_rotations():
    r = random_rotations(50, seed=0)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    np.testing.assert_array_equal(r, random_rotations(50, seed=0))
    assert not np.allclose(r, random_rotations(50, seed=1))


def test_permutations_against_brute_force(nets, perms):
    coords = sphere_coords()
    n_h = coords.shape[0] // 2
    assert perms.shape == (N_SPINS, coords.shape[0]) and perms.dtype == np.int32
    valid = nets.cortex
    # valid vertices draw from valid vertices of the same hemisphere; the rest stay put
    assert valid[perms[:, valid]].all()
    np.testing.assert_array_equal(perms[:, ~valid], np.broadcast_to(np.flatnonzero(~valid), (N_SPINS, (~valid).sum())))
    assert ((perms[:, :n_h] < n_h) | ~valid[:n_h]).all() and (perms[:, n_h:] >= n_h).all()
    # the identity rotation gives the identity
    ident = spin_permutations(1, 0, valid=valid, rotations=np.eye(3)[None])
    np.testing.assert_array_equal(ident[0], np.arange(coords.shape[0]))
    # explicit rotation, right hemisphere reflected: brute-force nearest rotated valid vertex
    rot = random_rotations(N_SPINS, seed=0)[7]
    flip = np.diag([-1.0, 1.0, 1.0])
    rng = np.random.default_rng(4)
    for h, r in ((0, rot), (1, flip @ rot @ flip)):
        src = np.flatnonzero(valid[h * n_h : (h + 1) * n_h]) + h * n_h
        rotated = coords[src] @ r.T  # rows: R x_u
        for v in rng.choice(src, 25, replace=False):
            nearest = src[np.argmin(np.linalg.norm(rotated - coords[v], axis=1))]
            assert perms[7, v] == nearest


def test_bounded_search_gives_the_unbounded_nearest_source(nets, perms):
    """Every vertex of every spin: the bounded KD-tree search (with its unbounded retry) picks the
    vertex an unbounded search picks, and the retry path is taken (points far from any source)."""
    from scipy.spatial import cKDTree

    from brainlike.networks.spin import _BOUND_SPACING

    coords = sphere_coords()
    n_h = coords.shape[0] // 2
    valid = nets.cortex
    flip = np.diag([-1.0, 1.0, 1.0])
    far = 0
    for h in range(2):
        src = np.flatnonzero(valid[h * n_h : (h + 1) * n_h]) + h * n_h
        tree = cKDTree(coords[src])
        bound = _BOUND_SPACING * tree.query(coords[src], k=2)[0][:, 1].mean()
        for s, rot in enumerate(random_rotations(N_SPINS, seed=0)):
            r = flip @ rot @ flip if h else rot
            dist, nn = tree.query(coords[src] @ r, k=1)
            far += int((dist >= bound).sum())
            np.testing.assert_array_equal(perms[s, src], src[nn])
    assert far > 0


def test_spin_null_equals_direct_gather(nets, perms):
    rng = np.random.default_rng(5)
    maps = nets.masks[rng.integers(0, nets.masks.shape[0], 6)].copy()
    maps[5] = False  # an empty map: Dice 0 everywhere and p = 1
    dice, p, null = spin_test(maps, nets.masks, perms[:40], batch=4, spins_per_chunk=7, return_null=True)
    np.testing.assert_allclose(dice, dice_matrix(maps, nets.masks))
    for s in (0, 13, 39):
        np.testing.assert_allclose(null[s], dice_matrix(maps[:, perms[s]], nets.masks), atol=1e-6)
    exceed = (null >= dice[None] - 1e-12).sum(0)
    np.testing.assert_allclose(p, (1 + exceed) / 41)
    np.testing.assert_array_equal(p[5], 1.0)


def test_network_against_itself_is_significant(nets, perms):
    _, p = spin_test(nets.masks, nets.masks, perms)
    assert (np.diag(p) < 0.01).all()
    assert np.diag(p).max() == pytest.approx(1 / (N_SPINS + 1))


@pytest.mark.parametrize("key", [("yeo7", "Default"), ("cole_anticevic12", "Language")])
def test_network_against_rotated_itself_is_uniform(nets, perms, key):
    net = nets.mask(*key)
    # 100 rotated copies, each by its own rotation, drawn from a seed the null does not use
    n_rep = 100
    other = spin_permutations(n_rep, seed=12345, valid=nets.cortex)
    rotated = net[other]
    dice, p, null = spin_test(rotated, net[None], perms, return_null=True)
    p, dice, null = p[:, 0], dice[:, 0], null[:, :, 0].astype(np.float64)
    # p is valid (super-uniform): never more small p-values than the level allows
    # (bounds: 3 binomial standard deviations)
    def sd(level):
        return 3 * np.sqrt(level * (1 - level) / n_rep)

    for level in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(p <= level) <= level + sd(level)
    # and exactly uniform once ties (e.g. many rotations with Dice 0 for a small network) are
    # broken at random: the observed Dice is then one more draw from the null
    rng = np.random.default_rng(7)
    above = (null > dice[None] + 1e-9).sum(0)
    ties = (np.abs(null - dice[None]) <= 1e-9).sum(0)
    p_rand = (above + rng.uniform(size=p.size) * (ties + 1)) / (N_SPINS + 1)
    # (double nearest-neighbour resampling makes small networks slightly conservative, hence
    # a lenient KS level plus checks on the spread)
    assert stats.kstest(p_rand, "uniform").pvalue > 1e-3
    for level in (0.1, 0.25, 0.5, 0.75):
        assert abs(np.mean(p_rand <= level) - level) <= sd(level)


# --- links --------------------------------------------------------------------------------


def test_match_networks_links_planted_atoms(nets, perms):
    rng = np.random.default_rng(6)
    n_v = nets.masks.shape[1]
    z = rng.standard_normal((3, n_v))
    z[0, nets.mask("cole_anticevic12", "Auditory")] += 7.0
    z[1, nets.mask("yeo7", "Visual")] -= 7.0
    # the link rule on the raw spin p (200 spins: 1/201 is too coarse for BH over 216 tests)
    table, maps = match_networks(z, nets, perms, min_dice=0.5, model="m", correction="none")
    assert list(table.columns) == LINK_COLUMNS
    assert len(table) == 3 * 2 * nets.masks.shape[0] and maps.shape == (3, 2, n_v)
    row = table.query("atom == 0 and sign == '+' and atlas == 'cole_anticevic12' and network == 'Auditory'").iloc[0]
    assert row.linked and row.dice > 0.9 and row.p < 0.01
    row = table.query("atom == 1 and sign == '-' and atlas == 'yeo7' and network == 'Visual'").iloc[0]
    assert row.linked and row.dice > 0.9
    assert not table.query("atom == 2")["linked"].any()
    assert not table.query("atom == 0 and sign == '-'")["linked"].any()
    # min_dice gates: with min_dice = 1 nothing links
    table1, _ = match_networks(z, nets, perms, min_dice=1.0, correction="none")
    assert not table1["linked"].any()
    # BH over the whole family: q >= p, empty maps are no test (q = 1), and at this spin count
    # fewer links survive than uncorrected -- why the default uses 5,000 spins
    bh, _ = match_networks(z, nets, perms, min_dice=0.5, model="m")
    tested = bh["map_vertices"] > 0
    assert (bh["q"] >= bh["p"] - 1e-12).all() and (bh.loc[~tested, "q"] == 1).all()
    assert bh["linked"].sum() <= table["linked"].sum()
    # config wrapper gives the same table
    cfg = NetworksConfig(min_dice=0.5, n_spins=N_SPINS, link_correction="none")
    table2, _ = match_from_config(z, nets, perms, cfg, model="m")
    assert table2.equals(table)


def test_config_rejects_impossible_spin_alpha():
    with pytest.raises(ValueError, match="n_spins"):
        NetworksConfig(n_spins=10, spin_alpha=0.05)
    from brainlike.config import parse_params

    with pytest.raises(ConfigError):
        parse_params({"networks": {"thresh": "fdr"}})


def test_spin_benchmark_reports_rates():
    out = spin_benchmark(n_spins=20, n_maps=8)
    assert out["n_vertices"] == 20484 and out["rotations_per_s"] > 0 and out["map_spins_per_s"] > 0


def test_spins_file_round_trip_and_mismatch(nets, tmp_path):
    """The ``spins`` stage's file gives every model's stage the rotations it would build itself;
    a file of another size (a changed ``n_spins``) is refused, naming the file and the field."""
    from brainlike.errors import DataError
    from brainlike.networks.spin import read_spins, write_spins

    perms = spin_permutations(12, 3, valid=nets.cortex)
    path = write_spins(perms, tmp_path / "spins.npy")
    assert np.load(path).dtype == np.int16
    back = read_spins(path, 12, nets.cortex.size)
    assert back.dtype == np.int16 and np.array_equal(back, perms)
    # the stored int16 indices give the spin test of the int32 ones, exactly
    rng = np.random.default_rng(0)
    maps = (rng.random((5, nets.cortex.size)) < 0.1) & nets.cortex[None]
    for a, b in zip(spin_test(maps, nets.masks, back), spin_test(maps, nets.masks, perms)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match=r"spins\.npy.*n_spins"):
        read_spins(path, 13, nets.cortex.size)
    with pytest.raises(DataError, match="dvc repro spins"):
        read_spins(tmp_path / "missing.npy", 12, nets.cortex.size)
