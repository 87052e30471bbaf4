"""Great Expectations suites of the data gates, run in an ephemeral GX context.

Suites (each over one tidy frame of :mod:`brainlike.validation.frames`):

``fmri_run.trs`` (one row per TR)
    no NaN, no Inf, no all-zero volume (drop-out), no volume identical to the previous one
    (frozen/duplicated), TR count within ``[expected - max_missing_trs,
    expected + max_extra_scan_s / TR]`` where ``expected = ceil((last word end - t0) / TR)``.
``fmri_run.targets`` (one row per vertex/ROI)
    no non-finite value, not all zero, not all constant, fraction of constant targets
    <= ``max_constant_fraction``, tSNR >= ``min_tsnr`` for ``min_tsnr_fraction`` of the
    non-constant targets (only where the data keep a baseline; see the frames module),
    every |value| <= ``max_abs_value`` (dynamic range).
``words`` (one row per word)
    onsets non-decreasing, durations > 0, times present, every word inside the scan
    (``t0 - tol <= onset``, ``end <= scan end + tol``), no empty token, speech rate in
    ``[min_words_per_minute, max_words_per_minute]`` over the speech span (a row-count check).
``fmri_dataset`` (one row per run of a dataset)
    space, target count and target names equal to the dataset's most common value.
``fmri_dataset.pairs`` (one row per pair of runs of a dataset with the same shape)
    correlation of the per-target z-scored time courses <= ``max_subject_correlation``: a
    higher one is a duplicated (copied) or near-identical subject, and both runs fail.
``load`` (not GX: a run whose files could not be read)
    the loader's message, recorded so that the rest of the dataset goes on.
``activations.rows`` / ``activations.units`` (an AN response matrix)
    row count equals the TR count; every value finite; fraction of constant ANs
    <= ``max_constant_an_fraction``.

Thresholds from params are written into the expectations (so Data Docs show them); values
that differ per run (expected TR count, scan end...) are ``$PARAMETER`` s filled at run time.

Layering: :class:`~brainlike.data.run.Run` already refuses decreasing onsets and negative
durations when it is built (``check_words``), so a Run never reaches the ``words`` suite with
those; the suite still states them so that the gate holds for any words table (the CLI and
tests validate frames directly) and it adds what ``check_words`` does not: zero durations,
empty tokens, words outside the scan, the speech rate.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils.reproducible import source_date
from ..config import ValidationConfig
from ..data.run import Run
from . import frames as F

SUITE_TRS = "fmri_run.trs"
SUITE_TARGETS = "fmri_run.targets"
SUITE_WORDS = "words"
SUITE_DATASET = "fmri_dataset"
SUITE_PAIRS = "fmri_dataset.pairs"
SUITE_LOAD = "load"
SUITE_ACT_ROWS = "activations.rows"
SUITE_ACT_UNITS = "activations.units"
_N_SHOWN = 10  # unexpected rows listed per failed expectation


def _import_gx():
    """Import GX lazily: it takes seconds and only the validation stage needs it."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    return gx, gxe, RunIdentifier, ProgressBarsConfig


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


