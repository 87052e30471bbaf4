"""Fault injection: each stage SIGKILLed at a seeded random point of its writing, then run again.

For ``patterns``, ``encode``, ``networks``, ``metrics`` and ``register`` (the real scripts
``pipelines/<stage>.py --params params.yaml``, in a workspace holding the small study of
``test_stages`` and a small activation store), in pipeline order:

1. a reference run, uninterrupted: its outputs (bytes), the workspace's file listing, and when
   it first wrote anything (a temporary beside an output, an output, the MLflow store);
2. an earlier run's outputs planted in place of the outputs, the stage started again and
   SIGKILLed at a seeded random point of its writing phase (from its first write, a random
   fraction of the reference's writing time; a smaller one if it finished first): each output
   must be the earlier one or the new one in full, published in order (data before its
   metrics), and once the first is published every other must already be written in full
   beside its final name -- never the outputs of two runs side by side;
3. the stage run again over what the kill left: outputs byte-identical to the reference, the
   workspace listing identical (no temporary beside an output, in a folder another stage reads,
   or anywhere else), the process's own ``TMPDIR`` empty (after every run, killed or not);
   for ``register``, in a real SQLite MLflow store: exactly one FINISHED parent run per
   provenance hash (those of ``metrics/registry.json``), and no RUNNING run left.

Before its first write a stage holds nothing on disk, so the kill goes where a fault can leave
something behind. Each run is a new process forked from a server that has imported the stages
once (Python's ``forkserver``): a run starts in milliseconds rather than the ~8 s of importing
torch and MLflow, and what runs in it is the stage script itself (``runpy``), as ``dvc repro``
runs it.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml

from test_patterns import _known, _store
from test_stages import study  # noqa: F401  (module fixture, reused)

REPO = Path(__file__).resolve().parents[1]
SEED = 20240611
PREVIOUS = b"an earlier run's output\n"
# stage -> (script and arguments, outputs in the order the stage publishes them)
STAGES = {
    "patterns": (["patterns.py", "--model", "toy"], ["patterns/toy", "metrics/patterns/toy.json"]),
    "encode": (["encode.py", "--model", "m"], ["encoding/m", "metrics/encode/m.json"]),
    "networks": (["networks.py", "--model", "m"], ["networks/m", "metrics/networks/m.json"]),
    "metrics": (["metrics.py"], ["metrics/organization.json", "metrics/organization.parquet",
                                 "metrics/recovery.json", "metrics/alice.json"]),
    "register": (["register.py"], ["metrics/registry.json"]),
}
# what else a stage writes to (its first write starts the window the kill falls in)
WRITES_ALSO = {"register": ["mlflow.db"]}
# run once, not killed: inputs of the stages above
UPSTREAM = {"encode-m-random": ["encode.py", "--model", "m-random"], "encode-baseline": ["encode.py", "--baseline"],
            "spins": ["networks.py", "--spins"]}
PRELOAD = ["brainlike.cli", "brainlike.patterns.stage", "brainlike.encoding.stage", "brainlike.networks.stage",
           "brainlike.metrics.stage", "brainlike.registry.stage", "brainlike.registry.log", "mlflow",
           "mlflow.store.tracking.sqlalchemy_store", "matplotlib.pyplot", "torch"]
# what a child runs: the stage script as `python pipelines/<script> ... --params params.yaml` would
BOOT = """
import os, runpy, sys, tempfile
os.chdir(workspace)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.update(env)
tempfile.tempdir = None  # read TMPDIR again
fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.dup2(fd, 1)
os.dup2(fd, 2)
import torch
torch.set_num_threads(1)
sys.argv = argv
runpy.run_path(argv[0], run_name="__main__")
"""
INIT_STORE = """
import os
os.environ.pop("MLFLOW_TRACKING_URI", None)
from mlflow import MlflowClient
MlflowClient(uri).search_experiments()
"""
POLL_S = 0.002


class Workspace:
    """The study as a repository: params.yaml with relative paths, stages run as processes."""

    def __init__(self, root: Path, scratch: Path, ctx):
        self.root, self.scratch, self.ctx = root, scratch, ctx
        self.references: dict[str, dict] = {}
        self.n_runs = 0
        self.store_init = None

    # -- processes ------------------------------------------------------------------------------
    def start(self, argv: list[str], tmpdir: Path):
        self.n_runs += 1
        log = self.scratch / f"run-{self.n_runs:02d}-{Path(argv[0]).stem}.log"
        env = {"TMPDIR": str(tmpdir), "BRAINLIKE_BUILD": str(self.root / "build")}
        script = [str(REPO / "pipelines" / argv[0]), *argv[1:], "--params", "params.yaml"]
        proc = self.ctx.Process(target=exec, args=(BOOT, {"workspace": str(self.root), "env": env,
                                                          "log": str(log), "argv": script}))
        proc.start()
        return proc, log

    def finish(self, proc, log: Path, what: str, tmpdir: Path) -> None:
        """Wait for a run; fail on a non-zero exit or a leftover in its TMPDIR."""
        proc.join(600)
        assert proc.exitcode == 0, f"{what} exited {proc.exitcode}:\n{_tail(log)}"
        assert not list(tmpdir.iterdir()), f"{what} left in its TMPDIR: {sorted(p.name for p in tmpdir.iterdir())}"

    def run(self, argv: list[str], tmpdir: Path) -> None:
        proc, log = self.start(argv, tmpdir)
        self.finish(proc, log, " ".join(argv), tmpdir)

    def tmpdir(self, name: str) -> Path:
        d = self.scratch / "tmp" / name
        d.mkdir(parents=True)
        return d

    # -- state ----------------------------------------------------------------------------------
    def snapshot(self, outputs: list[str]) -> dict[str, dict[str, bytes] | None]:
        """Bytes of every file of every output (None: the output is absent)."""
        return {out: _contents(self.root / out) for out in outputs}

    def signature(self, stage: str) -> list:
        """What changes at a stage's first write: its outputs and their temporaries, its store."""
        sig = []
        for rel in STAGES[stage][1] + WRITES_ALSO.get(stage, []):
            p = self.root / rel
            try:
                st = p.stat()
                sig.append((rel, st.st_mtime_ns, st.st_size, st.st_ino))
            except FileNotFoundError:
                sig.append((rel, None))
            names = os.listdir(p.parent) if p.parent.is_dir() else []
            sig.append(sorted(n for n in names if n.startswith(f".{p.name}.")))
        return sig

    def first_write(self, proc, stage: str, t0: float, before: list) -> float | None:
        """Seconds from ``t0`` to the stage's first write (its :meth:`signature` no longer
        ``before``, polled); None if it ended first."""
        while proc.is_alive():
            if self.signature(stage) != before:
                return time.monotonic() - t0
            time.sleep(POLL_S)
        return None

    def listing(self) -> set[str]:
        """Every file and folder of the workspace, but the MLflow artifact store (run ids)."""
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                if p.relative_to(self.root).parts[0] != "mlartifacts"}

    def remove(self, paths: list[str]) -> None:
        for rel in paths:
            p = self.root / rel
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def plant_previous(self, outputs: list[str], ref: dict) -> None:
        """Outputs of an earlier run with other inputs, in place of the stage's outputs."""
        self.remove(outputs)
        for out in outputs:
            p = self.root / out
            if "" in ref["outputs"][out]:  # a file
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(PREVIOUS)
            else:
                p.mkdir(parents=True)
                (p / "previous.txt").write_bytes(PREVIOUS)

    def reset_store(self) -> None:
        """An empty MLflow store (the tracking URI of params.yaml) and no registry summaries."""
        self.store_init.join(300)
        assert self.store_init.exitcode == 0, "could not make an empty MLflow store"
        self.remove(["mlflow.db", "mlartifacts", "build/registry.json"])
        shutil.copy(self.scratch / "empty.db", self.root / "mlflow.db")

    def reference(self, stage: str) -> dict:
        """The stage's uninterrupted run (the stages before it first): outputs, listing, and the
        seconds from its start to its first write and to its end."""
        order = list(STAGES)
        for before in order[:order.index(stage)]:
            if before not in self.references:
                self.reference(before)
        if stage == "encode":
            for name, argv in UPSTREAM.items():
                self.run(argv, self.tmpdir(name))
        if stage == "register":
            self.reset_store()
        argv, outputs = STAGES[stage]
        self.remove(outputs)
        tmpdir = self.tmpdir(f"{stage}-reference")
        before = self.signature(stage)
        t0 = time.monotonic()
        proc, log = self.start(argv, tmpdir)
        first = self.first_write(proc, stage, t0, before)
        self.finish(proc, log, stage, tmpdir)
        seconds = time.monotonic() - t0
        assert first is not None, f"{stage}: no write seen"
        ref = {"outputs": self.snapshot(outputs), "listing": self.listing(), "first_write": first,
               "seconds": seconds}
        assert all(v is not None for v in ref["outputs"].values()), ref["outputs"].keys()
        self.references[stage] = ref
        return ref


