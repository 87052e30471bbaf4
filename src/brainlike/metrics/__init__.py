"""Per-model organization metrics (README: organization metrics) and the scored answer (recovery)."""

from .links import atoms_per_fbn, compactness, fbn_couplings
from .maps import cross_subject_consistency, redundancy, signed_dice
from .organization import organization_metrics, tidy_metrics
from .recovery import link_truth, score_recovery, score_recovery_by_model
from .subgroups import SUBGROUP_COLUMNS, effective_atoms, layer_entropy, modality_share, polarity
from .temporal import balance, diversity, within_fbn_consistency

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
