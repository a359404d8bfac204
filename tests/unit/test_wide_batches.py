"""Wider batches (issue 13): the per-registry bound, a 429 pausing the whole host, one token request
per scope with different scopes fetched concurrently. httpx.MockTransport: a real registry does not
answer 429 or hold a request open on demand."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import httpx
import pytest

import regpeek
from regpeek.batch import JOBS, PER_REGISTRY, inspect_many
from regpeek.cli import inspect as cli_inspect
from regpeek.formats import mediatypes as mt
from regpeek.network.transport import HttpOptions
from tests.unit.builders import dumps, image_manifest, sha256

REGISTRY = "registry.test"
REALM = "https://auth.test/token"
CONFIG = dumps({"architecture": "amd64", "os": "linux"})
MANIFEST = dumps(
    image_manifest(config={"mediaType": mt.OCI_CONFIG, "digest": sha256(CONFIG), "size": len(CONFIG)})
)


def _answer(request: httpx.Request) -> httpx.Response:
    if "/manifests/" in request.url.path:
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": mt.OCI_MANIFEST})
    return httpx.Response(200, content=CONFIG)


def _client(
    handler: Callable[[httpx.Request], Awaitable[httpx.Response]], **options: object
) -> regpeek.AsyncClient:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]  # an async handler, awaited by httpx
    settings = HttpOptions(transport=transport, insecure=True, retries=3, **options)  # type: ignore[arg-type]
    return regpeek.AsyncClient(options=settings, platform="linux/amd64")


def test_cli_defaults_are_the_library_defaults() -> None:
    assert (cli_inspect.JOBS, cli_inspect.PER_REGISTRY) == (JOBS, PER_REGISTRY) == (32, 16)


@pytest.mark.parametrize("per_registry", [1, 5, 16])
def test_per_registry_bounds_requests_in_flight(per_registry: int) -> None:
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return _answer(request)

    async def run() -> list[regpeek.Outcome]:
        async with _client(handler) as client:
            refs = [f"{REGISTRY}/app:{n}" for n in range(40)]
            return [o async for o in inspect_many(client, refs, jobs=32, per_registry=per_registry)]

    outcomes = asyncio.run(run())
    assert [o.error for o in outcomes] == [None] * 40
    assert most == per_registry  # reached (the batch is wide) and never passed


def test_a_429_pauses_the_whole_host() -> None:
    """One 429 with Retry-After: 1 stops every task's requests to that host until the second is over."""
    seen: list[tuple[float, str]] = []
    refused_at: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        now = time.monotonic()
        seen.append((now, request.url.path))
        if not refused_at:
            refused_at.append(now)
            return httpx.Response(429, headers={"Retry-After": "1"})
        await asyncio.sleep(0.01)
        return _answer(request)

    async def run() -> list[regpeek.Outcome]:
        async with _client(handler) as client:
            refs = [f"{REGISTRY}/app:{n}" for n in range(8)]
            return [o async for o in inspect_many(client, refs, jobs=8, per_registry=8)]

    outcomes = asyncio.run(run())
    assert [o.error for o in outcomes] == [None] * 8
    later = [at for at, _ in seen if at > refused_at[0]]
    answered_before = [at for at in later if at < refused_at[0] + 0.9]
    # the requests already on their way when the 429 came (at most the other 7 first ones) may arrive;
    # none sent after it may, until the pause is over
    assert len(answered_before) <= 7
    assert len([at for at in later if at >= refused_at[0] + 0.9]) >= 8  # the retry and the rest, afterwards


def test_a_429_pauses_the_host_for_threads_too() -> None:
    seen: list[float] = []
    refused: list[float] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            now = time.monotonic()
            if not refused:
                refused.append(now)
                return httpx.Response(429, headers={"Retry-After": "1"})
            seen.append(now)
        return _answer(request)

    options = HttpOptions(transport=httpx.MockTransport(handler), insecure=True, retries=3)
    with regpeek.Client(options=options, platform="linux/amd64") as client:
        first = threading.Thread(target=client.inspect, args=(f"{REGISTRY}/app:0",))
        first.start()
        while not refused:
            time.sleep(0.001)
        started = time.monotonic()
        client.inspect(f"{REGISTRY}/app:1")  # another thread's request, sent after the 429
        first.join()
    assert time.monotonic() - started >= 0.9 - (started - refused[0])
    assert all(at >= refused[0] + 0.9 for at in seen)


def test_tokens_one_per_scope_fetched_concurrently() -> None:
    """10 references in each of 4 repositories: 4 token requests, one per scope, in flight together."""
    token_scopes: list[str] = []
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        if request.url.host == "auth.test":
            token_scopes.append(parse_qs(request.url.query.decode())["scope"][0])
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.05)
            in_flight -= 1
            return httpx.Response(200, json={"token": "t-" + token_scopes[-1], "expires_in": 300})
        if not request.headers.get("Authorization", "").startswith("Bearer t-"):
            scope = f"repository:{request.url.path.split('/')[2]}:pull"
            challenge = f'Bearer realm="{REALM}",service="{REGISTRY}",scope="{scope}"'
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        return _answer(request)

    async def run() -> list[regpeek.Outcome]:
        async with _client(handler) as client:
            refs = [f"{REGISTRY}/r{n % 4}:{n}" for n in range(40)]
            return [o async for o in inspect_many(client, refs)]

    outcomes = asyncio.run(run())
    assert [o.error for o in outcomes] == [None] * 40
    assert sorted(token_scopes) == [f"repository:r{n}:pull" for n in range(4)]
    assert most >= 2  # different scopes are not fetched one after the other


def test_missing_sniffio_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpcore imports sniffio for every async lock; when it is not installed the absence is recorded,
    so that the failed import is not a sys.path search each time (a third of a batch's CPU)."""
    import importlib
    import importlib.util
    import sys

    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    asyncio.run(regpeek.AsyncClient().aclose())  # building it builds the httpx client
    if importlib.util.find_spec("sniffio") is not None and sys.modules.get("sniffio") is not None:
        return  # installed: httpcore uses it (nothing to record)
    assert "sniffio" in sys.modules
    recorded: object = sys.modules["sniffio"]  # typeshed says a module; None is the record of an absence
    assert recorded is None
    with pytest.raises(ImportError):
        importlib.import_module("sniffio")
