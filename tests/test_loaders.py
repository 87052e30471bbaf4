"""Loaders: BIDS volumes and GIfTI, word formats, confounds, Alice, path recognition, bad inputs.

Fixtures are written by the tests: a coarse (8 mm) MNI volume whose signal is linear in space,
so nilearn's projection has a known exact answer; fsaverage6 GIfTIs whose values encode the
vertex index, so the decimation can be checked value by value.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainlike.config import AliceDataset, BidsDataset
from brainlike.data import write_store
from brainlike.data.loaders import (
    load_alice,
    load_bids_dataset,
    load_bids_run,
    load_dataset,
    load_path,
    read_confounds,
    read_textgrid,
    read_words,
)
from brainlike.data.loaders.bids_files import parse_bids_name
from brainlike.data.surfaces import (
    N_FSAVERAGE5_HEMI,
    N_FSAVERAGE6_HEMI,
    fsaverage6_to_5,
    load_fsaverage5,
    project_volume_to_fsaverage5,
)
from brainlike.errors import DataError

TR = 1.5
N_VOL = 20
SLOPE = np.array([0.01, 0.02, -0.015])
MNI = "MNI152NLin2009cAsym"
VOL_NAME = "sub-{s}_task-story_space-" + MNI + "_desc-preproc_bold.nii.gz"
CONF_NAME = "sub-{s}_task-story_desc-confounds_timeseries.tsv"
WORDS = [("Once", 2.0, 0.4), ("upon", 2.4, 0.3), ("a", 2.7, 0.1), ("time", 2.8, 0.5), ("there", 10.0, 0.4), ("lived", 20.0, 0.5)]


# --------------------------------------------------------------------------- fixture writers
def signal(xyz: np.ndarray, t: int) -> np.ndarray:
    """Linear in space, changing with time: trilinear interpolation reproduces it exactly."""
    return xyz @ SLOPE * (1 + 0.1 * t) + t + 100.0


def write_volume(path, n_vol=N_VOL, tr=TR, z_max=None, time_unit="sec"):
    """8 mm MNI grid covering fsaverage's cortex; ``z_max`` crops the top of the field of view."""
    aff = np.diag([8.0, 8.0, 8.0, 1.0])
    aff[:3, 3] = [-96, -132, -80]
    nz = 27 if z_max is None else int((z_max + 80) // 8) + 1
    shape = (25, 29, nz)
    xyz = nib.affines.apply_affine(aff, np.indices(shape).reshape(3, -1).T)
    data = np.stack([signal(xyz, t) for t in range(n_vol)], -1).reshape(*shape, n_vol).astype(np.float32)
    img = nib.Nifti1Image(data, aff)
    img.header.set_xyzt_units("mm", time_unit)
    img.header["pixdim"][4] = tr
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def write_confounds(path, n_rows=N_VOL, columns=None):
    rng = np.random.default_rng(0)
    cols = columns or ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "framewise_displacement"]
    table = pd.DataFrame(rng.normal(size=(n_rows, len(cols))), columns=cols)
    if "trans_x" in table:
        table["trans_x_derivative1"] = table["trans_x"].diff()  # NaN in row 0, as fMRIPrep writes n/a
    if "framewise_displacement" in table:
        table.loc[0, "framewise_displacement"] = np.nan
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return path


def write_events(path, words=WORDS, extra_rows=True):
    rows = [{"onset": o, "duration": d, "trial_type": "word", "word": w} for w, o, d in words]
    if extra_rows:
        rows += [
            {"onset": 5.0, "duration": 0.2, "trial_type": "word", "word": "sp"},
            {"onset": 0.0, "duration": 30.0, "trial_type": "noise", "word": "n/a"},
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).sort_values("onset").to_csv(path, sep="\t", index=False)
    return path


