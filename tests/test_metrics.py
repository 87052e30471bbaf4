"""Organization metrics and the scored answer on hand-made cases with hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from brainlike.errors import DataError
from brainlike.metrics import (
    atoms_per_fbn,
    balance,
    compactness,
    cross_subject_consistency,
    diversity,
    effective_atoms,
    layer_entropy,
    modality_share,
    organization_metrics,
    polarity,
    redundancy,
    score_recovery,
    score_recovery_by_model,
    signed_dice,
    tidy_metrics,
    within_fbn_consistency,
)
from brainlike.networks import match_networks, network_set, spin_permutations

T = 40


def _links(rows, model="m"):
    """Link table from (atom, sign, atlas, network, dice, linked) tuples."""
    df = pd.DataFrame(rows, columns=["atom", "sign", "atlas", "network", "dice", "linked"])
    df.insert(0, "model", model)
    df["p"] = np.where(df["linked"], 0.001, 0.5)
    return df


@pytest.fixture(scope="module")
def atoms():
    """x, x, y, -x with x and y zero-mean and orthogonal: r(0,1)=1, r(0,2)=0, r(0,3)=-1."""
    t = np.arange(T)
    x = np.sin(2 * np.pi * t / T)
    y = np.cos(2 * np.pi * t / T)
    return np.stack([x, x, y, -x], axis=1)


def test_diversity(atoms):
    identical = _links([(0, "+", "a", "A", 0.5, True), (1, "+", "a", "A", 0.5, True)])
    assert diversity(atoms, identical) == pytest.approx(0.0, abs=1e-12)
    orthogonal = _links([(0, "+", "a", "A", 0.5, True), (2, "-", "a", "B", 0.5, True)])
    assert diversity(atoms, orthogonal) == pytest.approx(1.0, abs=1e-12)
    # 0, 2, 3: |r| = 0, 1, 0 -> 1 - 1/3
    three = _links([(0, "+", "a", "A", 0.5, True), (2, "+", "a", "B", 0.5, True), (3, "+", "a", "C", 0.5, True)])
    assert diversity(atoms, three) == pytest.approx(2 / 3)
    # an unlinked row does not count; one linked atom is undefined
    one = _links([(0, "+", "a", "A", 0.5, True), (1, "+", "a", "A", 0.1, False)])
    assert math.isnan(diversity(atoms, one))


def test_within_fbn_consistency(atoms):
    links = _links(
        [
            (0, "+", "a", "A", 0.5, True),  # A: atom 0 up, atom 3 (= -x) down -> same drive: +1
            (3, "-", "a", "A", 0.4, True),
            (0, "+", "a", "B", 0.3, True),  # B: atoms 0 and 2 both up, r = 0
            (2, "+", "a", "B", 0.3, True),
            (1, "+", "a", "C", 0.3, True),  # C: one atom, left out
            (2, "+", "a", "C", 0.1, False),
        ]
    )
    value, per = within_fbn_consistency(atoms, links)
    assert per == pytest.approx({"a/A": 1.0, "a/B": 0.0}, abs=1e-12)
    assert value == pytest.approx(0.5)
    # the same two atoms both coupled up: r(x, -x) = -1
    _, per2 = within_fbn_consistency(atoms, _links([(0, "+", "a", "A", 0.5, True), (3, "+", "a", "A", 0.5, True)]))
    assert per2["a/A"] == pytest.approx(-1.0)
    assert math.isnan(within_fbn_consistency(atoms, _links([(0, "+", "a", "A", 0.5, True)]))[0])


def test_atoms_per_fbn_and_compactness():
    links = _links(
        [
            (0, "+", "a", "A", 0.5, True),
            (1, "+", "a", "A", 0.5, True),
            (1, "-", "a", "A", 0.2, True),
            (2, "-", "a", "B", 0.5, True),
            (3, "+", "a", "B", 0.1, False),
            (0, "+", "a", "A", 0.5, True),  # duplicate row: still one atom
        ]
    )
    assert atoms_per_fbn(links) == {"a/A": {"+": 2, "-": 1}, "a/B": {"+": 0, "-": 1}}
    assert compactness(links, n_atoms=8) == pytest.approx(3 / 8)


def test_effective_atoms():
    def table(assign):
        return pd.DataFrame({"atom": assign, "is_max": True})

    assert effective_atoms(table([0, 0, 1, 1]), 4) == pytest.approx(2.0)
    assert effective_atoms(table([0, 1, 2, 3]), 4) == pytest.approx(4.0)
    assert effective_atoms(table([2, 2, 2]), 4) == pytest.approx(1.0)
    # H of (1/2, 1/4, 1/4) = 1.5 ln 2
    assert effective_atoms(table([0, 0, 1, 2]), 4) == pytest.approx(2 ** 1.5)
    # rows that are not an AN's exclusive assignment do not count
    t = pd.DataFrame({"atom": [0, 1, 1, 1], "is_max": [True, True, False, False]})
    assert effective_atoms(t, 2) == pytest.approx(2.0)


def test_balance():
    assert balance(0.5, 0.5) == pytest.approx(0.5)
    assert balance(0.6, 0.3) == pytest.approx(0.4)
    assert balance(1.0, 0.0) == 0.0
    assert balance(0.5, -0.4) == 0.0
    assert math.isnan(balance(float("nan"), 0.5))


def test_cross_subject_consistency():
    v = 6
    m = np.zeros((2, 4, 2, v), bool)
    m[:, 0, 0, [0, 1, 2]] = True  # atom 0: identical -> 1
    m[0, 1, 0, [0, 1]] = True  # atom 1: disjoint -> 0
    m[1, 1, 0, [2, 3]] = True
    # atom 2: both empty -> undefined
    m[0, 3, 0, [0, 1]] = True  # atom 3: {0,1} vs {1,2} -> 2*1/4
    m[1, 3, 0, [1, 2]] = True
    value, per = cross_subject_consistency(m)
    np.testing.assert_allclose(per, [1.0, 0.0, np.nan, 0.5])
    assert value == pytest.approx(0.5)
    # same vertices with opposite signs do not count as shared
    a, b = np.zeros((2, v), bool), np.zeros((2, v), bool)
    a[0, 0] = b[1, 0] = True
    assert signed_dice(a, b) == 0.0
    # three subjects: mean over the three pairs
    m3 = np.zeros((3, 1, 2, v), bool)
    m3[0, 0, 0, [0, 1]] = m3[1, 0, 0, [0, 1]] = True
    m3[2, 0, 1, [0, 1]] = True
    assert cross_subject_consistency(m3)[0] == pytest.approx(1 / 3)
    with pytest.raises(DataError):
        cross_subject_consistency(np.zeros((2, 3, v), bool))


def _subgroups(rows):
    return pd.DataFrame(rows, columns=["an", "layer", "unit", "tower", "atom", "code", "is_max"])


def test_layer_entropy():
    sg = _subgroups(
        [(i, 2, i, "text", 0, 1.0, True) for i in range(5)]  # atom 0: one layer -> 0
        + [(10 + i, i, i, "text", 1, 0.5, True) for i in range(4)]  # atom 1: even over 4 -> 1
        + [(20, 0, 0, "text", 2, 0.3, True), (21, 1, 1, "text", 2, -0.3, True)]  # 2 of 4 -> 0.5
        + [(30, 3, 0, "text", 3, 0.0, False)]  # zero code: not in the sub-group
    )
    np.testing.assert_allclose(layer_entropy(sg, n_atoms=5, n_layers=4), [0.0, 1.0, 0.5, np.nan, np.nan], atol=1e-12)


def test_redundancy():
    maps = np.zeros((3, 2, 8), bool)
    maps[0, 0, [0, 1, 2, 3]] = True
    maps[1, 1, [2, 3, 4, 5]] = True  # linked with '-': its negative map counts
    maps[2, 0, [6, 7]] = True
    links = _links([(0, "+", "a", "A", 0.5, True), (1, "-", "a", "A", 0.5, True), (2, "+", "a", "B", 0.5, True)])
    red = redundancy(links, maps)
    assert red["a/A"] == {"n_atoms": 2, "mean_dice": pytest.approx(0.5)}
    assert red["a/B"] == {"n_atoms": 1, "mean_dice": None}


def test_polarity_and_modality_share():
    # FBN A: atom 0 coupled up, atom 1 coupled down; layers of the up ANs 0,0,1; down ANs 1,2,2
    sg = _subgroups(
        [
            (0, 0, 0, "text", 0, 1.0, True),
            (1, 0, 1, "text", 0, 1.0, True),
            (2, 1, 0, "vision", 0, 1.0, True),
            (3, 1, 1, "text", 1, 1.0, True),
            (4, 2, 0, "vision", 1, 1.0, True),
            (5, 2, 1, "vision", 1, 1.0, True),
            (6, 0, 2, "text", 2, -1.0, True),  # atom 2 linked up, negative code -> coupled down
        ]
    )
    links = _links([(0, "+", "a", "A", 0.5, True), (1, "-", "a", "A", 0.5, True)])
    pol = polarity(links, sg, n_layers=3)
    assert pol["a/A"] == pytest.approx(-1.0)  # profiles (2,1,0)/3 and (0,1,2)/3: mirrored
    # an FBN with only one side has no polarity
    assert polarity(_links([(0, "+", "a", "B", 0.5, True)]), sg, 3) == {"a/B": None}
    # the negative code of atom 2 puts its AN on the down side: down = layers 0 (AN 6) only
    pol2 = polarity(_links([(0, "+", "a", "A", 0.5, True), (2, "+", "a", "A", 0.5, True)]), sg, 3)
    assert pol2["a/A"] == pytest.approx(np.corrcoef([2, 1, 0], [1, 0, 0])[0, 1])
    share = modality_share(sg)
    assert share[0] == pytest.approx({"text": 2 / 3, "vision": 1 / 3})
    assert share[1] == pytest.approx({"text": 1 / 3, "vision": 2 / 3})


def test_organization_metrics_dict_and_tidy(atoms):
    links = _links(
        [
            (0, "+", "a", "A", 0.5, True),
            (3, "-", "a", "A", 0.4, True),
            (2, "+", "a", "B", 0.3, True),
            (1, "+", "a", "B", 0.1, False),
        ]
    )
    sg = _subgroups(
        [(i, i % 3, i, "text" if i % 2 else "vision", i % 4, 1.0, True) for i in range(24)]
    )
    maps = np.zeros((4, 2, 10), bool)
    maps[0, 0, :4] = maps[3, 1, 2:6] = maps[2, 0, 6:] = True
    subj = np.stack([maps, maps])
    out = organization_metrics(atoms, links, sg, maps=maps, subject_maps=subj)
    assert out["compactness"] == pytest.approx(3 / 4)
    assert out["within_fbn_consistency"] == pytest.approx(1.0)
    # linked atoms 0, 2, 3: |r| = 0, 1, 0
    assert out["diversity"] == pytest.approx(2 / 3)
    assert out["balance"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert out["effective_atoms"] == pytest.approx(4.0)
    assert out["cross_subject_consistency"] == pytest.approx(1.0)
    assert out["redundancy"]["a/A"]["mean_dice"] == pytest.approx(0.5)
    assert set(out["modality_share_linked_mean"]) == {"text", "vision"}
    json.dumps(out)  # JSON-ready
    tidy = tidy_metrics({"m": out})
    assert list(tidy.columns) == ["model", "metric", "key", "value"]
    row = tidy[(tidy.metric == "atoms_per_fbn") & (tidy.key == "a/A|-")]
    assert row["value"].item() == 1.0
    assert tidy[(tidy.metric == "diversity")]["value"].item() == pytest.approx(2 / 3)
    # one-tower models skip the paper-B metrics unless asked
    out_lm = organization_metrics(atoms, links, sg.assign(tower="text"))
    assert "polarity" not in out_lm and "cross_subject_consistency" not in out_lm
    # the patterns stage names the AN column an_id
    renamed = organization_metrics(atoms, links, sg.rename(columns={"an": "an_id"}), maps=maps, subject_maps=subj)
    assert renamed == out
    with pytest.raises(DataError, match="subgroups"):
        organization_metrics(atoms, links, sg.drop(columns="tower"))
    with pytest.raises(DataError, match="atoms"):
        organization_metrics(atoms[:, :2], links, sg)


# --- recovery -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nets(atlas_root):
    return network_set(["yeo7", "yeo17", "cole_anticevic12"], atlas_root)


@pytest.fixture(scope="module")
def planted_links(nets):
    """Group z-maps with exactly planted networks, through the real matching code."""
    # 1000 spins: with BH over the link family, 1/101 (100 spins) is too coarse to reject anything
    perms = spin_permutations(1000, seed=0, valid=nets.cortex)
    z = np.zeros((4, nets.cortex.size))
    z[0, nets.mask("cole_anticevic12", "Auditory")] = 8.0
    z[1, nets.mask("yeo7", "Visual")] = -8.0
    z[2, nets.mask("yeo7", "Default")] = 8.0  # a link to a network nobody planted
    table, _ = match_networks(z, nets, perms, min_dice=0.5, model="m")
    return table


PLANTED = [
    {"feature": "word_rate", "atlas": "cole_anticevic12", "network": "Auditory", "n_vertices": 525},
    {"feature": "semantic_2", "atlas": "yeo7", "network": "Visual", "n_vertices": 2784},
]


def test_recovery_perfect(nets, planted_links):
    links = planted_links[planted_links.atom != 2]
    out = score_recovery(links, PLANTED, nets)
    by = {e["network"]: e for e in out["planted"]}
    assert by["Auditory"]["best_dice"] == 1.0 and by["Auditory"]["best_sign"] == "+"
    assert by["Visual"]["best_dice"] == 1.0 and by["Visual"]["best_sign"] == "-"
    assert out["recall"] == 1.0 and out["precision"] == 1.0 and out["all_pass"]
    # the Visual map also links to its Yeo-17 / Cole parcels: true by containment, not exact
    assert out["n_links"] > 2 and out["precision_strict"] < 1.0
    json.dumps(out)


def test_recovery_missing_network_and_false_link(nets, planted_links):
    planted = PLANTED + [{"feature": "semantic_1", "atlas": "cole_anticevic12", "network": "Language"}]
    out = score_recovery(planted_links, planted, nets)
    lang = next(e for e in out["planted"] if e["network"] == "Language")
    assert not lang["linked_exact"] and not lang["passes"]
    assert lang["best_dice"] < 0.6 and out["recall"] == pytest.approx(2 / 3)
    assert not out["all_pass"] and out["min_best_dice"] == lang["best_dice"]
    # the Default-network atom is a false link
    assert out["precision"] < 1.0
    assert {(f["atlas"], f["network"]) for f in out["false_links"]} >= {("yeo7", "Default")}
    assert score_recovery_by_model(planted_links, planted, nets)["m"] == out
    with pytest.raises(DataError):
        score_recovery(planted_links, [{"atlas": "yeo7", "network": "Nope"}], nets)


def test_unsigned_consistency_and_organization_cis():
    from brainlike.metrics.temporal import within_fbn_consistency_unsigned
    from brainlike.metrics.uncertainty import block_resamples, organization_cis, wilson

    rng = np.random.default_rng(0)
    x = rng.standard_normal(300).cumsum()
    A = np.column_stack([x, x + rng.standard_normal(300) * 5, -x, rng.standard_normal(300)])
    links = _links([(0, "+", "a", "A", 0.5, True), (2, "-", "a", "A", 0.5, True), (1, "+", "a", "B", 0.5, True),
                    (3, "+", "a", "B", 0.5, True)])
    signed, _ = within_fbn_consistency(A, links)
    unsigned, per = within_fbn_consistency_unsigned(A, links)
    assert per["a/A"] == pytest.approx(-1.0)  # opposite time courses, opposite coupling signs
    assert signed > unsigned
    m = {"n_atoms": 4, "n_linked_atoms": 4, "within_fbn_consistency": signed,
         "within_fbn_consistency_unsigned": unsigned, "diversity": diversity(A, links), "compactness": 1.0}
    m["balance"] = balance(m["diversity"], signed)
    ci = organization_cis(A, links, m, n_boot=300)
    for k in ("within_fbn_consistency", "within_fbn_consistency_unsigned", "diversity", "compactness"):
        assert ci[f"{k}_ci_low"] <= m[k] + 1e-9 and m[k] - 1e-9 <= ci[f"{k}_ci_high"], k
        assert k in ci["ci_units"]
    assert ci["diversity_ci_high"] - ci["diversity_ci_low"] > 0
    idx = block_resamples(100, 20, 5, seed=1)
    assert idx.shape == (5, 100) and idx.max() < 100 and (np.diff(idx[:, :20], axis=1) == 1).all()
    lo, hi = wilson(16, 64)
    assert lo < 0.25 < hi and 0 <= lo and hi <= 1


def test_marginal_consistency_counts_same_sign_links_of_alike_atoms():
    """Marginal links: two atoms that move together and are both linked + to a network give a
    positive signed consistency with a CI around it; nothing linked twice: undefined, not 0."""
    from brainlike.metrics.uncertainty import marginal_consistency

    rng = np.random.default_rng(1)
    x = rng.standard_normal(300).cumsum()
    A = np.column_stack([x, x + rng.standard_normal(300) * 3, rng.standard_normal(300)])
    links = _links([(0, "+", "a", "A", 0.5, True), (1, "+", "a", "A", 0.4, True), (2, "+", "a", "B", 0.4, True),
                    (2, "-", "a", "A", 0.1, False)])
    out = marginal_consistency(A, links, n_boot=200)
    r01 = np.corrcoef(A[:, 0], A[:, 1])[0, 1]
    assert out["within_fbn_consistency_marginal"] == pytest.approx(r01)
    assert out["within_fbn_consistency_unsigned_marginal"] == pytest.approx(r01)
    assert out["within_fbn_consistency_marginal_per_fbn"] == {"a/A": pytest.approx(r01)}
    assert out["within_fbn_consistency_marginal_ci_low"] <= r01 <= out["within_fbn_consistency_marginal_ci_high"]
    assert out["n_links_marginal"] == 3 and out["n_linked_atoms_marginal"] == 3
    alone = marginal_consistency(A, links[links["atom"] != 1], n_boot=50)
    assert alone["within_fbn_consistency_marginal"] is None
    assert alone["within_fbn_consistency_marginal_ci_low"] is None


def test_unique_variance_verdict_needs_the_shift_test_and_the_net_gain_ci():
    """'adds over a baseline' claims a net gain: the circular-shift test (aligned atoms beat shifted
    ones, which cost prediction) must survive BH *and* the subject-bootstrap CI of delta R^2 must
    exclude 0; a passed shift test with a CI across 0 is worded as such, not as 'adds'."""
    from brainlike.metrics.stage import _correct_and_verdict

    def entry(lo, p):
        return {"trained": True, "unique_over_baseline": {"base": {"delta_r2": 0.005, "ci_low": lo, "ci_high": 0.02, "p": p}}}

    entries = {"a": entry(0.001, 0.001), "b": entry(-0.008, 0.001), "c": entry(0.001, 0.5)}
    _correct_and_verdict(entries, 0.05)
    u = {m: e["unique_over_baseline"]["base"] for m, e in entries.items()}
    assert [u[m]["adds"] for m in "abc"] == [True, False, False]
    assert [u[m]["beats_shifted"] for m in "abc"] == [True, True, False]
    assert "a: adds over base" in entries["a"]["verdict"]
    assert "beats its time-shifted null but its net gain's CI includes 0 over base" in entries["b"]["verdict"]
    assert "adds nothing significant over base" in entries["c"]["verdict"]
