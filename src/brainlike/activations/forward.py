"""Run a model over the stimulus windows and pool each captured layer's tokens into words."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError
from .align import AlignmentError, TokenAlignment, WindowPlan, align_tokens, plan_windows
from .models import LoadedModel
from .sites import CapturePoint, capture, resolve_sites


@dataclass
class WordActivations:
    """Word-level activations of every captured layer.

    points : the capture points (tower, layer, width)
    values : list (one per point) of arrays of shape (n_words, width), float32, pooled
    """

    points: list[CapturePoint]
    values: list[np.ndarray]
    alignment: TokenAlignment
    plan: WindowPlan
    forward_s: float


def prepare(loaded: LoadedModel, words: list[str], context: int, stride: int, source: str | None = None):
    """Tokenise ``words`` and plan windows; errors name ``source`` (the words file)."""
    if len(words) == 0:
        raise DataError(source, "empty stimulus: the word table has no rows", "word")
    if context > loaded.max_tokens:
        raise DataError(
            None, f"context {context} exceeds what the model accepts ({loaded.max_tokens} tokens)", "models[].context"
        )
    try:
        al = align_tokens(list(words), loaded.tokenizer)
    except AlignmentError as exc:
        raise DataError(source, f"words do not match the tokenizer offsets: {exc}", "word") from None
    capacity = context - len(al.prefix_ids) - len(al.suffix_ids)
    if stride > capacity:
        raise DataError(None, f"stride {stride} exceeds the window's {capacity} text tokens", "models[].stride")
    return al, plan_windows(al.n_tokens, capacity, stride, loaded.family.causal)


def token_selection(al: TokenAlignment, pooling: str) -> np.ndarray:
    """Tokens that contribute to their word: all (mean), or its first / last token. Shape (n_tokens,)."""
    w = al.word_of_token
    has = w >= 0
    if pooling == "mean":
        return has
    sel = np.zeros_like(has)
    idx = np.flatnonzero(has)
    if pooling == "first":
        first = np.r_[True, w[idx][1:] != w[idx][:-1]]
        sel[idx[first]] = True
    elif pooling == "last":
        last = np.r_[w[idx][1:] != w[idx][:-1], True]
        sel[idx[last]] = True
    else:
        raise DataError(None, f"unknown pooling {pooling!r}; expected mean, first or last", "models[].pooling")
    return sel


def run_windows(
    loaded: LoadedModel,
    al: TokenAlignment,
    plan: WindowPlan,
    on_window: Callable[[int, np.ndarray], None] | None = None,
    progress=None,
) -> float:
    """Forward every window (batch of one) under ``torch.inference_mode``; returns seconds.

    ``on_window(w, kept)`` is called before window ``w``'s forward with the global indices of
    the tokens it owns, so hooks know which rows to keep.
    """
    device = next(loaded.model.parameters()).device
    pre = torch.tensor(al.prefix_ids, dtype=torch.long)
    suf = torch.tensor(al.suffix_ids, dtype=torch.long)
    ids_all = torch.from_numpy(al.input_ids)
    extra = {"use_cache": False} if loaded.family.causal else {}
    t = time.perf_counter()
    with torch.inference_mode():
        for w in range(plan.n_windows):
            if on_window is not None:
                on_window(w, plan.kept(w))
            ids = torch.cat([pre, ids_all[plan.starts[w] : plan.stops[w]], suf]).unsqueeze(0).to(device)
            loaded.model(input_ids=ids, attention_mask=torch.ones_like(ids), **extra)
            if progress is not None:
                progress.update(int(ids.shape[1]))
    return time.perf_counter() - t


def word_activations(
    loaded: LoadedModel,
    words: list[str],
    site: str = "ffn_out",
    pooling: str = "mean",
    context: int = 512,
    stride: int = 256,
    buffers: list[np.ndarray] | None = None,
    progress=None,
    source: str | None = None,
) -> WordActivations:
    """Capture ``site`` in every layer for every token and pool tokens into words.

    Parameters
    ----------
    words : list of str, length n_words
    buffers : list of arrays of shape (n_words, width_l), float32, optional
        Zero-filled accumulators, one per layer (e.g. disk-backed ``np.memmap``s so that
        memory stays bounded for large models); allocated in memory when omitted.

    Returns
    -------
    WordActivations
        ``values[l]`` of shape (n_words, width_l): the pooled activation of every word.
    """
    al, plan = prepare(loaded, words, context, stride, source)
    points = resolve_sites(loaded.model, loaded.family, site)
    if buffers is None:
        buffers = [np.zeros((al.n_words, p.width), dtype=np.float32) for p in points]
    accs = [torch.from_numpy(np.asarray(b)) if not isinstance(b, np.memmap) else torch.from_numpy(b) for b in buffers]
    sel = token_selection(al, pooling)
    n_pre = len(al.prefix_ids)
    state: dict = {}

    def on_window(w: int, kept: np.ndarray) -> None:
        kept = kept[sel[kept]]
        state["local"] = torch.from_numpy(kept - plan.starts[w] + n_pre)
        state["word"] = torch.from_numpy(al.word_of_token[kept])

    def sink(i: int, out: torch.Tensor) -> None:
        if out.shape[-1] != points[i].width:
            raise DataError(
                None,
                f"{points[i].module_path}: captured width {out.shape[-1]} differs from the config's {points[i].width}",
                "model",
            )
        rows = out[0].index_select(0, state["local"].to(out.device)).float().cpu()
        accs[i].index_add_(0, state["word"], rows)

    with capture(points, sink):
        secs = run_windows(loaded, al, plan, on_window, progress)
    counts = np.bincount(al.word_of_token[sel], minlength=al.n_words).astype(np.float32)
    for b in buffers:
        b /= counts[:, None]
    return WordActivations(points, buffers, al, plan, secs)
