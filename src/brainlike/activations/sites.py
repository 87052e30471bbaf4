"""Neuron sites per architecture family, and the forward hooks that capture them.

A *family* names the ``config.model_type`` values it covers and, per *tower* (a stack of
blocks: the text encoder, or for a vision-language model its vision tower, text tower or
fusion layers), where the blocks are and which sub-module carries each neuron site:

- ``ffn_out``: output of the FFN's second linear layer (before dropout/residual/norm);
- ``ffn_hidden``: the FFN's intermediate units (input of that second linear layer);
- ``attn_out``: output of the attention output projection.

Adding a family is one :class:`Family` entry passed to :func:`register_family` (a VLM gets
one :class:`Tower` per tower; captured ANs are tagged with the tower's name). Hooks only read
the tensors they see, so a hooked forward returns exactly what a plain forward returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ..errors import DataError

SITES = ("ffn_out", "ffn_hidden", "attn_out")


@dataclass(frozen=True)
class SiteSpec:
    """Where a neuron site is inside one block.

    module : dotted path relative to the block
    capture : "output" (the module's output) or "input" (its first positional input)
    width : name of the config attribute giving the number of units, or a callable(config)
    """

    module: str
    capture: str
    width: str | Callable[[object], int]


@dataclass(frozen=True)
class Tower:
    """One stack of blocks: ``layers`` candidate dotted paths of its ``ModuleList``."""

    name: str
    layers: tuple[str, ...]
    causal: bool
    sites: dict[str, SiteSpec]
    n_layers: str = "num_hidden_layers"
    sub_config: str | None = None  # e.g. "text_config" / "vision_config" for two-tower models


@dataclass(frozen=True)
class Family:
    """An architecture family: the ``model_type`` values it covers and its towers."""

    name: str
    model_types: tuple[str, ...]
    towers: tuple[Tower, ...]
    position_offset: int = 0  # positions reserved before the first token (RoBERTa/MPNet-style)
    notes: str = ""

    @property
    def causal(self) -> bool:
        return all(t.causal for t in self.towers)


def _gpt2_inner(cfg) -> int:
    return cfg.n_inner if getattr(cfg, "n_inner", None) else 4 * cfg.n_embd


_BERT_SITES = {
    "ffn_out": SiteSpec("output.dense", "output", "hidden_size"),
    "ffn_hidden": SiteSpec("intermediate", "output", "intermediate_size"),
    "attn_out": SiteSpec("attention.output.dense", "output", "hidden_size"),
}
_MPNET_SITES = _BERT_SITES | {"attn_out": SiteSpec("attention.attn.o", "output", "hidden_size")}
_GATED_SITES = {
    "ffn_out": SiteSpec("mlp.down_proj", "output", "hidden_size"),
    "ffn_hidden": SiteSpec("mlp.down_proj", "input", "intermediate_size"),
    "attn_out": SiteSpec("self_attn.o_proj", "output", "hidden_size"),
}
_GPT2_SITES = {
    "ffn_out": SiteSpec("mlp.c_proj", "output", "n_embd"),
    "ffn_hidden": SiteSpec("mlp.c_proj", "input", _gpt2_inner),
    "attn_out": SiteSpec("attn.c_proj", "output", "n_embd"),
}

FAMILIES: list[Family] = [
    Family("bert", ("bert",), (Tower("text", ("encoder.layer",), False, _BERT_SITES),),
           notes="BERT-family encoders (MiniLM is BERT)"),
    Family("mpnet", ("mpnet",), (Tower("text", ("encoder.layer",), False, _MPNET_SITES),), position_offset=2),
    Family("llama", ("llama",), (Tower("text", ("layers", "model.layers"), True, _GATED_SITES),)),
    Family("qwen2", ("qwen2",), (Tower("text", ("layers", "model.layers"), True, _GATED_SITES),)),
    Family("gemma", ("gemma", "gemma2", "gemma3_text"),
           (Tower("text", ("layers", "model.layers"), True, _GATED_SITES),), notes="Gemma 1-3 text decoders"),
    Family("gpt2", ("gpt2",), (Tower("text", ("h", "transformer.h"), True, _GPT2_SITES, n_layers="n_layer"),)),
]

_HOW_TO_ADD = (
    "add one brainlike.activations.sites.Family entry (register_family) naming the model_type, "
    "the dotted path of its block ModuleList and, per site, the sub-module and config width attribute"
)


def register_family(family: Family) -> None:
    """Add (or replace) an architecture family."""
    FAMILIES[:] = [f for f in FAMILIES if f.name != family.name] + [family]


def family_for(config, source: str | None = None) -> Family:
    """The family of a transformers config; raises :class:`DataError` if unsupported."""
    model_type = getattr(config, "model_type", None) or ""
    for fam in FAMILIES:
        if model_type in fam.model_types:
            return fam
    listed = "; ".join(f"{f.name} ({', '.join(f.model_types)})" for f in FAMILIES)
    raise DataError(
        source,
        f"unsupported architecture model_type={model_type!r}. Supported families: {listed}. To add one, {_HOW_TO_ADD}",
        "model_type",
    )


@dataclass(frozen=True)
class CapturePoint:
    """One captured layer: tower, layer index, the hooked module and the expected width."""

    tower: str
    layer: int
    module_path: str
    capture: str
    width: int
    module: torch.nn.Module = field(repr=False, compare=False, hash=False)


def _get(root: torch.nn.Module, path: str) -> torch.nn.Module | None:
    cur = root
    for part in path.split("."):
        if not hasattr(cur, part):
            return None
        cur = getattr(cur, part)
    return cur


def resolve_sites(model: torch.nn.Module, family: Family, site: str) -> list[CapturePoint]:
    """Capture points of ``site`` for every layer of every tower of ``model``.

    Raises
    ------
    DataError
        If the site is unknown, or the model's modules are not where the family says
        (a family entry out of date with the installed transformers).
    """
    if site not in SITES:
        raise DataError(None, f"unknown neuron site {site!r}; expected one of {SITES}", "models[].site")
    points: list[CapturePoint] = []
    for tower in family.towers:
        cfg = model.config if tower.sub_config is None else getattr(model.config, tower.sub_config)
        blocks = next((m for p in tower.layers if (m := _get(model, p)) is not None), None)
        if not isinstance(blocks, torch.nn.ModuleList):
            raise DataError(None, f"{family.name}: no block list at {tower.layers} in {type(model).__name__}", "model")
        spec = tower.sites[site]
        width = spec.width(cfg) if callable(spec.width) else int(getattr(cfg, spec.width))
        for i, block in enumerate(blocks):
            mod = _get(block, spec.module)
            if mod is None:
                raise DataError(None, f"{family.name}: block {i} has no module {spec.module!r} for site {site}", "model")
            points.append(CapturePoint(tower.name, i, f"{tower.layers[0]}.{i}.{spec.module}", spec.capture, width, mod))
    return points


@contextlib.contextmanager
def capture(points: list[CapturePoint], sink: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
    """Register read-only hooks calling ``sink(point_index, tensor)`` during forwards.

    ``tensor`` is the module output (or first input) of shape (batch, tokens, width); hooks
    return None so the forward computation is untouched.
    """
    handles = []

    def out_hook(i):
        def hook(_m, _inp, out):
            sink(i, out[0] if isinstance(out, tuple) else out)
        return hook

    def in_hook(i):
        def hook(_m, inp):
            sink(i, inp[0])
        return hook

    try:
        for i, p in enumerate(points):
            if p.capture == "output":
                handles.append(p.module.register_forward_hook(out_hook(i)))
            else:
                handles.append(p.module.register_forward_pre_hook(in_hook(i)))
        yield
    finally:
        for h in handles:
            h.remove()


# --- vision-language families (extraction in ``vlm.py``) -----------------------------------
# CLIP (two towers): both are pre-LN encoders with ``mlp.fc1 -> act -> mlp.fc2``; the text
# tower is causal (CLIP's text encoder masks future tokens), the vision tower is not.
_CLIP_SITES = {
    "ffn_out": SiteSpec("mlp.fc2", "output", "hidden_size"),
    "ffn_hidden": SiteSpec("mlp.fc2", "input", "intermediate_size"),
    "attn_out": SiteSpec("self_attn.out_proj", "output", "hidden_size"),
}


def _bridgetower_vision_inner(cfg) -> int:
    return 4 * int(cfg.hidden_size)  # BridgeTowerResidualAttention hard-codes a 4x MLP


# BridgeTower's vision blocks are CLIP ``ResidualAttentionBlock``s built on
# ``nn.MultiheadAttention``, whose ``out_proj`` is applied inside the functional call (its
# forward hook never fires), so attn_out hooks the attention module and keeps output[0].
_BRIDGETOWER_VISION_SITES = {
    "ffn_out": SiteSpec("mlp.c_proj", "output", "hidden_size"),
    "ffn_hidden": SiteSpec("mlp.c_proj", "input", _bridgetower_vision_inner),
    "attn_out": SiteSpec("attn", "output", "hidden_size"),
}
# Fusion layers (``BridgeTowerBertCrossLayer``, built from the text config): self-attention,
# cross-attention to the other modality, FFN. attn_out takes the *cross*-attention output
# projection: that is where the two modalities meet.
_BRIDGETOWER_FUSION_SITES = _BERT_SITES | {"attn_out": SiteSpec("crossattention.output.dense", "output", "hidden_size")}

FAMILIES.extend([
    Family(
        "clip", ("clip",),
        (
            Tower("text", ("text_model.encoder.layers",), True, _CLIP_SITES, sub_config="text_config"),
            Tower("vision", ("vision_model.encoder.layers",), False, _CLIP_SITES, sub_config="vision_config"),
        ),
        notes="CLIP two-tower model (CLIPModel): text and vision towers, ANs tagged 'text' / 'vision'",
    ),
    Family(
        "bridgetower", ("bridgetower",),
        (
            Tower("text", ("text_model.encoder.layer",), False, _BERT_SITES, sub_config="text_config"),
            Tower("vision", ("vision_model.visual.transformer.resblocks",), False, _BRIDGETOWER_VISION_SITES,
                  sub_config="vision_config"),
            Tower("fusion_text", ("cross_modal_text_layers",), False, _BRIDGETOWER_FUSION_SITES,
                  sub_config="text_config"),
            Tower("fusion_image", ("cross_modal_image_layers",), False, _BRIDGETOWER_FUSION_SITES,
                  sub_config="text_config"),
        ),
        notes=(
            "BridgeTower (BridgeTowerModel), a METER-style fusion model: unimodal text (RoBERTa-style) and "
            "vision (CLIP ViT) towers plus cross-modal fusion layers, one stack per stream "
            "(towers 'fusion_text' and 'fusion_image'; both are fusion layers)"
        ),
    ),
])
FUSION_TOWER_PREFIX = "fusion"