def write_gifti(path, values):
    """``values``: (n_trs, n_vertices); one darray per volume, as fMRIPrep writes."""
    img = nib.gifti.GiftiImage(
        darrays=[nib.gifti.GiftiDataArray(np.asarray(v, np.float32), intent="NIFTI_INTENT_TIME_SERIES") for v in values]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path


def _tg_string(s):
    return '"' + s.replace('"', '""') + '"'


def textgrid_long(tiers, xmin=0.0, xmax=None):
    xmax = xmax if xmax is not None else max(b for _, items in tiers for _, b, _ in items)
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", f"xmin = {xmin}", f"xmax = {xmax}", "tiers? <exists>"]
    out += [f"size = {len(tiers)}", "item []:"]
    for k, (name, items) in enumerate(tiers, 1):
        out += [f"    item [{k}]:", '        class = "IntervalTier"', f"        name = {_tg_string(name)}"]
        out += [f"        xmin = {xmin}", f"        xmax = {xmax}", f"        intervals: size = {len(items)}"]
        for i, (a, b, text) in enumerate(items, 1):
            out += [f"        intervals [{i}]:", f"            xmin = {a}", f"            xmax = {b}", f"            text = {_tg_string(text)}"]
    return "\n".join(out) + "\n"


def textgrid_short(tiers, xmin=0.0, xmax=None):
    xmax = xmax if xmax is not None else max(b for _, items in tiers for _, b, _ in items)
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", str(xmin), str(xmax), "<exists>", str(len(tiers))]
    for name, items in tiers:
        out += ['"IntervalTier"', _tg_string(name), str(xmin), str(xmax), str(len(items))]
        for a, b, text in items:
            out += [str(a), str(b), _tg_string(text)]
    return "\n".join(out) + "\n"


TG_WORDS = [(0.0, 1.0, ""), (1.0, 1.5, "Alice"), (1.5, 1.7, "was"), (1.7, 2.0, "sp"), (2.0, 2.6, 'say "hi"'), (2.6, 3.0, "sil")]
TG_PHONES = [(0.0, 1.0, "sil"), (1.0, 1.2, "AE1"), (1.2, 3.0, "L")]


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    """Two subjects of fMRIPrep-style MNI volumes + sidecars + confounds, one events file."""
    root = tmp_path_factory.mktemp("bids")
    for s in ("01", "02"):
        func = root / f"sub-{s}" / "func"
        vol = write_volume(func / VOL_NAME.format(s=s))
        (func / vol.name.replace(".nii.gz", ".json")).write_text(json.dumps({"RepetitionTime": TR}))
        write_confounds(func / CONF_NAME.format(s=s))
    write_events(root / "stimuli" / "story_events.tsv")
    return root


@pytest.fixture(scope="module")
def bids_runs(bids_root):
    cfg = BidsDataset(kind="bids", name="tiny", path=bids_root, task="story", words="stimuli/story_events.tsv")
    return load_bids_dataset(cfg)


def test_bids_unreadable_run_is_recorded_and_the_others_load(bids_root, tmp_path):
    import shutil

    copy = tmp_path / "bids"
    shutil.copytree(bids_root, copy)
    conf = copy / "sub-02" / "func" / CONF_NAME.format(s="02")
    conf.write_text(conf.read_text().splitlines()[0] + "\n1\t2\n")  # 1 row for 20 volumes
    cfg = BidsDataset(kind="bids", name="tiny", path=copy, task="story", words="stimuli/story_events.tsv")
    with pytest.raises(DataError, match="confounds"):
        load_bids_dataset(cfg)
    failures = []
    runs = load_bids_dataset(cfg, failures=failures)
    assert [r.subject for r in runs] == ["01"]
    (f,) = failures
    assert f.run_id == "tiny_sub-02_task-story" and "sub-02" in f.source


def gifti_values(n_vertices, n_trs, offset):
    """Value = offset + 100,000 t + vertex index: exact in float32, unique per (t, vertex)."""
    return offset + 100_000.0 * np.arange(n_trs)[:, None] + np.arange(n_vertices)[None, :]


@pytest.fixture(scope="module")
def gifti_root(tmp_path_factory):
    """One subject on fsaverage6, fMRIPrep >= 21 entity order (hemi before space)."""
    root = tmp_path_factory.mktemp("gifti")
    func = root / "sub-07" / "func"
    for hemi, offset in (("L", 0.0), ("R", 1_000_000.0)):
        name = f"sub-07_task-story_hemi-{hemi}_space-fsaverage6_bold.func.gii"
        write_gifti(func / name, gifti_values(N_FSAVERAGE6_HEMI, 6, offset))
        (func / name.replace(".func.gii", ".json")).write_text(json.dumps({"RepetitionTime": 2.0}))
    write_confounds(func / "sub-07_task-story_desc-confounds_timeseries.tsv", n_rows=6)
    write_events(root / "events.tsv", words=[("hello", 1.0, 0.5), ("world", 8.0, 0.5)], extra_rows=False)
    return root


# --------------------------------------------------------------------------- surfaces
def test_fsaverage5_meshes_are_nilearns_shipped_files():
    import nilearn

    shipped = Path(nilearn.__file__).parent / "datasets" / "data" / "fsaverage5"
    mesh = load_fsaverage5()
    for hemi in ("left", "right"):
        assert mesh.pial.parts[hemi].n_vertices == N_FSAVERAGE5_HEMI
        for surf in ("pial", "white_matter"):
            assert Path(mesh[surf].parts[hemi].file_path).parent == shipped


def test_fsaverage6_to_5_keeps_the_first_10242_of_each_hemisphere():
    both = np.arange(2 * N_FSAVERAGE6_HEMI)[None, :].repeat(3, 0)
    out = fsaverage6_to_5(both)
    assert out.shape == (3, 2 * N_FSAVERAGE5_HEMI)
    np.testing.assert_array_equal(out[0, :N_FSAVERAGE5_HEMI], np.arange(N_FSAVERAGE5_HEMI))
    np.testing.assert_array_equal(out[0, N_FSAVERAGE5_HEMI:], N_FSAVERAGE6_HEMI + np.arange(N_FSAVERAGE5_HEMI))
    np.testing.assert_array_equal(fsaverage6_to_5(np.arange(N_FSAVERAGE6_HEMI)), np.arange(N_FSAVERAGE5_HEMI))
    with pytest.raises(DataError, match="40962"):
        fsaverage6_to_5(np.zeros((2, 20484)), source="x.gii")


def test_projection_reproduces_a_linear_signal_at_mid_cortical_depth(tmp_path):
    img = write_volume(tmp_path / "v.nii.gz", n_vol=4)
    data = project_volume_to_fsaverage5(img)
    assert data.shape == (4, 20484) and data.dtype == np.float32
    mesh = load_fsaverage5()
    # depth samples are evenly spaced from pial to white: their mean is the midpoint
    mid = np.concatenate(
        [(mesh.pial.parts[h].coordinates + mesh.white_matter.parts[h].coordinates) / 2 for h in ("left", "right")]
    )
    expected = np.stack([signal(mid, t) for t in range(4)])
    np.testing.assert_allclose(data, expected, atol=1e-3)


def test_projection_reports_vertices_outside_the_field_of_view(tmp_path):
    img = write_volume(tmp_path / "crop.nii.gz", n_vol=2, z_max=24)
    with pytest.warns(UserWarning, match=r"vertices came out NaN"):
        data = project_volume_to_fsaverage5(img)
    nan = np.isnan(data).any(axis=0)
    assert 0 < nan.sum() < nan.size
    mesh = load_fsaverage5()
    white_z = np.concatenate([mesh.white_matter.parts[h].coordinates[:, 2] for h in ("left", "right")])
    assert white_z[nan].min() > 24.0  # only vertices whose whole pial-white segment is above the crop


# --------------------------------------------------------------------------- BIDS volumes
def test_bids_dataset_volume_runs(bids_runs, bids_root):
    assert [r.subject for r in bids_runs] == ["01", "02"]
    run = bids_runs[0]
    assert (run.dataset, run.task, run.space, run.tr, run.t0) == ("tiny", "story", "fsaverage5", TR, 0.0)
    assert run.data.shape == (N_VOL, 20484)
    assert run.meta["tr_origin"] == "sidecar" and run.meta["nan_vertices"] == []
    assert run.meta["confounds_source"].endswith(CONF_NAME.format(s="01"))
    # confounds: configured motion columns, in order
    assert list(run.confounds.columns) == ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    raw = pd.read_csv(bids_root / "sub-01/func" / CONF_NAME.format(s="01"), sep="\t")
    np.testing.assert_allclose(run.confounds.trans_x, raw.trans_x)
    # events: silence and non-word events dropped, times kept
    assert list(run.words.word) == [w for w, _, _ in WORDS]
    np.testing.assert_allclose(run.words.onset, [o for _, o, _ in WORDS])
    assert run.meta["words_info"]["n_other_events"] == 1 and run.meta["words_info"]["n_silence"] == 1
    # the projected values are the linear signal (checked exactly above): spot-check time change
    assert np.all(np.diff(run.data.mean(axis=1)) > 0.9)


def test_partial_field_of_view_vertices_are_recorded_and_zeroed(tmp_path):
    func = write_volume(tmp_path / "sub-01/func" / VOL_NAME.format(s="01"), z_max=24)
    events = write_events(tmp_path / "events.tsv", words=WORDS[:4], extra_rows=False)
    with pytest.warns(UserWarning, match=r"vertices outside the field of view were set to 0"):
        run = load_bids_run(func, events, confound_columns=())
    bad = np.array(run.meta["nan_vertices"])
    assert 0 < bad.size < 10000 and np.isfinite(run.data).all()
    assert (run.data[:, bad] == 0).all() and (run.data[:, np.setdiff1d(np.arange(20484), bad)] > 50).all()


def test_nan_voxels_inside_the_brain_are_reported_and_left_for_the_gates(tmp_path):
    """NaN voxels inside the field of view are broken data, not missing coverage."""
    func = write_volume(tmp_path / "sub-01/func" / VOL_NAME.format(s="01"))
    img = nib.load(str(func))
    data = np.asarray(img.dataobj).copy()
    data[10:14, 12:16, 12:16, 5:8] = np.nan  # a block in the middle of the brain, volumes 5-7
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(func))
    events = write_events(tmp_path / "events.tsv", words=WORDS[:4], extra_rows=False)
    with pytest.warns(UserWarning, match=r"\d+ fsaverage5 vertices inside the field of view hold NaN .*\(in 3 of 20 volumes\)"):
        run = load_bids_run(func, events, confound_columns=())
    inside = np.array(run.meta["nan_in_brain_vertices"])
    assert inside.size > 0 and run.meta["nan_vertices"] == []  # none is outside the field of view
    assert np.isnan(run.data[5:8, inside]).any(axis=0).all() and np.isfinite(run.data[:5]).all()
    assert "left NaN, so the data gates reject this run" in run.meta["warnings"][0]


