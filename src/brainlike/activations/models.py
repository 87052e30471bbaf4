"""Loading a model of the registry: trained weights or its random-initialised twin."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError
from .sites import Family, family_for
from .sources import materialised_origin, weight_files, weights_revision


@dataclass
class LoadedModel:
    """A model ready for extraction.

    model : the base model (no LM head), in eval mode
    tokenizer : a fast tokenizer
    family : its architecture family
    revision : what identifies the weights: {"kind": "weights", "files": [...]} with the sha256
        of every weight file, or {"kind": "random_init", "seed": s, "config_sha256": ...}
    max_tokens : the longest window the model accepts
    """

    model: torch.nn.Module
    tokenizer: object
    family: Family
    revision: dict
    max_tokens: int
    model_dir: Path


def _read_config(model_dir: Path):
    from transformers import AutoConfig

    cfg_path = model_dir / "config.json"
    if not cfg_path.is_file():
        raise DataError(cfg_path, "model config not found (a model folder needs config.json)", "config.json")
    try:
        raw = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(cfg_path, f"not valid JSON: {exc}", "config.json") from None
    if not raw.get("model_type"):
        raise DataError(
            cfg_path,
            "no architecture known: config.json names no model_type, so neither the weights nor a "
            "random-initialised twin (trained: false) can be built",
            "model_type",
        )
    try:
        return AutoConfig.from_pretrained(str(model_dir), local_files_only=True)
    except (ValueError, KeyError, OSError) as exc:
        raise DataError(cfg_path, f"transformers cannot build this config: {exc}", "model_type") from None


def max_tokens(config, family: Family, tokenizer) -> int:
    """Longest window: the position table (minus reserved positions), capped by the tokenizer."""
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 512
    limit = int(limit) - family.position_offset
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limit = min(limit, tok_max)
    return limit


def model_family(model_dir: str | Path) -> Family:
    """The neuron-site family of a model folder, from its config.json alone (no weights loaded)."""
    model_dir = Path(model_dir)
    return family_for(_read_config(model_dir), str(model_dir / "config.json"))


def load_model(model_dir: str | Path, trained: bool = True, seed: int = 0, device: str = "cpu") -> LoadedModel:
    """Load the base model and fast tokenizer from a local Hugging Face folder.

    Parameters
    ----------
    model_dir : path
        A folder from :func:`brainlike.activations.sources.materialise`.
    trained : bool
        False: build the same architecture from its config with ``torch.manual_seed(seed)``
        (the random control); the weight files are neither needed nor read.
    device : str
        Torch device ("cpu", "cuda", ...), chosen by the caller.

    Raises
    ------
    DataError
        Missing config or weights, unknown architecture, no fast tokenizer.
    """
    from transformers import AutoModel, AutoTokenizer

    model_dir = Path(model_dir)
    config = _read_config(model_dir)
    family = family_for(config, str(model_dir / "config.json"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise DataError(model_dir, f"cannot load the tokenizer: {exc}", "tokenizer") from None
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(model_dir, "a fast tokenizer (tokenizer.json) is needed for offset mappings", "tokenizer")
    if trained:
        if not weight_files(model_dir):
            raise DataError(
                model_dir, "weights missing: no model.safetensors / pytorch_model*.bin in the model folder", "weights"
            )
        try:
            model = AutoModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
        except (OSError, ValueError, RuntimeError) as exc:
            raise DataError(model_dir, f"cannot load the weights: {exc}", "weights") from None
        revision = {"kind": "weights", "files": weights_revision(model_dir)}
        origin = materialised_origin(model_dir)
        if origin:
            revision["origin"] = origin
    else:
        torch.manual_seed(seed)
        model = AutoModel.from_config(config, dtype=torch.float32)
        cfg_blob = json.dumps(config.to_dict(), sort_keys=True, default=str).encode()
        revision = {"kind": "random_init", "seed": int(seed), "config_sha256": hashlib.sha256(cfg_blob).hexdigest()}
    model.eval().to(device)
    return LoadedModel(model, tokenizer, family, revision, max_tokens(config, family, tokenizer), model_dir)
