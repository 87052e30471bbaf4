"""The ``validate`` stage: gates every prepared run, writes the verdicts and the Data Docs.

Outputs (both written atomically):

- ``metrics/validation.json``: per run ``passed``, its summary and every failed expectation
  with the observed value; ``valid_runs`` (what downstream stages use, via
  :func:`read_valid_runs`); ``excluded`` (run id + reasons); ``warnings`` (run id -> what
  a loader noted, e.g. a missing motion file: the run passes, but without motion confounds).
  Runs the ``prepare`` stage could not read (manifest ``unreadable``) are failed runs here;
- the GX Data Docs site (``docs_dir``), made offline with the vendored assets.

Policy ``on_invalid``: ``fail`` raises :class:`ValidationFailed` (a ``DataError``; the stage
exits non-zero) *after* writing both outputs, with a table of what failed where;
``exclude`` leaves the failed runs out of ``valid_runs``, lists them, and returns normally.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping, Iterable
from pathlib import Path

from .._utils.atomic import atomic_paths
from .._utils.reproducible import portable_path, write_timings
from ..config import ValidationConfig
from ..data.run import LoadFailure, Run
from ..data.store import read_manifest, read_run
from ..errors import DataError
from . import frames as F
from .suites import Failure, Gates, RunResult, load_failure_result

FORMAT_VERSION = 1


class ValidationFailed(DataError):
    """Some runs failed the data gates (policy ``on_invalid: fail``).

    Attributes
    ----------
    results : list of RunResult
        Every run's verdict (failed ones have ``failures``).
    """

    def __init__(self, path, results: list[RunResult], report: Path | None = None):
        self.results = results
        bad = [r for r in results if not r.passed]
        where = f"; report: {report}" if report else ""
        super().__init__(
            path,
            f"{len(bad)} of {len(results)} run(s) failed the data gates{where}\n{failure_table(results)}",
            "validation",
        )


def _reason(f: Failure) -> str:
    return f"{f.suite}/{f.check}: observed {f.observed_text()}; expected {f.expected}"


def failure_table(results: Iterable[RunResult], width: int = 100) -> str:
    """A short plain-text table: one line per failed expectation (run, check, observed)."""
    rows = [(r.run_id, f"{f.suite}/{f.check}", f.observed_text(), f.expected) for r in results for f in r.failures]
    if not rows:
        return "(no failures)"
    w0 = max(len("run"), *(len(r[0]) for r in rows))
    w1 = max(len("check"), *(len(r[1]) for r in rows))
    lines = [f"{'run':<{w0}}  {'check':<{w1}}  observed (expected)"]
    for run, check, obs, exp in rows:
        text = f"{obs} ({exp})"
        if len(text) > width:
            text = text[: width - 3] + "..."
        lines.append(f"{run:<{w0}}  {check:<{w1}}  {text}")
    return "\n".join(lines)


def verdict_table(results: Iterable[RunResult]) -> str:
    """One line per run: PASS/FAIL, shape, TRs vs expected, the failed checks and its warnings."""
    results = list(results)
    if not results:
        return "(no runs)"
    w = max(len("run"), *(len(r.run_id) for r in results))
    lines = [f"{'run':<{w}}  verdict  {'TRs':>5}/{'need':<5} {'targets':>7}  failed checks"]
    for r in results:
        s = r.summary
        checks = ", ".join(dict.fromkeys(f"{f.suite}/{f.check}" for f in r.failures)) or "-"
        if r.warnings:
            checks += f"  [{len(r.warnings)} warning(s)]"
        need = s.get("expected_n_trs")
        lines.append(
            f"{r.run_id:<{w}}  {'PASS' if r.passed else 'FAIL':<7}  {s.get('n_trs', '?'):>5}/{'-' if need is None else need:<5}"
            f" {s.get('n_targets', '?'):>7}  {checks}"
        )
    return "\n".join(lines)


def validate_runs(runs: Iterable[Run], gates: Gates, unreadable: Iterable[LoadFailure] = ()) -> list[RunResult]:
    """Validate runs one by one, then each dataset's consistency and distinct subjects.

    Only a small fingerprint of each run's data is kept (see
    :func:`~brainlike.validation.frames.fingerprint`), so runs can stream from disk.

    Parameters
    ----------
    runs : iterable of Run
    gates : Gates
    unreadable : iterable of LoadFailure
        Runs whose files could not be read: each becomes a failed verdict (check
        ``load/readable``) listed after the others.
    """
    results: list[RunResult] = []
    summaries: dict[str, list[dict]] = defaultdict(list)
    prints: dict[str, dict] = defaultdict(dict)
    for run in runs:
        results.append(gates.validate_run(run))
        summaries[run.dataset].append(F.run_summary(run))
        prints[run.dataset][run.run_id] = F.fingerprint(run.data)
    by_id = {r.run_id: r for r in results}
    for dataset, rows in summaries.items():
        for f in gates.validate_dataset(rows, dataset) + gates.validate_pairs(prints[dataset], dataset):
            by_id[f.run].failures.append(f)
    results += [load_failure_result(u) for u in unreadable]
    return results


def build_report(results: list[RunResult], cfg: ValidationConfig, docs: dict | None,
                 policies: Mapping[str, str] | None = None) -> dict:
    """The content of ``metrics/validation.json`` (no wall time: see :func:`run_validation`)."""
    valid = [r.run_id for r in results if r.passed]
    excluded = [{"run_id": r.run_id, "reasons": [_reason(f) for f in r.failures]} for r in results if not r.passed]
    warned = {r.run_id: list(r.warnings) for r in results if r.warnings}
    return {
        "format_version": FORMAT_VERSION,
        "on_invalid": cfg.on_invalid,
        "on_invalid_by_dataset": dict(sorted((policies or {}).items())),
        "thresholds": cfg.model_dump(mode="json"),
        "n_runs": len(results),
        "n_valid": len(valid),
        "valid_runs": valid,
        "excluded": excluded,
        "warnings": warned,
        "runs": {r.run_id: r.to_dict() for r in results},
        "docs": docs,
    }


def run_validation(
    prepared_root: str | Path,
    cfg: ValidationConfig,
    out_metrics: str | Path,
    docs_dir: str | Path,
    vendor_dir: str | Path | None = None,
    policies: Mapping[str, str] | None = None,
) -> dict:
    """Run the data gates on every run of a prepared store.

    Parameters
    ----------
    prepared_root : path
        Store root holding ``manifest.json`` (the ``prepare`` stage's output).
    cfg : ValidationConfig
    out_metrics : path
        ``metrics/validation.json``.
    docs_dir : path
        Data Docs site folder (replaced as a whole).
    vendor_dir : path, optional
        Vendored CDN assets (``build/vendor``, see ``tools/vendor_assets.py``). When given the
        docs are made offline (an incomplete folder is an error); when None the docs keep
        their CDN links and the report says ``docs.offline: false``.
    policies : mapping dataset name -> ``"fail"`` | ``"exclude"``, optional
        Per-dataset policy overriding ``cfg.on_invalid`` (e.g. a real dataset with a known
        broken subject is excluded from, not blocking, the study); recorded in the report.

    Returns
    -------
    dict
        The report written to ``out_metrics``.

    Raises
    ------
    ValidationFailed
        With ``on_invalid: fail`` when any run failed -- after both outputs were written.
    DataError
        The store or one of its runs cannot be read.
    """
    start = time.perf_counter()
    prepared_root, out_metrics, docs_dir = Path(prepared_root), Path(out_metrics), Path(docs_dir)
    manifest = read_manifest(prepared_root)
    gates = Gates(cfg)
    unreadable = [LoadFailure(u["dataset"], u["subject"], u["task"], u.get("source"), u["problem"])
                  for u in manifest.get("unreadable", [])]
    results = validate_runs((read_run(prepared_root / e["path"]) for e in manifest["runs"]), gates, unreadable)
    docs: dict = {"path": portable_path(docs_dir), "offline": False}
    # docs and report are both written before either is published (docs first, the report
    # last), so they never describe different validations
    with atomic_paths(docs_dir, out_metrics) as (tmp, report_tmp):
        gates.build_docs(tmp)
        if vendor_dir is not None:
            from .docs import make_offline

            info = make_offline(tmp, vendor_dir)
            docs |= {"offline": True, "pages": info["pages"], "asset_versions": info["versions"]}
        report = build_report(results, cfg, docs, policies)
        report_tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_timings("validate", {"seconds": round(time.perf_counter() - start, 3)})
    policies = policies or {}
    blocking = [r for r in results if not r.passed and policies.get(r.dataset, cfg.on_invalid) == "fail"]
    if blocking:
        raise ValidationFailed(prepared_root, results, out_metrics)
    return report


def read_valid_runs(path: str | Path) -> list[str]:
    """The run ids that passed the gates, from ``metrics/validation.json``.

    Raises
    ------
    DataError
        The file is missing (run ``dvc repro validate``) or has no ``valid_runs`` list.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "validation report not found (run `dvc repro validate`)")
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON: {exc}") from None
    valid = report.get("valid_runs") if isinstance(report, dict) else None
    if not isinstance(valid, list) or not all(isinstance(v, str) for v in valid):
        raise DataError(path, "expected a list of run ids", "valid_runs")
    return list(valid)
