"""Offline GX Data Docs: vendored CDN assets, link rewriting, and a headless-Chromium check.

GX 1.24's Data Docs HTML loads Bootstrap, jQuery, bootstrap-table, Font Awesome... from CDNs
and a logo from a GX web host; offline, bootstrap-table never runs and the index renders an
empty table. :data:`ASSETS` lists every remote URL the generated pages reference (read from
the HTML GX 1.24.1 writes) with the npm package and file that serve the same bytes.

- :func:`vendor_assets` (build time, network to the npm registry only; ``tools/vendor_assets.py``)
  fetches each package with ``npm pack`` into an ignored folder (``build/vendor/``) and writes
  ``vendor.json`` with the resolved versions and integrity hashes.
- :func:`make_offline` (run time, offline) copies the needed files next to the docs
  (``static/vendor/``), rewrites the links relative to each page, points the logo at GX's own
  local copy (``static/images/logo-long.png``) and fails if any remote resource is left.
- :func:`docs_check` renders the index and a validation-result page in headless Chromium and
  asserts the results tables were built by JavaScript and the screenshots are not blank.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import BrainlikeError

VENDOR_MANIFEST = "vendor.json"
LOCAL_LOGO = "static/images/logo-long.png"  # shipped by GX inside every docs site


class OfflineDocsError(BrainlikeError):
    """Vendored assets are missing, or a docs page still needs the network or renders empty."""


@dataclass(frozen=True)
class Asset:
    """A CDN URL of the Data Docs and the npm file that serves it."""

    url: str
    spec: str  # npm package spec, exact version (or the major the URL names)
    file: str  # path inside the package; "@jsdelivr" = the package.json "jsdelivr" entry
    also: tuple[str, ...] = ()  # sibling folders the file needs (e.g. web fonts)


ASSETS: tuple[Asset, ...] = (
    Asset("https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css", "bootstrap@4.3.1", "dist/css/bootstrap.min.css"),
    Asset("https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js", "bootstrap@4.3.1", "dist/js/bootstrap.min.js"),
    Asset("https://code.jquery.com/jquery-3.7.1.min.js", "jquery@3.7.1", "dist/jquery.min.js"),
    Asset("https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js", "popper.js@1.12.9", "dist/umd/popper.min.js"),
    Asset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css", "bootstrap-table@1.19.1", "dist/bootstrap-table.min.css"),
    Asset("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js", "bootstrap-table@1.19.1", "dist/bootstrap-table.min.js"),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        "bootstrap-table@1.19.1",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    # GX asks for the filter-control css at 1.19.0 (min on the index, plain on result pages)
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    Asset(
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
        "bootstrap-table@1.19.0",
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
        "bootstrap-datepicker@1.9.0",
        "dist/css/bootstrap-datepicker.min.css",
    ),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
        "bootstrap-datepicker@1.9.0",
        "dist/js/bootstrap-datepicker.min.js",
    ),
    Asset(
        "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css",
        "@fortawesome/fontawesome-free@6.6.0",
        "css/all.min.css",
        also=("webfonts",),  # all.min.css loads ../webfonts/*
    ),
    Asset(
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
        "@forevolve/bootstrap-dark@1.1.0",
        "dist/css/bootstrap-prefers-dark.css",
    ),
    # jsdelivr serves a package's "jsdelivr" entry for a bare /npm/<name>@<major> URL
    Asset("https://cdn.jsdelivr.net/npm/vega@5", "vega@5", "@jsdelivr"),
    Asset("https://cdn.jsdelivr.net/npm/vega-lite@5", "vega-lite@5", "@jsdelivr"),
    Asset("https://cdn.jsdelivr.net/npm/vega-embed@6", "vega-embed@6", "@jsdelivr"),
)

# the GX logo: an <img> on every page (with a ?d= cache buster) and a css background
_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[A-Za-z0-9_-]+\.png(\?[^\"')\s]*)?")
# remote *resources* (what a browser would fetch); plain <a href> links are not fetched
_REMOTE_RESOURCE = re.compile(
    r"""(?:<script[^>]*\ssrc=|<link[^>]*\shref=|<img[^>]*\ssrc=|url\()\s*["']?(https?://[^"')\s>]+)""", re.I
)


def _spec_dir(spec: str) -> str:
    return spec.replace("/", "__")


def vendor_assets(dest: str | Path, npm: str = "npm") -> dict:
    """Fetch every package of :data:`ASSETS` from the npm registry into ``dest``.

    Uses ``npm pack`` (the published tarball only: no install scripts, no dependency
    resolution, so two versions of one package can live side by side). Each package is
    unpacked to ``dest/<spec>/``; ``dest/vendor.json`` records the resolved version and the
    registry's integrity hash of each. Idempotent: specs already present are kept.

    Returns the manifest (spec -> {name, version, integrity, folder}).
    """
    dest = Path(dest).resolve()  # npm runs with cwd=tmp: relative paths would point inside it
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / VENDOR_MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    todo = sorted({a.spec for a in ASSETS if a.spec not in manifest or not (dest / manifest[a.spec]["folder"]).is_dir()})
    if todo:
        with tempfile.TemporaryDirectory(dir=dest) as tmp:
            try:
                proc = subprocess.run(
                    [npm, "pack", *todo, "--json", "--pack-destination", tmp],
                    cwd=tmp, capture_output=True, text=True, check=True,
                    env=os.environ | {"npm_config_update_notifier": "false", "npm_config_fund": "false"},
                )
            except FileNotFoundError:
                raise OfflineDocsError(f"`{npm}` not found: install Node.js/npm to vendor the Data Docs assets") from None
            except subprocess.CalledProcessError as exc:
                raise OfflineDocsError(f"npm pack {' '.join(todo)} failed:\n{exc.stderr.strip()[-2000:]}") from None
            packed = json.loads(proc.stdout)
            for spec, info in zip(todo, packed, strict=True):
                if info["name"] != spec.rsplit("@", 1)[0]:  # npm answers in request order
                    raise OfflineDocsError(f"npm pack returned {info['id']} for {spec}")
                folder = dest / _spec_dir(spec)
                shutil.rmtree(folder, ignore_errors=True)
                with tarfile.open(Path(tmp) / info["filename"]) as tar:
                    _extract_data(tar, Path(tmp) / "x" / _spec_dir(spec))
                os.replace(Path(tmp) / "x" / _spec_dir(spec) / "package", folder)
                manifest[spec] = {"name": info["name"], "version": info["version"], "integrity": info["integrity"],
                                  "folder": folder.name}
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    missing = [f"{a.spec}:{a.file}" for a in ASSETS if not _asset_source(dest, manifest, a).is_file()]
    if missing:
        raise OfflineDocsError(f"{dest}: vendored packages lack {missing}")
    return manifest


def _extract_data(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract plain files and folders only, inside ``dest`` (tarfile's 'data' filter; Python
    3.11 before 3.11.4, e.g. Debian 12's, lacks it, so the same rule is applied by hand)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if not (m.isfile() or m.isdir()) or Path(m.name).is_absolute() or ".." in parts:
            raise OfflineDocsError(f"{tar.name}: refusing archive member {m.name!r} (not a plain file inside the package)")
    tar.extractall(dest)


def _asset_source(vendor: Path, manifest: dict, asset: Asset) -> Path:
    pkg = vendor / manifest[asset.spec]["folder"]
    rel = asset.file
    if rel == "@jsdelivr":
        info = json.loads((pkg / "package.json").read_text())
        rel = info.get("jsdelivr") or info.get("unpkg") or info.get("browser") or info["main"]
        rel = rel.removeprefix("./")
    return pkg / rel


def make_offline(docs_dir: str | Path, vendor_dir: str | Path) -> dict:
    """Make a Data Docs site render without network.

    Copies the vendored files that :data:`ASSETS` maps into ``docs_dir/static/vendor/`` and
    rewrites every page's CDN links (and the remote GX logo) to relative local paths.

    Raises
    ------
    OfflineDocsError
        The vendor folder is missing or incomplete (run ``tools/vendor_assets.py``), or a
        page still references a remote resource this module does not know (a GX upgrade).

    Returns
    -------
    dict
        ``{"pages": n, "assets": {url: local path}, "versions": {spec: version}}``.
    """
    docs_dir, vendor_dir = Path(docs_dir), Path(vendor_dir)
    manifest_path = vendor_dir / VENDOR_MANIFEST
    if not manifest_path.is_file():
        raise OfflineDocsError(
            f"{manifest_path}: vendored Data Docs assets not found; run `python tools/vendor_assets.py` "
            "(npm registry access, once, at build time)"
        )
    manifest = json.loads(manifest_path.read_text())
    target_root = docs_dir / "static" / "vendor"
    local: dict[str, str] = {}
    for a in ASSETS:
        if a.spec not in manifest:
            raise OfflineDocsError(f"{manifest_path}: {a.spec} not vendored; rerun tools/vendor_assets.py")
        src = _asset_source(vendor_dir, manifest, a)
        if not src.is_file():
            raise OfflineDocsError(f"{src}: vendored file missing; rerun tools/vendor_assets.py")
        pkg = vendor_dir / manifest[a.spec]["folder"]
        rel = src.relative_to(pkg)
        out_pkg = target_root / f"{_spec_dir(a.spec)}"
        (out_pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out_pkg / rel)
        for extra in a.also:
            if not (out_pkg / extra).exists():
                shutil.copytree(pkg / extra, out_pkg / extra)
        local[a.url] = (out_pkg / rel).relative_to(docs_dir).as_posix()
    pages = sorted(docs_dir.rglob("*.html"))
    leftovers: dict[str, set[str]] = {}
    for page in pages:
        up = "../" * (len(page.relative_to(docs_dir).parts) - 1)
        html = page.read_text(encoding="utf-8")
        # longest URLs first so a bare "vega@5" never eats the start of another URL
        for url in sorted(local, key=len, reverse=True):
            html = re.sub(re.escape(url) + r'(?=["\'\s>)])', up + local[url], html)
        html = _LOGO.sub(up + LOCAL_LOGO, html)
        remote = set(_REMOTE_RESOURCE.findall(html))
        if remote:
            leftovers[str(page.relative_to(docs_dir))] = remote
        page.write_text(html, encoding="utf-8")
    if leftovers:
        raise OfflineDocsError(f"{docs_dir}: pages still load remote resources (new GX assets?): {leftovers}")
    return {
        "pages": len(pages),
        "assets": local,
        "versions": {s: m["version"] for s, m in sorted(manifest.items())},
    }


# -- headless Chromium check ----------------------------------------------------------------
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--virtual-time-budget=20000",
    "--window-size=1400,1000",
)


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary (``BRAINLIKE_CHROMIUM`` overrides), or None."""
    env = os.environ.get("BRAINLIKE_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render(page: str | Path, screenshot: str | Path, chromium: str | None = None, timeout: float = 120) -> str:
    """Render ``page`` (a file, or an http/file URL) in headless Chromium: write a PNG
    screenshot, return the rendered DOM."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise OfflineDocsError("no chromium binary found (apt-get install chromium, or set BRAINLIKE_CHROMIUM)")
    url = str(page) if "://" in str(page) else Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
        subprocess.run([*base, f"--screenshot={Path(screenshot).resolve()}", url],
                       capture_output=True, text=True, timeout=timeout, check=True)
        dom = subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=timeout, check=True)
    return dom.stdout


def screenshot_stats(png: str | Path) -> dict:
    """Pixel statistics of a screenshot: s.d. of the grey levels and the number of colours."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(str(png))[..., :3]
    grey = img.mean(axis=2)
    colours = np.unique((img * 255).astype(np.uint8).reshape(-1, 3), axis=0).shape[0]
    return {"shape": list(img.shape[:2]), "grey_std": float(grey.std()), "n_colours": int(colours),
            "dark_fraction": float((grey < 0.5).mean())}


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


def docs_check(docs_dir: str | Path, out_dir: str | Path, chromium: str | None = None) -> dict:
    """Render the Data Docs index and one validation-result page headless; assert they are real.

    Checks on the rendered DOM (after JavaScript ran, network disabled by the page having
    no remote resources): the index's validation-results table was filled by bootstrap-table
    (rows ``data-index=...``) and links the result pages; the result page holds the GX
    expectation-results table with one row per expectation (``bootstrap-table`` wrapper built,
    Font Awesome status icons present). Screenshots must not be blank (grey-level s.d. and
    colour count above a blank page's).

    Returns a dict of what was measured; raises :class:`OfflineDocsError` on any failed check.
    """
    docs_dir, out_dir = Path(docs_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = docs_dir / "index.html"
    results = sorted((docs_dir / "validations").rglob("*.html")) if (docs_dir / "validations").is_dir() else []
    if not index.is_file() or not results:
        raise OfflineDocsError(f"{docs_dir}: no index.html or no validation result page to check")
    # prefer the biggest page with failures (most to render), else the biggest
    page = max(results, key=lambda p: ("fa-times" in (t := p.read_text(encoding="utf-8")), len(t)))
    problems: list[str] = []
    report: dict = {"index": str(index), "result_page": str(page)}
    for name, html_page in (("index", index), ("result", page)):
        png = out_dir / f"{name}.png"
        dom = render(html_page, png, chromium)
        (out_dir / f"{name}.dom.html").write_text(dom, encoding="utf-8")
        stats = screenshot_stats(png)
        info = {"screenshot": str(png), **stats, "dom_chars": len(dom),
                "bootstrap_tables": _count(r'class="bootstrap-table', dom),
                "table_rows_js": _count(r'<tr[^>]*data-index="\d+"', dom)}
        if stats["grey_std"] < 0.02 or stats["n_colours"] < 16:
            problems.append(f"{name}: screenshot {png} looks blank ({stats})")
        if info["bootstrap_tables"] == 0:
            problems.append(f"{name}: bootstrap-table did not run (no 'bootstrap-table' wrapper in the DOM)")
        if name == "index":
            links = _count(r'href="validations/[^"]+\.html"', dom)
            info["result_links"] = links
            if info["table_rows_js"] == 0 or links == 0:
                problems.append(f"index: validation-results table is empty (rows {info['table_rows_js']}, links {links})")
        else:
            # rows that bootstrap-table built, each starting with a pass/fail status icon
            exp_rows = sum(
                1 for row in dom.split("<tr")[1:]
                if re.match(r'[^>]*data-index="\d+"', row) and re.search(r'<i class="fas fa-(?:check|times)\b', row.split("</tr>")[0])
            )
            info["expectation_rows"] = exp_rows
            icons_css = "fontawesome" in dom or "all.min.css" in dom
            if exp_rows == 0:
                problems.append("result: no expectation rows with a status icon in the results table")
            if not icons_css:
                problems.append("result: Font Awesome stylesheet not linked")
        report[name] = info
    (out_dir / "docs_check.json").write_text(json.dumps(report, indent=2) + "\n")
    if problems:
        raise OfflineDocsError("Data Docs offline check failed:\n  " + "\n  ".join(problems))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m brainlike.validation.docs DOCS_DIR [OUT_DIR]``: the offline render check."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m brainlike.validation.docs DOCS_DIR [OUT_DIR]  (screenshots + DOM dumps in OUT_DIR)")
        return 0 if argv else 2
    out = Path(argv[1]) if len(argv) > 1 else Path("build/docs-check")
    try:
        report = docs_check(argv[0], out)
    except (OfflineDocsError, subprocess.SubprocessError) as exc:
        print(f"docs-check: {exc}", file=sys.stderr)
        return 1
    for name in ("index", "result"):
        info = report[name]
        print(f"{name}: {info['screenshot']} grey s.d. {info['grey_std']:.3f}, {info['n_colours']} colours, "
              f"{info['table_rows_js']} table rows built by bootstrap-table")
    print(f"docs-check: OK ({report['result']['expectation_rows']} expectation rows on {report['result_page']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
