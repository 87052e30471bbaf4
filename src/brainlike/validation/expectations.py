"""The expectations of the data gates' Great Expectations suites, and how a failed one reads.

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

from dataclasses import dataclass

from ..config import ValidationConfig
from .results import _short

SUITE_TRS = "fmri_run.trs"
SUITE_TARGETS = "fmri_run.targets"
SUITE_WORDS = "words"
SUITE_DATASET = "fmri_dataset"
SUITE_PAIRS = "fmri_dataset.pairs"
SUITE_ACT_ROWS = "activations.rows"
SUITE_ACT_UNITS = "activations.units"


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
    """Every suite, in the order the gates add them to the GX context."""
    return _fmri_run_specs(gxe, cfg) | _words_specs(gxe, cfg) | _dataset_specs(gxe, cfg) | _activation_specs(gxe, cfg)


def _vocabulary(gxe):
    """Short names the suite tables are written in: ``e`` (an expectation tagged with the
    project's name of its check), ``P`` (a per-run ``$PARAMETER``) and the GX classes used most."""

    def e(cls, check: str, description: str, **kw):
        return cls(meta={"check": check}, description=description, **kw)

    P = lambda name: {"$PARAMETER": name}  # noqa: E731 -- per-run values
    Between, Mean, Max = gxe.ExpectColumnValuesToBeBetween, gxe.ExpectColumnMeanToBeBetween, gxe.ExpectColumnMaxToBeBetween
    return e, P, Between, Mean, Max


def _fmri_run_specs(gxe, cfg: ValidationConfig) -> dict[str, _Suite]:
    """``fmri_run.trs`` and ``fmri_run.targets``."""
    e, P, Between, Mean, Max = _vocabulary(gxe)
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
    }


def _words_specs(gxe, cfg: ValidationConfig) -> dict[str, _Suite]:
    """``words``."""
    e, P, Between, Mean, Max = _vocabulary(gxe)
    return {
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
    }


def _dataset_specs(gxe, cfg: ValidationConfig) -> dict[str, _Suite]:
    """``fmri_dataset`` and ``fmri_dataset.pairs``."""
    e, P, Between, Mean, Max = _vocabulary(gxe)
    return {
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
    }


def _activation_specs(gxe, cfg: ValidationConfig) -> dict[str, _Suite]:
    """``activations.rows`` and ``activations.units``."""
    e, P, Between, Mean, Max = _vocabulary(gxe)
    return {
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
