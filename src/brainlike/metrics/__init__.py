"""Per-model organization metrics (README: organization metrics) and the scored answer (recovery)."""

from .organization import (
    SUBGROUP_COLUMNS,
    atoms_per_fbn,
    balance,
    compactness,
    cross_subject_consistency,
    diversity,
    effective_atoms,
    fbn_couplings,
    layer_entropy,
    modality_share,
    organization_metrics,
    polarity,
    redundancy,
    signed_dice,
    tidy_metrics,
    within_fbn_consistency,
)
from .recovery import link_truth, score_recovery, score_recovery_by_model

__all__ = [
    "SUBGROUP_COLUMNS",
    "atoms_per_fbn",
    "balance",
    "compactness",
    "cross_subject_consistency",
    "diversity",
    "effective_atoms",
    "fbn_couplings",
    "layer_entropy",
    "link_truth",
    "modality_share",
    "organization_metrics",
    "polarity",
    "redundancy",
    "score_recovery",
    "score_recovery_by_model",
    "signed_dice",
    "tidy_metrics",
    "within_fbn_consistency",
]
