"""Running regpeek's work in other processes: worker processes on this machine, or a Dask cluster.

regpeek writes no scheduler. Locally, :func:`run_ordered` feeds a
:class:`concurrent.futures.ProcessPoolExecutor`; on a cluster, :func:`dask_client` connects a
``dask.distributed.Client`` to a scheduler that is already running (started by hand, by
dask-jobqueue on SLURM/PBS, by Kubernetes...) and :func:`run_ordered_dask` submits one task per item.
Both keep a bounded window of items in flight (memory does not grow with the input) and give the
results back **in input order** as soon as the oldest is ready.

What travels to a worker must pickle: a :class:`ClientSpec` says how to build a registry client (the
client itself, with its connection pool, is built in the worker), and results come back as plain data.
Dask is an optional extra (``pip install 'regpeek[dask]'``); without it :func:`dask_client` raises
:class:`~regpeek.errors.UsageError` (exit 2) naming the extra.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import itertools
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from regpeek.errors import LocalError, UsageError

if TYPE_CHECKING:
    from distributed import Client as DaskClient

    from regpeek.disk.cache import Cache
    from regpeek.formats.registriesconf import RegistriesConf
    from regpeek.network._async.registry import AsyncClient
    from regpeek.network._sync.registry import Client
    from regpeek.network.transport import HttpOptions

__all__ = [
    "DASK_ENV",
    "ClientSpec",
    "dask_client",
    "interrupted",
    "run_ordered",
    "run_ordered_dask",
    "worker_init",
]

#: The environment variable naming a Dask scheduler when ``--dask`` is not given.
DASK_ENV = "REGPEEK_DASK_SCHEDULER"
#: How many times a reference is tried again after its worker process died (local pool).
LOCAL_RETRIES = 2

T = TypeVar("T")
R = TypeVar("R")


def _http_options() -> HttpOptions:
    from regpeek.network.transport import HttpOptions

    return HttpOptions()


@dataclass(frozen=True)
class ClientSpec:
    """How to build a registry client in a worker: the CLI's shared options, as plain data.

    ``cache_dir`` is the cache (and layer store) the worker uses: None means the worker's own default
    (``$REGPEEK_CACHE_DIR``, else its user cache directory); ``no_cache`` uses none.
    """

    username: str | None = None
    password: str | None = None
    authfile: str | None = None
    platform: str | None = None
    #: timeouts, TLS, retries, proxies, insecure hosts (without the warning callback and transport,
    #: which do not travel: workers print registry warnings themselves)
    options: HttpOptions = field(default_factory=_http_options)
    #: registries.conf as read where the command started (workers do not read their own)
    registries: RegistriesConf | None = None
    cache_dir: str | None = None
    no_cache: bool = False

    def cache(self) -> Cache:
        from regpeek.disk.cache import BlobCache, NullCache, default_cache_dir

        if self.no_cache:
            return NullCache()
        cache = BlobCache(Path(self.cache_dir) if self.cache_dir else default_cache_dir())
        cache.check()
        return cache

    def _arguments(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password": self.password,
            "authfile": self.authfile,
            "platform": self.platform,
            "options": dataclasses.replace(self.options, on_warning=_registry_warning),
            "registries": self.registries,
        }

    def client(self, *, cache: bool = True) -> Client:
        """A sync client (with the cache unless ``cache`` is False)."""
        from regpeek.disk.cache import NullCache
        from regpeek.network._sync.registry import Client

        return Client(**self._arguments(), cache=self.cache() if cache else NullCache())

    def async_client(self, *, cache: bool = True) -> AsyncClient:
        from regpeek.disk.cache import NullCache
        from regpeek.network._async.registry import AsyncClient

        return AsyncClient(**self._arguments(), cache=self.cache() if cache else NullCache())


def _registry_warning(text: str) -> None:
    from regpeek.formats.terminal import safe_text

    print(safe_text(f"regpeek: warning from registry: {text}"), file=sys.stderr, flush=True)


# -- worker processes on this machine --------------------------------------------------------------
_INTERRUPTED = False


def interrupted() -> bool:
    """True in a worker process once it was sent SIGINT: it starts no new work after that."""
    return _INTERRUPTED


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _INTERRUPTED
    _INTERRUPTED = True
    raise KeyboardInterrupt


_STARTED: Any = None


def worker_init(started: Any = None) -> None:
    """Run in each local worker process first: SIGINT interrupts the task at hand (its ``finally``
    blocks remove temporary files) and stops the worker from taking another one. ``started`` is a
    queue on which each task's number is put as it starts."""
    global _STARTED
    _STARTED = started
    signal.signal(signal.SIGINT, _on_sigint)


def _tracked(function: Callable[[T], R], number: int, item: T) -> R:
    if _STARTED is not None:
        _STARTED.put(number)
    return function(item)


@dataclass
class _Slot(Generic[T, R]):
    item: T
    future: concurrent.futures.Future[R]
    attempts: int
    number: int


