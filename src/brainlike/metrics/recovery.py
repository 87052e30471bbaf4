"""The scored answer: recovered atom -> network links versus the planted ground truth.

One import point for the three parts (see each module for its definitions):
:mod:`~brainlike.metrics.recovery_lenient` (``link_truth``, ``score_recovery``: a link is true when
the linked network lies mostly inside a planted one), :mod:`~brainlike.metrics.recovery_strict`
(``score_planted``, ``recovery_bounds``, ``kind_difference``: a map counts only for its planted
network or a near-equivalent) and :mod:`~brainlike.metrics.recovery_bootstrap` (best Dice and the
trained-minus-twin difference bootstrapped over subjects).
"""

from __future__ import annotations

from .recovery_bootstrap import bootstrap_best_dice, bootstrap_indices, paired_kind_difference, percentile_ci
from .recovery_lenient import DEFINITION, link_truth, score_recovery, score_recovery_by_model
from .recovery_strict import (
    NEAR_EQUIVALENT_DICE,
    STRICT_DEFINITION,
    _check_links,
    _key,
    kind_difference,
    near_equivalents,
    recovery_bounds,
    score_planted,
)

__all__ = [
    "DEFINITION",
    "NEAR_EQUIVALENT_DICE",
    "STRICT_DEFINITION",
    "bootstrap_best_dice",
    "bootstrap_indices",
    "kind_difference",
    "link_truth",
    "near_equivalents",
    "paired_kind_difference",
    "percentile_ci",
    "recovery_bounds",
    "score_planted",
    "score_recovery",
    "score_recovery_by_model",
]