def test_words_offset_sets_t0_on_the_stimulus_clock(bids_root):
    func = bids_root / "sub-01/func" / VOL_NAME.format(s="01")
    run = load_bids_run(func, bids_root / "stimuli/story_events.tsv", words_offset_s=1.5)
    # the stimulus started 1.5 s into the scan: volume 0 was acquired at stimulus time -1.5 s
    assert run.t0 == -1.5
    np.testing.assert_allclose(run.frame_times[:3], [-1.5, 0.0, 1.5])
    np.testing.assert_allclose(run.words.onset.iloc[0], 2.0)  # onsets are not shifted


def test_confounds_fill_leading_nan_of_difference_columns(tmp_path):
    path = write_confounds(tmp_path / "sub-01_task-x_desc-confounds_timeseries.tsv", n_rows=5)
    conf = read_confounds(path, ["trans_x_derivative1", "framewise_displacement", "rot_z"])
    assert conf.iloc[0].tolist()[:2] == [0.0, 0.0]
    assert np.isfinite(conf.to_numpy()).all()
    assert read_confounds(path, None).shape == (5, 8)


def test_confounds_old_fmriprep_names_are_renamed(tmp_path):
    path = write_confounds(tmp_path / "sub-01_task-x_bold_confounds.tsv", n_rows=4, columns=["X", "Y", "Z", "RotX", "RotY", "RotZ"])
    conf = read_confounds(path)
    assert list(conf.columns) == ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


