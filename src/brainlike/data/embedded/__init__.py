"""The embedded default dataset: an original story, its word timings and semi-synthetic fMRI.

See ``README.md`` in this folder. Semi-synthetic: real resting-state background, planted responses.
"""

from .features import FEATURE_NAMES, feature_correlations, stimulus_features
from .synth import embedded_design, embedded_features, make_embedded
from .timing import count_syllables, load_story, speech_stats, story_words

__all__ = [
    "FEATURE_NAMES",
    "count_syllables",
    "embedded_design",
    "embedded_features",
    "feature_correlations",
    "load_story",
    "make_embedded",
    "speech_stats",
    "stimulus_features",
    "story_words",
]
