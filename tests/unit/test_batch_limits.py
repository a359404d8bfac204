"""``inspect_many``'s concurrency, measured: ``jobs`` (default :data:`~regpeek.batch.JOBS`, 32) at once
overall and ``per_registry`` (default :data:`~regpeek.batch.PER_REGISTRY`, 16) against one registry,
with the async client (tasks) and the sync one (threads); and that the defaults are what the README says.

The inspects are held until the expected number is running, so the maximum seen is the limit itself;
a broken limit shows as more running at once (or, if too low, as the expected number never reached).
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

import pytest

from regpeek.batch import JOBS, PER_REGISTRY, inspect_many
from regpeek.errors import NotFoundError
from regpeek.formats.platform import Platform
from regpeek.network._async.registry import AsyncClient
from regpeek.network._sync.registry import Client

HOLD = 10.0  # seconds a held inspect waits at most for the others (reached only when a limit is broken)


class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: collections.Counter[str] = collections.Counter()
        self.most: collections.Counter[str] = collections.Counter()
        self.total = self.most_total = 0

    def enter(self, registry: str) -> int:
        with self.lock:
            self.now[registry] += 1
            self.most[registry] = max(self.most[registry], self.now[registry])
            self.total += 1
            self.most_total = max(self.most_total, self.total)
            return self.total

    def leave(self, registry: str) -> None:
        with self.lock:
            self.now[registry] -= 1
            self.total -= 1


class _HeldAsync(AsyncClient):
    """An AsyncClient whose inspect waits until ``release_at`` inspects run at once, then fails fast."""

    def __init__(self, release_at: int) -> None:  # no transport: inspect is all inspect_many calls
        self.counter = _Counter()
        self.release_at = release_at
        self.release = asyncio.Event()

    async def inspect(self, ref: Any, platform: Platform | str | None = None) -> Any:
        registry = str(ref).split("/", 1)[0]
        if self.counter.enter(registry) >= self.release_at and not self.release.is_set():
            for _ in range(100):  # every task that could start now gets to run before the release
                await asyncio.sleep(0)
            self.release.set()
        try:
            await asyncio.wait_for(self.release.wait(), HOLD)
        finally:
            self.counter.leave(registry)
        raise NotFoundError(f"{ref}: held")


class _HeldSync(Client):
    def __init__(self, release_at: int) -> None:
        self.counter = _Counter()
        self.release_at = release_at
        self.release = threading.Event()

    def inspect(self, ref: Any, platform: Platform | str | None = None) -> Any:
        registry = str(ref).split("/", 1)[0]
        if self.counter.enter(registry) >= self.release_at and not self.release.is_set():
            # the threads that could start now are already running: give them a moment to show
            # (this only lets a broken limit show; a kept limit passes whatever the timing)
            time.sleep(0.2)
            self.release.set()
        try:
            self.release.wait(HOLD)
        finally:
            self.counter.leave(registry)
        raise NotFoundError(f"{ref}: held")


async def _drain_default(client: AsyncClient, refs: list[str]) -> int:
    return len([outcome async for outcome in inspect_many(client, refs)])  # the defaults themselves


def test_the_defaults_are_the_documented_ones() -> None:
    assert (JOBS, PER_REGISTRY) == (32, 16)


def _per_registry(counter: _Counter, registries: int, limit: int) -> None:
    """One registry reaches its limit exactly; several stay within it."""
    if registries == 1:
        assert max(counter.most.values()) == limit
    else:
        assert len(counter.most) == registries and max(counter.most.values()) <= limit


def _refs(registries: int, each: int) -> list[str]:
    return [f"reg{r}.example:5000/app:{n}" for n in range(each) for r in range(registries)]


async def _drain_async(client: AsyncClient, refs: list[str], limits: dict[str, int]) -> int:
    outcomes = inspect_many(
        client, refs, jobs=limits.get("jobs", 16), per_registry=limits.get("per_registry", 8)
    )
    return len([outcome async for outcome in outcomes])


@pytest.mark.parametrize(
    ("registries", "limits", "overall", "per_registry"),
    [
        (3, {}, JOBS, PER_REGISTRY),  # the defaults: JOBS at once over three registries
        (1, {}, PER_REGISTRY, PER_REGISTRY),  # one registry: PER_REGISTRY at once, not JOBS
        (4, {"jobs": 6, "per_registry": 2}, 6, 2),
        (1, {"jobs": 3, "per_registry": 5}, 3, 3),
    ],
)
def test_async_limits(registries: int, limits: dict[str, int], overall: int, per_registry: int) -> None:
    client = _HeldAsync(release_at=overall)
    refs = _refs(registries, 40)
    assert asyncio.run(_drain_async(client, refs, limits) if limits else _drain_default(client, refs)) == len(
        refs
    )
    assert client.counter.most_total == overall
    _per_registry(client.counter, registries, per_registry)


@pytest.mark.parametrize(
    ("registries", "limits", "overall", "per_registry"),
    [
        (3, {}, JOBS, PER_REGISTRY),
        (1, {}, PER_REGISTRY, PER_REGISTRY),
        (4, {"jobs": 6, "per_registry": 2}, 6, 2),
    ],
)
def test_threaded_limits(registries: int, limits: dict[str, int], overall: int, per_registry: int) -> None:
    client = _HeldSync(release_at=overall)
    refs = _refs(registries, 40)
    outcomes = list(
        inspect_many(client, refs, jobs=limits["jobs"], per_registry=limits["per_registry"])
        if limits
        else inspect_many(client, refs)
    )
    assert [outcome.reference for outcome in outcomes] == refs
    assert all(outcome.exit_code == 3 for outcome in outcomes)
    assert client.counter.most_total == overall
    _per_registry(client.counter, registries, per_registry)
