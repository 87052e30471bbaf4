"""Params sections of the data layers: paths, atlases, the embedded default, external datasets and
the data gates (validation)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import FEATURE_KINDS, AtlasName, FeatureKind, PlantedFeatureName, _Section


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
    n_subjects: int = Field(4, ge=1, le=64, description="Subjects; the oracle bound is met from 10 (README: embedded default)")
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
