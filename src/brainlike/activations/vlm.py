"""Vision-language models on image+caption stimuli.

An *event* is one image shown with one caption from ``onset`` for ``duration`` seconds. Each
event is one forward pass (batch of one: the image and its tokenised caption); forward hooks
capture the neuron site in every layer of every tower (:mod:`.sites`: CLIP's 'text' and
'vision' towers, BridgeTower's 'text', 'vision', 'fusion_text' and 'fusion_image'), and each
layer's tokens or patches are pooled into one value per artificial neuron (AN): mean by
default, or the first (CLS / start) or last (end-of-text) position.

Event values reach the TR grid through the existing word operator of :mod:`brainlike.stimulus`
applied to the event's *block*: the block is split into impulses every ``tr / oversampling``
seconds (the fine grid nilearn samples blocks on), so ``spm``/``glover`` give the HRF response
to a sustained display and ``fir`` Lanczos-resamples the block. Then each AN is z-scored,
constant ANs are dropped, and layers are written with :class:`~.store.LayerWriter` under the
same layout, sidecar and resume rules as the text path (the shared phases of :mod:`.phases`),
so patterns and encoding read them unchanged (the ``tower`` column tells the modality).

Models without downloadable weights offline are built by :mod:`.builtin`. A user with real
weights points ``source`` at their folder (its ``preprocessor_config.json`` and tokenizer are
then used).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import ExtractConfig, ModelConfig
from ..data.embedded.movie import EVENT_COLUMNS, image_file, load_image
from ..errors import DataError
from ..stimulus import TrGrid, group_runs, word_operator
from .builtin import CLIP_MEAN, CLIP_STD
from .models import LoadedModel, load_model
from .phases import hrf_meta, layers_meta, point_records, progress_bar, revision_of, run_phases
from .sites import FAMILIES, CapturePoint, capture, resolve_sites
from .store import FORMAT_VERSION, sha256_file

STIMULUS_TYPE = "image_caption"


def vlm_families() -> set[str]:
    """Names of the families with a non-text tower (vision or fusion)."""
    return {f.name for f in FAMILIES if any(t.name != "text" for t in f.towers)}


# --- image preprocessing ---------------------------------------------------------------------
@dataclass(frozen=True)
class ImageSpec:
    """Image preprocessing: shortest-edge bicubic resize, centre crop, per-channel normalisation."""

    resize: int
    crop: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def pixel_values(self, rgb: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 -> float32 tensor of shape (3, crop, crop)."""
        from PIL import Image

        h, w = rgb.shape[:2]
        scale = self.resize / min(h, w)
        nh, nw = max(self.resize, round(h * scale)), max(self.resize, round(w * scale))
        x = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BICUBIC), np.float32) / 255.0
        top, left = (nh - self.crop) // 2, (nw - self.crop) // 2
        x = x[top : top + self.crop, left : left + self.crop]
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def _edge(v) -> int | None:
    if isinstance(v, int):
        return v
    if isinstance(v, dict):
        return v.get("shortest_edge") or v.get("height")
    return None


def image_spec(model_dir: str | Path, config) -> ImageSpec:
    """Preprocessing from ``preprocessor_config.json`` (Hugging Face keys) or the vision config."""
    p = Path(model_dir) / "preprocessor_config.json"
    size = int(config.vision_config.image_size)
    if not p.is_file():
        return ImageSpec(size, size)
    try:
        raw = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(p, f"not valid JSON: {exc}", "preprocessor_config.json") from None
    crop = _edge(raw.get("crop_size")) or size
    resize = _edge(raw.get("size")) or crop
    mean, std = raw.get("image_mean", CLIP_MEAN), raw.get("image_std", CLIP_STD)
    if resize < crop or len(mean) != 3 or len(std) != 3:
        raise DataError(p, f"expected size >= crop_size and 3-channel image_mean/std, got size={resize}, "
                        f"crop={crop}, mean={mean}, std={std}", "preprocessor_config.json")
    return ImageSpec(int(resize), int(crop), tuple(map(float, mean)), tuple(map(float, std)))


