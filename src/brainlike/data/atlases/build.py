"""Build the atlas folder (``dvc repro atlases``): networks on fsaverage5 + Seitzman ROIs.

Layout of ``out_dir``::

    networks.parquet    vertex (0..20483), hemi ('L'/'R'), one int16 column per atlas
    networks.json       per atlas: labels, rgba, source, n_vertices_per_network, resampling QA
    seitzman2018.parquet  roi, x, y, z (MNI mm), network, region, radius_mm, source_radius_mm
    <atlas>.png         lateral + medial views of both hemispheres

fsaverage5 vertices take the label of their nearest fs_LR 32k vertex on the registered
sphere; fs_LR vertices outside the cortical grayordinates (medial wall) carry label 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..._utils.atomic import atomic_path
from ..._utils.reproducible import portable_path, portable_paths
from ...errors import ConfigError
from . import sources
from .resample import nearest_on_sphere, resample_labels

N_VERTICES = 2 * sources.N_FSAVERAGE5


def fsaverage5_index() -> tuple[dict[str, np.ndarray], dict]:
    """fs_LR 32k vertex nearest to each fsaverage5 vertex on the registered sphere.

    Returns
    -------
    index : dict
        ``{'L': array (10242,), 'R': array (10242,)}`` of fs_LR 32k vertex indices.
    qa : dict
        Files used, the sphere distance (degrees) and the anatomical check: median distance
        (mm) between each fsaverage5 mid-cortical vertex (mean of pial and white) and the HCP
        S1200 midthickness position of its matched fs_LR vertex. A correct registration gives a
        few mm; an unregistered or mirrored one tens of mm.
    """
    pial, white = sources.fsaverage5_coords("pial"), sources.fsaverage5_coords("white")
    index, qa = {}, {"method": "nearest neighbour on the fs_LR-registered sphere", "files": {}}
    for h in sources.HEMIS:
        fslr, fsa5, files = sources.registration_spheres(h)
        idx, angle = nearest_on_sphere(fslr, fsa5)
        index[h] = idx
        mid = (pial[h] + white[h]) / 2.0
        dist = np.linalg.norm(mid - sources.fslr_midthickness(h)[idx], axis=1)
        qa["files"][h] = portable_paths(files)  # package-relative: no machine path in the output
        qa[f"median_sphere_distance_deg_{h}"] = round(float(np.median(angle)), 4)
        qa[f"median_anatomical_distance_mm_{h}"] = round(float(np.median(dist)), 3)
    return index, qa


def resample_atlas(src: sources.SourceAtlas, index: dict[str, np.ndarray]) -> np.ndarray:
    """Labels of ``src`` on fsaverage5, shape (20484,) int16, left hemisphere first."""
    return np.concatenate([resample_labels(src.hemi(h), index[h]) for h in sources.HEMIS])


def _summary(labels: np.ndarray, src: sources.SourceAtlas, qa: dict) -> dict:
    n = sources.N_FSAVERAGE5
    per = {
        src.names[i]: {"L": int((labels[:n] == i).sum()), "R": int((labels[n:] == i).sum())}
        for i in sorted(src.names)
    }
    return {
        "labels": {str(i): src.names[i] for i in sorted(src.names)},
        "rgba": {str(i): [round(c, 6) for c in src.rgba[i]] for i in sorted(src.names)},
        "background_id": 0,
        "source": sources.ATLAS_REFERENCES[src.name] + f"; file {portable_path(src.source)}",
        "n_vertices_per_network": per,
        "fraction_labelled": round(float((labels != 0).mean()), 6),
        "resampling": qa,
    }


def build_atlases(
    names: Sequence[str], out_dir: str | Path, seitzman_radius_mm: float, plots: bool = True
) -> dict:
    """Resample the network atlases onto fsaverage5 and write the atlas folder atomically.

    Parameters
    ----------
    names : sequence of {'yeo7', 'yeo17', 'cole_anticevic12'}
        Atlases to build (``params.yaml`` ``atlases.names``).
    out_dir : path
        Folder to (re)create; replaced in one rename, or left untouched on error.
    seitzman_radius_mm : float
        Sphere radius of the Seitzman-2018 ROIs (``atlases.seitzman_radius_mm``).
    plots : bool, default=True
        Write ``<atlas>.png`` (the slow part).

    Returns
    -------
    dict
        ``networks.json``'s content plus ``seconds`` (wall time per step).
    """
    names = list(names)
    bad = [n for n in names if n not in sources.ATLAS_FILES]
    if bad or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"atlases.names = {names}: expected distinct names among {sorted(sources.ATLAS_FILES)}"
        )
    if not seitzman_radius_mm > 0:
        raise ConfigError(f"atlases.seitzman_radius_mm = {seitzman_radius_mm}: must be > 0")
    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    index, qa = fsaverage5_index()
    seconds["registration"] = time.perf_counter() - t0

    table = pd.DataFrame(
        {
            "vertex": np.arange(N_VERTICES, dtype=np.int32),
            "hemi": np.repeat(np.array(sources.HEMIS), sources.N_FSAVERAGE5),
        }
    )
    meta: dict[str, dict] = {}
    srcs = {}
    for name in names:
        t = time.perf_counter()
        srcs[name] = sources.read_source_atlas(name)
        table[name] = resample_atlas(srcs[name], index)
        meta[name] = _summary(table[name].to_numpy(), srcs[name], qa)
        seconds[f"resample_{name}"] = time.perf_counter() - t
    seitzman = sources.read_seitzman(seitzman_radius_mm)

    out_dir = Path(out_dir)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        table.to_parquet(tmp / "networks.parquet", index=False)
        (tmp / "networks.json").write_text(json.dumps(meta, indent=1) + "\n")
        seitzman.to_parquet(tmp / "seitzman2018.parquet", index=False)
        if plots:
            from .plot import plot_atlas

            for name in names:
                t = time.perf_counter()
                plot_atlas(
                    table[name].to_numpy(),
                    srcs[name].names,
                    srcs[name].rgba,
                    title=f"{name} on fsaverage5 (inflated)",
                    out_file=tmp / f"{name}.png",
                )
                seconds[f"plot_{name}"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t0
    return {**meta, "seconds": {k: round(v, 3) for k, v in seconds.items()}}
