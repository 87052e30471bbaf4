"""Where independent units of work run: in process (``serial``) or on Dask workers.

One small layer over ``dask.distributed`` so that stages say *what* is independent (one task
per run, per (model, stimulus), ...) and params.yaml says *where* it runs::

    with open_executor(params.compute) as ex:
        results = ex.map(fit_one, jobs, key_prefix="encode")   # input order

- ``serial``: a plain loop in the calling process; dask is not even imported.
- ``local``: a :class:`dask.distributed.LocalCluster` of worker *processes* (``n_workers``,
  default one per core) and a :class:`~dask.distributed.Client`; no dashboard, no network.
- ``processes``: a pool of worker processes forked from the stage's process for each
  :meth:`Executor.map` call (one per core, or ``n_workers``), each task pinned to
  ``threads_per_worker`` threads. Forked workers inherit the stage's memory, so tasks are handed
  in-memory objects (nothing is pickled on the way in, only results on the way back) and start
  in milliseconds, where a ``local`` cluster spends ~9 s starting and ships every input. Linux
  and macOS only (``fork``). A worker that dies fails the stage (no retries).
- an address (``tcp://host:8786``): a client of a running scheduler, e.g. one started by
  dask-jobqueue on Slurm or by dask-kubernetes. Workers then need the same filesystem as
  the caller: tasks take paths and read their own inputs from disk.

``BRAINLIKE_COMPUTE_SCHEDULER`` overrides ``compute.scheduler`` (as ``MLFLOW_TRACKING_URI``
overrides the registry's uri). ``BRAINLIKE_COMPUTE_WORKERS`` caps the ``processes`` and ``local``
workers: ``brainlike repro`` sets it for the stages it runs side by side, so that two stages on two
cores fork one worker each rather than two (four busy processes on two cores ran two encode stages
~15 % slower, measured); results do not depend on the number of workers. Tasks are module-level
functions with picklable arguments. On a worker every task runs with ``threads_per_worker``
threads for torch and the BLAS libraries (threadpoolctl), so that a result does not depend on
how many tasks share a machine; stages that pin threads for determinism (encoding ``threads``,
the patterns solver) still do so inside the task. A task whose worker dies (out of memory, a
killed node) is rerun by Dask on another worker: up to ``retries`` times on a ``local`` cluster
(the scheduler's ``allowed-failures``; an external scheduler uses its own setting), and a task
raising an unexpected exception (an I/O error on a network filesystem) is resubmitted
``retries`` times. A task's own
:class:`~brainlike.errors.BrainlikeError` (bad data, bad params) is deterministic: it is not
retried and comes back to the caller as the same exception.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import BrainlikeError, ConfigError

ENV_SCHEDULER = "BRAINLIKE_COMPUTE_SCHEDULER"
PARAMS_KEY = "compute.scheduler"
ENV_WORKERS = "BRAINLIKE_COMPUTE_WORKERS"


def effective_scheduler(cfg) -> str:
    """``compute.scheduler``, or ``$BRAINLIKE_COMPUTE_SCHEDULER`` when set (validated the same way)."""
    env = os.environ.get(ENV_SCHEDULER, "").strip()
    if not env:
        return cfg.scheduler
    from ..config import ComputeConfig

    try:
        return ComputeConfig(scheduler=env).scheduler
    except Exception as exc:  # pydantic's ValidationError, one line for the user
        raise ConfigError(f"${ENV_SCHEDULER}={env!r}: expected 'serial', 'processes', 'local' or a Dask scheduler address "
                          f"such as tcp://10.0.0.5:8786 (it overrides {PARAMS_KEY})") from exc


@contextlib.contextmanager
def cpu_threads(num_threads: int | None):
    """Run the block with ``num_threads`` CPU threads for torch and for numpy's BLAS, then restore.

    A fixed count fixes how CPU reductions split work, which bit-for-bit results depend on; and
    the fits' GEMMs are small, so extra threads mostly add synchronisation (on a shared machine a
    second thread waiting for a busy core made a dictionary fit 10-100x slower, measured at load 4
    on 2 cores). ``None`` leaves both
    settings as they are. torch is set only if something already imported it (a numpy-only task
    does not pay for importing torch).
    """
    if num_threads is None:
        yield
        return
    import sys

    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(int(num_threads))
    try:
        with threadpool_limits(limits=int(num_threads)):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)


@dataclass(frozen=True)
class _Pinned:
    """A task run with ``threads`` torch / BLAS threads (module-level, so it pickles)."""

    fn: Callable
    threads: int

    def __call__(self, *args):
        try:
            with cpu_threads(self.threads):
                return self.fn(*args)
        except BrainlikeError as exc:
            # bad data or params: the same on every retry, so returned (not raised) to skip retries
            return _Raised(exc)


@dataclass(frozen=True)
class _Raised:
    """A task's own BrainlikeError, carried back to the caller as a result."""

    exc: BrainlikeError


