"""Inspect many images at once with the async client, results in input order, memory bounded.

:func:`inspect_many` reads references lazily (an iterator of 100,000 lines is fine), runs at most
``jobs`` inspects at a time and at most ``per_registry`` against one registry, and yields one outcome per
reference in input order. At most ``jobs * 4`` references are in flight or waiting to be yielded, so
memory does not grow with the input. Tokens are shared: the client's auth flow fetches one token per
registry and scope and lets the other tasks wait for it (see :mod:`regpeek.network.auth`).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from regpeek.disk.layout import LayoutReference
from regpeek.errors import RegpeekError, UsageError, exit_code_for
from regpeek.formats.config import InspectResult
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference
from regpeek.network._async.registry import AsyncClient

__all__ = ["Outcome", "inspect_many", "read_references"]


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
        return "oci:" if reference.startswith("oci:") else Reference.parse(reference).api_host
    except RegpeekError:
        return ""


async def inspect_many(
    client: AsyncClient,
    references: Iterable[str],
    *,
    platform: Platform | str | None = None,
    jobs: int = 16,
    per_registry: int = 8,
) -> AsyncIterator[Outcome]:
    """Yield an :class:`Outcome` per reference, in input order; failures do not stop the others."""
    overall = asyncio.Semaphore(jobs)
    registries: dict[str, asyncio.Semaphore] = collections.defaultdict(
        lambda: asyncio.Semaphore(per_registry)
    )

    async def one(reference: str) -> Outcome:
        async with overall, registries[_registry_of(reference)]:
            if reference.startswith("sif:"):  # a local file, not an image of a registry or layout
                return Outcome(
                    reference,
                    error=UsageError("a sif:FILE is inspected on its own: regpeek inspect sif:FILE"),
                )
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