def test_confounds_missing_column_names_file_and_column(tmp_path):
    path = write_confounds(tmp_path / "sub-01_task-x_desc-confounds_regressors.tsv", n_rows=4)
    with pytest.raises(DataError) as err:
        read_confounds(path, ["trans_x", "global_signal"])
    assert path.name in str(err.value) and "global_signal" in str(err.value) and err.value.field == "global_signal"


def test_confounds_nan_inside_a_column_is_an_error(tmp_path):
    path = tmp_path / "c.tsv"
    pd.DataFrame({"trans_x": [0.0, np.nan, 1.0]}).to_csv(path, sep="\t", index=False, na_rep="n/a")
    with pytest.raises(DataError, match=r"c\.tsv \[trans_x\]: row 1"):
        read_confounds(path, ["trans_x"])


def test_parse_bids_name_any_entity_order():
    a = parse_bids_name("sub-01_task-s_run-2_space-fsaverage6_hemi-L_bold.func.gii")
    b = parse_bids_name("sub-01_task-s_run-2_hemi-L_space-fsaverage6_bold.func.gii")
    assert a.entities == b.entities | {} and a.suffix == b.suffix == "bold" and a.extension == ".func.gii"
    assert a.run_prefix == "sub-01_task-s_run-2"
    assert parse_bids_name("notbids.nii.gz") is None


# --------------------------------------------------------------------------- GIfTI
def test_gifti_fsaverage6_is_decimated_by_nesting(gifti_root):
    cfg = BidsDataset(kind="bids", name="g", path=gifti_root, task="story", func="gifti", space="fsaverage6", words="events.tsv")
    (run,) = load_dataset(cfg)
    assert run.data.shape == (6, 20484) and run.tr == 2.0 and run.meta["native_space"] == "fsaverage6"
    left = gifti_values(N_FSAVERAGE6_HEMI, 6, 0.0)
    right = gifti_values(N_FSAVERAGE6_HEMI, 6, 1_000_000.0)
    np.testing.assert_array_equal(run.data[:, :N_FSAVERAGE5_HEMI], left[:, :N_FSAVERAGE5_HEMI])
    np.testing.assert_array_equal(run.data[:, N_FSAVERAGE5_HEMI:], right[:, :N_FSAVERAGE5_HEMI])


def test_gifti_run_from_one_hemisphere_path_finds_the_other(gifti_root):
    right = gifti_root / "sub-07/func/sub-07_task-story_hemi-R_space-fsaverage6_bold.func.gii"
    (run,) = load_path(right, words=gifti_root / "events.tsv")
    assert run.data[0, N_FSAVERAGE5_HEMI] == 1_000_000.0 and run.data[0, 0] == 0.0