class _Pool(Generic[T, R]):
    """A process pool that is replaced when a worker dies (a broken pool fails every future it holds)."""

    def __init__(self, function: Callable[[T], R], jobs: int) -> None:
        self.function = function
        self.jobs = jobs
        self.context = multiprocessing.get_context("spawn")
        self.started = self.context.SimpleQueue()
        self.numbers = itertools.count()
        self.running: set[int] = set()
        self.executor = self._new()

    def _new(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=self.context, initializer=worker_init, initargs=(self.started,)
        )

    def submit(self, item: T, attempts: int = 0) -> _Slot[T, R]:
        number = next(self.numbers)
        try:
            future = self.executor.submit(_tracked, self.function, number, item)
        except concurrent.futures.BrokenExecutor:
            self.renew()
            future = self.executor.submit(_tracked, self.function, number, item)
        return _Slot(item, future, attempts, number)

    def drain_started(self) -> set[int]:
        """The numbers of the tasks that started and have not been collected (:meth:`done`). Called
        for every result, so the queue's pipe never fills (at most a window of tasks run between calls)."""
        while not self.started.empty():
            self.running.add(self.started.get())
        return self.running

    def done(self, number: int) -> None:
        self.running.discard(number)

    def renew(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self._new()

    def interrupt(self) -> None:
        """Send SIGINT to every worker process (they remove their temporary files and stop)."""
        processes = getattr(self.executor, "_processes", None) or {}
        for pid in list(processes):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGINT)

    def close(self, *, interrupted: bool) -> None:
        if interrupted:
            self.interrupt()
        self.executor.shutdown(wait=True, cancel_futures=True)


def run_ordered(
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    jobs: int,
    lost: Callable[[T, BaseException], R],
    window: int | None = None,
) -> Iterator[R]:
    """``function(item)`` for each item in ``jobs`` worker processes, results yielded in input order.

    At most ``window`` (default ``4 * jobs``) items are in flight or waiting to be yielded. A worker
    process that dies (killed, out of memory) breaks the pool: it is replaced and the items it held
    are tried again, up to :data:`LOCAL_RETRIES` times each (a try counts for the items that had
    started in the broken pool: one of them killed it); then ``lost(item, error)`` stands for
    the result. Ctrl-C (or SIGINT to this process) interrupts the workers too: their temporary files
    are removed, and ``KeyboardInterrupt`` is raised here once they have stopped.
    """
    if jobs < 1:
        raise UsageError("jobs must be at least 1")
    size = max(window or 4 * jobs, 1)
    pool: _Pool[T, R] = _Pool(function, jobs)
    pending: collections.deque[_Slot[T, R]] = collections.deque()
    stopped = False
    try:

        def oldest() -> R:
            while True:
                slot = pending[0]
                pool.drain_started()
                try:
                    result = slot.future.result()
                except concurrent.futures.BrokenExecutor as error:
                    # every unfinished future of the broken pool failed: run them again in a new one;
                    # a try counts only for the tasks that had started (one of them killed the pool)
                    pool.renew()
                    started = set(pool.drain_started())
                    survivors = list(pending)
                    pending.clear()
                    for old in survivors:
                        charged = old.attempts + (1 if old.number in started else 0)
                        pool.done(old.number)
                        if old.future.done() and not isinstance(
                            old.future.exception(), concurrent.futures.BrokenExecutor
                        ):
                            pending.append(old)
                        elif charged > LOCAL_RETRIES:
                            failed: concurrent.futures.Future[R] = concurrent.futures.Future()
                            failed.set_result(lost(old.item, error))
                            pending.append(_Slot(old.item, failed, charged, old.number))
                        else:
                            pending.append(pool.submit(old.item, charged))
                    continue
                pending.popleft()
                pool.done(slot.number)
                return result

        for item in items:
            pending.append(pool.submit(item))
            while len(pending) >= size or (pending and pending[0].future.done()):
                yield oldest()
        while pending:
            yield oldest()
    except BaseException:
        stopped = True
        raise
    finally:
        pool.close(interrupted=stopped)


# -- Dask ----------------------------------------------------------------------------------------------
def dask_client(address: str) -> DaskClient:
    """A ``dask.distributed.Client`` connected to the scheduler at ``address`` (``tcp://host:8786``).

    Raises UsageError (exit 2) when the ``dask`` extra is not installed, LocalError (exit 7) when the
    scheduler cannot be reached.
    """
    try:
        from distributed import Client as DaskClientClass
    except ImportError:
        raise UsageError(
            "--dask needs the dask extra (dask.distributed): pip install 'regpeek[dask]'"
        ) from None
    try:
        return DaskClientClass(address, timeout=30, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as error:
        raise LocalError(f"cannot reach the Dask scheduler at {address}: {error}") from None


def run_ordered_dask(
    client: DaskClient,
    function: Callable[[T], R],
    items: Iterable[T],
    *,
    lost: Callable[[T, BaseException], R],
    window: int | None = None,
    retries: int = 1,
    name: str = "regpeek",
) -> Iterator[R]:
    """``function(item)`` as one Dask task per item, results yielded in input order.

    At most ``window`` (default 4 per worker thread of the cluster, at least 8) tasks are submitted
    and not yet yielded. A worker lost mid-task is the scheduler's business: it runs the task again
    on another worker (up to ``distributed.scheduler.allowed-failures`` times, 3 by default); a task
    that raises is tried ``retries`` more times. A task that still fails gives ``lost(item, error)``.
    """
    import uuid

    threads = sum(client.nthreads().values()) or 1  # type: ignore[no-untyped-call]
    size = max(window or 4 * threads, 8)
    run = uuid.uuid4().hex[:12]
    pending: collections.deque[tuple[T, Any]] = collections.deque()
    try:
        for number, item in enumerate(items):
            future = client.submit(function, item, key=f"{name}-{run}-{number}", pure=False, retries=retries)
            pending.append((item, future))
            while len(pending) >= size or (pending and pending[0][1].done()):
                yield _dask_result(*pending.popleft(), lost)
        while pending:
            yield _dask_result(*pending.popleft(), lost)
    finally:
        for _, future in pending:
            future.cancel()


def _dask_result(item: T, future: Any, lost: Callable[[T, BaseException], R]) -> R:
    try:
        result: R = future.result()
    except Exception as error:  # KilledWorker, or the task's own exception after its retries
        return lost(item, error)
    finally:
        future.release()
    return result