class Executor:
    """Runs independent tasks serially, on forked processes or on a Dask cluster; made by :func:`open_executor`.

    Attributes
    ----------
    scheduler : str
        ``serial``, ``local`` or the scheduler address.
    client : dask.distributed.Client or None
        None for ``serial``.
    in_process : bool
        True when tasks run in this process (``serial``): callers may then hand them objects
        already in memory instead of paths.
    """

    def __init__(self, scheduler: str, client=None, threads: int = 1, retries: int = 0, forks: int = 0):
        self.scheduler = scheduler
        self.client = client
        self.threads = threads
        self.retries = retries
        self.forks = forks

    @property
    def in_process(self) -> bool:
        # forked workers see the caller's memory as it was when map() was called
        return self.client is None

    @property
    def n_workers(self) -> int:
        """Workers currently connected (1 for ``serial``)."""
        if self.client is None:
            return max(1, self.forks)
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    @contextlib.contextmanager
    def side_process(self, initializer: Callable[..., None] | None = None, initargs: tuple = ()) -> Iterator[Any]:
        """One helper process, forked now, for work that can overlap this process's own.

        Only with ``processes`` and two or more workers (a second core to run on); otherwise
        yields None and the caller does that work itself. ``initializer(*initargs)`` (module
        level) runs in the helper as soon as it exists, e.g. a slow import the caller's next
        steps do not need. Yields a ``concurrent.futures`` executor with one worker; pending
        work is waited for on exit.
        """
        if self.client is not None or self.forks < 2:
            yield None
            return
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"),
                                   initializer=initializer, initargs=initargs)
        try:
            pool.submit(int)  # forks the helper now, so its initializer overlaps the caller's next steps
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def share(self, value: Any) -> Any:
        """Make a large read-only value available to every task of :meth:`map` (``shared=``).

        Serial: the value itself. Dask: a future of the value, sent once to every worker
        (``scatter(broadcast=True)``) instead of once per task.
        """
        if self.client is None:
            return value
        return self.client.scatter(value, broadcast=True, hash=False)

    def map(
        self,
        fn: Callable[..., Any],
        items: Iterable[Any],
        *,
        key_prefix: str | None = None,
        pure: bool = False,
        shared: Any = None,
        fork: bool = True,
    ) -> list:
        """``[fn(item) for item in items]``, the calls run as independent tasks.

        Parameters
        ----------
        fn : module-level callable of one argument (two with ``shared``: ``fn(item, shared)``)
        items : picklable arguments, one task each
        key_prefix : str, optional
            Names the tasks in Dask (``<prefix>-<index>-<token>``); default ``fn``'s name.
        pure : bool
            True lets Dask reuse the result of an identical earlier call (same fn and item).
        shared : optional
            A value from :meth:`share`, passed to every call as the second argument.
        fork : bool
            ``processes`` only: False runs the tasks here, one after another -- for tasks that
            use every core themselves (a model's forward pass on torch's threads).

        Returns
        -------
        list of results, in the order of ``items``. The first task to raise re-raises its
        exception here (the others are released).
        """
        items = list(items)
        extra = () if shared is None else (shared,)
        if self.client is None:
            # several tasks run on forked workers pinned to `threads`, one worker included (a pool
            # capped by $BRAINLIKE_COMPUTE_WORKERS): in the stage's process they would run on its
            # own thread count, and a BLAS reduction on two threads differs in the last bit
            if self.forks >= 1 and fork and len(items) > 1:
                return _fork_map(_Pinned(fn, self.threads), items, extra, self.forks)
            return [fn(it, *extra) for it in items]
        prefix = key_prefix or getattr(fn, "__name__", "task")
        task = _Pinned(fn, self.threads)
        token = uuid.uuid4().hex[:8]
        from distributed import as_completed

        futures = [self.client.submit(task, it, *extra, key=None if pure else f"{prefix}-{i:05d}-{token}",
                                      pure=pure, retries=self.retries)
                   for i, it in enumerate(items)]
        where: dict[str, list[int]] = {}
        for i, f in enumerate(futures):
            where.setdefault(f.key, []).append(i)
        out: list = [None] * len(items)
        try:
            for f in as_completed(futures):
                res = f.result()  # re-raises an unexpected exception once its retries are spent
                if isinstance(res, _Raised):
                    raise res.exc
                for i in where[f.key]:
                    out[i] = res
        finally:
            self.client.cancel(futures)
        return out


# What forked workers run: set just before the pool forks, read by the children (fork copies it).
_FORK_STATE: tuple | None = None


