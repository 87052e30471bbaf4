"""Data-integrity gates (Great Expectations 1.x suites over tidy summary frames).

See :mod:`~brainlike.validation.expectations` for the suites, :mod:`~brainlike.validation.suites`
for the gates that run them, :mod:`~brainlike.validation.results` for their verdicts,
:mod:`~brainlike.validation.stage`
for the ``validate`` stage, :mod:`~brainlike.validation.docs` for offline Data Docs and
:mod:`~brainlike.validation.cli` for ``brainlike validate``. GX itself is imported only when
gates are built (it takes seconds).
"""

from .stage import ValidationFailed, failure_table, read_valid_runs, run_validation, verdict_table
from .suites import Failure, Gates, RunResult, validate_activations, validate_run, validate_words

__all__ = [
    "Failure",
    "Gates",
    "RunResult",
    "ValidationFailed",
    "failure_table",
    "read_valid_runs",
    "run_validation",
    "validate_activations",
    "validate_run",
    "validate_words",
    "verdict_table",
]
