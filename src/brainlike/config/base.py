"""Shared pieces of the params schema: the ``_Section`` base (``extra="forbid"``, frozen) and the
atlas and planted-feature names used by several sections."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

AtlasName = Literal["yeo7", "yeo17", "cole_anticevic12"]
PlantedFeatureName = Literal[
    "word_rate", "sentence_end", "semantic_1", "semantic_2", "word_length", "nuisance_events"
]
FeatureKind = Literal["timing", "semantic", "nuisance"]
# What each plantable feature is: timing (when words happen; any tokenizer carries it), semantic
# (what words mean) or nuisance (independent of the stimulus).
FEATURE_KINDS: dict[str, str] = {
    "word_rate": "timing",
    "sentence_end": "timing",
    "word_length": "timing",
    "semantic_1": "semantic",
    "semantic_2": "semantic",
    "nuisance_events": "nuisance",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
