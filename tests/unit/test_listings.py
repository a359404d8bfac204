"""Listings, referrers and rate limits against shapes a local registry does not produce (MockTransport)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import regpeek
from regpeek.errors import MalformedError
from regpeek.formats import mediatypes as mt
from regpeek.formats.listing import RateLimit
from regpeek.network.transport import HttpOptions

HOST = "registry.example"
SUBJECT = "sha256:" + "a" * 64
REFERRER = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64

Handler = Callable[[httpx.Request], httpx.Response]


def call(flavour: str, handler: Handler, method: str, *args: Any) -> Any:
    """Run one client method with a mock registry, through the sync or the async client."""
    options = HttpOptions(retries=0)
    if flavour == "sync":
        with regpeek.Client(options=options, transport=httpx.MockTransport(handler)) as client:
            return getattr(client, method)(*args)

    async def run() -> Any:
        async with regpeek.AsyncClient(options=options, transport=httpx.MockTransport(handler)) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_tags_follow_link_pagination(flavour: str) -> None:
    pages = {
        "/v2/team/app/tags/list": (["a", "b"], '</v2/team/app/tags/list?last=b&n=2>; rel="next"'),
        "/v2/team/app/tags/list?last=b&n=2": (
            ["c", "d"],
            f'<https://{HOST}/v2/team/app/tags/list?last=d&n=2>; rel="next"',
        ),
        "/v2/team/app/tags/list?last=d&n=2": (["e"], None),
    }
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        seen.append(target)
        tags, link = pages[target]
        headers = {"Link": link} if link else {}
        return httpx.Response(200, json={"name": "team/app", "tags": tags}, headers=headers)

    listing = call(flavour, handler, "list_tags", f"{HOST}/team/app")
    assert (listing.names, listing.pages) == (["a", "b", "c", "d", "e"], 3)
    assert seen == list(pages)  # a relative and an absolute Link, both followed


def test_tags_link_loop_is_refused(flavour: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"tags": ["x"]}, headers={"Link": '</v2/team/app/tags/list>; rel="next"'}
        )

    with pytest.raises(MalformedError, match="points back"):
        call(flavour, handler, "tags", f"{HOST}/team/app")


def test_tags_null_means_none(flavour: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"name": "team/app", "tags": None})

    assert call(flavour, handler, "tags", f"{HOST}/team/app") == []


def _referrers_index(*entries: tuple[str, str]) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {"mediaType": mt.OCI_MANIFEST, "digest": digest, "size": 10, "artifactType": kind}
            for digest, kind in entries
        ],
    }


@pytest.mark.parametrize("filtered", [True, False], ids=["server-filters", "client-filters"])
def test_referrers_api(flavour: str, filtered: bool) -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        entries = (
            [(REFERRER, "application/sig")]
            if filtered
            else [(REFERRER, "application/sig"), (OTHER, "application/sbom")]
        )
        headers = {"Content-Type": mt.OCI_INDEX}
        if filtered:
            headers["OCI-Filters-Applied"] = "artifactType"
        return httpx.Response(200, content=json.dumps(_referrers_index(*entries)).encode(), headers=headers)

    found = call(flavour, handler, "referrers", f"{HOST}/team/app@{SUBJECT}", "application/sig")
    assert (found.via, [str(m.digest) for m in found.manifests]) == ("api", [REFERRER])
    assert asked == [f"https://{HOST}/v2/team/app/referrers/{SUBJECT}?artifactType=application%2Fsig"]


def test_referrers_fallback_tag_missing_means_none(flavour: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="404 page not found")  # the API, then the sha256-<hex> tag

    found = call(flavour, handler, "referrers", f"{HOST}/team/app@{SUBJECT}")
    assert (found.via, found.manifests) == ("tag", [])


def test_ratelimit_from_docker_hub_headers(flavour: str) -> None:
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        return httpx.Response(
            200,
            headers={
                "ratelimit-limit": "100;w=21600",
                "ratelimit-remaining": "76;w=21600",
                "docker-ratelimit-source": "203.0.113.9",
                "Docker-Content-Digest": SUBJECT,
            },
        )

    limit = call(flavour, handler, "ratelimit", "docker.io/library/alpine")
    assert methods == ["HEAD"]  # a HEAD is not counted as a pull
    assert (limit.limit, limit.remaining, limit.window_seconds, limit.source) == (
        100,
        76,
        21600,
        "203.0.113.9",
    )
    assert limit.describe() == "limit 100 per 6h, remaining 76, source 203.0.113.9"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({}, "no limit reported", id="none"),
        pytest.param({"RateLimit-Limit": "200;w=3600"}, "limit 200 per 1h", id="limit-only"),
        pytest.param({"ratelimit-remaining": "0"}, "limit unknown, remaining 0", id="remaining-only"),
        pytest.param({"ratelimit-limit": "garbage"}, "no limit reported", id="garbage"),
        pytest.param({"ratelimit-limit": "10;w=90"}, "limit 10 per 90s", id="odd-window"),
    ],
)
def test_ratelimit_headers(headers: dict[str, str], expected: str) -> None:
    assert RateLimit.from_headers(headers).describe() == expected


# -- a Link never changes the scheme or the host --------------------------------------------------

_HOSTILE_PAGES = {
    "tags": ("list_tags", f"{HOST}/team/app", "/v2/team/app/tags/list", "tags"),
    "catalog": ("catalog", HOST, "/v2/_catalog", "repositories"),
    "referrers": ("referrers", f"{HOST}/team/app@{SUBJECT}", f"/v2/team/app/referrers/{SUBJECT}", None),
}


@pytest.mark.parametrize("listing", list(_HOSTILE_PAGES))
def test_a_link_cannot_downgrade_to_http_or_leave_the_host(flavour: str, listing: str) -> None:
    """An https registry sends ``Link: <http://same-host/...>`` and then a link to another host: the
    next pages are still asked of https://HOST (path and query taken from the link), and Basic
    credentials never travel in cleartext or to the other host."""
    method, argument, first, key = _HOSTILE_PAGES[listing]
    links = {
        first: f'<http://{HOST}{first}?last=a>; rel="next"',
        f"{first}?last=a": f'<https://evil.example:8443{first}?last=b>; rel="next"',
        f"{first}?last=b": None,
    }
    names = {first: "a", f"{first}?last=a": "b", f"{first}?last=b": "c"}
    seen: list[tuple[str, str, int | None, str, bool]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        authorized = "Authorization" in request.headers
        seen.append((request.url.scheme, request.url.host, request.url.port, target, authorized))
        if not authorized:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        link = links[target]
        headers = {"Link": link} if link else {}
        if key is None:
            entry = {"mediaType": mt.OCI_MANIFEST, "digest": "sha256:" + names[target] * 64, "size": 1}
            body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]}
            return httpx.Response(200, json=body, headers={**headers, "Content-Type": mt.OCI_INDEX})
        return httpx.Response(200, json={key: [names[target]]}, headers=headers)

    options = HttpOptions(retries=0)
    credentials: dict[str, Any] = {"username": "alice", "password": "s3cret"}
    if flavour == "sync":
        with regpeek.Client(**credentials, options=options, transport=httpx.MockTransport(handler)) as client:
            result = getattr(client, method)(argument)
    else:

        async def run() -> Any:
            async with regpeek.AsyncClient(
                **credentials, options=options, transport=httpx.MockTransport(handler)
            ) as client:
                return await getattr(client, method)(argument)

        result = asyncio.run(run())
    got = [str(e.digest)[7] for e in result.manifests] if key is None else result.names
    assert got == ["a", "b", "c"]
    assert {(scheme, host, port) for scheme, host, port, _, _ in seen} == {("https", HOST, None)}
    assert [target for *_, target, authorized in seen if authorized] == list(links)
