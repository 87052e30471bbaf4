"""Report: figures are real PNGs with content; the page is self-contained and names every model."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
import pytest

from brainlike.report import ModelReport, build_report, check_plots_template, linked_atoms
from brainlike.report.figures import layer_histogram_png, link_heatmap_png, surface_png
from brainlike.errors import DataError


def _grey_std(png: bytes) -> float:
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    return float(img.mean(axis=2).std())


def _links(model: str) -> pd.DataFrame:
    return pd.DataFrame({
        "model": model, "atom": [0, 0, 2, 3], "sign": ["pos", "neg", "pos", "pos"], "atlas": "yeo7",
        "network": ["Visual", "Default", "Default", "Visual"], "dice": [0.2, 0.5, 0.35, 0.05],
        "p": [0.01, 0.001, 0.01, 0.6], "linked": [True, True, True, False],
    })


def test_linked_atoms_best_dice_first_one_per_atom():
    assert linked_atoms(_links("m")) == [(0, "neg", "yeo7/Default"), (2, "pos", "yeo7/Default")]
    assert linked_atoms(pd.DataFrame(columns=["atom", "sign", "dice", "linked"])) == []


def test_surface_png_shows_the_map():
    z = np.zeros(20484)
    z[:3000] = 4.0  # a blob on the left hemisphere
    png = surface_png(z, "blob", threshold=1.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and _grey_std(png) > 0.02
    with pytest.raises(ValueError, match="20484"):
        surface_png(np.zeros(100))


def test_heatmap_and_histograms():
    assert _grey_std(link_heatmap_png(_links("m"))) > 0.02
    assert _grey_std(layer_histogram_png(np.array([[5, 1, 0], [0, 2, 9]]))) > 0.02
    with pytest.raises(ValueError):
        layer_histogram_png(np.ones(3))


def test_report_is_self_contained(tmp_path):
    rng = np.random.default_rng(0)
    compare = pd.DataFrame({"model": ["alpha-enc", "beta-dec"], "generation": ["g1", "g2"], "generation_order": [1, 2],
                            "trained": [True, False], "run_id": ["RUNID-ONE", "RUNID-TWO"], "diversity": [0.5, np.nan]})
    models = [ModelReport(n, g, t, zmaps=rng.standard_normal((4, 20484)) * 3, links=_links(n),
                          layer_counts=rng.integers(0, 9, (4, 6)), max_maps=1)
              for n, g, t in (("alpha-enc", "g1", True), ("beta-dec", "g2", False))]
    models.append(ModelReport("gamma-nolinks", "g2", zmaps=np.zeros((2, 20484)), links=None))
    out = build_report(models, compare, tmp_path / "reports" / "index.html")
    html = out.read_text()
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "<script" not in html
    for name in ("alpha-enc", "beta-dec", "gamma-nolinks"):
        assert f'id="{name}"' in html
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == 2 * 3  # per linked model: 1 surface map, heatmap, layer histogram
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in imgs)
    assert "random" in html and "RUNID-ONE" not in html  # run ids left out of the table
    assert "No atom of this model is linked" in html
    assert list(tmp_path.glob("reports/.*")) == []  # atomic write left no temporary


def test_plots_template_checks(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    tpl = repo / ".dvc" / "plots_template.html"
    text = tpl.read_text()
    assert "{plot_divs}" in text and "{scripts}" not in text and "cdn." not in text
    vendor = repo / "build" / "vendor"
    if (vendor / "vendor.json").is_file():
        scripts = check_plots_template(tpl, repo / "dvc_plots")
        assert [p.name for p in scripts] == ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"]
    bad = tmp_path / "t.html"
    bad.write_text('<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>' * 3 + "{plot_divs}")
    with pytest.raises(DataError, match="remote script"):
        check_plots_template(bad, tmp_path)
    bad.write_text("{scripts}{plot_divs}")
    with pytest.raises(DataError, match="CDN"):
        check_plots_template(bad, tmp_path)


def test_report_from_stage_outputs(tmp_path):
    """report_from_outputs on the real layout: primary stimulus from organization.json, links of
    (model, stimulus), layer histogram from layer_hist.parquet, a never-encoded model noted."""
    import json
    from types import SimpleNamespace

    from brainlike.config import ModelConfig, parse_params
    from brainlike.report.stage import layer_counts, report_from_outputs

    rng = np.random.default_rng(3)
    stim = "embedded_task-movie"
    enc = tmp_path / "data/encoding/vlm-x" / stim
    enc.mkdir(parents=True)
    np.savez(enc / "group.npz", z=(rng.standard_normal((3, 20484)) * 3).astype(np.float32))
    pat = tmp_path / "data/patterns/vlm-x" / stim
    pat.mkdir(parents=True)
    hist = pd.DataFrame({"atom": [0, 0, 1, 2], "tower": ["text", "vision", "vision", "text"], "layer": [0, 1, 1, 0],
                         "n_ans": [5, 7, 2, 4]})
    hist.to_parquet(pat / "layer_hist.parquet")
    counts, labels = layer_counts(hist)
    assert labels == ["text:0", "vision:1"] and counts.tolist() == [[5, 7], [0, 2], [4, 0]]
    (tmp_path / "data/networks/vlm-x").mkdir(parents=True)
    links = _links("vlm-x").assign(stimulus=stim)
    pd.concat([links, links.assign(stimulus="embedded_task-story", dice=0.9)]).to_parquet(
        tmp_path / "data/networks/vlm-x/links.parquet")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics/organization.json").write_text(json.dumps({"models": {"vlm-x": {"stimulus": stim}}}))
    models = {n: ModelConfig(name=n, generation="vlm-2021", generation_order=3, source="builtin:clip-vit-b32",
                             trained=False) for n in ("vlm-x", "never-run")}
    params = SimpleNamespace(**(dict(parse_params({})) | {"models": models}))
    out = report_from_outputs(params, tmp_path)
    html = out.read_text()
    assert out == tmp_path / "reports/index.html"
    assert f"stimulus {stim}" in html and "never-run" in html and "model not encoded" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2 + 2  # linked atoms 0, 2 + heatmap + layers
    assert "no comparison table" in html


def test_report_draws_only_the_sections_that_changed(tmp_path, monkeypatch):
    """A section drawn before from the same ModelReport comes from the memo; the page is the same
    bytes as one drawn without the memo."""
    monkeypatch.setenv("BRAINLIKE_BUILD", str(tmp_path / "build"))
    rng = np.random.default_rng(1)

    def model(name, links):
        return ModelReport(name, "g1", True, zmaps=rng.standard_normal((4, 20484)) * 3, links=links,
                           layer_counts=np.arange(24).reshape(4, 6), max_maps=1)

    a, b = model("alpha", _links("alpha")), model("beta", _links("beta"))
    build_report([a, b], None, tmp_path / "one.html")
    memo = tmp_path / "build" / "memo"
    assert len(list(memo.glob("*/report-section/*.pkl"))) == 2
    b2 = ModelReport(**{**b.__dict__, "links": _links("beta").assign(dice=[0.3, 0.5, 0.35, 0.05])})
    c = model("gamma", _links("gamma"))
    page = build_report([a, b2, c], None, tmp_path / "two.html").read_text()
    assert len(list(memo.glob("*/report-section/*.pkl"))) == 4  # beta changed and gamma is new: two sections drawn
    monkeypatch.setenv("BRAINLIKE_MEMO", "0")
    assert build_report([a, b2, c], None, tmp_path / "fresh.html").read_text() == page
