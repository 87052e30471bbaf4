"""The shared, resumable shape of an extraction: forward phase, layer phase, sidecar, publish.

Every extractor (text words, image+caption events) works in ``<scratch>/<model>/<stimulus>``
with a state file ``state.json``:

1. *forward* (the extractor's own): the model runs over the stimulus; each capture point's
   pooled values land in ``<arrays>/P###.npy`` (one row per word or event), recorded with their
   sha256 in the state;
2. *layers* (:func:`layer_phase`): per TR grid and layer, values -> TR through the extractor's
   operator (HRF or Lanczos, FIR delays), z-score, drop constant ANs, write
   ``<grid>/L###.arrow`` atomically; its sha256 enters the state. A restart skips the layers
   whose files check out and redoes a missing or corrupt one.

When every layer is written the sidecar is added and the folder moves to
``<output>/<model>/<stimulus>`` in one rename (:func:`publish`): a reader never sees a partial
output there. :func:`run_phases` strings the steps together around an extractor's forward pass.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._utils.atomic import write_text_atomic
from .._utils.reproducible import portable_paths, write_timings
from ..config import ExtractConfig, ModelConfig
from ..stimulus import TrGrid, delay_rows, zscore_columns
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


def progress_bar(total: int, desc: str, enabled: bool | None, unit: str = "tok"):
    """A tqdm bar, or None; ``enabled=None``: only on a TTY and when ``CI`` is unset."""
    if enabled is None:
        enabled = not os.environ.get("CI") and sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False)


def point_records(points, folder: Path) -> list[dict]:
    """State entries of the forward arrays: capture point, file ``P###.npy`` in ``folder``, its sha256."""
    return [
        {"tower": p.tower, "layer": p.layer, "module": p.module_path, "width": p.width,
         "file": f"P{i:03d}.npy", "sha256": sha256_file(folder / f"P{i:03d}.npy")}
        for i, p in enumerate(points)
    ]


def forward_ok(folder: Path, state: dict) -> bool:
    """True when the state holds a forward phase whose arrays in ``folder`` all check out."""
    fw = state.get("forward")
    if not fw:
        return False
    return all((folder / p["file"]).is_file() and sha256_file(folder / p["file"]) == p["sha256"]
               for p in fw["points"])


def write_layer(path: Path, point: dict, values: np.ndarray, M: np.ndarray, cfg: ExtractConfig,
                n_trs: int) -> tuple[int, int]:
    """One layer's stimulus values -> TR grid -> z-scored ANs in ``path`` (atomically).

    Parameters
    ----------
    path : path of the Arrow file
    point : dict with ``tower``, ``layer``, ``width`` (a forward-phase point record)
    values : array of shape (n_items, width), the layer's value per word or event
    M : array of shape (n_trs, n_items), the operator to the TR grid
    cfg : the ``extract:`` section (``hrf``, ``fir_delays``, ``chunk_ans``)
    n_trs : int

    Returns
    -------
    (n_rows, n_constant) : ANs written (one per unit and delay) and ANs dropped as constant
    """
    width = point["width"]
    tmp = path.with_name(path.name + ".tmp")
    writer = LayerWriter(tmp, n_trs)
    n_const = 0
    delays = cfg.fir_delays if cfg.hrf == "fir" else [0]
    try:
        for lo in range(0, width, cfg.chunk_ans):
            hi = min(width, lo + cfg.chunk_ans)
            W = np.asarray(values[:, lo:hi], dtype=np.float64)
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


def layer_phase(scratch: Path, arrays: Path, state: dict, grids: list[TrGrid],
                operator: Callable[[TrGrid], np.ndarray], cfg: ExtractConfig,
                on_layer: Callable[[str, int], None] | None = None) -> tuple[list[dict], int]:
    """Write every (grid, layer) file under ``<scratch>/out``, skipping those the state vouches for.

    Parameters
    ----------
    scratch : the working folder (holds ``state.json`` and ``out/``)
    arrays : the folder of the forward arrays ``P###.npy``
    state : the state, with its ``forward`` record; updated and saved after each layer
    grids : the stimulus's TR grids
    operator : callable(grid) -> array of shape (n_trs, n_items)
    on_layer : callable(grid_id, layer_index), optional
        Called after each layer file is complete (an exception raised there interrupts the
        extraction, leaving a resumable state).

    Returns
    -------
    (grids_meta, resumed_layers) : the sidecar's ``grids`` entries and how many layers were kept
    """
    out = scratch / "out"
    resumed_layers, grids_meta = 0, []
    for grid in grids:
        gdir = out / grid.id
        gdir.mkdir(parents=True, exist_ok=True)
        M = operator(grid)
        files = []
        for i, p in enumerate(state["forward"]["points"]):
            fname = layer_filename(p["tower"], p["layer"])
            key = f"{grid.id}/{fname}"
            done = state["layers"].get(key)
            path = gdir / fname
            if done and check_layer_file(path, done["n_rows"], grid.n_trs, done["sha256"]):
                resumed_layers += 1
            else:
                values = np.load(arrays / p["file"], mmap_mode="r")
                n_rows, n_const = write_layer(path, p, values, M, cfg, grid.n_trs)
                del values
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
    return grids_meta, resumed_layers