def _fork_call(i: int):
    task, items, extra = _FORK_STATE
    return task(items[i], *extra)


def _fork_map(task: _Pinned, items: list, extra: tuple, n_workers: int) -> list:
    """``[task(it, *extra) for it in items]`` on a pool forked now (children inherit ``items``)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    global _FORK_STATE
    _FORK_STATE = (task, items, extra)
    try:
        with ProcessPoolExecutor(min(n_workers, len(items)), mp_context=multiprocessing.get_context("fork")) as pool:
            out = list(pool.map(_fork_call, range(len(items))))
    except BrokenProcessPool as exc:
        name = getattr(task.fn, "__name__", "task")
        raise BrainlikeError(
            f"compute.scheduler 'processes': a worker running {name} died (killed, or out of memory). "
            "Rerun, or use 'local', which retries tasks of dead workers"
        ) from exc
    finally:
        _FORK_STATE = None
    for res in out:
        if isinstance(res, _Raised):
            raise res.exc
    return out


def effective_workers(cfg) -> int:
    """``compute.n_workers`` (default: one per core), at most ``$BRAINLIKE_COMPUTE_WORKERS`` when set."""
    n = cfg.n_workers or os.cpu_count() or 1
    env = os.environ.get(ENV_WORKERS, "").strip()
    if not env:
        return n
    if not env.isdigit() or int(env) < 1:
        raise ConfigError(f"${ENV_WORKERS}={env!r}: expected a whole number of workers >= 1 (it caps compute.n_workers)")
    return min(n, int(env))


@contextlib.contextmanager
def open_executor(cfg=None, *, connect_timeout_s: float = 20.0) -> Iterator[Executor]:
    """An :class:`Executor` for the ``compute`` section; closes the cluster/client on exit.

    Parameters
    ----------
    cfg : ComputeConfig, optional
        Default: serial.
    connect_timeout_s : float
        How long to wait for a scheduler address to answer.

    Raises
    ------
    ConfigError
        The scheduler address cannot be reached within ``connect_timeout_s``.
    """
    if cfg is None:
        from ..config import ComputeConfig

        cfg = ComputeConfig()
    scheduler = effective_scheduler(cfg)
    if scheduler == "processes":
        import multiprocessing

        if "fork" not in multiprocessing.get_all_start_methods():  # Windows
            import warnings

            warnings.warn("compute.scheduler 'processes' needs fork (Linux, macOS): running serially", stacklevel=3)
            scheduler = "serial"
    if scheduler == "serial":
        yield Executor("serial", None, cfg.threads_per_worker, cfg.retries)
        return
    if scheduler == "processes":
        yield Executor("processes", None, cfg.threads_per_worker, cfg.retries,
                       forks=effective_workers(cfg))
        return
    from distributed import Client, LocalCluster

    if scheduler == "local":
        import dask

        # The scheduler runs here: ``retries`` also bounds how often a task may lose its worker.
        # Dask's default MALLOC_TRIM_THRESHOLD_ for workers hands every freed large array back
        # to the OS; the fits allocate many large temporaries, and with it a run's encoding fit
        # took ~1.6x as long on a worker as in process (measured on the default), so it is unset.
        with dask.config.set({"distributed.scheduler.allowed-failures": cfg.retries,
                              "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=effective_workers(cfg),
                                   threads_per_worker=cfg.threads_per_worker, memory_limit=cfg.memory_limit,
                                   processes=True, host="127.0.0.1", dashboard_address=None,
                                   # no dashboard; the scheduler's health endpoint on a free local port
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
        try:
            with Client(cluster) as client:
                yield Executor("local", client, cfg.threads_per_worker, cfg.retries)
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout=connect_timeout_s)
    except (OSError, TimeoutError) as exc:
        src = f"${ENV_SCHEDULER}" if os.environ.get(ENV_SCHEDULER, "").strip() else PARAMS_KEY
        raise ConfigError(f"{src}: cannot reach the Dask scheduler at {scheduler} within {connect_timeout_s:g} s "
                          f"({type(exc).__name__}: {exc}); expected a running scheduler (dask scheduler, "
                          "dask-jobqueue, dask-kubernetes) or 'serial' / 'local'") from None
    try:
        yield Executor(scheduler, client, cfg.threads_per_worker, cfg.retries)
    finally:
        client.close()


@contextlib.contextmanager
def executor_for(compute=None) -> Iterator[Executor]:
    """``compute`` as an executor: an open :class:`Executor` is used as it is (several stages
    share one cluster), a ComputeConfig (or None: the default one) is opened and closed here."""
    if isinstance(compute, Executor):
        yield compute
        return
    with open_executor(compute) as ex:
        yield ex
