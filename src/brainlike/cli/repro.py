"""``brainlike repro``: ``dvc repro`` with independent stages run side by side.

``dvc repro`` runs one stage at a time. Most of the default run's stages are independent of each
other (every model's extract -> patterns -> encode -> networks chain, the rotations, the baseline
and the bounds), and a stage process spends seconds on imports and DVC's bookkeeping with one
core busy. This driver reads the stage graph from DVC, and keeps ``--jobs`` stages running at
once, each through ``dvc --wait-for-lock repro --single-item <stage>``. DVC itself guarantees
that this is safe: it releases its repository lock while a stage's command runs, and holds a
read lock on the stage's dependencies and a write lock on its outputs; a stage starts here only
after every stage it depends on has finished, so those locks never meet.

What it produces is what ``dvc repro`` produces: the same stages run, with the same commands,
outputs, run cache and ``dvc.lock`` entries (stages are deterministic and do not depend on what
runs beside them). Two differences, both documented in the README: stage logs are printed whole
when a stage ends (two stages' lines would otherwise interleave), and a stage new to ``dvc.lock``
is appended in the order of ``dvc.yaml`` rather than in the order it happened to finish, so that
the lock file does not depend on timing. A stage that ``dvc.yaml`` no longer has (a model taken
out of params.yaml) is forgotten first (:func:`prune_removed`): DVC would keep its lock entry and
outputs. After the last stage, ``dvc status`` must be clean;
anything left (a stage this plan did not foresee) is handed to a plain ``dvc repro``.

Each stage's worker pool (``compute.scheduler: processes``) is capped at its share of the cores
(``BRAINLIKE_COMPUTE_WORKERS``: cores // stages running at once; all of them for a stage that runs
alone): two stages on two cores each forking two workers ran ~15 % slower than with one each
(measured on two encode stages side by side). Results do not depend on the number of workers.

Wall times per stage go to the untracked ``build/repro-times.json`` and are printed at the end.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .._utils.atomic import write_text_atomic
from .._utils.yamlio import safe_load  # libyaml: dvc.lock is read after every stage
from .._utils.reproducible import build_dir

TIMES_FILE = "repro-times.json"


@dataclass(frozen=True)
class Plan:
    """The stages to run and how they depend on each other.

    Attributes
    ----------
    order : list of str
        Every stage of the project, in ``dvc.yaml`` order (DVC's index order).
    upstream : dict
        Stage -> the stages whose outputs it reads.
    todo : list of str
        The stages to run (in ``order``): those ``dvc status`` reports as changed and everything
        downstream of them (whose inputs are about to change).
    changed : set of str
        The stages of ``todo`` that ``dvc status`` reports as changed. The others run only if a
        stage they read from rewrites its outputs (:func:`run` skips them otherwise).
    """

    order: list[str]
    upstream: dict[str, set[str]]
    todo: list[str]
    changed: frozenset[str] = frozenset()


def plan(root: str | os.PathLike = ".", targets: Sequence[str] = (), prune: bool = False) -> Plan:
    """Read the stage graph and the changed stages from DVC (``targets``: these and their upstream).

    ``prune``: first forget the stages ``dvc.lock`` has and ``dvc.yaml`` no longer has
    (:func:`prune_removed`), so that the status is that of the clone without them.
    """
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        if prune:
            prune_removed(repo)
        graph = repo.index.graph
        stages = list(repo.index.stages)
        top = Path(repo.root_dir)

        def name(s) -> str:  # as `dvc repro` takes it in the project's root
            where = Path(s.path).parent
            return s.name if where == top else f"{Path(s.path).relative_to(top)}:{s.name}"

        order = [name(s) for s in stages]
        # DVC's graph has an edge from a stage to each stage it depends on
        upstream = {name(s): {name(d) for d in graph.successors(s)} for s in stages}
        status = repo.status()
        changed = {name(s) for s in stages if s.addressing in status}
    downstream: dict[str, set[str]] = {s: set() for s in order}
    for s, ups in upstream.items():
        for u in ups:
            downstream[u].add(s)
    todo = set(_closure(changed, downstream))
    if targets:
        unknown = [t for t in targets if t not in upstream]
        if unknown:
            raise SystemExit(f"error: no such stage: {', '.join(unknown)} (see `dvc stage list`)")
        todo &= set(_closure(targets, upstream))
    return Plan(order, upstream, [s for s in order if s in todo], frozenset(changed & todo))


def prune_removed(repo, out=None) -> list[str]:
    """Forget the stages that ``dvc.lock`` records and ``dvc.yaml`` no longer has (``repo``: an open DVC Repo).

    A model (or dataset) taken out of params.yaml takes its ``foreach`` stages out of
    ``dvc.yaml``, but DVC keeps their ``dvc.lock`` entries, their outputs on disk and their
    ``.gitignore`` lines: the folders left in ``data/encoding/`` then change the hash of every
    stage that reads the whole folder, and the clone no longer matches the commit it came from.
    Each removed stage's outputs (still in DVC's cache, so ``dvc checkout`` of an older commit
    brings them back) are deleted and their ``.gitignore`` lines removed as ``dvc remove`` does
    (DVC's SCM context, which stages the edits under ``core.autostage``); the entry leaves
    ``dvc.lock``. An output inside, or holding, a current stage's output is left alone.
    Returns the removed stages.
    """
    import shutil

    from dvc.utils.serialize import modify_yaml

    top = Path(repo.root_dir).resolve()
    lock = top / "dvc.lock"
    entries = _read_lock(lock)
    names = {s.name for s in repo.index.stages if Path(s.path).parent == top}
    gone = [s for s in entries if s not in names]
    if not gone:
        return []
    current = [Path(o.fs_path).resolve() for s in repo.index.stages for o in s.outs]
    out = sys.stdout if out is None else out
    with repo.scm_context(quiet=True):
        for s in gone:
            for o in entries[s].get("outs") or []:
                path = (top / str(o.get("path", ""))).resolve()
                if path == top or top not in path.parents or any(
                        path == c or c in path.parents or path in c.parents for c in current):
                    continue
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
                repo.scm_context.ignore_remove(str(path))
            print(f"brainlike repro: {s} is no longer in dvc.yaml: its outputs and dvc.lock entry removed",
                  file=out, flush=True)
        with modify_yaml(str(lock)) as data:
            for s in gone:
                data["stages"].pop(s, None)
        repo.scm_context.track_file(os.path.relpath(lock))
    return gone


def _closure(start, edges: Mapping[str, set[str]]) -> set[str]:
    seen, stack = set(), list(start)
    while stack:
        s = stack.pop()
        if s not in seen:
            seen.add(s)
            stack.extend(edges.get(s, ()))
    return seen


def _priorities(p: Plan, cost: Mapping[str, float]) -> dict[str, tuple[float, int]]:
    """Longest chain of work (``cost`` seconds, 1 where unknown) from each stage to the end, and
    the number of stages downstream: among ready stages the one that holds up the most starts first."""
    todo = set(p.todo)
    down: dict[str, set[str]] = {s: set() for s in todo}
    for s in todo:
        for u in p.upstream[s] & todo:
            down[u].add(s)
    prio: dict[str, tuple[float, int]] = {}
    for s in reversed(p.todo):  # index order is topological
        # then, among equal chains, the stage that more stages wait for (the rotations: every
        # model's networks stage)
        prio[s] = (cost.get(s, 1.0) + max((prio[d][0] for d in down[s]), default=0.0),
                   len(_closure(down[s], down)))
    return prio


def _workers_env(side_by_side: int) -> dict[str, str]:
    """The environment of a stage that starts with ``side_by_side`` stages running (itself included):
    its worker pool is capped at its share of the cores (``BRAINLIKE_COMPUTE_WORKERS``), unless the
    caller set the cap."""
    from .._utils.compute import ENV_WORKERS

    env = dict(os.environ)
    if ENV_WORKERS not in env:
        env[ENV_WORKERS] = str(max(1, (os.cpu_count() or 1) // max(1, side_by_side)))
    return env


def _run_one(stage: str, dvc: Sequence[str], log_dir: str, side_by_side: int = 1) -> tuple[int, float, float, str]:
    t0 = time.time()
    with tempfile.NamedTemporaryFile("w+", dir=log_dir, prefix="stage-", suffix=".log", delete=False) as log:
        rc = subprocess.call([*dvc, "--wait-for-lock", "repro", "--single-item", stage],
                             stdout=log, stderr=subprocess.STDOUT, env=_workers_env(side_by_side))
        log.seek(0)
        text = log.read()
    os.unlink(log.name)
    return rc, t0, time.time(), text


def _read_lock(lock_path: Path) -> dict:
    """``dvc.lock``'s ``stages`` mapping ({} without the file).

    Another stage's DVC may be rewriting the file at that moment: a read that does not parse is
    retried for ~1 s before its error is raised.
    """
    import yaml

    for attempt in range(20):
        try:
            data = safe_load(lock_path.read_text()) if lock_path.exists() else {}
            return (data or {}).get("stages") or {}
        except (OSError, yaml.YAMLError):
            if attempt == 19:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def _lock_entries(lock_path: Path) -> dict:
    """:func:`_read_lock`, or {} when the file cannot be read (every stage then counts as changed)."""
    import yaml

    try:
        return _read_lock(lock_path)
    except (OSError, yaml.YAMLError):
        return {}


def _lock_outs(lock_path: Path, stages) -> dict[str, list]:
    """Each of ``stages``' ``outs`` entries (path and hash) in ``dvc.lock``; a stage absent there
    is left out, and so is every stage when the file cannot be read (they then count as rewritten)."""
    entries = _lock_entries(lock_path)
    return {s: [(o.get("path"), o.get("md5")) for o in entries[s].get("outs") or []]
            for s in stages if isinstance(entries.get(s), dict)}


def _inputs_unchanged(stage: str, rewritten: set[str], entries: Mapping) -> bool:
    """Whether every input ``stage`` takes from the outputs of the stages in ``rewritten`` is a
    file whose md5 is still the one ``dvc.lock`` (``entries``) records for it (DVC 3's ``hash:
    md5``: of the bytes). A folder, a missing file or an entry this cannot read counts as changed.

    ``materialise`` rewrites ``data/models/`` when a model is added, and each ``extract@<model>``
    reads only its own ``by-model/<model>.json`` in it: the other models need not be asked.
    """
    import hashlib

    mine = entries.get(stage)
    if not isinstance(mine, dict) or not mine.get("outs"):  # outs come last: an entry read whole
        return False
    outs = [str(o.get("path", "")).rstrip("/") for u in rewritten
            for o in ((entries.get(u) or {}).get("outs") or [])]
    for d in mine.get("deps") or []:
        path = str(d.get("path", "")).rstrip("/")
        if not any(path == o or path.startswith(o + "/") or o.startswith(path + "/") for o in outs):
            continue
        md5 = str(d.get("md5", ""))
        if d.get("hash") != "md5" or md5.endswith(".dir") or not Path(path).is_file():
            return False
        if hashlib.md5(Path(path).read_bytes()).hexdigest() != md5:
            return False
    return True


def _is_alone(stage: str, alone: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(stage, pat) for pat in alone)


def run(p: Plan, jobs: int, dvc: Sequence[str] = ("dvc",), cost: Mapping[str, float] | None = None,
        out=None, alone: Sequence[str] = ()) -> tuple[int, dict[str, dict]]:
    """Run ``p.todo`` with at most ``jobs`` stages at a time.

    Stages matching a pattern of ``alone`` (fnmatch, e.g. ``extract@*``) use every core
    themselves: they run with nothing beside them.

    A stage that is planned only because it reads from a changed one (not in ``p.changed``) is
    skipped, without starting a process, when every planned stage it reads from has finished
    with the same outputs in ``dvc.lock`` as before, or when what it reads of a rewritten output
    is files with the md5 ``dvc.lock`` records (:func:`_inputs_unchanged`): its inputs are then
    what ``dvc.lock`` already records, so DVC would find it up to date too (adding a model
    re-runs ``materialise``, and every model's chain used to be asked, ~1 s a stage).

    Returns the exit code (that of the first stage that failed, else 0) and each finished
    stage's ``{"start_s", "seconds", "rc"}`` (start relative to the first stage; a skipped stage
    has ``"skipped": true`` instead of ``"seconds"``).
    On a failure no further stage starts; the running ones finish.
    """
    out = sys.stdout if out is None else out
    prio = _priorities(p, cost or {})
    planned, todo, done = set(p.todo), set(p.todo), set()
    lock = Path("dvc.lock")
    outs_before = _lock_outs(lock, p.todo)
    rewrote: set[str] = set()  # finished stages whose outputs differ from dvc.lock's before the run
    times: dict[str, dict] = {}
    running: dict[Future, str] = {}
    rc_first = 0
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="brainlike-repro-") as log_dir, \
            ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while True:
            if rc_first == 0:
                # ready: not started, and every planned stage it reads from has finished
                ready = [s for s in p.todo if s in todo and not (p.upstream[s] & planned - done)]
                waiting = [s for s in ready if s not in p.changed]
                # dvc.lock is parsed once a pass, and only when a waiting stage reads a rewritten output
                entries = _lock_entries(lock) if any(p.upstream[s] & rewrote for s in waiting) else {}
                idle = [s for s in waiting if not (p.upstream[s] & rewrote)
                        or _inputs_unchanged(s, p.upstream[s] & rewrote, entries)]
                for s in idle:
                    todo.discard(s)
                    done.add(s)
                    times[s] = {"start_s": round(time.time() - t_start, 1), "skipped": True, "rc": 0}
                    print(f"--- {s}: up to date (what it reads from did not change)", file=out, flush=True)
                if idle:
                    continue  # what they unblock is ready now
                ready.sort(key=lambda s: (-prio[s][0], -prio[s][1]))  # stable: index order among equals
                # how many stages run after this pass: each forks workers for its share of the
                # cores only (a stage that runs alone, the last ones of a run, gets every core)
                side = min(max(1, jobs), len(running) + len(ready))
                for s in ready:
                    if len(running) >= max(1, jobs) or any(_is_alone(r, alone) for r in running.values()):
                        break
                    if _is_alone(s, alone):  # it waits for the others to finish, and nothing joins it
                        if not running:
                            todo.discard(s)
                            running[pool.submit(_run_one, s, dvc, log_dir, 1)] = s
                        break
                    todo.discard(s)
                    running[pool.submit(_run_one, s, dvc, log_dir, side)] = s
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in sorted(finished, key=lambda f: p.order.index(running[f])):
                s = running.pop(f)
                rc, t0, t1, text = f.result()
                times[s] = {"start_s": round(t0 - t_start, 1), "seconds": round(t1 - t0, 1), "rc": rc}
                print(f"--- {s} ({t1 - t0:.1f} s){'' if rc == 0 else f', exit {rc}'}", file=out)
                print(text.rstrip("\n"), file=out, flush=True)
                done.add(s)
                if rc == 0 and (s not in outs_before or _lock_outs(lock, [s]).get(s) != outs_before[s]):
                    rewrote.add(s)
                if rc != 0 and rc_first == 0:
                    rc_first = rc
                    print(f"error: stage {s} failed (exit {rc}); no further stage starts", file=out, flush=True)
    return rc_first, times


def order_lock(lock_path: str | os.PathLike, order: Sequence[str], before: Sequence[str]) -> bool:
    """Put the stages that are new in ``lock_path`` (not in ``before``) in ``order``, after the old ones.

    DVC appends a stage to ``dvc.lock`` when it first finishes, so stages that ran side by side
    would land in the order they finished. Returns whether the file was rewritten.
    """
    from dvc.utils.serialize import modify_yaml

    path = Path(lock_path)
    current = _lock_stages(path)
    old = [s for s in current if s in set(before)]
    new = sorted((s for s in current if s not in set(before)),
                 key=lambda s: (order.index(s) if s in order else len(order), s))
    if current == old + new:
        return False  # the usual case: the file is left as DVC wrote it
    with modify_yaml(str(path)) as data:
        stages = data["stages"]
        items = {s: stages[s] for s in old + new}
        for s in list(stages):
            del stages[s]
        stages.update(items)
    return True


def _lock_stages(lock_path: Path) -> list[str]:
    return list(_read_lock(lock_path))


def _previous_costs() -> dict[str, float]:
    f = build_dir() / TIMES_FILE
    try:
        rec = json.loads(f.read_text())
        return {s: float(v["seconds"]) for s, v in rec.get("stages", {}).items() if "seconds" in v}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def repro_main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="brainlike repro",
        description="dvc repro, with up to --jobs independent stages running at once (same outputs)")
    parser.add_argument("targets", nargs="*", help="stages to bring up to date with their upstream (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                        help="stages at once (default: the number of cores)")
    parser.add_argument("--alone", action="append", default=[], metavar="PATTERN",
                        help="stages (fnmatch pattern, repeatable) that use every core and run with nothing beside them")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    dvc = [sys.executable, "-m", "dvc"]
    t0 = time.time()
    p = plan(".", args.targets, prune=True)
    if not p.todo:
        print("Data and pipelines are up to date.")
        return 0
    lock = Path("dvc.lock")
    before = _lock_stages(lock)
    print(f"brainlike repro: {len(p.todo)} stages, {args.jobs} at a time", flush=True)
    rc, times = run(p, args.jobs, dvc, cost=_previous_costs(), alone=args.alone)
    if order_lock(lock, p.order, before):
        print("brainlike repro: new stages put in dvc.yaml order in dvc.lock")
    total = time.time() - t0
    _write_times(times, args.jobs, total)
    if rc != 0:
        return rc
    left = plan(".", args.targets).todo
    if left:  # not expected: hand whatever is left to DVC itself
        print(f"brainlike repro: still changed after the plan: {', '.join(left)}; running dvc repro", flush=True)
        rc = subprocess.call([*dvc, "repro", *args.targets])
        if rc != 0:
            return rc
    _print_times(times, total)
    return 0


def _write_times(times: Mapping[str, dict], jobs: int, total: float) -> None:
    path = build_dir() / TIMES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {"jobs": jobs, "total_s": round(total, 1),
           "stages": dict(sorted(times.items(), key=lambda kv: kv[1]["start_s"]))}
    write_text_atomic(path, json.dumps(rec, indent=1) + "\n")


def _print_times(times: Mapping[str, dict], total: float) -> None:
    busy = sum(v.get("seconds", 0.0) for v in times.values())
    skipped = sum(1 for v in times.values() if v.get("skipped"))
    print(f"brainlike repro: {len(times) - skipped} stages in {total:.0f} s "
          f"({busy:.0f} stage-seconds; per stage: {build_dir() / TIMES_FILE})"
          + (f"; {skipped} up to date without running" if skipped else ""))