def _contents(p: Path) -> dict[str, bytes] | None:
    """``{relative name: bytes}`` of a folder's files, ``{"": bytes}`` of a file, None if absent."""
    if p.is_dir():
        return {f.relative_to(p).as_posix(): f.read_bytes() for f in sorted(p.rglob("*")) if f.is_file()}
    return {"": p.read_bytes()} if p.is_file() else None


def _previous(ref_output: dict) -> dict:
    return {"": PREVIOUS} if "" in ref_output else {"previous.txt": PREVIOUS}


def _tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:] if log.is_file() else "(no log)"


@pytest.fixture(scope="module")
def server():
    """The process the stage runs are forked from; it imports the stages while the study is built."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    with pytest.MonkeyPatch.context() as mp:  # one BLAS/OpenMP thread in the server and its children
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            mp.setenv(var, "1")
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return ctx


@pytest.fixture(scope="module")
def workspace(server, study, tmp_path_factory):  # noqa: F811
    """The study's folder with a params.yaml, a small activation store and an empty MLflow store
    (made while the first stages run)."""
    root = Path(study.paths.prepared).parent
    scratch = tmp_path_factory.mktemp("fault-injection")  # logs, TMPDIRs: outside the workspace
    X, _ = _known()
    X = X[:, :1200]
    _store(root / "activations", (X - X.mean(0)) / X.std(0), n_layers=3)
    params = {
        "paths": {"atlases": str(study.paths.atlases), "prepared": "prepared", "metrics": "metrics"},
        "embedded": {"enabled": False},
        "models": {"m": {"generation": "g", "source": "pip:x", "trained": True},
                   "m-random": {"generation": "g", "source": "pip:x", "trained": False}},
        "extract": {"output": "activations"},
        "patterns": {"output": "patterns", "n_atoms": 12, "lambda_an": 0.1, "n_iter": 20, "batch_size": 256,
                     "device": "cpu"},
        # the study's encoding, lighter: the outputs only have to be the same twice
        "encoding": study.encoding.model_dump(mode="json", exclude_unset=True)
        | {"output": "encoding", "baseline_output": "baseline", "alphas": [10.0, 100.0], "vertex_alphas": [100.0],
           "n_folds": 2, "n_permutations": 10, "band_scales": [1.0], "n_boot": 100, "threads": 1},
        "networks": {"output": "networks", "spins": "spins.npy", "n_spins": 20, "atlases": list(study.networks.atlases)},
        "registry": {"tracking_uri": "sqlite:///mlflow.db", "artifact_location": "mlartifacts"},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ws = Workspace(root, scratch, server)
    ws.store_init = server.Process(target=exec, args=(INIT_STORE, {"uri": f"sqlite:///{scratch / 'empty.db'}"}))
    ws.store_init.start()
    yield ws
    ws.store_init.join(300)


def _killed_run(ws: Workspace, stage: str, ref: dict, rng: random.Random, tmpdir: Path) -> str:
    """Start the stage over an earlier run's outputs and SIGKILL it a random fraction of the
    reference's writing time after its first write (a quarter of that fraction if it finished
    first; if it finished first again, writing is too quick to hit: killed before its first
    write, then at once); where it was killed, in words."""
    argv, outputs = STAGES[stage]
    window = ref["seconds"] - ref["first_write"]
    fraction = rng.random()
    firsts = [ref["first_write"]]  # when writing began, in the reference and in the attempts
    for attempt in range(4):
        if stage == "register":
            ws.reset_store()
        ws.plant_previous(outputs, ref)
        before = ws.signature(stage)
        t0 = time.monotonic()
        proc, log = ws.start(argv, tmpdir)
        if attempt < 2:
            first = ws.first_write(proc, stage, t0, before) or float("nan")
            if math.isfinite(first):
                firsts.append(first)
            proc.join(fraction * window)
            where = (f"{stage} killed {fraction * window:.3f} s after its first write at {first:.2f} s "
                     f"(reference: writes from {ref['first_write']:.2f} s to {ref['seconds']:.2f} s)")
        else:
            # before the earliest first write seen: a warm run (the attempts) starts writing
            # sooner than the reference did, and a stage that writes only at its end (metrics,
            # once fast) would otherwise finish before a kill timed on the reference
            # the last attempt kills at once: a stage whose whole run is ~0.2 s (metrics) was
            # once done before even the kill above, under CI load
            proc.join((rng.uniform(0.1, 0.9) if attempt == 2 else 0.02) * min(firsts))
            where = f"{stage} killed {time.monotonic() - t0:.2f} s after its start, before its writing"
        if proc.exitcode is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:  # it ended between the check and the kill: it finished first
                pass
            proc.join(60)
        if proc.exitcode == -signal.SIGKILL:
            return where
        assert proc.exitcode == 0, f"{stage} exited {proc.exitcode}:\n{_tail(log)}"
        fraction /= 4  # it finished first
    raise AssertionError(f"{stage} always finished before the kill")


def _check_killed_state(ws: Workspace, outputs: list[str], ref: dict, where: str) -> list[str]:
    """Each output is the previous one or the new one in full, published in order; once one is
    new, every other was written in full beside it (the kill fell among the renames).

    Returns the state of each output: new, swapping (a folder between its two renames), previous.
    """
    states, written = [], []
    for out in outputs:
        p, new, prev = ws.root / out, ref["outputs"][out], _previous(ref["outputs"][out])
        cur = _contents(p)
        beside = [_contents(t) for t in p.parent.glob(f".{p.name}.*.tmp/{p.name}")]
        if cur == new:
            states.append("new")
        elif cur == prev:
            states.append("previous")
        elif cur is None and prev in [_contents(o) for o in p.parent.glob(f".{p.name}.*.old/{p.name}")]:
            states.append("swapping")
        else:
            raise AssertionError(f"{where}: {out} is neither the previous output nor the new one: "
                                 f"{sorted(cur or [])[:10]}")
        written.append(new in beside)
    rank = ["new", "swapping", "previous"]
    assert states == sorted(states, key=rank.index), f"{where}: published out of order: {dict(zip(outputs, states))}"
    if states[0] != "previous":  # publishing had begun: nothing was left to compute
        for out, state, ok in zip(outputs, states, written):
            assert state == "new" or ok, (f"{where}: {out} is still the previous one and its new version was not "
                                          f"written yet: outputs of two runs side by side {dict(zip(outputs, states))}")
    return states


def _runs(db: Path) -> list:
    """Every run of the store, deleted ones included."""
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    client = MlflowClient(f"sqlite:///{db}")
    exps = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    return client.search_runs(exps, "", run_view_type=ViewType.ALL, max_results=10000)


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_then_rerun_gives_the_same_outputs_and_no_leftover(workspace, stage):
    ws = workspace
    ref = ws.references.get(stage) or ws.reference(stage)
    argv, outputs = STAGES[stage]
    tmpdir = ws.tmpdir(f"{stage}-killed")
    where = _killed_run(ws, stage, ref, random.Random(f"{SEED}:{stage}"), tmpdir)
    states = _check_killed_state(ws, outputs, ref, where)
    print(f"{where}: {dict(zip(outputs, states))}")  # shown with -s, or on a failure
    # run again over what the kill left
    ws.run(argv, tmpdir)  # its TMPDIR (the killed run's too) is empty after it
    again = ws.snapshot(outputs)
    for out in outputs:
        assert again[out] is not None and again[out].keys() == ref["outputs"][out].keys(), f"{where}: {out} files"
        for name, data in again[out].items():
            assert data == ref["outputs"][out][name], f"{where}: {out}/{name} differs from the reference"
    listing = ws.listing()
    assert listing == ref["listing"], (f"{where}: left {sorted(listing - ref['listing'])}, "
                                       f"lost {sorted(ref['listing'] - listing)}")
    if stage == "register":
        summary = json.loads((ws.root / "metrics/registry.json").read_text())
        hashes = sorted(v["provenance_hash"] for v in summary["models"].values())
        assert len(hashes) == 4  # (m, m-random) x (embedded, alice)
        runs = _runs(ws.root / "mlflow.db")
        active = [r for r in runs if r.data.tags.get("brainlike.level") == "model" and r.info.lifecycle_stage == "active"]
        assert sorted(r.data.tags["brainlike.provenance_hash"] for r in active) == hashes, where
        assert {r.info.status for r in active} == {"FINISHED"}, where
        assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"], f"{where}: a run is still RUNNING"