def layers_meta(points: list[dict]) -> dict:
    """The sidecar's ``layers``, ``n_layers`` and ``widths`` from the forward point records."""
    return {
        "layers": [{"tower": p["tower"], "layer": p["layer"], "module": p["module"], "width": p["width"]}
                   for p in points],
        "n_layers": len(points),
        "widths": sorted({p["width"] for p in points}),
    }


def hrf_meta(cfg: ExtractConfig, **extra) -> dict:
    """The sidecar's ``hrf`` entry (``extra`` keys go before ``zscore``)."""
    return {"model": cfg.hrf, "oversampling": cfg.oversampling,
            "fir_delays": cfg.fir_delays if cfg.hrf == "fir" else None,
            "lanczos_window": cfg.lanczos_window, "lanczos_cutoff": cfg.lanczos_cutoff} | extra | {
            "zscore": "population sd"}


def publish(scratch: Path, final: Path, sidecar: dict) -> None:
    """Write the sidecar into ``<scratch>/out``, then replace ``final`` by it in one rename."""
    out = scratch / "out"
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=1) + "\n")
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(out, final)
    shutil.rmtree(scratch, ignore_errors=True)


def run_phases(
    model: ModelConfig,
    cfg: ExtractConfig,
    stimulus_id: str,
    model_dir: Path,
    phash: str,
    revision: dict,
    arrays: str,
    forward: Callable[[Path], dict],
    grids: list[TrGrid],
    operator: Callable[[TrGrid], np.ndarray],
    describe: Callable[[dict], dict],
    on_layer: Callable[[str, int], None] | None = None,
) -> dict:
    """Run an extraction around its forward pass: resume, forward, layers, sidecar, publish.

    Parameters
    ----------
    model, cfg : the ``models:`` entry and the ``extract:`` section
    stimulus_id : str
        The output goes to ``<cfg.output>/<model>/<stimulus_id>``.
    phash : the output's identity (an output with this ``params_hash`` is left alone)
    revision : :func:`revision_of` the weights
    arrays : name of the scratch sub-folder of the forward arrays (``words``, ``events``)
    forward : callable(folder) -> dict
        The forward pass: writes ``P###.npy`` into ``folder`` (created) and returns the state's
        ``forward`` record: ``family``, ``forward_s``, ``points`` (:func:`point_records`) and
        whatever its ``describe`` reads.
    grids, operator : the TR grids and callable(grid) -> array of shape (n_trs, n_items)
    describe : callable(forward record) -> dict
        The extractor's sidecar entries between ``family`` and ``grids``.
    on_layer : see :func:`layer_phase`

    Returns
    -------
    dict
        ``status`` ("written" or "up-to-date"), ``path``, ``resumed_forward``, ``resumed_layers``.
    """
    final = Path(cfg.output) / model.name / stimulus_id
    scratch = Path(cfg.scratch) / model.name / stimulus_id
    if is_up_to_date(final, phash):
        return {"status": "up-to-date", "path": str(final), "resumed_forward": False, "resumed_layers": 0}
    state = resume_state(scratch, phash)
    t_start = time.perf_counter()
    folder = scratch / arrays
    resumed_forward = forward_ok(folder, state)
    if not resumed_forward:
        state["layers"] = {}
        folder.mkdir(parents=True, exist_ok=True)
        state["forward"] = forward(folder)
        write_text_atomic(scratch / STATE, json.dumps(state, indent=1))
    fw = state["forward"]
    grids_meta, resumed_layers = layer_phase(scratch, folder, state, grids, operator, cfg, on_layer)
    import torch
    import transformers

    # a DVC output: paths portable, wall times to build/timings
    sidecar = portable_paths({
        "format_version": FORMAT_VERSION, "params_hash": phash, "model": model.model_dump(mode="json"),
        "model_dir": str(model_dir), "revision": revision, "family": fw["family"],
    } | describe(fw) | {
        "grids": grids_meta,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    })
    publish(scratch, final, sidecar)
    write_timings(f"extract@{model.name}", {"forward_s": fw["forward_s"],
                                            "this_call_s": round(time.perf_counter() - t_start, 3)}, part=stimulus_id)
    return {"status": "written", "path": str(final), "resumed_forward": resumed_forward,
            "resumed_layers": resumed_layers}
