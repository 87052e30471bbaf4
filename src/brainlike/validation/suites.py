"""Great Expectations suites of the data gates, run in an ephemeral GX context.

:class:`Gates` adds every suite of :mod:`~brainlike.validation.expectations` (what each one
checks, with its thresholds) to one ephemeral GX context, validates the tidy frames of
:mod:`~brainlike.validation.frames` against them and renders Data Docs of what it ran; the
verdicts are :mod:`~brainlike.validation.results` objects.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils.reproducible import source_date
from ..config import ValidationConfig
from ..data.run import Run
from . import frames as F
from .expectations import (
    SUITE_ACT_ROWS,
    SUITE_ACT_UNITS,
    SUITE_DATASET,
    SUITE_PAIRS,
    SUITE_TARGETS,
    SUITE_TRS,
    SUITE_WORDS,
    _expected_text,
    _suite_specs,
)
from .results import (
    Failure,
    RunResult,
    _plain,
    load_failure_result,  # noqa: F401 -- re-exported: the validate stage imports it from here
)

_N_SHOWN = 10  # unexpected rows listed per failed expectation


def _import_gx():
    """Import GX lazily: it takes seconds and only the validation stage needs it."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    return gx, gxe, RunIdentifier, ProgressBarsConfig


def _majority(values: list) -> Any:
    """Most common value; ties go to the one seen first."""
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


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
