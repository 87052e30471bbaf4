"""Activations layer: model sources and loading, neuron sites, windowed extraction, storage."""

from .align import TokenAlignment, WindowPlan, align_tokens, plan_windows
from .extract import Stimulus, TrGrid, extract_stimulus, stimuli_from_runs
from .forward import WordActivations, word_activations
from .models import LoadedModel, load_model
from .sites import FAMILIES, Family, SiteSpec, Tower, family_for, register_family, resolve_sites
from .sources import materialise, materialised_dir, needs_materialise, parse_source
from .store import ActivationSet, AnChunk

__all__ = [
    "FAMILIES", "ActivationSet", "AnChunk", "Family", "LoadedModel", "SiteSpec", "Stimulus", "TokenAlignment",
    "Tower", "TrGrid", "WindowPlan", "WordActivations", "align_tokens", "extract_stimulus", "family_for",
    "load_model", "materialise", "materialised_dir", "needs_materialise", "parse_source", "plan_windows",
    "register_family", "resolve_sites", "stimuli_from_runs", "word_activations",
]
