"""Extraction of one (model, stimulus): forward once, then layer by layer onto each TR grid.

The text extractor's own part is its forward pass: the model runs over the stimulus windows;
hooks pool each layer's tokens into words, accumulated in disk-backed arrays
(``words/P###.npy``), so memory holds one window plus the model, never the whole tensor. The
resumable layer phase, the sidecar and the publish step are shared with the image+caption
extractor (:mod:`.phases`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..config import ExtractConfig, ModelConfig
from ..errors import DataError
# stimuli_from_runs is owned by brainlike.stimulus; importable from here as before
from ..stimulus import Stimulus, TrGrid, word_operator, words_sha256
from ..stimulus import stimuli_from_runs as stimuli_from_runs
from .forward import word_activations
from .models import LoadedModel, load_model
from .phases import hrf_meta, layers_meta, point_records, progress_bar, revision_of, run_phases
from .store import FORMAT_VERSION


def params_hash(model: ModelConfig, cfg: ExtractConfig, stim: Stimulus, revision: dict) -> str:
    """Identity of an output: everything that changes its values (not where files go)."""
    ext = cfg.model_dump(mode="json", exclude={"output", "scratch", "model_cache"})
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "model": model.model_dump(mode="json", exclude={"generation", "generation_order", "size"}),
            "extract": ext,
            "words": words_sha256(stim.words),
            "grids": [(g.tr, g.t0, g.n_trs) for g in stim.grids],
            "revision": revision,
        },
        sort_keys=True,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _forward(model: ModelConfig, cfg: ExtractConfig, stim: Stimulus, model_dir: Path, wdir: Path,
             loaded: LoadedModel | None, progress: bool | None) -> dict:
    """Forward pass over the stimulus windows, word values into ``wdir/P###.npy``; the state's record."""
    if loaded is None:
        loaded = load_model(model_dir, model.trained, model.seed, cfg.device)
    from .sites import resolve_sites

    points = resolve_sites(loaded.model, loaded.family, model.site)
    words = stim.words["word"].astype(str).tolist()
    if not words:
        raise DataError(stim.source, "empty stimulus: the word table has no rows", "word")
    buffers = [
        np.lib.format.open_memmap(wdir / f"P{i:03d}.npy", mode="w+", dtype=np.float32, shape=(len(words), p.width))
        for i, p in enumerate(points)
    ]
    bar = progress_bar(0, model.name, progress)
    try:
        wa = word_activations(loaded, words, model.site, model.pooling, model.context, model.stride,
                              buffers=buffers, progress=bar, source=stim.source)
    finally:
        if bar is not None:
            bar.close()
    for b in buffers:
        b.flush()
    del buffers
    return {
        "family": loaded.family.name,
        "causal": loaded.family.causal,
        "n_tokens": wa.alignment.n_tokens,
        "n_windows": wa.plan.n_windows,
        "forward_s": round(wa.forward_s, 3),
        "points": point_records(wa.points, wdir),
    }


def extract_stimulus(
    model: ModelConfig,
    cfg: ExtractConfig,
    stim: Stimulus,
    model_dir: str | Path,
    loaded: LoadedModel | None = None,
    progress: bool | None = None,
    on_layer: Callable[[str, int], None] | None = None,
) -> dict:
    """Extract, align and store the activations of ``model`` for ``stim`` (resumable).

    Parameters
    ----------
    model, cfg : the ``models:`` entry and the ``extract:`` section
    stim : Stimulus
    model_dir : path
        The materialised model folder.
    loaded : LoadedModel, optional
        An already loaded model (saves loading it again for several stimuli).
    progress : bool or None
        Progress bar over tokens; None: only on a TTY and when ``CI`` is unset.
    on_layer : callable(grid_id, layer_index), optional
        Called after each layer file is complete (an exception raised there interrupts the
        extraction, leaving a resumable state).

    Returns
    -------
    dict
        ``status`` ("written" or "up-to-date"), ``path``, ``resumed_forward``, ``resumed_layers``.
    """
    model_dir = Path(model_dir)
    revision = revision_of(model, model_dir)
    onsets = stim.words["onset"].to_numpy(np.float64)

    def operator(grid: TrGrid) -> np.ndarray:
        return word_operator(onsets, grid.frame_times(), cfg.hrf, cfg.oversampling, cfg.lanczos_window,
                             cfg.lanczos_cutoff)

    def describe(fw: dict) -> dict:
        return {
            "causal": fw["causal"], "site": model.site, "pooling": model.pooling,
        } | layers_meta(fw["points"]) | {
            "stimulus": {"id": stim.id, "source": stim.source, "n_words": int(len(stim.words)),
                         "words_sha256": words_sha256(stim.words)} | stim.meta,
            "windows": {"context": model.context, "stride": model.stride, "n_tokens": fw["n_tokens"],
                        "n_windows": fw["n_windows"]},
            "hrf": hrf_meta(cfg),
        }

    return run_phases(model, cfg, stim.id, model_dir, params_hash(model, cfg, stim, revision), revision, "words",
                      lambda wdir: _forward(model, cfg, stim, model_dir, wdir, loaded, progress),
                      stim.grids, operator, describe, on_layer)
