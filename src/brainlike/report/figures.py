"""Figures of the report, each returned as PNG bytes (matplotlib Agg; nothing written to disk).

- :func:`surface_png`: one atom's z-map on the inflated fsaverage5 (left/right, lateral/medial),
  nilearn ``plot_surf_stat_map`` with the sulcal depth as background;
- :func:`link_heatmap_png`: Dice of every atom-sign map with every network, linked cells boxed;
- :func:`layer_histogram_png`: share of each sub-group's ANs per layer.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from .._utils.reproducible import PNG_METADATA

N_HEMI = 10242


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(fig)
    return buf.getvalue()


@lru_cache(maxsize=1)
def _fsaverage5():
    """(inflated meshes {hemi: (coords, faces)}, sulcal depth {hemi: (10242,)}) shipped with nilearn."""
    from nilearn import datasets

    fs = datasets.load_fsaverage("fsaverage5")
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal")
    meshes = {h: (fs["inflated"].parts[h].coordinates, fs["inflated"].parts[h].faces) for h in ("left", "right")}
    bg = {h: np.asarray(sulc.data.parts[h]).ravel() for h in ("left", "right")}
    return meshes, bg


def surface_png(zmap: np.ndarray, title: str = "", threshold: float | None = None, vmax: float | None = None,
                dpi: int = 70) -> bytes:
    """One atom map on the inflated fsaverage5.

    Parameters
    ----------
    zmap : array of shape (20484,)
        Left hemisphere vertices first.
    threshold : float, optional
        Values with ``|z| < threshold`` are not coloured (default: none).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from nilearn import plotting

    z = np.asarray(zmap, dtype=float)
    if z.shape != (2 * N_HEMI,):
        raise ValueError(f"zmap must have shape ({2 * N_HEMI},), got {z.shape}")
    meshes, bg = _fsaverage5()
    vmax = float(vmax or np.nanmax(np.abs(z)) or 1.0)
    fig, axes = plt.subplots(1, 4, subplot_kw={"projection": "3d"}, figsize=(10, 2.6), dpi=dpi)
    panels = [("left", "lateral"), ("left", "medial"), ("right", "medial"), ("right", "lateral")]
    for ax, (hemi, view) in zip(axes, panels):
        data = z[:N_HEMI] if hemi == "left" else z[N_HEMI:]
        plotting.plot_surf_stat_map(meshes[hemi], data, hemi=hemi, view=view, bg_map=bg[hemi], axes=ax,
                                    figure=fig, colorbar=False, threshold=threshold, vmax=vmax, cmap="RdBu_r")
    fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(wspace=0, left=0, right=1, bottom=0, top=0.9)
    return _png(fig)


def link_heatmap_png(links: pd.DataFrame, title: str = "", dpi: int = 80) -> bytes:
    """Heatmap of Dice, rows ``atom sign``, columns ``atlas/network``; linked cells outlined.

    Parameters
    ----------
    links : DataFrame with columns atom, sign, atlas, network, dice, linked
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    df = links.assign(row=links["atom"].astype(str) + " " + links["sign"].astype(str),
                      col=links["atlas"].astype(str) + "/" + links["network"].astype(str))
    dice = df.pivot_table(index="row", columns="col", values="dice", aggfunc="max")
    linked = df.pivot_table(index="row", columns="col", values="linked", aggfunc="max").reindex_like(dice)
    h = max(2.5, 0.22 * dice.shape[0] + 1.5)
    w = max(4.0, 0.25 * dice.shape[1] + 2.5)
    fig, ax = plt.subplots(figsize=(w, h), dpi=dpi)
    im = ax.imshow(dice.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0,
                   vmax=max(0.05, float(np.nanmax(dice.to_numpy(dtype=float)))))
    for i, j in zip(*np.nonzero(linked.fillna(False).to_numpy(dtype=bool))):
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    ax.set_xticks(range(dice.shape[1]), dice.columns, rotation=90, fontsize=6)
    ax.set_yticks(range(dice.shape[0]), dice.index, fontsize=6)
    ax.set_title(title or "Dice of atom maps with networks (red: linked)", fontsize=9)
    fig.colorbar(im, ax=ax, label="Dice", shrink=0.8)
    return _png(fig)


def layer_histogram_png(counts: np.ndarray, atom_labels: Sequence[str] | None = None, title: str = "",
                        dpi: int = 80) -> bytes:
    """Each sub-group's distribution over layers (one line per atom, share of its ANs).

    Parameters
    ----------
    counts : array of shape (n_atoms, n_layers)
        Number of ANs of each sub-group in each layer.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    c = np.asarray(counts, dtype=float)
    if c.ndim != 2:
        raise ValueError(f"counts must have shape (n_atoms, n_layers), got {c.shape}")
    share = c / np.maximum(c.sum(axis=1, keepdims=True), 1)
    labels = list(atom_labels) if atom_labels is not None else [f"atom {k}" for k in range(c.shape[0])]
    fig, ax = plt.subplots(figsize=(6, 3), dpi=dpi)
    layers = np.arange(c.shape[1])
    for k in range(c.shape[0]):
        ax.plot(layers, share[k], marker="o", ms=3, lw=1, label=labels[k])
    ax.set_xlabel("layer")
    ax.set_ylabel("share of the sub-group's ANs")
    ax.set_xticks(layers)
    ax.set_title(title or "Layer distribution of the sub-groups", fontsize=9)
    if c.shape[0] <= 12:
        ax.legend(fontsize=6, ncol=2)
    return _png(fig)
