"""Activations layer: model sources and loading, neuron sites, windowed extraction, storage."""

from .._utils.lazy import lazy_exports

# imported on first use: stages that only read stored activations (patterns, registry) do not
# load transformers through the extraction modules, and the registry does not load torch
_EXPORTS = {
    "FAMILIES": "sites",
    "ActivationSet": "store",
    "AnChunk": "store",
    "Family": "sites",
    "LoadedModel": "models",
    "SiteSpec": "sites",
    "Stimulus": "extract",
    "TokenAlignment": "align",
    "Tower": "sites",
    "TrGrid": "extract",
    "WindowPlan": "align",
    "WordActivations": "forward",
    "align_tokens": "align",
    "extract_stimulus": "extract",
    "family_for": "sites",
    "load_model": "models",
    "materialise": "sources",
    "materialised_dir": "sources",
    "needs_materialise": "sources",
    "parse_source": "sources",
    "plan_windows": "align",
    "register_family": "sites",
    "resolve_sites": "sites",
    "stimuli_from_runs": "extract",
    "word_activations": "forward",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
