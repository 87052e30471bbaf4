"""Vision-language path: CLIP / BridgeTower sites, the CLIP tokenizer, the image-caption movie, event extraction.

Tiny random CLIP and BridgeTower models are built from their config classes (no hub); the
tokenizer is the real CLIP BPE of open-clip-torch; images are real scikit-image photographs.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
import transformers as T

from brainlike.activations import ActivationSet, TrGrid, family_for, load_model, resolve_sites
from brainlike.activations.sites import capture
from brainlike.activations.builtin import CLIP_MEAN, CLIP_STD, builtin_config, clip_tokenizer
from brainlike.activations.vlm import (
    EventStimulus,
    ImageSpec,
    event_activations,
    event_inputs,
    event_operator,
    event_stimuli_from_runs,
    extract_events,
)
from brainlike.config import EmbeddedConfig, ExtractConfig, ModelConfig
from brainlike.data.embedded.background import load_background
from brainlike.data.embedded.movie import (
    MOVIE_FEATURES,
    MOVIE_IMAGES,
    caption_words,
    load_captions,
    load_image,
    make_embedded_movie,
    movie_events,
)
from brainlike.data.embedded.sphere import _sphere_coordinates
from brainlike.data.run import check_words
from brainlike.errors import DataError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
N_V = 20484
SITES = ("ffn_out", "ffn_hidden", "attn_out")


def tiny_clip_config() -> T.CLIPConfig:
    return T.CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407,
                         pad_token_id=1),
        vision_config=dict(hidden_size=40, intermediate_size=56, num_hidden_layers=3, num_attention_heads=4,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )


def tiny_bridgetower_config() -> T.BridgeTowerConfig:
    # vision heads are hidden_size // 64 in BridgeTower, so 64 is the smallest honest width
    return T.BridgeTowerConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        text_config=dict(vocab_size=49408, hidden_size=64, intermediate_size=80, num_hidden_layers=3,
                         num_attention_heads=4, max_position_embeddings=79, pad_token_id=1, bos_token_id=49406,
                         eos_token_id=49407),
        vision_config=dict(hidden_size=64, num_hidden_layers=3, image_size=32, patch_size=8),
    )


# (tower -> (n_layers, {site: width})) expected from the configs above
EXPECTED = {
    "clip": {"text": (2, {"ffn_out": 32, "ffn_hidden": 48, "attn_out": 32}),
             "vision": (3, {"ffn_out": 40, "ffn_hidden": 56, "attn_out": 40})},
    "bridgetower": {"text": (3, {"ffn_out": 64, "ffn_hidden": 80, "attn_out": 64}),
                    "vision": (3, {"ffn_out": 64, "ffn_hidden": 256, "attn_out": 64}),
                    "fusion_text": (2, {"ffn_out": 64, "ffn_hidden": 80, "attn_out": 64}),
                    "fusion_image": (2, {"ffn_out": 64, "ffn_hidden": 80, "attn_out": 64})},
}


@pytest.fixture(scope="session")
def tokenizer():
    return clip_tokenizer()


@pytest.fixture(scope="session")
def tiny_models():
    torch.manual_seed(0)
    return {"clip": T.CLIPModel(tiny_clip_config()).eval(),
            "bridgetower": T.BridgeTowerModel(tiny_bridgetower_config()).eval()}


def _inputs(name, tokenizer):
    ids = torch.tensor([tokenizer("A tabby cat looks at the camera.")["input_ids"]])
    px = ImageSpec(32, 32).pixel_values(load_image("skimage:chelsea")).unsqueeze(0)
    x = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": px}
    if name == "bridgetower":
        x["pixel_mask"] = torch.ones((1, 32, 32), dtype=torch.long)
    return x


def _outputs(out) -> list[torch.Tensor]:
    return [v for v in out.values() if isinstance(v, torch.Tensor)]


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("name", ["clip", "bridgetower"])
def test_vlm_sites_widths_layers_towers_and_transparent_hooks(name, site, tiny_models, tokenizer):
    model = tiny_models[name]
    fam = family_for(model.config)
    assert fam.name == name
    points = resolve_sites(model, fam, site)
    towers = list(dict.fromkeys(p.tower for p in points))
    assert towers == list(EXPECTED[name])
    for tower, (n_layers, widths) in EXPECTED[name].items():
        pts = [p for p in points if p.tower == tower]
        assert [p.layer for p in pts] == list(range(n_layers))
        assert {p.width for p in pts} == {widths[site]}
    x = _inputs(name, tokenizer)
    with torch.inference_mode():
        plain = _outputs(model(**x))
    seen: dict[int, tuple] = {}
    with capture(points, lambda i, t: seen.setdefault(i, tuple(t.shape))), torch.inference_mode():
        hooked = _outputs(model(**x))
    # every hook fired (an nn.MultiheadAttention out_proj hook, say, would never fire) with the config's width
    assert sorted(seen) == list(range(len(points)))
    assert all(shape[-1] == points[i].width for i, shape in seen.items())
    assert len(plain) == len(hooked) > 0
    for a, b in zip(plain, hooked, strict=True):
        assert torch.equal(a, b)


def test_clip_tokenizer_is_the_real_clip_bpe(tokenizer):
    assert len(tokenizer) == 49408 and tokenizer.is_fast
    ids = tokenizer("a photo of a cat")["input_ids"]
    # OpenAI CLIP ids: <|startoftext|> a photo of a cat <|endoftext|>
    assert ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_builtin_shapes():
    clip = builtin_config("clip-vit-b32")
    v, t = clip.vision_config, clip.text_config
    assert (v.hidden_size, v.patch_size, v.num_hidden_layers, v.intermediate_size) == (768, 32, 12, 3072)
    assert (t.hidden_size, t.num_hidden_layers, t.vocab_size, t.max_position_embeddings) == (512, 12, 49408, 77)
    bt = builtin_config("bridgetower-small")
    assert bt.hidden_size == bt.text_config.hidden_size and bt.num_hidden_layers <= bt.text_config.num_hidden_layers
    with pytest.raises(DataError, match="unknown built-in"):
        builtin_config("clip-vit-h14")


def test_image_spec_normalises_like_clip():
    rgb = load_image("skimage:astronaut")
    px = ImageSpec(40, 32).pixel_values(rgb)
    assert px.shape == (3, 32, 32) and px.dtype == torch.float32
    # a mid-grey image maps to (0.5 - mean) / std in every channel
    grey = ImageSpec(8, 8).pixel_values(np.full((20, 30, 3), 255 // 2 + 1, np.uint8))
    expect = (128 / 255 - np.asarray(CLIP_MEAN)) / np.asarray(CLIP_STD)
    np.testing.assert_allclose(grey.mean(dim=(1, 2)).numpy(), expect, rtol=1e-5)


def test_event_operator_matches_nilearn_blocks():
    from nilearn.glm.first_level import compute_regressor

    times = 1.5 * np.arange(80)
    onsets, durs = np.array([3.0, 20.0, 47.5, 70.0]), np.array([6.0, 6.0, 3.0, 9.0])
    vals = np.array([1.0, -0.5, 2.0, 0.7])
    M = event_operator(onsets, durs, times, "spm", 16)
    ref = compute_regressor(np.vstack([onsets, durs, vals]), "spm", times, oversampling=16)[0][:, 0]
    assert np.corrcoef(M @ vals, ref)[0, 1] > 0.999
    # a block is not an impulse: the 9 s event peaks later than the 3 s one
    assert np.argmax(M[:, 3]) - np.argmax(M[:, 2]) > (70.0 - 47.5) / 1.5


# ------------------------------------------------------------------------------- the movie
@pytest.fixture(scope="module")
def masks():
    xyz = _sphere_coordinates()
    lh = np.arange(N_V) < N_V // 2
    return {("yeo7", "Visual"): xyz[:, 1] < -0.6, ("cole_anticevic12", "Language"): (xyz[:, 1] > 0.6) & lh}


@pytest.fixture(scope="module")
def movie(masks):
    cfg = EmbeddedConfig(n_subjects=2, seed=2)
    return cfg, *make_embedded_movie(cfg, masks)


def test_captions_and_events():
    caps = load_captions()
    assert set(caps["image"]) == set(MOVIE_IMAGES) and (caps.groupby("image").size() == 3).all()
    ev = movie_events(seed=1)
    assert len(ev) == len(caps) and np.allclose(np.diff(ev["onset"]), 6.0)
    assert not movie_events(seed=1)["caption"].equals(movie_events(seed=2)["caption"])
    words = check_words(caption_words(ev))
    assert len(words) == caps["caption"].str.split().str.len().sum()
    ends = ev["onset"] + ev["duration"]
    which = np.searchsorted(ev["onset"].to_numpy(), words["onset"].to_numpy(), side="right") - 1
    assert (words["onset"] + words["duration"] <= ends.to_numpy()[which]).all()


def test_movie_deterministic_and_subjects_differ(movie, masks):
    cfg, runs, truth = movie
    again, truth2 = make_embedded_movie(cfg, masks)
    for a, b in zip(runs, again, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        assert a.meta["events"] == b.meta["events"]
    assert not np.allclose(runs[0].data, runs[1].data)
    assert truth == truth2 and json.loads(json.dumps(truth)) == truth
    r = runs[0]
    assert (r.dataset, r.task, r.space, r.data.shape[1]) == ("embedded", "movie", "fsaverage5", N_V)
    assert r.n_trs == truth["n_trs"] and len(r.meta["events"]) == truth["movie"]["n_events"] == 48


def test_movie_planted_signal_where_planted(movie, masks):
    from brainlike.data.embedded.movie import movie_design

    cfg, runs, truth = movie
    _, _, _, feats = movie_design(cfg)
    constant = load_background()[0].std(axis=0) == 0
    outside = ~np.any(list(masks.values()), axis=0) & ~constant
    for p in truth["planted"]:
        m = masks[(p["atlas"], p["network"])] & ~constant
        f = feats[p["feature"]].to_numpy()
        for run in runs:
            z = (run.data - run.data.mean(0)) / np.maximum(run.data.std(0), 1e-12)
            r = (f - f.mean()) / f.std() @ z / len(f)
            assert np.median(r[m]) > 0.5, p
            assert np.median(np.abs(r[outside])) < 0.15
    assert {p["feature"] for p in truth["planted"]} <= set(MOVIE_FEATURES)


def test_event_stimuli_survive_the_prepared_store(movie, tmp_path):
    from brainlike.data import iter_runs, write_store

    _, runs, _ = movie
    write_store(runs[:1], tmp_path / "prepared")
    back = list(iter_runs(tmp_path / "prepared"))
    for rs in (runs, back):
        stims = event_stimuli_from_runs(rs)
        assert len(stims) == 1 and stims[0].id == "embedded_task-movie"
        assert stims[0].grids[0].run_ids == tuple(r.run_id for r in rs)
        assert list(stims[0].events.columns) == ["onset", "duration", "image", "caption"]
    pd.testing.assert_frame_equal(event_stimuli_from_runs(back)[0].events, event_stimuli_from_runs(runs)[0].events)


# ------------------------------------------------------------------------- extraction
@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory, tokenizer):
    d = tmp_path_factory.mktemp("vlm") / "tiny-clip"
    torch.manual_seed(0)
    T.CLIPModel(tiny_clip_config()).save_pretrained(d)
    tokenizer.save_pretrained(d)
    (d / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"shortest_edge": 36}, "crop_size": {"height": 32, "width": 32},
         "image_mean": list(CLIP_MEAN), "image_std": list(CLIP_STD)}))
    return d


def _event_stim(n: int = 6) -> EventStimulus:
    ev = movie_events(seed=0, lead_in_s=4.0).iloc[:n][["onset", "duration", "image", "caption"]]
    n_trs = int((ev["onset"].iloc[-1] + 6 + 16) / 1.5)
    return EventStimulus("toy_task-movie", ev, [TrGrid(1.5, 0.0, n_trs, ("toy_sub-01_task-movie",))], "toy/events")


def test_extract_events_end_to_end(tmp_path, tiny_clip_dir):
    model = ModelConfig(name="tiny-clip", generation="vlm", source=f"path:{tiny_clip_dir}", site="ffn_hidden")
    cfg = ExtractConfig(output=tmp_path / "act", scratch=tmp_path / "partial", chunk_ans=64)
    stim = _event_stim()
    layers_done = []

    def stop_after_two(grid, i):
        layers_done.append(i)
        if len(layers_done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_events(model, cfg, stim, tiny_clip_dir, progress=False, on_layer=stop_after_two)
    assert not (cfg.output / model.name / stim.id).exists()
    rep = extract_events(model, cfg, stim, tiny_clip_dir, progress=False)
    assert rep["status"] == "written" and rep["resumed_forward"] and rep["resumed_layers"] == 2
    aset = ActivationSet(rep["path"])
    side = aset.sidecar
    assert side["stimulus"]["type"] == "image_caption" and side["towers"] == ["text", "vision"]
    assert side["n_layers"] == 5 and side["widths"] == [48, 56]
    assert side["image_preprocessing"]["resize"] == 36 and side["image_preprocessing"]["crop"] == 32
    assert all(len(i["sha256"]) == 64 for i in side["stimulus"]["images"])
    X, index = aset.matrix()
    g = aset.grid()
    assert X.shape == (stim.grids[0].n_trs, g["n_ans"]) and g["n_ans"] + g["n_constant_dropped"] == 2 * 48 + 3 * 56
    assert set(index["tower"]) == {"text", "vision"}
    assert np.isfinite(X).all()
    np.testing.assert_allclose(X.std(0), 1, atol=1e-3)
    # the stored time courses are the events' pooled activations through the block operator
    loaded = load_model(tiny_clip_dir)
    ea = event_activations(loaded, stim.events, "ffn_hidden")
    M = event_operator(stim.events["onset"], stim.events["duration"], aset.frame_times())
    vis0 = [k for k, p in enumerate(ea.points) if p.tower == "vision" and p.layer == 0][0]
    Y = M @ ea.values[vis0].astype(np.float64)
    Z = (Y - Y.mean(0)) / Y.std(0)
    sel = (index["tower"] == "vision") & (index["layer"] == 0)
    np.testing.assert_allclose(X[:, sel], Z[:, index["unit"][sel]], atol=2e-4)
    assert extract_events(model, cfg, stim, tiny_clip_dir, progress=False)["status"] == "up-to-date"


def test_event_bad_inputs(tmp_path, tiny_clip_dir):
    model = ModelConfig(name="tiny-clip", generation="vlm", source=f"path:{tiny_clip_dir}")
    cfg = ExtractConfig(output=tmp_path / "act", scratch=tmp_path / "partial")
    empty = EventStimulus("toy_task-empty", pd.DataFrame(columns=["onset", "duration", "image", "caption"]),
                          [TrGrid(1.5, 0.0, 20)], "toy/empty.tsv")
    with pytest.raises(DataError, match="empty stimulus"):
        extract_events(model, cfg, empty, tiny_clip_dir, progress=False)
    assert not (cfg.output / model.name / empty.id).exists()
    stim = _event_stim(2)
    stim.events.loc[1, "image"] = "skimage:no_such_photo"
    with pytest.raises(DataError, match="no_such_photo"):
        extract_events(model, cfg, stim, tiny_clip_dir, progress=False)
    loaded = load_model(tiny_clip_dir)
    with pytest.raises(DataError, match="more than the model's"):
        event_inputs(loaded, ImageSpec(32, 32), "skimage:coffee", " ".join(["coffee"] * 100))
