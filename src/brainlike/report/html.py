"""``reports/index.html``: one self-contained page (PNG figures embedded as base64, inline CSS,
no script and no remote resource) built from arrays and tables, so it is testable without the
pipeline.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils.atomic import write_text_atomic
from .._utils.memo import Memo
from .figures import layer_histogram_png, link_heatmap_png, surface_png

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;background:#fff}
h1{font-size:1.6em}h2{border-bottom:2px solid #4a6fa5;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}
th{background:#e8eef7}td:first-child,th:first-child{text-align:left}
img{max-width:100%;display:block;margin:.4em 0}.note{color:#666;font-size:.85em}
.grid{display:flex;flex-wrap:wrap;gap:1em}.grid figure{margin:0}figcaption{font-size:.85em}
"""


@dataclass
class ModelReport:
    """What the report shows for one model.

    Attributes
    ----------
    name, generation : str
    trained : bool
    zmaps : array of shape (n_atoms, 20484), optional
        Group atom maps on fsaverage5.
    links : DataFrame, optional
        Link table: atom, sign, atlas, network, dice, p, linked.
    layer_counts : array of shape (n_atoms, n_layers), optional
        ANs of each sub-group per layer.
    max_maps : int
        Surface maps drawn (linked atoms by best Dice first).
    """

    name: str
    generation: str = ""
    trained: bool = True
    zmaps: np.ndarray | None = None
    links: pd.DataFrame | None = None
    layer_counts: np.ndarray | None = None
    max_maps: int = 6
    notes: list[str] = field(default_factory=list)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def linked_atoms(links: pd.DataFrame) -> list[tuple[int, str, str]]:
    """``(atom, sign, 'atlas/network')`` of linked maps, best Dice first, one entry per atom."""
    if links is None or links.empty or "linked" not in links:
        return []
    hit = links[links["linked"].astype(bool)].sort_values("dice", ascending=False)
    out, seen = [], set()
    for r in hit.itertuples():
        if r.atom not in seen:
            seen.add(r.atom)
            out.append((int(r.atom), str(r.sign), f"{r.atlas}/{r.network}"))
    return out


def _model_section(m: ModelReport) -> str:
    kind = "trained" if m.trained else "random init"
    parts = [f'<h2 id="{html.escape(m.name)}">{html.escape(m.name)} '
             f'<small>({html.escape(m.generation)}, {kind})</small></h2>']
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in m.notes]
    links = linked_atoms(m.links) if m.links is not None else []
    if m.zmaps is not None and links:
        figs = []
        for atom, sign, net in links[: m.max_maps]:
            png = surface_png(m.zmaps[atom], title=f"{m.name} atom {atom} ({sign}) -> {net}")
            figs.append(f"<figure>{_img(png, f'{m.name} atom {atom}')}<figcaption>atom {atom}, {sign}, "
                        f"linked to {html.escape(net)}</figcaption></figure>")
        parts.append("<h3>Linked atoms on the inflated fsaverage5</h3><div class=grid>" + "".join(figs) + "</div>")
    elif m.zmaps is not None:
        parts.append('<p class="note">No atom of this model is linked to a network.</p>')
    if m.links is not None and not m.links.empty:
        parts.append("<h3>Network-link matrix</h3>" + _img(link_heatmap_png(m.links, f"{m.name}: Dice"), f"{m.name} links"))
    if m.layer_counts is not None:
        counts = np.asarray(m.layer_counts)
        rows = [a for a, _, _ in links] or list(range(min(8, counts.shape[0])))
        parts.append("<h3>Layer histograms of the sub-groups</h3>" + _img(
            layer_histogram_png(counts[rows], [f"atom {a}" for a in rows], f"{m.name}: sub-groups over layers"),
            f"{m.name} layers"))
    return "\n".join(parts)


def _table(df: pd.DataFrame) -> str:
    show = df.drop(columns=["run_id"], errors="ignore").copy()
    if "trained" in show:
        show["trained"] = show["trained"].map({True: "trained", False: "random"})
    return show.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-", border=0, escape=True)


def build_report(models: Sequence[ModelReport], compare: pd.DataFrame | None, out: str | Path,
                 title: str = "brainlike report", compute=None) -> Path:
    """Write the self-contained report; returns its path (written atomically).

    ``compute`` (ComputeConfig or Executor): where the models' sections (their figures, most of
    the time) are drawn, one task per model; the page is the same for every choice. A section
    drawn before from the same :class:`ModelReport` is taken from the memo (``build/memo``), so
    adding a model draws that model's figures only.
    """
    out = Path(out)
    body = [f"<h1>{html.escape(title)}</h1>"]
    body.append("<p>Models: " + ", ".join(f'<a href="#{html.escape(m.name)}">{html.escape(m.name)}</a>' for m in models) + "</p>")
    if compare is not None and not compare.empty:
        body.append("<h2>Comparison across generations</h2>" + _table(compare))
    memo = Memo("report-section")
    body += memo.map([memo.key(m) for m in models], _model_section, list(models), compute, key_prefix="report")
    page = (f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    write_text_atomic(out, page)
    return out
