"""All of params.yaml (``Params``), reading and validating it, and the messages of a bad setting."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .analysis import EncodingConfig, MetricsConfig, NetworksConfig
from .base import _Section
from .data import (
    AliceDataset,
    AtlasesConfig,
    BidsDataset,
    Dataset,
    EmbeddedConfig,
    PathsConfig,
    ValidationConfig,
)
from .models import ExtractConfig, ModelConfig, PatternsConfig, default_models
from .services import ComputeConfig, RegistryConfig


class Params(_Section):
    """All of params.yaml."""

    paths: PathsConfig = Field(default_factory=PathsConfig)
    atlases: AtlasesConfig = Field(default_factory=AtlasesConfig)
    embedded: EmbeddedConfig = Field(default_factory=EmbeddedConfig)
    datasets: list[Dataset] = Field(default_factory=list)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    # Keyed by model name so DVC tracks each model's entry on its own (`models.<name>`):
    # changing one model re-runs only that model's stages.
    models: dict[str, ModelConfig] = Field(default_factory=lambda: {m.name: m for m in default_models()})
    extract: ExtractConfig = Field(default_factory=ExtractConfig)
    patterns: PatternsConfig = Field(default_factory=PatternsConfig)
    encoding: EncodingConfig = Field(default_factory=EncodingConfig)
    networks: NetworksConfig = Field(default_factory=NetworksConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)

    @field_validator("models", mode="before")
    @classmethod
    def _names_from_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({"name": k} | m) if isinstance(m, dict) else m for k, m in value.items()}
        return value

    @model_validator(mode="after")
    def _model_keys_match_names(self) -> Params:
        for key, model in self.models.items():
            if "." in key:
                # every model's stages track `models.<name>`, and DVC reads each '.' there as a level
                raise ValueError(f"models: a model name cannot hold '.' ({key!r}): DVC would read models.{key} "
                                 f"as nested keys and stop its stages; write e.g. {key.replace('.', 'p')!r}")
            if model.name != key:
                raise ValueError(f"models.{key}.name is {model.name!r}; leave it out or make it equal to the key")
        return self

    @model_validator(mode="after")
    def _unique_dataset_names(self) -> Params:
        names = [d.name for d in self.datasets] + (["embedded"] if self.embedded.enabled else [])
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"dataset names must be unique, repeated: {sorted(dup)}")
        return self


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("alice", "bids") and out.startswith("datasets"):
            continue  # discriminator tag, not a key the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names at ``loc`` (for 'unknown key' messages)."""
    cur: Any = model
    for part in loc[:-1]:
        if isinstance(part, str) and part in ("alice", "bids") and loc[0] == "datasets":
            cur = AliceDataset if part == "alice" else BidsDataset
            continue
        if isinstance(part, int) or cur is None:
            continue
        field = cur.model_fields.get(part) if hasattr(cur, "model_fields") else None
        if field is None:
            return []
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        cur = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return sorted(cur.model_fields) if cur is not None and hasattr(cur, "model_fields") else []


def format_validation_error(err: ValidationError, source: str, model: type[BaseModel] = Params) -> str:
    lines = [f"{source}: {err.error_count()} invalid setting(s):"]
    for e in err.errors():
        where = _loc(e["loc"])
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, e["loc"])
            lines.append(f"  - {where}: unknown key (allowed here: {', '.join(allowed) or 'none'})")
        else:
            value = e.get("input")
            shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{...}"
            lines.append(f"  - {where} = {shown}: {e['msg']}")
    return "\n".join(lines)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: object, first: int, second: int):
        self.key, self.first, self.second = key, first, second
        super().__init__(f"duplicated key {key!r}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges may be overridden on purpose
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first != key_node.start_mark.line + 1:
                raise _DuplicateKey(key, first, key_node.start_mark.line + 1)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file, refusing duplicated keys.

    Raises
    ------
    ConfigError
        Not valid YAML, or a mapping that holds a key twice (named with both line numbers).
    """
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except _DuplicateKey as exc:
        raise ConfigError(
            f"{path}: line {exc.second}: key {exc.key!r} is given twice in the same mapping (first at line "
            f"{exc.first}); YAML would silently keep the last value: remove one"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml.

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, holds a key twice in one mapping, or holds an
        unknown key or a bad value; the message names each key path, its value and what is
        allowed.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameters file not found")
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return parse_params(raw, source=str(path))


def parse_params(raw: dict[str, Any], source: str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping (see :func:`load_params`)."""
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def config_hash(section: BaseModel) -> str:
    """Stable short hash of a config section: its cache and provenance identity."""
    blob = json.dumps(section.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
