"""The offline DVC plots page: ``.dvc/plots_template.html`` and the custom Vega-Lite templates.

``dvc plots show`` fills the HTML template's ``{plot_divs}``; the template loads vega, vega-lite
and vega-embed from ``build/vendor/`` (vendored from the npm registry by
``tools/vendor_assets.py``) instead of DVC's CDN scripts. :func:`check_plots_template` verifies
that every script the template names resolves to a vendored file from the page's folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError

PLOTS_TEMPLATE = Path(".dvc/plots_template.html")  # relative to the repository root
VEGA_TEMPLATES = Path(__file__).parent / "vega"
SCATTER_TEMPLATE = VEGA_TEMPLATES / "model_scatter.json"
GENERATION_TEMPLATE = VEGA_TEMPLATES / "metrics_vs_generation.json"
_SCRIPT = re.compile(r"""<script[^>]*\ssrc=["']([^"']+)["']""", re.I)


def check_plots_template(template: str | Path, page_dir: str | Path) -> list[Path]:
    """Scripts of ``template`` resolved from ``page_dir`` (where ``dvc plots show`` writes).

    Raises
    ------
    DataError
        The template lacks ``{plot_divs}``, keeps DVC's ``{scripts}`` (CDN), loads a remote
        script, or names a script that does not exist (run ``make setup``).
    """
    template = Path(template)
    text = template.read_text(encoding="utf-8")
    if "{plot_divs}" not in text:
        raise DataError(template, "DVC html template must contain {plot_divs}")
    if "{scripts}" in text:
        raise DataError(template, "{scripts} would insert DVC's CDN <script> tags; load the vendored files instead")
    scripts = _SCRIPT.findall(text)
    if len(scripts) < 3:
        raise DataError(template, f"expected vega, vega-lite and vega-embed scripts, found {scripts}")
    out = []
    for src in scripts:
        if re.match(r"https?://", src):
            raise DataError(template, f"remote script {src}: the page must display with no network")
        path = (Path(page_dir) / src).resolve()
        if not path.is_file():
            raise DataError(template, f"script {src} not found at {path}; run `make setup` (tools/vendor_assets.py)")
        out.append(path)
    return out
