"""Params sections of the analysis: encoding models, network matching and organization metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from .base import AtlasName, _Section


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
    group_test: Literal["t", "moderated_t", "stouffer"] = Field(
        "moderated_t", description="Group maps: one-sample t across subjects, the same with empirical-Bayes "
        "variances (moderated t; both random effects) or Stouffer z (fixed effects)"
    )
    marginal_maps: bool = Field(
        True, description="On fsaverage5, also each atom's marginal GLM z (the atom alone with the nuisance "
        "regressors) and its group map, which the networks stage links beside the joint maps (README)"
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
