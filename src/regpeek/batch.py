"""Inspect many images at once, results in input order, memory bounded; with either client.

:func:`inspect_many` reads references lazily (an iterator of 100,000 lines is fine), runs at most
``jobs`` inspects at a time (:data:`JOBS`) and at most ``per_registry`` (:data:`PER_REGISTRY`) against one registry, and yields one outcome per
reference in input order. At most ``jobs * 4`` references are in flight or waiting to be yielded, so
memory does not grow with the input. Tokens are shared: the client's auth flow fetches one token per
registry and scope and lets the other requests wait for it (see :mod:`regpeek.network.auth`).

With an :class:`~regpeek.AsyncClient` it is an async iterator (``async for``): asyncio tasks, cheap by
the thousand. With a :class:`~regpeek.Client` it is a plain iterator (``for``): a pool of ``jobs``
threads shares the client (which is thread-safe), so no event loop is needed; stopping early (leaving
the loop) lets the inspects already started finish in their threads.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO, overload

from regpeek.disk.layout import LayoutReference
from regpeek.errors import RegpeekError, UsageError, exit_code_for
from regpeek.formats.config import InspectResult
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference
from regpeek.network._async.registry import AsyncClient
from regpeek.network._sync.registry import Client

__all__ = ["JOBS", "PER_REGISTRY", "Outcome", "inspect_many", "read_references"]

#: Inspects at a time by default.
JOBS = 32
#: Requests in flight to one registry by default: 16 HTTP/1.1 connections (keep-alive), bounded so
#: that a batch does not look like a flood; a 429 pauses the whole registry (``Retry-After``).
PER_REGISTRY = 16


@dataclass(frozen=True)
class Outcome(JsonResult):
    """The result for one reference: an inspect result, or the error that stopped it."""

    reference: str
    result: InspectResult | None = None
    error: BaseException | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else exit_code_for(self.error)

    def to_dict(self) -> dict[str, Any]:
        if self.result is not None:
            return self.result.to_dict()
        error = self.error
        kind = error.kind if isinstance(error, RegpeekError) else "internal"
        return {
            "reference": self.reference,
            "error": {"code": self.exit_code, "kind": kind, "message": str(error) or type(error).__name__},
        }


def read_references(lines: TextIO | Iterable[str]) -> Iterator[str]:
    """References from lines of text: blank lines and ``#`` comments skipped, read lazily."""
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            yield text


def _registry_of(reference: str) -> str:
    try:
        return "local:" if LayoutReference.is_local(reference) else Reference.parse(reference).api_host
    except RegpeekError:
        return ""


def _refused(reference: str) -> Outcome | None:
    if reference.startswith("sif:"):  # a local file, not an image of a registry or layout
        return Outcome(
            reference, error=UsageError("a sif:FILE is inspected on its own: regpeek inspect sif:FILE")
        )
    return None


@overload
def inspect_many(
    client: AsyncClient,
    references: Iterable[str],
    *,
    platform: Platform | str | None = None,
    jobs: int = JOBS,
    per_registry: int = PER_REGISTRY,
) -> AsyncIterator[Outcome]: ...


@overload
def inspect_many(
    client: Client,
    references: Iterable[str],
    *,
    platform: Platform | str | None = None,
    jobs: int = JOBS,
    per_registry: int = PER_REGISTRY,
) -> Iterator[Outcome]: ...


def inspect_many(
    client: AsyncClient | Client,
    references: Iterable[str],
    *,
    platform: Platform | str | None = None,
    jobs: int = JOBS,
    per_registry: int = PER_REGISTRY,
) -> AsyncIterator[Outcome] | Iterator[Outcome]:
    """An :class:`Outcome` per reference, in input order; failures do not stop the others.

    An async iterator for an :class:`~regpeek.AsyncClient`, an iterator (threads) for a
    :class:`~regpeek.Client`; see the module documentation.
    """
    if jobs < 1 or per_registry < 1:
        raise UsageError("jobs and per_registry must be at least 1")
    if isinstance(client, AsyncClient):
        return _inspect_tasks(client, references, platform, jobs, per_registry)
    return _inspect_threads(client, references, platform, jobs, per_registry)


async def _inspect_tasks(
    client: AsyncClient,
    references: Iterable[str],
    platform: Platform | str | None,
    jobs: int,
    per_registry: int,
) -> AsyncIterator[Outcome]:
    overall = asyncio.Semaphore(jobs)
    registries: dict[str, asyncio.Semaphore] = collections.defaultdict(
        lambda: asyncio.Semaphore(per_registry)
    )

    async def one(reference: str) -> Outcome:
        async with overall, registries[_registry_of(reference)]:
            refused = _refused(reference)
            if refused is not None:
                return refused
            try:
                target: Reference | LayoutReference | str = reference
                return Outcome(reference, result=await client.inspect(target, platform))
            except (RegpeekError, OSError) as error:
                return Outcome(reference, error=error)

    window = max(jobs * 4, 1)
    pending: collections.deque[asyncio.Task[Outcome]] = collections.deque()
    try:
        for reference in references:
            pending.append(asyncio.ensure_future(one(reference)))
            while len(pending) >= window or (pending and pending[0].done()):
                yield await pending.popleft()
        while pending:
            yield await pending.popleft()
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def _inspect_threads(
    client: Client, references: Iterable[str], platform: Platform | str | None, jobs: int, per_registry: int
) -> Iterator[Outcome]:
    guard = threading.Lock()
    registries: dict[str, threading.BoundedSemaphore] = {}

    def one(reference: str) -> Outcome:
        with guard:
            limit = registries.setdefault(_registry_of(reference), threading.BoundedSemaphore(per_registry))
        with limit:
            refused = _refused(reference)
            if refused is not None:
                return refused
            try:
                return Outcome(reference, result=client.inspect(reference, platform))
            except (RegpeekError, OSError) as error:
                return Outcome(reference, error=error)

    window = max(jobs * 4, 1)
    pending: collections.deque[Future[Outcome]] = collections.deque()
    executor = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="regpeek-inspect")
    try:
        for reference in references:
            pending.append(executor.submit(one, reference))
            while len(pending) >= window or (pending and pending[0].done()):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=False, cancel_futures=True)
