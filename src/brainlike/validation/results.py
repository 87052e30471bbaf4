"""Verdicts of the data gates: failed expectations and per-run results, as strict JSON.

A :class:`Failure` is one failed expectation (with its observed value and the condition it
broke), a :class:`RunResult` the verdict of one run. A run whose files could not be read gets a
verdict too (:func:`load_failure_result`, pseudo-suite ``load``: no GX suite ran on it).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

SUITE_LOAD = "load"


def _plain(x: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/Inf to None (strict JSON has neither)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


@dataclass(frozen=True)
class Failure:
    """One failed expectation.

    Attributes
    ----------
    run : str
        Run id (or the name of an activation matrix).
    suite, check, expectation : str
        GX suite, the project's short name of the check, GX expectation type.
    column : str or None
    observed : JSON-serialisable
        GX's observed value (aggregate expectations) or a dict with ``unexpected_count``,
        ``element_count`` and the ``first`` offending rows (map expectations).
    expected : str
        The condition that did not hold, with its threshold.
    """

    run: str
    suite: str
    check: str
    expectation: str
    column: str | None
    observed: Any
    expected: str

    def observed_text(self) -> str:
        o = self.observed
        if isinstance(o, dict) and "unexpected_count" in o:
            shown = o.get("first", [])[:3]  # the JSON keeps up to _N_SHOWN rows
            first = ", ".join(" ".join(f"{k}={_short(v)}" for k, v in row.items()) for row in shown)
            more = "" if (o["unexpected_count"] or 0) <= len(shown) else ", ..."
            return f"{o['unexpected_count']} of {o['element_count']} rows [{first}{more}]"
        if isinstance(o, dict):
            return ", ".join(f"{k}={_short(v)}" for k, v in o.items())
        return _short(o)

    def message(self) -> str:
        col = f" on {self.column}" if self.column else ""
        return (
            f"{self.run}: {self.suite}/{self.check} ({self.expectation}{col}) failed: "
            f"observed {self.observed_text()}; expected {self.expected}"
        )

    def to_dict(self) -> dict:
        return _plain(asdict(self)) | {"message": self.message()}


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@dataclass
class RunResult:
    """Verdict of one run: its summary (shape, expected TRs, tSNR rule...) and failures."""

    run_id: str
    dataset: str
    subject: str
    task: str
    summary: dict = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "dataset": self.dataset,
            "subject": self.subject,
            "task": self.task,
            "summary": _plain(self.summary),
            "failures": [f.to_dict() for f in self.failures],
            "warnings": list(self.warnings),
        }


def load_failure_result(failure) -> RunResult:
    """The verdict of a run that could not be read (a :class:`~brainlike.data.run.LoadFailure`)."""
    f = Failure(failure.run_id, SUITE_LOAD, "readable", "file_is_readable", None,
                {"file": failure.source, "problem": failure.problem}, "a readable, well-formed file")
    return RunResult(failure.run_id, failure.dataset, failure.subject, failure.task,
                     {"source": failure.source}, [f])

