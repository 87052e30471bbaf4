"""Extraction of one (model, stimulus): forward once, then layer by layer onto each TR grid.

Phases, both resumable from ``<scratch>/<model>/<stimulus>/state.json``:

1. *forward*: the model runs over the stimulus windows; hooks pool each layer's tokens into
   words, accumulated in disk-backed arrays (``words/P###.npy``), so memory holds one window
   plus the model, never the whole tensor;
2. *layers*: per TR grid and layer, word values -> TR (HRF or Lanczos + FIR delays), z-score,
   drop constant ANs, write ``<grid>/L###.arrow`` atomically; its sha256 enters the state.
   A restart skips the layers whose files check out and redoes a missing or corrupt one.

When every layer is written, the sidecar is added and the folder moves to
``<output>/<model>/<stimulus>`` in one rename: a reader never sees a partial output there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._utils.atomic import write_text_atomic
from ..config import ExtractConfig, ModelConfig
from ..errors import DataError
# stimuli_from_runs is owned by brainlike.stimulus; importable from here as before
from ..stimulus import Stimulus, TrGrid, delay_rows, word_operator, words_sha256, zscore_columns
from ..stimulus import stimuli_from_runs as stimuli_from_runs
from .forward import word_activations
from .models import LoadedModel, load_model
from .sources import materialised_origin, weights_revision
from .store import FORMAT_VERSION, SIDECAR, LayerWriter, check_layer_file, layer_filename, sha256_file

STATE = "state.json"


def is_up_to_date(final: Path, phash: str) -> bool:
    """True when ``final`` holds a complete set (its sidecar is written last) for ``phash``."""
    side = Path(final) / SIDECAR
    try:
        return side.is_file() and json.loads(side.read_text()).get("params_hash") == phash
    except json.JSONDecodeError:
        return False


def resume_state(scratch: Path, phash: str) -> dict:
    """The scratch state of an interrupted extraction with the same params, else a fresh one.

    Work done under other params is discarded; ``scratch`` exists on return.
    """
    state: dict = {}
    if (scratch / STATE).is_file():
        try:
            state = json.loads((scratch / STATE).read_text())
        except json.JSONDecodeError:
            state = {}
    if state.get("params_hash") != phash:
        shutil.rmtree(scratch, ignore_errors=True)
        state = {"params_hash": phash, "layers": {}}
    scratch.mkdir(parents=True, exist_ok=True)
    return state


def revision_of(model: ModelConfig, model_dir: Path) -> dict:
    """The identity of the weights (sha256 of each weight file) or of the random twin's config."""
    if model.trained:
        rev = {"kind": "weights", "files": weights_revision(model_dir)}
        origin = materialised_origin(model_dir)
        return rev | ({"origin": origin} if origin else {})
    cfg = Path(model_dir) / "config.json"
    sha = sha256_file(cfg) if cfg.is_file() else None
    return {"kind": "random_init", "seed": model.seed, "config_json_sha256": sha}


def params_hash(model: ModelConfig, cfg: ExtractConfig, stim: Stimulus, revision: dict) -> str:
    """Identity of an output: everything that changes its values (not where files go)."""
    ext = cfg.model_dump(mode="json", exclude={"output", "scratch", "model_cache"})
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "model": model.model_dump(mode="json", exclude={"generation", "generation_order"}),
            "extract": ext,
            "words": words_sha256(stim.words),
            "grids": [(g.tr, g.t0, g.n_trs) for g in stim.grids],
            "revision": revision,
        },
        sort_keys=True,
    ).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _progress_bar(total: int, desc: str, enabled: bool | None):
    if enabled is None:
        enabled = not os.environ.get("CI") and sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tok", leave=False)


def _forward_phase(model: ModelConfig, cfg: ExtractConfig, stim: Stimulus, model_dir: Path, scratch: Path,
                   state: dict, loaded: LoadedModel | None, progress: bool | None) -> dict:
    if loaded is None:
        loaded = load_model(model_dir, model.trained, model.seed, cfg.device)
    from .sites import resolve_sites

    points = resolve_sites(loaded.model, loaded.family, model.site)
    words = stim.words["word"].astype(str).tolist()
    wdir = scratch / "words"
    wdir.mkdir(parents=True, exist_ok=True)
    if not words:
        raise DataError(stim.source, "empty stimulus: the word table has no rows", "word")
    buffers = [
        np.lib.format.open_memmap(wdir / f"P{i:03d}.npy", mode="w+", dtype=np.float32, shape=(len(words), p.width))
        for i, p in enumerate(points)
    ]
    bar = _progress_bar(0, model.name, progress)
    try:
        wa = word_activations(loaded, words, model.site, model.pooling, model.context, model.stride,
                              buffers=buffers, progress=bar, source=stim.source)
    finally:
        if bar is not None:
            bar.close()
    for b in buffers:
        b.flush()
    del buffers
    state["forward"] = {
        "family": loaded.family.name,
        "causal": loaded.family.causal,
        "n_tokens": wa.alignment.n_tokens,
        "n_windows": wa.plan.n_windows,
        "forward_s": round(wa.forward_s, 3),
        "points": [
            {"tower": p.tower, "layer": p.layer, "module": p.module_path, "width": p.width,
             "file": f"P{i:03d}.npy", "sha256": sha256_file(wdir / f"P{i:03d}.npy")}
            for i, p in enumerate(wa.points)
        ],
    }
    write_text_atomic(scratch / STATE, json.dumps(state, indent=1))
    return state