def _majority(values: list) -> Any:
    """Most common value; ties go to the one seen first."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def _what(kind: str, column: str | None) -> str:
    if kind == "expect_table_row_count_to_be_between" or kind == "expect_table_row_count_to_equal":
        return "row count"
    if kind.startswith("expect_column_mean"):
        return f"mean({column})"
    if kind.startswith("expect_column_max"):
        return f"max({column})"
    return f"every {column}"


def _expected_text(kind: str, kw: dict) -> str:
    what = _what(kind, kw.get("column"))
    if "value_set" in kw:
        cond = f"in {list(kw['value_set'])}"
    elif "value" in kw:
        cond = f"== {kw['value']}"
    elif "regex" in kw:
        cond = f"not matching {kw['regex']!r}"
    elif "strictly" in kw or kind == "expect_column_values_to_be_increasing":
        cond = "strictly increasing" if kw.get("strictly") else "non-decreasing"
        what = str(kw.get("column"))
    elif kind == "expect_column_values_to_not_be_null":
        cond = "not null"
    else:
        parts = []
        if kw.get("min_value") is not None and kw.get("min_value") == kw.get("max_value"):
            parts.append(f"== {_short(kw['min_value'])}")
        elif kw.get("min_value") is not None:
            parts.append((">" if kw.get("strict_min") else ">=") + f" {_short(kw['min_value'])}")
        if kw.get("max_value") is not None and kw.get("min_value") != kw.get("max_value"):
            parts.append(("<" if kw.get("strict_max") else "<=") + f" {_short(kw['max_value'])}")
        cond = " and ".join(parts) or "(no bound)"
    mostly = kw.get("mostly")
    if mostly is not None and mostly < 1:
        cond += f" for at least {mostly:.0%} of non-null rows"
    return f"{what} {cond}"


@dataclass(frozen=True)
class _Suite:
    asset: str
    index: str  # column that names a row in failure reports
    expectations: list


def _suite_specs(gxe, cfg: ValidationConfig) -> dict[str, _Suite]:
    def e(cls, check: str, description: str, **kw):
        return cls(meta={"check": check}, description=description, **kw)

    P = lambda name: {"$PARAMETER": name}  # noqa: E731 -- per-run values
    Between, Mean, Max = gxe.ExpectColumnValuesToBeBetween, gxe.ExpectColumnMeanToBeBetween, gxe.ExpectColumnMaxToBeBetween
    return {
        SUITE_TRS: _Suite(
            "fmri_trs",
            "tr",
            [
                e(Between, "no_nan", "No volume holds a NaN (e.g. after projection to the surface).", column="n_nan", min_value=0, max_value=0),
                e(Between, "no_inf", "No volume holds an infinite value.", column="n_inf", min_value=0, max_value=0),
                e(Between, "no_zero_volume", "No volume is all zeros (signal drop-out).", column="zero_fraction", max_value=1, strict_max=True),
                e(Between, "no_frozen_volume", "No volume repeats the previous one exactly (frozen or duplicated volume).", column="unchanged_fraction", max_value=1, strict_max=True),
                e(
                    gxe.ExpectTableRowCountToBeBetween,
                    "tr_count",
                    f"TR count matches the stimulus: ceil((last word end - t0) / TR), minus at most {cfg.max_missing_trs} "
                    f"volume(s), plus at most {cfg.max_extra_scan_s:g} s of scan after the words.",
                    min_value=P("min_trs"),
                    max_value=P("max_trs"),
                ),
            ],
        ),
        SUITE_TARGETS: _Suite(
            "fmri_targets",
            "target",
            [
                e(Between, "no_nonfinite", "Every target's time course is finite (no NaN/Inf).", column="nonfinite_fraction", min_value=0, max_value=0),
                e(Max, "not_all_zero", "The run is not all zeros.", column="max_abs", min_value=0, strict_min=True),
                e(Max, "not_all_constant", "At least one target varies over time.", column="std", min_value=0, strict_min=True),
                e(
                    Between,
                    "dynamic_range",
                    f"Every |value| <= {cfg.max_abs_value:g}: a larger one is a file scaled by mistake "
                    "(squares of such float32 values overflow in the encoding fits).",
                    column="max_abs",
                    max_value=cfg.max_abs_value,
                ),
                e(
                    Mean,
                    "constant_fraction",
                    f"At most {cfg.max_constant_fraction:.0%} of the targets are constant (the fsaverage5 medial wall is ~10-15 %).",
                    column="is_constant",
                    max_value=cfg.max_constant_fraction,
                ),
                e(
                    Between,
                    "tsnr_floor",
                    f"tSNR (mean / s.d.) >= {cfg.min_tsnr:g} for {cfg.min_tsnr_fraction:.0%} of non-constant targets; "
                    "empty (not applicable) for demeaned data, which have no baseline.",
                    column="tsnr",
                    min_value=cfg.min_tsnr,
                    mostly=cfg.min_tsnr_fraction,
                ),
            ],
        ),
        SUITE_WORDS: _Suite(
            "words",
            "i",
            [
                e(gxe.ExpectColumnValuesToBeIncreasing, "onsets_non_decreasing", "Word onsets never decrease.", column="onset", strictly=False),
                e(Between, "positive_durations", "Every word lasts > 0 s.", column="duration", min_value=0, strict_min=True),
                e(gxe.ExpectColumnValuesToNotBeNull, "times_present", "Every word has an onset and a duration.", column="end"),
                e(Between, "starts_in_scan", "No word starts before the first kept volume (t0 - tolerance).", column="onset", min_value=P("first_onset_min")),
                e(Between, "ends_in_scan", "No word ends after the last volume (scan end + tolerance).", column="end", max_value=P("last_end_max")),
                e(gxe.ExpectColumnValuesToNotMatchRegex, "no_empty_tokens", "No empty or blank word token.", column="word", regex=r"^\s*$"),
                e(
                    gxe.ExpectTableRowCountToBeBetween,
                    "speech_rate",
                    f"Speech rate {cfg.min_words_per_minute:g}-{cfg.max_words_per_minute:g} words per minute over the "
                    "speech span (first onset to last end), as a word-count range.",
                    min_value=P("min_words"),
                    max_value=P("max_words"),
                ),
            ],
        ),
        SUITE_DATASET: _Suite(
            "fmri_dataset",
            "run_id",
            [
                gxe.ExpectColumnValuesToBeInSet(column="space", value_set=P("ref_space"), meta={"check": "same_space"},
                                                description="Every run of the dataset is in the same space."),
                gxe.ExpectColumnValuesToBeInSet(column="n_targets", value_set=P("ref_n_targets"), meta={"check": "same_shape"},
                                                description="Every run of the dataset has the same number of targets."),
                gxe.ExpectColumnValuesToBeInSet(column="target_set", value_set=P("ref_target_set"), meta={"check": "same_targets"},
                                                description="Every run of the dataset has the same targets (names)."),
            ],
        ),
        SUITE_PAIRS: _Suite(
            "fmri_dataset_pairs",
            "pair",
            [
                e(
                    Between,
                    "distinct_subjects",
                    f"No two runs of a dataset correlate above {cfg.max_subject_correlation:g} (per-target z-scored "
                    "time courses): such a pair is one subject's data under two names, or near-identical.",
                    column="correlation",
                    max_value=cfg.max_subject_correlation,
                ),
            ],
        ),
        SUITE_ACT_ROWS: _Suite(
            "activation_rows",
            "row",
            [e(gxe.ExpectTableRowCountToEqual, "row_count", "One activation row per TR.", value=P("n_trs"))],
        ),
        SUITE_ACT_UNITS: _Suite(
            "activation_units",
            "unit",
            [
                e(Between, "finite", "Every AN response is finite.", column="n_nonfinite", min_value=0, max_value=0),
                e(
                    Mean,
                    "constant_an_fraction",
                    f"At most {cfg.max_constant_an_fraction:.0%} of the ANs are constant.",
                    column="is_constant",
                    max_value=cfg.max_constant_an_fraction,
                ),
            ],
        ),
    }


class Gates:
    """The data gates: GX suites in one ephemeral context, plus the results they produced.

    One instance per validation session (a stage run, a CLI call); :meth:`build_docs` renders
    Data Docs of every validation it ran.

    Parameters
    ----------
    cfg : ValidationConfig, optional
        Thresholds (params.yaml ``validation:``); defaults when omitted.
    """

    def __init__(self, cfg: ValidationConfig | None = None):
        gx, gxe, self._RunIdentifier, ProgressBarsConfig = _import_gx()
        self.cfg = cfg or ValidationConfig()
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        # the default site writes to a temp dir; docs go only where build_docs is told
        for name in list((ctx.get_config().data_docs_sites or {}).keys()):
            ctx.delete_data_docs_site(name)
        source = ctx.data_sources.add_pandas("brainlike")
        self._ctx = ctx
        self._specs = _suite_specs(gxe, self.cfg)
        self._defs = {}
        for name, spec in self._specs.items():
            suite = ctx.suites.add(gx.ExpectationSuite(name=name))
            for exp in spec.expectations:
                suite.add_expectation(exp)
            batch = source.add_dataframe_asset(spec.asset).add_batch_definition_whole_dataframe("whole")
            self._defs[name] = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        self.run_time = source_date()  # the data docs are a DVC output: no clock in them
        self.n_validations = 0

    # -- core -------------------------------------------------------------------------------
    def _validate(self, suite: str, frame: pd.DataFrame, subject: str, params: dict | None = None,
                  observed_override: dict[str, Any] | None = None) -> list[Failure]:
        spec = self._specs[suite]
        result = self._defs[suite].run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=params or {},
            result_format={
                "result_format": "SUMMARY",
                "unexpected_index_column_names": [spec.index],
                "partial_unexpected_count": _N_SHOWN,
            },
            run_id=self._RunIdentifier(run_name=subject, run_time=self.run_time),
        )
        self.n_validations += 1
        failures = []
        for r in result.results:
            if r.success:
                continue
            conf = r.expectation_config
            kind = conf.type
            kw = {k: v for k, v in conf.kwargs.items() if k != "batch_id"}
            check = (conf.meta or {}).get("check", kind)
            res = dict(r.result or {})
            if r.exception_info and r.exception_info.get("raised_exception"):
                observed: Any = {"error": r.exception_info.get("exception_message")}
            elif "observed_value" in res:
                observed = _plain(res["observed_value"])
            else:
                observed = {
                    "unexpected_count": _plain(res.get("unexpected_count")),
                    "element_count": _plain(res.get("element_count")),
                    # the row's id first, then the offending value
                    "first": [
                        ({spec.index: row[spec.index]} if spec.index in row else {}) | {k: v for k, v in row.items() if k != spec.index}
                        for row in _plain(res.get("partial_unexpected_index_list")
                                          or [{kw.get("column", "value"): v} for v in res.get("partial_unexpected_list", [])])
                    ],
                }
            if observed_override and check in observed_override:
                observed = _plain(observed_override[check])
            failures.append(Failure(subject, suite, check, kind, kw.get("column"), observed, _expected_text(kind, kw)))
        return failures

    # -- public checks ----------------------------------------------------------------------
    def validate_words(self, words: pd.DataFrame, *, run_id: str, t0: float, scan_end: float) -> tuple[list[Failure], dict]:
        """Run the ``words`` suite on a words table (columns word, onset, duration).

        Parameters
        ----------
        words : DataFrame
            Need not have passed :func:`~brainlike.data.run.check_words`.
        run_id : str
            Named in the failures.
        t0, scan_end : float
            Stimulus-clock times of the first volume and of the end of the last one.

        Returns
        -------
        failures : list of Failure
        summary : dict
            ``n_words``, ``speech_span_s``, ``words_per_minute``.
        """
        cfg = self.cfg
        frame = F.words_frame(words)
        span = F.speech_span_s(frame) if frame["end"].notna().any() else 0.0
        minutes = span / 60.0
        wpm = len(frame) / minutes if minutes > 0 else float("nan")
        params = {
            "first_onset_min": t0 - cfg.word_time_tolerance_s,
            "last_end_max": scan_end + cfg.word_time_tolerance_s,
            "min_words": max(1, math.ceil(cfg.min_words_per_minute * minutes)),
            "max_words": max(1, math.floor(cfg.max_words_per_minute * minutes)),
        }
        summary = {"n_words": len(frame), "speech_span_s": round(span, 3), "words_per_minute": wpm}
        override = {"speech_rate": {"n_words": len(frame), "speech_span_s": round(span, 2),
                                    "words_per_minute": None if math.isnan(wpm) else round(wpm, 1)}}
        return self._validate(SUITE_WORDS, frame, run_id, params, override), summary

    def validate_run(self, run: Run) -> RunResult:
        """Run ``fmri_run.trs``, ``fmri_run.targets`` and ``words`` on one run."""
        cfg = self.cfg
        data = run.data
        labels = F.target_labels(run.n_targets, run.space, run.target_names)
        trs = F.trs_frame(data, run.t0, run.tr)
        targets, tsnr_ok = F.targets_frame(data, labels)
        expected = F.expected_n_trs(run.words, run.t0, run.tr)
        if expected is None:  # no words: nothing to compare the TR count with
            lo, hi = 1, None
        else:
            lo = max(1, expected - cfg.max_missing_trs)
            hi = expected + int(math.floor(cfg.max_extra_scan_s / run.tr + 1e-9))
        tsnr = targets["tsnr"].to_numpy()
        summary = {
            "space": run.space,
            "n_trs": run.n_trs,
            "n_targets": run.n_targets,
            "tr": run.tr,
            "t0": run.t0,
            "expected_n_trs": expected,
            "tr_count_range": [lo, hi],
            "constant_fraction": float(targets["is_constant"].mean()) if len(targets) else None,
            "tsnr_applicable": tsnr_ok,
            "median_tsnr": float(np.nanmedian(tsnr)) if tsnr_ok and np.isfinite(tsnr).any() else None,
            "source": run.meta.get("source"),
        }
        failures = self._validate(SUITE_TRS, trs, run.run_id, {"min_trs": lo, "max_trs": hi})
        failures += self._validate(SUITE_TARGETS, targets, run.run_id)
        word_failures, word_summary = self.validate_words(run.words, run_id=run.run_id, t0=run.t0, scan_end=run.scan_end)
        summary |= word_summary
        return RunResult(run.run_id, run.dataset, run.subject, run.task, summary, failures + word_failures,
                         [str(w) for w in run.meta.get("warnings", [])])

    def validate_dataset(self, summaries: list[dict], dataset: str) -> list[Failure]:
        """Run ``fmri_dataset`` on the runs of one dataset.

        Parameters
        ----------
        summaries : list of dict
            :func:`~brainlike.validation.frames.run_summary` of each run of ``dataset``.

        Returns
        -------
        list of Failure
            One per run that deviates (``Failure.run`` is that run's id) from the dataset's most
            common space / target count / target names (ties: the first run's value).
        """
        frame = pd.DataFrame(summaries)
        if len(frame) < 2:
            return []
        params = _plain({f"ref_{c}": [_majority(frame[c].tolist())] for c in ("space", "n_targets", "target_set")})
        out = []
        for f in self._validate(SUITE_DATASET, frame, f"dataset-{dataset}", params):
            # attribute the failure to each deviating run
            for row in f.observed.get("first", []) if isinstance(f.observed, dict) else []:
                rid = row.get("run_id")
                out.append(Failure(rid, f.suite, f.check, f.expectation, f.column,
                                   {"value": row.get(f.column), "dataset": dataset}, f.expected))
        return out

    def validate_pairs(self, fingerprints: dict[str, np.ndarray | None], dataset: str) -> list[Failure]:
        """Run ``fmri_dataset.pairs`` (duplicate or near-identical subjects) on one dataset.

        Parameters
        ----------
        fingerprints : dict
            Run id -> :func:`~brainlike.validation.frames.fingerprint` of each run of ``dataset``.

        Returns
        -------
        list of Failure
            Two per offending pair, one for each run (``Failure.run``), whose observed value
            names the other run and the correlation.
        """
        frame = F.pairs_frame(fingerprints)
        if frame.empty:
            return []
        out = []
        limit = self.cfg.max_subject_correlation
        for f in self._validate(SUITE_PAIRS, frame, f"dataset-{dataset}"):
            # GX lists at most _N_SHOWN rows: take the offending pairs from the frame itself
            for row in frame[frame["correlation"] > limit].itertuples():
                for run, other in ((row.run_a, row.run_b), (row.run_b, row.run_a)):
                    out.append(Failure(run, f.suite, f.check, f.expectation, f.column,
                                       {"duplicate_of": other, "correlation": row.correlation, "dataset": dataset},
                                       f.expected))
        return out

    def validate_activations(self, acts: np.ndarray, n_trs: int, name: str) -> list[Failure]:
        """Run ``activations.rows`` and ``activations.units`` on an AN response matrix.

        Parameters
        ----------
        acts : array of shape (n_rows, n_units)
            Should be (n_trs, n_units): one row per TR.
        n_trs : int
            TR count of the run the activations were sampled for.
        name : str
            Named in the failures (e.g. ``"minilm/ffn_out/alice_sub-s18"``).
        """
        rows, units = F.activation_frames(acts)
        return self.validate_activation_summaries(rows, units, n_trs, name)

    def validate_activation_summaries(
        self, rows: pd.DataFrame, units: pd.DataFrame, n_trs: int, name: str
    ) -> list[Failure]:
        """The same suites on precomputed frames (:func:`frames.activation_frames`), so a caller
        can summarise a large tensor layer by layer and validate it once."""
        return self._validate(SUITE_ACT_ROWS, rows, name, {"n_trs": int(n_trs)}) + self._validate(
            SUITE_ACT_UNITS, units, name
        )

    # -- Data Docs --------------------------------------------------------------------------
    def build_docs(self, folder: str | Path) -> Path:
        """Render GX Data Docs of every validation run so far into ``folder`` (created).

        Returns the path of ``index.html``. The HTML still points at CDNs; see
        :func:`brainlike.validation.docs.make_offline`.
        """
        folder = Path(folder).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        site = "brainlike"  # the title the docs show; removed again below
        self._ctx.add_data_docs_site(
            site_name=site,
            site_config={
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
            },
        )
        try:
            self._ctx.build_data_docs(site_names=[site])
        finally:
            self._ctx.delete_data_docs_site(site)
        _unclock(folder, self.run_time)
        return folder / "index.html"


# The docs are a DVC output, so what GX draws from the clock or at random is made fixed: each
# batch's load time ("ge_load_time") and each logo URL's cache buster ("?d=...") become the run
# time; the random uuid4 of each collapsible block becomes "u<n>", numbered in order of first
# appearance over the pages in path order (one name per uuid, so links between pages still hold).
_GX_STAMP = re.compile(r"\b\d{8}T\d{6}\.\d{6}Z\b")
_UUID4 = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\b")


def _unclock(folder: Path, when) -> None:
    stamp = when.strftime("%Y%m%dT%H%M%S.%fZ")
    names: dict[str, str] = {}
    for page in sorted(folder.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        fixed = _UUID4.sub(lambda m: names.setdefault(m.group(0), f"u{len(names)}"), _GX_STAMP.sub(stamp, text))
        if fixed != text:
            page.write_text(fixed, encoding="utf-8")


def validate_run(run: Run, cfg: ValidationConfig | None = None) -> RunResult:
    """Validate one run with fresh gates (see :class:`Gates`)."""
    return Gates(cfg).validate_run(run)


def validate_words(words: pd.DataFrame, *, run_id: str, t0: float, scan_end: float,
                   cfg: ValidationConfig | None = None) -> list[Failure]:
    """Run the ``words`` suite on a words table; returns the failures (empty when valid)."""
    return Gates(cfg).validate_words(words, run_id=run_id, t0=t0, scan_end=scan_end)[0]


def validate_activations(acts: np.ndarray, n_trs: int, name: str, cfg: ValidationConfig | None = None) -> list[Failure]:
    """Validate an AN response matrix of shape (n_trs, n_units); returns the failures.

    For the extraction stage: finite values, one row per TR, constant-AN fraction below
    ``cfg.max_constant_an_fraction``. Use :func:`raise_for_failures` to stop on any.
    """
    return Gates(cfg).validate_activations(acts, n_trs, name)
