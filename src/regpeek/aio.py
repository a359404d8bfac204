"""The operations that bring images to disk, for the async client: ``await regpeek.aio.pull(client, ...)``.

:func:`pull`, :func:`unpack_image`, :func:`export_image`, :func:`build_sif`, :func:`build_sandbox` and
:func:`copy` take an :class:`~regpeek.AsyncClient` and the same arguments as their sync versions
(:func:`regpeek.pull.pull`, :func:`regpeek.rootfs.unpack_image`, :func:`regpeek.rootfs.export_image`,
:func:`regpeek.sif.build_sif`, :func:`regpeek.sif.build_sandbox`), and return the same results.

They are not a second implementation: each runs the one implementation, which streams blobs with a
thread per download over the sync client (threads are measurably faster for blob streaming than
httpx's async stack, see ``docs/architecture.md``), in a worker thread (:func:`asyncio.to_thread`),
through a *sync twin* of the async client: a :class:`~regpeek.Client` with the same settings, the same
credential store, the same token cache (tokens the async client holds are reused) and the same blob
cache. So the event loop stays free while they run. Two consequences:

- a progress callback (``progress=``) is called from those threads, as with the sync client;
- cancelling the awaiting task does not stop the work already in its thread: it runs to its end (a
  pull still leaves its destination as it was, or complete) and its result is dropped.

An async client built with an httpx async ``transport`` (a test double) has no sync twin: these
functions raise :class:`~regpeek.errors.UsageError` for it.

:func:`inspect_many` is :func:`regpeek.batch.inspect_many`, which takes either client.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from regpeek import copy as _copy
from regpeek import pull as _pull
from regpeek import rootfs as _rootfs
from regpeek import sif as _sif
from regpeek.batch import inspect_many
from regpeek.copy import CopyResult, Location
from regpeek.errors import UsageError
from regpeek.network._async.registry import AsyncClient
from regpeek.network._sync.registry import Client

__all__ = [
    "build_sandbox",
    "build_sif",
    "copy",
    "export_image",
    "inspect_many",
    "pull",
    "sync_twin",
    "unpack_image",
]

P = ParamSpec("P")
R = TypeVar("R")


def sync_twin(client: AsyncClient) -> Client:
    """A sync client with ``client``'s settings, credentials, tokens and cache (close it when done)."""
    options = client.options
    if options.transport is not None:
        raise UsageError("an async client with its own httpx transport has no sync twin for regpeek.aio")
    return Client(
        options=options,
        credentials=client.credentials,
        cache=client.cache,
        platform=client.default_platform,
        auth=client.auth,
    )


def _in_thread(
    operation: Callable[Concatenate[Client, P], R],
) -> Callable[Concatenate[AsyncClient, P], Awaitable[R]]:
    """``operation``, run in a worker thread over a sync twin of the async client it is given."""

    @functools.wraps(operation)
    async def run(client: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> R:
        twin = sync_twin(client)

        def work() -> R:
            with twin:
                return operation(twin, *args, **kwargs)

        return await asyncio.to_thread(work)

    run.__doc__ = (
        f"Async :func:`{operation.__module__}.{operation.__name__}`, run in a worker thread.\n\n"
        + (operation.__doc__ or "")
    )
    return run


pull = _in_thread(_pull.pull)
unpack_image = _in_thread(_rootfs.unpack_image)
export_image = _in_thread(_rootfs.export_image)
build_sif = _in_thread(_sif.build_sif)
build_sandbox = _in_thread(_sif.build_sandbox)


def copy(
    client: AsyncClient, source: str | Location, destination: str | Location, /, **options: Any
) -> Awaitable[CopyResult]:
    """Async :func:`regpeek.copy.copy` (which takes an :class:`~regpeek.AsyncClient` itself, and
    ``dest_client=`` another): the same engine in a worker thread over sync twins."""
    return _copy.copy(client, source, destination, **options)
