"""Typed configuration: params.yaml -> pydantic models (one per section, ``extra="forbid"``).

Every stage reads its section from here, so a wrong key or value stops before any work with a
message that names the key path, the value and what is allowed. Defaults live here, once;
params.yaml states the values a study uses.

Modules: ``base`` (the ``_Section`` base, shared names), ``data`` (paths, atlases, embedded,
datasets, validation), ``models`` (models, extract, patterns), ``analysis`` (encoding,
networks, metrics), ``services`` (registry, compute) and ``params`` (``Params``, reading,
validating, error messages). Import from ``brainlike.config``.
"""

from .analysis import EncodingConfig, MetricsConfig, NetworksConfig, _default_alphas
from .base import FEATURE_KINDS, AtlasName, FeatureKind, PlantedFeatureName, _Section
from .data import (
    AliceDataset,
    AtlasesConfig,
    BidsDataset,
    Dataset,
    EmbeddedConfig,
    MovieConfig,
    PathsConfig,
    PlantedResponse,
    SpeechRateConfig,
    SubjectVariabilityConfig,
    ValidationConfig,
    _default_planted,
    _default_target_r,
)
from .models import (
    MODEL_SOURCE_SCHEMES,
    ExtractConfig,
    HrfName,
    ModelConfig,
    NeuronSite,
    PatternsConfig,
    TokenPooling,
    default_models,
)
from .params import (
    Params,
    _allowed_keys,
    _DuplicateKey,
    _loc,
    _UniqueKeyLoader,
    config_hash,
    format_validation_error,
    load_params,
    parse_params,
    read_yaml,
)
from .services import ComputeConfig, RegistryConfig

__all__ = [
    "FEATURE_KINDS",
    "MODEL_SOURCE_SCHEMES",
    "AliceDataset",
    "AtlasName",
    "AtlasesConfig",
    "BidsDataset",
    "ComputeConfig",
    "Dataset",
    "EmbeddedConfig",
    "EncodingConfig",
    "ExtractConfig",
    "FeatureKind",
    "HrfName",
    "MetricsConfig",
    "ModelConfig",
    "MovieConfig",
    "NetworksConfig",
    "NeuronSite",
    "Params",
    "PathsConfig",
    "PatternsConfig",
    "PlantedFeatureName",
    "PlantedResponse",
    "RegistryConfig",
    "SpeechRateConfig",
    "SubjectVariabilityConfig",
    "TokenPooling",
    "ValidationConfig",
    "config_hash",
    "default_models",
    "format_validation_error",
    "load_params",
    "parse_params",
    "read_yaml",
]