# --- stimuli ------------------------------------------------------------------------------------
@dataclass
class EventStimulus:
    """An image+caption stimulus (a (dataset, task) pair) and the TR grids of its runs.

    events : DataFrame with columns onset, duration (s), image (``skimage:<name>`` or a path), caption
    """

    id: str
    events: pd.DataFrame
    grids: list[TrGrid]
    source: str | None = None
    meta: dict = field(default_factory=dict)


def check_events(events: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """Validate an event table (columns :data:`EVENT_COLUMNS`); returns it with those columns, in order."""
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise DataError(source, f"event table lacks column(s) {missing}; expected {list(EVENT_COLUMNS)}", "events")
    if len(events) == 0:
        raise DataError(source, "empty stimulus: the event table has no rows", "events")
    ev = events[list(EVENT_COLUMNS)].reset_index(drop=True).copy()
    t = ev[["onset", "duration"]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(t).all(axis=1) | (t[:, 1] <= 0)
    if bad.any():
        raise DataError(source, f"event {int(np.flatnonzero(bad)[0])}: onset and duration must be finite, "
                        "duration > 0", "onset")
    if (np.diff(t[:, 0]) < 0).any():
        raise DataError(source, f"event onsets decrease at row {int(np.flatnonzero(np.diff(t[:, 0]) < 0)[0]) + 1}",
                        "onset")
    empty = ev["caption"].astype(str).str.strip() == ""
    if empty.any():
        raise DataError(source, f"event {int(np.flatnonzero(empty)[0])} has an empty caption", "caption")
    ev["onset"], ev["duration"] = t[:, 0], t[:, 1]
    return ev


def is_event_run(run) -> bool:
    """True for a run whose stimulus is an image+caption event table (``meta['events']``)."""
    return run.meta.get("stimulus_type") == STIMULUS_TYPE or "events" in run.meta


def events_sha256(events: pd.DataFrame) -> str:
    blob = json.dumps([events["image"].astype(str).tolist(), events["caption"].astype(str).tolist(),
                       np.round(events[["onset", "duration"]].to_numpy(float), 6).tolist()]).encode()
    return hashlib.sha256(blob).hexdigest()


def event_stimuli_from_runs(runs: Iterable) -> list[EventStimulus]:
    """Group image+caption runs by (dataset, task), one grid per distinct (tr, t0, n_trs); others are skipped.

    Raises
    ------
    DataError
        Two runs of one (dataset, task) with different event tables.
    """
    def events_of(run) -> tuple[pd.DataFrame, str | None] | None:
        if not is_event_run(run):
            return None
        src = run.meta.get("events_source", run.meta.get("source"))
        return check_events(pd.DataFrame(run.meta.get("events", [])), src), src

    return [EventStimulus(*g) for g in group_runs(runs, events_of, events_sha256, "events", "event table", "events")]


# --- events -> TR operator -----------------------------------------------------------------------
def event_operator(onsets: np.ndarray, durations: np.ndarray, times: np.ndarray, hrf: str = "spm",
                   oversampling: int = 16, lanczos_window: int = 3, lanczos_cutoff: float = 1.0) -> np.ndarray:
    """Operator mapping event values (held for each event's duration) to the TR grid.

    Each event is split into ``k = ceil(duration / dt)`` impulses at the centres of ``dt = tr /
    oversampling`` steps, each weighted ``duration / k`` (so the column integrates the block),
    and :func:`brainlike.stimulus.word_operator` maps the impulses.

    Parameters
    ----------
    onsets, durations : arrays of shape (n_events,)
    times : array of shape (n_trs,), equally spaced frame times

    Returns
    -------
    array of shape (n_trs, n_events), float64
    """
    onsets = np.asarray(onsets, np.float64)
    durations = np.asarray(durations, np.float64)
    times = np.asarray(times, np.float64)
    dt = float(np.min(np.diff(times))) / max(int(oversampling), 1) if times.size > 1 else 0.1
    k = np.maximum(np.ceil(durations / dt).astype(np.int64), 1)
    owner = np.repeat(np.arange(onsets.size), k)
    step = np.concatenate([np.arange(n) for n in k]) if k.size else np.zeros(0, np.int64)
    sub = onsets[owner] + (step + 0.5) * (durations / k)[owner]
    M = word_operator(sub, times, hrf, oversampling, lanczos_window, lanczos_cutoff)
    out = np.zeros((times.size, onsets.size))
    np.add.at(out.T, owner, (M * (durations / k)[owner][None, :]).T)
    return out


# --- forward ------------------------------------------------------------------------------------
@dataclass
class EventActivations:
    """values[l] of shape (n_events, width_l): the pooled activation of every event at capture point l."""

    points: list[CapturePoint]
    values: list[np.ndarray]
    n_tokens: np.ndarray  # (n_events,) caption tokens, special tokens included
    forward_s: float


def event_inputs(loaded: LoadedModel, spec: ImageSpec, image: str, caption: str,
                 source: str | None = None, index: int = 0) -> dict[str, torch.Tensor]:
    """Model inputs of one event (batch of one).

    Returns ``input_ids`` and ``attention_mask`` of shape (1, n_tokens), ``pixel_values`` of shape
    (1, 3, crop, crop) and, for BridgeTower, ``pixel_mask`` of shape (1, crop, crop).
    """
    ids = loaded.tokenizer(caption, add_special_tokens=True)["input_ids"]
    if len(ids) > loaded.max_tokens:
        raise DataError(source, f"event {index}: caption has {len(ids)} tokens, more than the model's "
                        f"{loaded.max_tokens}: {caption!r}", "caption")
    ids_t = torch.tensor([ids], dtype=torch.long)
    px = spec.pixel_values(load_image(image)).unsqueeze(0)
    inputs = {"input_ids": ids_t, "attention_mask": torch.ones_like(ids_t), "pixel_values": px}
    if loaded.family.name == "bridgetower":
        inputs["pixel_mask"] = torch.ones((1, px.shape[-2], px.shape[-1]), dtype=torch.long)
    return inputs


def _pool(x: torch.Tensor, pooling: str) -> torch.Tensor:
    # batch of one: whatever the layout (batch-first, or BridgeTower's sequence-first vision
    # blocks), reshaping to (positions, width) lists the positions in order
    rows = x.reshape(-1, x.shape[-1])
    if pooling == "mean":
        return rows.float().mean(0)
    if pooling == "first":
        return rows[0].float()
    if pooling == "last":
        return rows[-1].float()
    raise DataError(None, f"unknown pooling {pooling!r}; expected mean, first or last", "models[].pooling")


def event_activations(
    loaded: LoadedModel,
    events: pd.DataFrame,
    site: str = "ffn_out",
    pooling: str = "mean",
    spec: ImageSpec | None = None,
    buffers: list[np.ndarray] | None = None,
    progress=None,
    source: str | None = None,
) -> EventActivations:
    """Capture ``site`` in every layer of every tower for each event; pool positions per event.

    Parameters
    ----------
    events : DataFrame with columns image, caption (n_events rows)
    spec : ImageSpec, optional
        Image preprocessing; read from the model folder when omitted.
    buffers : list of arrays of shape (n_events, width_l), optional
        Accumulators (e.g. memory maps); allocated when omitted.

    Returns
    -------
    EventActivations
    """
    if loaded.family.name not in vlm_families():
        raise DataError(loaded.model_dir, f"family {loaded.family.name!r} has no vision tower; image+caption stimuli "
                        f"need one of {sorted(vlm_families())}", "model_type")
    if len(events) == 0:
        raise DataError(source, "empty stimulus: the event table has no rows", "events")
    spec = spec or image_spec(loaded.model_dir, loaded.model.config)
    points = resolve_sites(loaded.model, loaded.family, site)
    if buffers is None:
        buffers = [np.zeros((len(events), p.width), np.float32) for p in points]
    device = next(loaded.model.parameters()).device
    state = {"e": 0}
    n_tokens = np.zeros(len(events), np.int64)

    def sink(i: int, out: torch.Tensor) -> None:
        if out.shape[-1] != points[i].width:
            raise DataError(None, f"{points[i].module_path}: captured width {out.shape[-1]} differs from the "
                            f"config's {points[i].width}", "model")
        buffers[i][state["e"]] = _pool(out, pooling).cpu().numpy()

    secs = 0.0
    with capture(points, sink), torch.inference_mode():
        for e, (image, caption) in enumerate(zip(events["image"], events["caption"], strict=True)):
            inputs = event_inputs(loaded, spec, str(image), str(caption), source, e)
            n_tokens[e] = inputs["input_ids"].shape[1]
            state["e"] = e
            t = time.perf_counter()
            loaded.model(**{k: v.to(device) for k, v in inputs.items()})
            secs += time.perf_counter() - t
            if progress is not None:
                progress.update(1)
    return EventActivations(points, buffers, n_tokens, secs)


# --- extraction (resumable, same layout as the text path) ---------------------------------------
def _images_provenance(events: pd.DataFrame) -> list[dict]:
    return [{"image": ref, "file": image_file(ref).name, "sha256": sha256_file(image_file(ref))}
            for ref in sorted(set(events["image"].astype(str)))]


def events_params_hash(model: ModelConfig, cfg: ExtractConfig, events: pd.DataFrame, grids: list[TrGrid],
                       revision: dict, images: list[dict]) -> str:
    """Identity of an output: model entry, extract section, events, image bytes, grids, weights."""
    ext = cfg.model_dump(mode="json", exclude={"output", "scratch", "model_cache"})
    blob = json.dumps({
        "format": FORMAT_VERSION, "stimulus_type": STIMULUS_TYPE,
        "model": model.model_dump(mode="json", exclude={"generation", "generation_order", "size"}),
        "extract": ext, "events": events_sha256(events), "images": images,
        "grids": [(g.tr, g.t0, g.n_trs) for g in grids], "revision": revision,
    }, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def extract_events(
    model: ModelConfig,
    cfg: ExtractConfig,
    stim: EventStimulus,
    model_dir: str | Path,
    loaded: LoadedModel | None = None,
    progress: bool | None = None,
    on_layer: Callable[[str, int], None] | None = None,
) -> dict:
    """Extract, align and store a VLM's activations for an image+caption stimulus (resumable).

    Only the forward pass is this extractor's own (one pass per event -> ``events/P###.npy``);
    the resumable layer phase, sidecar and publish step are :func:`~.phases.run_phases`, as for
    :func:`~brainlike.activations.extract.extract_stimulus`; an up-to-date output is left alone.

    Returns
    -------
    dict
        ``status`` ("written" or "up-to-date"), ``path``, ``resumed_forward``, ``resumed_layers``.
    """
    model_dir = Path(model_dir)
    events = check_events(stim.events, stim.source)
    revision = revision_of(model, model_dir)
    images = _images_provenance(events)
    phash = events_params_hash(model, cfg, events, stim.grids, revision, images)
    onsets, durations = events["onset"].to_numpy(np.float64), events["duration"].to_numpy(np.float64)

    def forward(edir: Path) -> dict:
        nonlocal loaded
        if loaded is None:
            loaded = load_model(model_dir, model.trained, model.seed, cfg.device)
        bar = progress_bar(len(events), model.name, progress)
        try:
            ea = event_activations(loaded, events, model.site, model.pooling, progress=bar, source=stim.source)
        finally:
            if bar is not None:
                bar.close()
        for i, v in enumerate(ea.values):
            np.save(edir / f"P{i:03d}.npy", v)
        return {
            "family": loaded.family.name, "n_events": len(events), "n_tokens": int(ea.n_tokens.sum()),
            "forward_s": round(ea.forward_s, 3), "image": image_spec(model_dir, loaded.model.config).__dict__,
            "points": point_records(ea.points, edir),
        }

    def operator(grid: TrGrid) -> np.ndarray:
        return event_operator(onsets, durations, grid.frame_times(), cfg.hrf, cfg.oversampling,
                              cfg.lanczos_window, cfg.lanczos_cutoff)

    def describe(fw: dict) -> dict:
        return {
            "causal": False,  # no windows: each event is one whole forward pass
            "site": model.site, "pooling": model.pooling, "towers": list(dict.fromkeys(p["tower"] for p in fw["points"])),
        } | layers_meta(fw["points"]) | {
            "stimulus": {"id": stim.id, "type": STIMULUS_TYPE, "source": stim.source, "n_events": len(events),
                         "events_sha256": events_sha256(events), "images": images,
                         "n_caption_tokens": fw["n_tokens"]} | stim.meta,
            "image_preprocessing": fw["image"],
            "windows": None,
            "hrf": hrf_meta(cfg, events="blocks"),
        }

    return run_phases(model, cfg, stim.id, model_dir, phash, revision, "events", forward, stim.grids, operator,
                      describe, on_layer)