def test_gifti_old_fmriprep_names_and_derived_siblings(tmp_path):
    """fMRIPrep < 20.2: no _bold suffix; a desc- sibling (derived data) does not make it ambiguous."""
    func = tmp_path / "sub-08/func"
    for hemi in ("L", "R"):
        write_gifti(func / f"sub-08_task-story_space-fsaverage5_hemi-{hemi}.func.gii", np.ones((4, N_FSAVERAGE5_HEMI)))
        write_gifti(func / f"sub-08_task-story_space-fsaverage5_hemi-{hemi}_desc-clean.func.gii", np.zeros((4, N_FSAVERAGE5_HEMI)))
    write_events(tmp_path / "events.tsv", words=[("hi", 1.0, 0.5)], extra_rows=False)
    cfg = BidsDataset(
        kind="bids", name="old", path=tmp_path, task="story", func="gifti", space="fsaverage5",
        words="events.tsv", tr=2.0, confounds=[],
    )
    (run,) = load_bids_dataset(cfg)
    assert run.meta["source"].endswith("hemi-L.func.gii") and (run.data == 1.0).all()
    assert run.meta["tr_origin"] == "stated" and run.confounds.shape == (4, 0)


def test_several_runs_of_one_subject_get_distinct_ids(tmp_path):
    func = tmp_path / "sub-09/func"
    for r in ("1", "2"):
        for hemi in ("L", "R"):
            write_gifti(func / f"sub-09_task-story_run-{r}_space-fsaverage5_hemi-{hemi}_bold.func.gii", np.full((4, N_FSAVERAGE5_HEMI), float(r)))
    write_events(tmp_path / "events.tsv", words=[("hi", 1.0, 0.5)], extra_rows=False)
    cfg = BidsDataset(
        kind="bids", name="rr", path=tmp_path, task="story", func="gifti", space="fsaverage5",
        words="events.tsv", tr=2.0, confounds=[],
    )
    runs = load_bids_dataset(cfg)
    assert [r.subject for r in runs] == ["09_run-1", "09_run-2"]
    assert [r.data[0, 0] for r in runs] == [1.0, 2.0]
    assert len({r.run_id for r in runs}) == 2


# --------------------------------------------------------------------------- word formats
@pytest.mark.parametrize("fmt", ["long", "short"])
def test_textgrid_formats_give_the_same_words(tmp_path, fmt):
    writer = textgrid_long if fmt == "long" else textgrid_short
    path = tmp_path / f"{fmt}.TextGrid"
    path.write_text(writer([("phone", TG_PHONES), ("word", TG_WORDS)]))
    words = read_words(path)
    assert list(words.word) == ["Alice", "was", 'say "hi"']
    np.testing.assert_allclose(words.onset, [1.0, 1.5, 2.0])
    np.testing.assert_allclose(words.duration, [0.5, 0.2, 0.6])
    assert words.attrs["tier"] == "word" and words.attrs["n_silence"] == 3


def test_textgrid_utf16_and_first_interval_tier(tmp_path):
    path = tmp_path / "u16.TextGrid"
    path.write_bytes(textgrid_short([("transcript", [(0.0, 1.0, "Ça"), (1.0, 2.0, "<sil>")])]).encode("utf-16"))
    words = read_words(path)
    assert list(words.word) == ["Ça"] and words.attrs["tier"] == "transcript"
    assert [t["name"] for t in read_textgrid(path)] == ["transcript"]


def test_textgrid_old_short_header_and_not_a_textgrid(tmp_path):
    old = tmp_path / "old.TextGrid"
    old.write_text(textgrid_short([("words", TG_WORDS)]).replace('"ooTextFile"', '"ooTextFile short"'))
    assert list(read_words(old).word) == ["Alice", "was", 'say "hi"']
    pitch = tmp_path / "pitch.TextGrid"
    pitch.write_text('File type = "ooTextFile"\nObject class = "Pitch 1"\n')
    with pytest.raises(DataError, match=r"pitch\.TextGrid: not a Praat text TextGrid"):
        read_words(pitch)


def test_gentle_alignment_drops_unaligned_words(tmp_path):
    doc = {
        "transcript": "so I was, uh, there",
        "words": [
            {"word": "so", "case": "success", "start": 1.0, "end": 1.2, "alignedWord": "so"},
            {"word": "I", "case": "success", "start": 1.2, "end": 1.3},
            {"word": "was", "case": "not-found-in-audio"},
            {"word": "there", "case": "success", "start": 2.0, "end": 2.5},
        ],
    }
    path = tmp_path / "align.json"
    path.write_text(json.dumps(doc))
    words = read_words(path)
    assert list(words.word) == ["so", "I", "there"] and words.attrs["n_unaligned"] == 1
    np.testing.assert_allclose(words.duration, [0.2, 0.1, 0.5])


