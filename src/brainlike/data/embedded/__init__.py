"""The embedded default dataset: an original story, its word timings and semi-synthetic fMRI.

See ``README.md`` in this folder. Semi-synthetic: real resting-state background, planted responses.
"""

from .calibrate import alice_feature_r, expected_r, highpassed_r, planted_gain, summarise_feature_r
from ...config import FEATURE_KINDS
from .features import FEATURE_NAMES, NUISANCE_FEATURE, feature_correlations, stimulus_features
from .synth import circular_shift_null, embedded_design, embedded_features, make_embedded, oracle_regressors
from .timing import count_syllables, load_story, speech_stats, story_words

__all__ = [
    "FEATURE_KINDS",
    "FEATURE_NAMES",
    "NUISANCE_FEATURE",
    "alice_feature_r",
    "circular_shift_null",
    "count_syllables",
    "embedded_design",
    "embedded_features",
    "expected_r",
    "feature_correlations",
    "highpassed_r",
    "load_story",
    "make_embedded",
    "oracle_regressors",
    "planted_gain",
    "speech_stats",
    "stimulus_features",
    "story_words",
    "summarise_feature_r",
]