def _forward_ok(scratch: Path, state: dict) -> bool:
    fw = state.get("forward")
    if not fw:
        return False
    for p in fw["points"]:
        f = scratch / "words" / p["file"]
        if not f.is_file() or sha256_file(f) != p["sha256"]:
            return False
    return True


def _write_layer(path: Path, point: dict, words_arr: np.ndarray, M: np.ndarray, cfg: ExtractConfig,
                 n_trs: int) -> tuple[int, int]:
    """Word values of one layer -> TR grid -> z-scored ANs in ``path``; returns (n_rows, n_constant)."""
    width = point["width"]
    tmp = path.with_name(path.name + ".tmp")
    writer = LayerWriter(tmp, n_trs)
    n_const = 0
    delays = cfg.fir_delays if cfg.hrf == "fir" else [0]
    try:
        for lo in range(0, width, cfg.chunk_ans):
            hi = min(width, lo + cfg.chunk_ans)
            W = np.asarray(words_arr[:, lo:hi], dtype=np.float64)
            # an AN constant over words carries no stimulus information beyond word rate
            flat_words = W.std(axis=0) <= 1e-6 * np.maximum(np.abs(W).max(axis=0), 1e-30)
            Y = M @ W
            stacks = delay_rows(Y, delays) if cfg.hrf == "fir" else Y[None]
            units = np.arange(lo, hi)
            for d, Yd in zip(delays, stacks):
                Z, const = zscore_columns(Yd)
                const |= flat_words
                n_const += int(const.sum())
                keep = ~const
                writer.write(point["tower"], point["layer"], units[keep], np.full(keep.sum(), d), Z[:, keep])
    finally:
        writer.close()
    os.replace(tmp, path)
    return writer.n_rows, n_const


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
    final = Path(cfg.output) / model.name / stim.id
    scratch = Path(cfg.scratch) / model.name / stim.id
    revision = revision_of(model, model_dir)
    phash = params_hash(model, cfg, stim, revision)
    if is_up_to_date(final, phash):
        return {"status": "up-to-date", "path": str(final), "resumed_forward": False, "resumed_layers": 0}
    state = resume_state(scratch, phash)
    t_start = time.perf_counter()
    resumed_forward = _forward_ok(scratch, state)
    if not resumed_forward:
        state["layers"] = {}
        state = _forward_phase(model, cfg, stim, model_dir, scratch, state, loaded, progress)
    fw = state["forward"]
    out = scratch / "out"
    onsets = stim.words["onset"].to_numpy(np.float64)
    resumed_layers = 0
    grids_meta = []
    for grid in stim.grids:
        gdir = out / grid.id
        gdir.mkdir(parents=True, exist_ok=True)
        M = word_operator(onsets, grid.frame_times(), cfg.hrf, cfg.oversampling, cfg.lanczos_window, cfg.lanczos_cutoff)
        files = []
        for i, p in enumerate(fw["points"]):
            fname = layer_filename(p["tower"], p["layer"])
            key = f"{grid.id}/{fname}"
            done = state["layers"].get(key)
            path = gdir / fname
            if done and check_layer_file(path, done["n_rows"], grid.n_trs, done["sha256"]):
                resumed_layers += 1
            else:
                words_arr = np.load(scratch / "words" / p["file"], mmap_mode="r")
                n_rows, n_const = _write_layer(path, p, words_arr, M, cfg, grid.n_trs)
                del words_arr
                done = {"n_rows": n_rows, "n_constant": n_const, "sha256": sha256_file(path)}
                state["layers"][key] = done
                write_text_atomic(scratch / STATE, json.dumps(state, indent=1))
                if on_layer is not None:
                    on_layer(grid.id, i)
            files.append({"tower": p["tower"], "layer": p["layer"], "file": fname} | done)
        grids_meta.append({
            "id": grid.id, "tr": grid.tr, "t0": grid.t0, "n_trs": grid.n_trs, "run_ids": list(grid.run_ids),
            "n_ans": int(sum(f["n_rows"] for f in files)),
            "n_constant_dropped": int(sum(f["n_constant"] for f in files)),
            "files": files,
        })
    import torch
    import transformers

    sidecar = {
        "format_version": FORMAT_VERSION,
        "params_hash": phash,
        "model": model.model_dump(mode="json"),
        "model_dir": str(model_dir),
        "revision": revision,
        "family": fw["family"],
        "causal": fw["causal"],
        "site": model.site,
        "pooling": model.pooling,
        "layers": [{"tower": p["tower"], "layer": p["layer"], "module": p["module"], "width": p["width"]}
                   for p in fw["points"]],
        "n_layers": len(fw["points"]),
        "widths": sorted({p["width"] for p in fw["points"]}),
        "stimulus": {"id": stim.id, "source": stim.source, "n_words": int(len(stim.words)),
                     "words_sha256": words_sha256(stim.words)} | stim.meta,
        "windows": {"context": model.context, "stride": model.stride, "n_tokens": fw["n_tokens"],
                    "n_windows": fw["n_windows"]},
        "hrf": {"model": cfg.hrf, "oversampling": cfg.oversampling, "fir_delays": cfg.fir_delays if cfg.hrf == "fir" else None,
                "lanczos_window": cfg.lanczos_window, "lanczos_cutoff": cfg.lanczos_cutoff, "zscore": "population sd"},
        "grids": grids_meta,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "timing_s": {"forward": fw["forward_s"], "this_call": round(time.perf_counter() - t_start, 3)},
    }
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(out, final)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"status": "written", "path": str(final), "resumed_forward": resumed_forward,
            "resumed_layers": resumed_layers}
