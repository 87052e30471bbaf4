"""Browser check of the registry UI, the HTML report and the DVC plots page (``make ui-check``).

1. Starts ``mlflow server`` on a free loopback port against a store (its own process group,
   stopped by PID in every case), asserts through the REST API that every model has a FINISHED
   parent run with nested subject runs and the expected metrics, and loads the experiment page
   in headless Chromium (screenshot ``ui.png``).
2. Renders ``reports/index.html`` and the DVC plots page offline; each screenshot must not be
   blank (grey-level s.d. and colour count) and the page text must hold every model name; the
   plots page must hold one rendered Vega view per plot (JavaScript ran without network) and the
   legend of the trained and random-twin series of metrics vs generation.

``python -m brainlike.registry.browser_check --params params.yaml --out build/ui-check``
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ..validation.docs import find_chromium, render, screenshot_stats
from .store import RegistryError, Store
from .ui import mlflow_server


def render_url(url: str, screenshot: str | Path, chromium: str | None = None, timeout: float = 120) -> str:
    """Screenshot ``url`` (http or file) in headless Chromium and return the rendered DOM."""
    if not (chromium or find_chromium()):
        raise RegistryError("no chromium binary found (apt-get install chromium, or set BRAINLIKE_CHROMIUM)")
    return render(url, screenshot, chromium=chromium, timeout=timeout)


def _post(url: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _get(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=30) as r:
        return json.loads(r.read())


def api_check(url: str, experiment: str, models: Sequence[str], metrics: Sequence[str] = ()) -> dict:
    """Through the REST API: each model has a FINISHED parent run with nested runs and ``metrics``.

    Returns ``{model: {"parent": run_id, "n_subjects": n, "metrics": {...}}}``; raises
    :class:`RegistryError` listing every problem.
    """
    exp = _get(url, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="
               + urllib.request.quote(experiment, safe=""))["experiment"]
    runs: list[dict] = []
    token = None
    while True:
        body = {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}
        if token:
            body["page_token"] = token
        page = _post(url, "/api/2.0/mlflow/runs/search", body)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            break

    def tags(run: dict) -> dict:
        return {t["key"]: t["value"] for t in run["data"].get("tags", [])}

    problems, out = [], {}
    for m in models:
        parents = [r for r in runs if tags(r).get("brainlike.level") == "model" and tags(r).get("brainlike.model") == m
                   and r["info"]["status"] == "FINISHED"]
        if not parents:
            problems.append(f"{m}: no finished parent run")
            continue
        parent = max(parents, key=lambda r: tags(r).get("brainlike.last_registered", ""))
        pid = parent["info"]["run_id"]
        kids = [r for r in runs if tags(r).get("mlflow.parentRunId") == pid]
        got = {x["key"]: x["value"] for x in parent["data"].get("metrics", [])}
        missing = [k for k in metrics if k not in got]
        if not kids:
            problems.append(f"{m}: parent run {pid} has no nested subject runs")
        if missing:
            problems.append(f"{m}: parent run {pid} lacks metrics {missing}")
        out[m] = {"parent": pid, "n_subjects": len(kids), "metrics": {k: got.get(k) for k in metrics}}
    if problems:
        raise RegistryError(f"MLflow API check on {url} ({experiment!r}):\n  " + "\n  ".join(problems))
    return out


def _not_blank(name: str, png: Path, problems: list[str]) -> dict:
    stats = screenshot_stats(png)
    if stats["grey_std"] < 0.02 or stats["n_colours"] < 16:
        problems.append(f"{name}: screenshot {png} looks blank ({stats})")
    return stats


def _text(dom: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I))


def page_check(name: str, page: str | Path, out_dir: Path, models: Sequence[str], problems: list[str],
               min_vega_views: int = 0, expect_text: Sequence[str] = ()) -> dict:
    """Render a local page; check not blank, model names (and ``expect_text``) in the visible
    text, Vega views drawn."""
    png = out_dir / f"{name}.png"
    dom = render_url(str(page), png)
    (out_dir / f"{name}.dom.html").write_text(dom, encoding="utf-8")
    info = {"page": str(page), "screenshot": str(png), **_not_blank(name, png, problems)}
    text = _text(dom)
    absent = [m for m in models if m not in text]
    if absent:
        problems.append(f"{name}: page text lacks model names {absent}")
    missing = [t for t in expect_text if t not in text]
    if missing:
        problems.append(f"{name}: page text lacks {missing}")
    if min_vega_views:
        # vega-embed wraps each drawn view in a container with class "vega-embed" holding the marks
        views = len(re.findall(r'class="marks"', dom))
        info["vega_views"] = views
        if views < min_vega_views:
            problems.append(f"{name}: {views} rendered Vega views, expected {min_vega_views} (scripts not loaded?)")
    remote = re.findall(r"""<(?:script|link|img)[^>]+(?:src|href)=["'](https?://[^"']+)""", dom)
    if remote:
        problems.append(f"{name}: page loads remote resources {sorted(set(remote))}")
    return info


def browser_check(store: Store, experiment: str, models: Sequence[str], out_dir: str | Path,
                  report: str | Path | None = None, plots_page: str | Path | None = None,
                  metrics: Sequence[str] = ("heldout_r_mean", "dictionary_r2"), n_plots: int = 2) -> dict:
    """Run the whole check; write screenshots, DOM dumps and ``ui_check.json`` into ``out_dir``.

    Raises
    ------
    RegistryError
        Any failed assertion (all problems listed), or the server did not start.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    result: dict = {"experiment": experiment, "models": list(models)}
    with mlflow_server(store, log=out_dir / "mlflow-server.log") as (url, proc):
        result["server"] = {"url": url, "pid": proc.pid}
        result["api"] = api_check(url, experiment, models, metrics)
        exp_id = _get(url, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="
                      + urllib.request.quote(experiment, safe=""))["experiment"]["experiment_id"]
        png = out_dir / "ui.png"
        dom = render_url(f"{url}/#/experiments/{exp_id}/runs?workflowType=machine_learning", png)
        (out_dir / "ui.dom.html").write_text(dom, encoding="utf-8")
        result["ui"] = {"screenshot": str(png), **_not_blank("ui", png, problems)}
        absent = [m for m in models if m not in _text(dom)]
        result["ui"]["models_in_text"] = [m for m in models if m not in absent]
        if absent:
            problems.append(f"ui: experiment page text lacks model names {absent}")
    result["server"]["stopped"] = proc.poll() is not None
    if report is not None:
        result["report"] = page_check("report", report, out_dir, models, problems)
    if plots_page is not None:
        # metrics vs generation draws trained models and random twins as two series (its legend)
        result["plots"] = page_check("plots", plots_page, out_dir, models, problems, min_vega_views=n_plots,
                                     expect_text=("random twin",))
    result["problems"] = problems
    (out_dir / "ui_check.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    if problems:
        raise RegistryError("browser check failed:\n  " + "\n  ".join(problems))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from ..config import load_params
    from .compare import _default_dataset
    from .stage import experiment_name, open_project_store, repo_root_of

    ap = argparse.ArgumentParser(prog="python -m brainlike.registry.browser_check", description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--out", default="build/ui-check")
    ap.add_argument("--report", default=None, help="default: registry.report")
    ap.add_argument("--plots", default="dvc_plots/index.html", help="page written by `dvc plots show`")
    args = ap.parse_args(argv)
    params = load_params(args.params)
    root = repo_root_of(args.params)
    store, client = open_project_store(params, root)
    from .adapter import model_configs

    models = [m.name for m in model_configs(params)]
    from .stage import registry_config

    report = Path(args.report) if args.report else root / registry_config(params).report
    try:
        res = browser_check(store, experiment_name(params, _default_dataset(params)), models, args.out,
                            report=report if report.is_file() else None,
                            plots_page=args.plots if Path(args.plots).is_file() else None)
    except (RegistryError, subprocess.SubprocessError) as exc:
        print(f"ui-check: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in res.items() if k != "api"}, indent=1, default=str))
    print(f"ui-check: OK ({len(res['api'])} models through the API; screenshots in {args.out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
