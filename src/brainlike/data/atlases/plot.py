"""Quick-look figures of an atlas on the fsaverage5 inflated surface (matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._utils.reproducible import PNG_METADATA

_BACKGROUND = (0.85, 0.85, 0.85, 1.0)  # colour of label 0 (no network)


def plot_atlas(
    labels: np.ndarray,
    names: dict[int, str],
    rgba: dict[int, tuple[float, float, float, float]],
    title: str,
    out_file: str | Path,
) -> None:
    """Lateral and medial views of both hemispheres in one PNG, in the atlas' own colours.

    Parameters
    ----------
    labels : array of int, shape (20484,)
        Network id per fsaverage5 vertex, left hemisphere first; 0 = no network.
    names, rgba : dict
        Name and colour (0..1 RGBA) of each non-zero id.
    title : str
    out_file : path
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.patches as mpatches
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from nilearn import datasets, plotting

    fs5 = datasets.load_fsaverage("fsaverage5")
    sulc = datasets.fetch_surf_fsaverage("fsaverage5")
    n = len(labels) // 2
    hemi_labels = {"left": labels[:n], "right": labels[n:]}
    top = max(names)
    # One colour per integer id 0..top; values k map to bin k with vmin/vmax at half-integers.
    colours = [_BACKGROUND] + [tuple(rgba.get(i, _BACKGROUND)[:3]) + (1.0,) for i in range(1, top + 1)]
    cmap = ListedColormap(colours)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), subplot_kw={"projection": "3d"})
    for col, hemi in enumerate(("left", "right")):
        for row, view in enumerate(("lateral", "medial")):
            ax = axes[row, col]
            plotting.plot_surf_roi(
                fs5.inflated.parts[hemi],
                roi_map=hemi_labels[hemi].astype(float),
                bg_map=sulc[f"sulc_{hemi}"],
                hemi=hemi,
                view=view,
                cmap=cmap,
                vmin=-0.5,
                vmax=top + 0.5,
                colorbar=False,
                axes=ax,
                figure=fig,
            )
            ax.set_box_aspect(None, zoom=1.35)  # nilearn leaves wide margins around the mesh
            ax.set_title(f"{hemi} {view}", fontsize=10, y=0.95)
    handles = [mpatches.Patch(color=rgba[i][:3], label=f"{i} {names[i]}") for i in sorted(names)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.subplots_adjust(left=0, right=1, top=0.95, bottom=0.1, wspace=-0.05, hspace=-0.05)
    fig.savefig(out_file, dpi=90, metadata=PNG_METADATA)
    plt.close(fig)