def test_events_without_a_word_column_names_the_file(tmp_path):
    path = tmp_path / "sub-01_task-x_events.tsv"
    pd.DataFrame({"onset": [1.0], "duration": [0.5], "value": [3]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(DataError, match=r"sub-01_task-x_events\.tsv \[word\]: no word column"):
        read_words(path)


# --------------------------------------------------------------------------- path recognition
def test_load_path_bids_func_with_sibling_events_and_prepared_store(tmp_path, bids_root, bids_runs):
    func = tmp_path / "sub-03" / "func"
    write_volume(func / VOL_NAME.format(s="03"), n_vol=8)
    write_events(func / "sub-03_task-story_events.tsv", words=WORDS[:4], extra_rows=False)
    (run,) = load_path(func / VOL_NAME.format(s="03"))  # TR from the header, no confounds file
    assert run.tr == TR and run.meta["tr_origin"] == "header" and run.confounds.shape == (8, 0)
    assert run.subject == "03" and len(run.words) == 4

    write_store(bids_runs, tmp_path / "prepared")
    back = load_path(tmp_path / "prepared")
    assert [r.run_id for r in back] == [r.run_id for r in bids_runs]
    np.testing.assert_array_equal(back[1].data, bids_runs[1].data)
    (one,) = load_path(tmp_path / "prepared" / bids_runs[0].run_id)
    assert one.subject == "01"
    with pytest.raises(DataError, match="not recognised"):
        load_path(tmp_path / "sub-03")


# --------------------------------------------------------------------------- Alice (real data)
def _textgrid_word_count(path):
    """Independent count: word-tier interval texts that are not silence marks."""
    texts = re.findall(r'text = "(.*)"', path.read_text())
    return sum(t.strip().lower() not in ("", "sp", "sil", "<sil>") for t in texts)


def test_alice_real_data(alice_path):
    runs = load_alice(alice_path)
    n_subjects = len(list((alice_path / "roi_6mm").glob("s*-timecourses.txt")))
    assert len(runs) == n_subjects >= 1
    (grid,) = (alice_path / "stimulus").glob("*.TextGrid")
    n_words = _textgrid_word_count(grid)
    for run in runs:
        assert run.data.shape == (362, 6) and np.isfinite(run.data).all()
        assert run.target_names == ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"]
        assert (run.dataset, run.task, run.tr, run.t0, run.space) == ("alice", "alice", 2.0, 20.0, "roi")
        assert re.fullmatch(r"s\d+", run.subject)
        assert len(run.words) == n_words
        assert run.words.onset.iloc[0] > run.t0
        assert run.words.onset.iloc[-1] + run.words.duration.iloc[-1] <= run.scan_end
        assert {"rate", "sndpwr"} <= set(run.confounds.columns)
        np.testing.assert_allclose(run.confounds.rate, np.loadtxt(alice_path / f"regressors/{run.subject}-rate.txt"))
        if "trans_x" in run.confounds:
            rp = np.loadtxt(run.meta["motion_source"])
            np.testing.assert_allclose(run.confounds[["trans_x", "rot_z"]].to_numpy(), rp[10:, [0, 5]])
        else:
            assert run.meta["notes"], "a run without motion columns must say why"
    np.testing.assert_allclose(
        runs[0].data[0], np.loadtxt(alice_path / f"roi_6mm/{runs[0].subject}-timecourses.txt")[0], rtol=1e-6
    )


def test_alice_via_config_and_load_path(alice_path):
    cfg = AliceDataset(kind="alice", path=alice_path, subjects=["s22", "23"])
    runs = load_dataset(cfg)
    assert [r.subject for r in runs] == ["s22", "s23"]
    assert len(load_path(alice_path)) == len(list((alice_path / "roi_6mm").glob("*.txt")))


def test_alice_missing_subject_names_the_file(alice_path):
    with pytest.raises(DataError, match=r"s99-timecourses\.txt: file not found"):
        load_alice(alice_path, subjects=["s99"])


def test_alice_missing_motion_file_is_a_note_not_an_error(alice_path, tmp_path):
    """A copy of the layout (symlinks) with one subject's motion file removed."""
    copy = tmp_path / "alice"
    for sub in ("roi_6mm", "regressors", "stimulus"):
        (copy / sub).mkdir(parents=True)
        for f in (alice_path / sub).iterdir():
            if sub != "regressors" or (f.name.startswith("s22-") and "-rp_" not in f.name):
                (copy / sub / f.name).symlink_to(f)
    (run,) = load_alice(copy, subjects=["s22"])
    assert list(run.confounds.columns) == ["rate", "sndpwr"]
    assert "no motion file" in run.meta["notes"][0]
    assert run.meta["warnings"] == run.meta["notes"]  # shown as a warning by the gates


def test_alice_unreadable_subject_is_recorded_and_the_others_load(alice_path, tmp_path):
    copy = tmp_path / "alice"
    for sub in ("roi_6mm", "regressors", "stimulus"):
        (copy / sub).mkdir(parents=True)
        for f in (alice_path / sub).iterdir():
            (copy / sub / f.name).symlink_to(f)
    bad = copy / "roi_6mm" / "s23-timecourses.txt"
    bad.unlink()
    bad.write_text("1 2 3 4 5\n")  # five columns, expected six
    with pytest.raises(DataError, match=r"s23-timecourses\.txt: expected 6 columns, got 5"):
        load_alice(copy)
    failures = []
    runs = load_alice(copy, failures=failures)
    assert "s23" not in {r.subject for r in runs} and len(runs) == len(alice_subjects_of(alice_path)) - 1
    (f,) = failures
    assert (f.run_id, f.source, f.problem) == ("alice_sub-s23_task-alice", str(bad), "expected 6 columns, got 5")


def test_alice_nan_row_is_kept_for_the_gates_with_a_note(alice_path, tmp_path):
    copy = tmp_path / "alice"
    for sub in ("roi_6mm", "regressors", "stimulus"):
        (copy / sub).mkdir(parents=True)
        for f in (alice_path / sub).iterdir():
            (copy / sub / f.name).symlink_to(f)
    rows = (alice_path / "roi_6mm" / "s22-timecourses.txt").read_text().splitlines()
    rows[3] = "nan " + " ".join(rows[3].split()[1:])
    (copy / "roi_6mm" / "s22-timecourses.txt").unlink()
    (copy / "roi_6mm" / "s22-timecourses.txt").write_text("\n".join(rows) + "\n")
    (run,) = load_alice(copy, subjects=["s22"])
    assert np.isnan(run.data[3, 0]) and np.isfinite(np.delete(run.data, 3, axis=0)).all()
    assert "1 row(s) hold a non-finite value (first: row 3)" in run.meta["warnings"][0]


def alice_subjects_of(path):
    return list((path / "roi_6mm").glob("s*-timecourses.txt"))


# --------------------------------------------------------------------------- bad inputs
def test_bad_textgrid_overlapping_intervals(tmp_path):
    path = tmp_path / "overlap.TextGrid"
    path.write_text(textgrid_long([("word", [(0.0, 1.0, "a"), (0.8, 1.5, "b")])]))
    with pytest.raises(DataError) as err:
        read_words(path)
    assert str(path) in str(err.value) and "overlap" in str(err.value)


def test_bad_textgrid_overlap_hidden_by_a_silence_interval(tmp_path):
    """The words alone do not overlap; the tier does (a silence overlaps the next word)."""
    path = tmp_path / "overlap_sp.TextGrid"
    path.write_text(textgrid_short([("word", [(0.0, 1.0, "a"), (1.0, 2.0, "sp"), (1.5, 2.5, "b")])]))
    with pytest.raises(DataError, match=r"overlap_sp\.TextGrid \[xmin\]: tier 'word' intervals overlap: interval 3"):
        read_words(path)


def test_bad_textgrid_decreasing_times(tmp_path):
    path = tmp_path / "decreasing.TextGrid"
    path.write_text(textgrid_short([("word", [(2.0, 3.0, "a"), (1.0, 1.5, "b")])]))
    with pytest.raises(DataError) as err:
        read_words(path)
    assert str(path) in str(err.value) and "decrease" in str(err.value)


def test_bad_textgrid_interval_ending_before_it_starts(tmp_path):
    path = tmp_path / "backwards.TextGrid"
    path.write_text(textgrid_long([("word", [(0.0, 1.0, "a"), (1.0, 0.9, "b")])]))
    with pytest.raises(DataError, match=r"backwards\.TextGrid.*ends at 0\.900 s before it starts"):
        read_words(path)


def test_bad_words_past_the_end_of_the_run(bids_root, tmp_path):
    events = write_events(tmp_path / "late_events.tsv", words=[*WORDS, ("ever", 29.8, 0.5)], extra_rows=False)
    func = bids_root / "sub-01/func" / VOL_NAME.format(s="01")
    with pytest.raises(DataError) as err:
        load_bids_run(func, events)
    msg = str(err.value)
    assert str(events) in msg and "past the end of the scan" in msg and "'ever'" in msg


def test_bad_volume_count_differs_from_confounds(tmp_path):
    func = write_volume(tmp_path / "sub-01/func" / VOL_NAME.format(s="01"), n_vol=10)
    conf = write_confounds(tmp_path / "sub-01/func" / CONF_NAME.format(s="01"), n_rows=12)
    events = write_events(tmp_path / "events.tsv", words=WORDS[:4], extra_rows=False)
    with pytest.raises(DataError) as err:
        load_bids_run(func, events)
    msg = str(err.value)
    assert func.name in msg and conf.name in msg and "10 volumes" in msg and "12 rows" in msg


def test_bad_header_tr_differs_from_stated_tr(tmp_path):
    func = write_volume(tmp_path / "sub-01/func" / VOL_NAME.format(s="01"), n_vol=10, tr=1.5)
    events = write_events(tmp_path / "events.tsv", words=WORDS[:4], extra_rows=False)
    with pytest.raises(DataError) as err:
        load_bids_run(func, events, tr=2.0, confound_columns=())
    msg = str(err.value)
    assert str(func) in msg and "TR mismatch" in msg and "1.5" in msg and "2 s" in msg
    # within 1 %: the stated TR wins
    run = load_bids_run(func, events, tr=1.51, confound_columns=())
    assert run.tr == 1.51 and run.meta["tr_origin"] == "stated"


def test_bad_sidecar_tr_differs_from_header(tmp_path):
    func = write_volume(tmp_path / "sub-01/func" / VOL_NAME.format(s="01"), n_vol=10, tr=1.5)
    sidecar = func.parent / func.name.replace(".nii.gz", ".json")
    sidecar.write_text(json.dumps({"RepetitionTime": 2.0}))
    events = write_events(tmp_path / "events.tsv", words=WORDS[:4], extra_rows=False)
    with pytest.raises(DataError, match=r"TR mismatch: sidecar .*\.json RepetitionTime says 2 s but the NIfTI header says 1\.5 s"):
        load_bids_run(func, events, confound_columns=())
    with pytest.raises(DataError, match=r"\.json \[RepetitionTime\]: TR mismatch"):
        load_bids_run(func, events, tr=1.5, confound_columns=())


def test_bad_gifti_vertex_count(tmp_path):
    func = tmp_path / "sub-01/func"
    left = write_gifti(func / "sub-01_task-x_space-fsaverage5_hemi-L_bold.func.gii", np.zeros((3, 10000)))
    write_gifti(func / "sub-01_task-x_space-fsaverage5_hemi-R_bold.func.gii", np.zeros((3, 10000)))
    events = write_events(tmp_path / "events.tsv", words=WORDS[:1], extra_rows=False)
    with pytest.raises(DataError) as err:
        load_bids_run(left, events, tr=2.0, confound_columns=())
    msg = str(err.value)
    assert str(left) in msg and "10000 vertices" in msg and "10242" in msg and "40962" in msg


def test_bad_missing_data_files(tmp_path, bids_root):
    events = bids_root / "stimuli/story_events.tsv"
    missing = tmp_path / "sub-01/func" / VOL_NAME.format(s="01")
    with pytest.raises(DataError, match=re.escape(f"{missing}: func file not found")):
        load_bids_run(missing, events)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'nope.tsv'}: word timing file not found")):
        read_words(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'gone'}: not found")):
        load_path(tmp_path / "gone")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'no_alice'}: Alice dataset folder not found")):
        load_alice(tmp_path / "no_alice")
    cfg = BidsDataset(kind="bids", name="t", path=bids_root, task="story", words="stimuli/missing.TextGrid")
    with pytest.raises(DataError, match=r"missing\.TextGrid \[words\]: word timing file"):
        load_bids_dataset(cfg)
    cfg = BidsDataset(kind="bids", name="t", path=bids_root, task="other", words="stimuli/story_events.tsv")
    with pytest.raises(DataError, match=r"no func files matching sub-\*_task-other"):
        load_bids_dataset(cfg)
    # a fMRIPrep volume without its confounds table, while motion columns are configured
    lone = write_volume(tmp_path / "sub-05/func" / VOL_NAME.format(s="05"), n_vol=10)
    with pytest.raises(DataError, match=r"sub-05_task-story.* \[confounds\]: no fMRIPrep confounds table"):
        load_bids_run(lone, events)


def test_bad_volume_in_the_wrong_space(tmp_path):
    """A native-space volume far from MNI coordinates leaves most vertices outside it."""
    func = tmp_path / "sub-01/func" / VOL_NAME.format(s="01")
    func.parent.mkdir(parents=True)
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [200, 200, 200]
    img = nib.Nifti1Image(np.ones((8, 8, 8, 10), np.float32), aff)
    img.header.set_xyzt_units("mm", "sec")
    img.header["pixdim"][4] = TR
    nib.save(img, str(func))
    events = write_events(tmp_path / "events.tsv", words=WORDS[:4], extra_rows=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"\[space\]: 20484 of 20484 fsaverage5 vertices fall outside"):
            load_bids_run(func, events, confound_columns=())
