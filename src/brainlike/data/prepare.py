"""Assemble every run a study uses into the prepared store (the `prepare` stage's library side)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._utils.atomic import atomic_paths
from .._utils.reproducible import portable_path, portable_paths
from ..config import Params
from .run import Run
from .store import write_store_at


def _network_masks(params: Params, pairs) -> dict[tuple[str, str], np.ndarray]:
    from .atlases import load_atlas

    atlases = {name: load_atlas(name, params.paths.atlases) for name in {a for a, _ in pairs}}
    return {(a, n): atlases[a].mask(n) for a, n in pairs}


def embedded_runs(params: Params) -> tuple[list[Run], dict[str, object]]:
    """The semi-synthetic default: story runs (+ the image-caption movie) and their sidecars.

    Sidecars (written next to the runs): ground truth and the planted feature time courses of
    each embedded stimulus.
    """
    from .embedded import embedded_features, make_embedded
    from .embedded.sidecars import STORY, sidecar_names

    cfg = params.embedded
    runs, truth = make_embedded(cfg, _network_masks(params, [(p.atlas, p.network) for p in cfg.planted]))
    truth_name, features_name = sidecar_names(STORY)
    sidecars: dict[str, object] = {
        truth_name: json.dumps(truth, indent=2, default=str) + "\n",
        features_name: embedded_features(cfg),
    }
    if cfg.movie.enabled:
        from .embedded.movie import MOVIE_PLANTED, make_embedded_movie, movie_design

        masks = _network_masks(params, [(a, n) for _, a, n in MOVIE_PLANTED])
        movie, movie_truth = make_embedded_movie(cfg, masks, event_s=cfg.movie.event_s)
        events, _, _, features = movie_design(cfg, cfg.movie.event_s)
        runs += movie
        truth_name, features_name = sidecar_names("movie")
        sidecars[truth_name] = json.dumps(movie_truth, indent=2, default=str) + "\n"
        sidecars["embedded/movie_events.parquet"] = events
        sidecars[features_name] = features
    return runs, sidecars


def _embedded_memo(params: Params) -> tuple[list[Run], dict[str, object]]:
    """:func:`embedded_runs` through the memo, keyed by its settings, the atlases' files, the
    embedded package's files (story, captions) and the packages its background and images come from."""
    from importlib import metadata

    from .._utils.memo import Memo, folder_files
    from . import embedded

    memo = Memo("prepare-embedded")
    versions = [metadata.version(p) for p in ("brainspace", "scikit-image")]
    return memo(lambda: embedded_runs(params), params.embedded, params.atlases, folder_files(params.paths.atlases),
                folder_files(Path(embedded.__file__).parent), versions)


def prepare_all(params: Params) -> dict:
    """Load every configured run and write ``paths.prepared`` atomically.

    Everything is loaded and checked before anything is written, so a bad input leaves the
    previous store untouched. A run of a dataset whose files cannot be read does not stop the
    others: it is listed under ``unreadable`` in the manifest and the summary (with a warning),
    and the ``validate`` stage fails it (``on_invalid: exclude`` leaves it out). Returns a
    summary (also written to ``metrics/prepare.json``).
    """
    import warnings

    from .loaders import load_dataset
    from .run import LoadFailure

    runs: list[Run] = []
    sidecars: dict[str, object] = {}
    datasets: dict[str, dict] = {}
    if params.embedded.enabled:
        # built once per setting: DVC re-runs this stage whole when a dataset is added or removed
        emb, emb_sidecars = _embedded_memo(params)
        runs += emb
        sidecars |= emb_sidecars
        datasets["embedded"] = {"kind": "embedded", "semi_synthetic": True, "n_runs": len(emb)}
    unreadable: list[LoadFailure] = []
    for ds in params.datasets:
        failed: list[LoadFailure] = []
        loaded = load_dataset(ds, failures=failed)
        for f in failed:
            warnings.warn(f"{f.run_id} not prepared: {f.source}: {f.problem}", stacklevel=2)
        runs += loaded
        unreadable += failed
        datasets[ds.name] = {"kind": ds.kind, "path": portable_path(ds.path), "n_runs": len(loaded), "n_unreadable": len(failed)}
    bad = portable_paths([u.to_dict() for u in unreadable])
    # the store and its summary are written, then published together (store first): a failure
    # or a kill while writing leaves both as they were, never a summary of another store
    with atomic_paths(params.paths.prepared, Path(params.paths.metrics) / "prepare.json") as (store_tmp, summary_tmp):
        entries = write_store_at(store_tmp, runs, extra={"datasets": datasets, "unreadable": bad}, sidecars=sidecars)
        size = sum(f.stat().st_size for f in store_tmp.rglob("*") if f.is_file())
        summary = {
            "n_runs": len(entries),
            "datasets": datasets,
            "prepared_bytes": size,
            "unreadable": bad,
            "runs": {e["run_id"]: {"n_trs": e["n_trs"], "n_targets": e["n_targets"], "tr": e["tr"]} for e in entries},
        }
        summary_tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
