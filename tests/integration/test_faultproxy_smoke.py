"""Smoke tests for :mod:`tests.support.faultproxy`: every fault does what it says (plain httpx only)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import faultproxy as fp
from tests.support.faultproxy import FaultProxy, RecordingServer, Rule, parse_challenges
from tests.support.images import OCI_INDEX, OCI_MANIFEST, PushedImage, PushedIndex
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.tokenserver import TokenServer
from tests.support.util import sha256_digest

BIG_SIZE = 4 * 1024 * 1024 + 123
RESET_AT = 1024 * 1024 + 7


def _proxy_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("faultproxy-")]


def _stopped_cleanly(server: FaultProxy) -> None:
    server.stop()
    assert server.errors == []
    leftover = [name for name in _proxy_threads() if name.startswith(f"faultproxy-{server.port}")]
    assert leftover == []


@pytest.fixture
def proxy(registry: Registry) -> Iterator[FaultProxy]:
    with FaultProxy.for_registry(registry) as server:
        yield server
    _stopped_cleanly(server)


@pytest.fixture
def recorder(registry: Registry) -> Iterator[RecordingServer]:
    with RecordingServer(upstream_url=registry.url) as server:
        yield server
    _stopped_cleanly(server)


def _plain_client(**options: Any) -> httpx.Client:
    """An httpx client for plain-http servers.

    ``trust_env=False``: a NO_PROXY that lists 127.0.0.1 rarely lists 127.0.0.2.  ``verify=False``
    only skips loading the CA bundle (~0.1 s per client); nothing here speaks TLS through it.
    """
    options.setdefault("timeout", 5)
    return httpx.Client(trust_env=False, verify=False, **options)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with _plain_client() as client:
        yield client


@pytest.fixture(scope="module")
def big_blob(registry: Registry) -> tuple[str, bytes]:
    """(blob path, data): 4 MiB of random bytes in ``faults/big``."""
    data = os.urandom(BIG_SIZE)
    with pusher_for(registry) as pusher:
        digest = pusher.push_blob("faults/big", data)
    return f"/v2/faults/big/blobs/{digest}", data


def _image(samples: dict[str, object]) -> PushedImage:
    image = samples["samples/oci"]
    assert isinstance(image, PushedImage)
    return image


def _manifest_path(image: PushedImage) -> str:
    return f"/v2/{image.repo}/manifests/latest"


def _layer_path(image: PushedImage) -> str:
    return f"/v2/{image.repo}/blobs/{image.layers[0].digest}"


def _get_manifest(http: httpx.Client, base: str, image: PushedImage) -> httpx.Response:
    return http.get(base + _manifest_path(image), headers={"Accept": image.media_type})


def _read_until_error(http: httpx.Client, url: str) -> tuple[httpx.Response, bytes, Exception | None]:
    """Stream a GET; return the response, the body bytes received and the error that ended it."""
    got = bytearray()
    error: Exception | None = None
    with http.stream("GET", url) as response:
        try:
            for chunk in response.iter_raw():
                got += chunk
        except httpx.HTTPError as exc:
            error = exc
    return response, bytes(got), error


# -- plain forwarding ----------------------------------------------------------------------------
def test_forwards_requests_and_records_them(
    proxy: FaultProxy, registry: Registry, samples: dict[str, object], http: httpx.Client
) -> None:
    image = _image(samples)
    assert proxy.url == f"http://{proxy.host}" and proxy.host.startswith("127.0.0.1:")
    response = _get_manifest(http, proxy.url, image)
    assert response.status_code == 200
    assert response.content == image.manifest
    assert response.headers["content-type"] == image.media_type
    assert response.headers["docker-content-digest"] == image.digest
    head = http.head(proxy.url + _manifest_path(image), headers={"Accept": image.media_type})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(image.manifest))
    missing = http.get(proxy.url + "/v2/faults/missing/manifests/latest")
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"

    assert proxy.connections == 1  # keep-alive: one client connection for all three
    recorded = proxy.requests
    assert [(r.method, r.path, r.status, r.fault) for r in recorded] == [
        ("GET", _manifest_path(image), 200, None),
        ("HEAD", _manifest_path(image), 200, None),
        ("GET", "/v2/faults/missing/manifests/latest", 404, None),
    ]
    assert [r.bytes_sent for r in recorded[:2]] == [len(image.manifest), 0]
    assert recorded[0].header("Accept") == image.media_type
    assert recorded[0].headers["host"] == proxy.host  # recorded as received; forwarded with the upstream's
    assert recorded[0].response_header("Docker-Content-Digest") == image.digest
    proxy.clear()
    assert proxy.requests == []


def test_uploads_stream_through_and_locations_point_at_the_proxy(
    proxy: FaultProxy, http: httpx.Client
) -> None:
    data = os.urandom(300_000)
    digest = sha256_digest(data)
    start = http.post(proxy.url + "/v2/faults/upload/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["location"]
    assert location.startswith(proxy.url + "/v2/faults/upload/blobs/uploads/")

    def pieces() -> Iterator[bytes]:  # no length: httpx sends Transfer-Encoding: chunked
        for offset in range(0, len(data), 70_000):
            yield data[offset : offset + 70_000]

    patch = http.patch(location, content=pieces(), headers={"Content-Type": "application/octet-stream"})
    assert patch.status_code == 202, patch.text
    put = http.put(httpx.URL(patch.headers["location"]).copy_merge_params({"digest": digest}))
    assert put.status_code == 201, put.text
    assert put.headers["location"].startswith(proxy.url)
    fetched = http.get(f"{proxy.url}/v2/faults/upload/blobs/{digest}")
    assert fetched.content == data
    patched = proxy.matching("/uploads/", method="PATCH")[0]
    assert patched.request_body_bytes == len(data) and patched.header("Transfer-Encoding") == "chunked"

    small = b"monolithic upload\n"
    start = http.post(proxy.url + "/v2/faults/upload/blobs/uploads/")
    put = http.put(
        httpx.URL(start.headers["location"]).copy_merge_params({"digest": sha256_digest(small)}),
        content=small,
    )
    assert put.status_code == 201, put.text
    assert proxy.requests[-1].request_body_bytes == len(small)


# -- status ----------------------------------------------------------------------------------------
def test_status_for_the_first_n_requests_then_next_rule_then_upstream(
    proxy: FaultProxy, samples: dict[str, object], http: httpx.Client
) -> None:
    image = _image(samples)
    first = proxy.add(fp.status(503), path=r"/manifests/latest$", method="GET", times=2)
    second = proxy.add(Rule(fp.status(502), path=r"/manifests/", times=1))
    codes = [_get_manifest(http, proxy.url, image).status_code for _ in range(4)]
    assert codes == [503, 503, 502, 200]
    assert (first.hits, first.exhausted, second.hits, second.remaining) == (2, True, 1, 0)
    assert [r.status for r in proxy.requests] == [503, 503, 502, 200]
    assert [r.fault for r in proxy.requests] == ["status(503)", "status(503)", "status(502)", None]

    proxy.clear_rules()
    proxy.add(fp.status(504, headers={"X-Fault": "yes"}), path="/manifests/", method="GET")
    error = _get_manifest(http, proxy.url, image)
    assert error.status_code == 504 and error.headers["x-fault"] == "yes"
    assert error.json() == {"errors": [{"code": "UNKNOWN", "message": "injected by faultproxy"}]}
    unavailable = fp.error_body(503)
    assert json.loads(unavailable)["errors"][0]["code"] == "UNAVAILABLE"
    head = http.head(proxy.url + _manifest_path(image), headers={"Accept": image.media_type})  # GET only
    assert head.status_code == 200


def test_429_with_retry_after(proxy: FaultProxy, samples: dict[str, object], http: httpx.Client) -> None:
    image = _image(samples)
    proxy.add(fp.too_many_requests(retry_after=1), path="/manifests/", times=1)
    limited = _get_manifest(http, proxy.url, image)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert _get_manifest(http, proxy.url, image).status_code == 200


# -- broken bodies ---------------------------------------------------------------------------------
def test_reset_after_k_bytes_then_a_range_request_resumes(
    proxy: FaultProxy, big_blob: tuple[str, bytes], http: httpx.Client
) -> None:
    path, data = big_blob
    proxy.add(fp.reset_after(RESET_AT), path="/blobs/", method="GET")  # every time, Range excluded
    response, got, error = _read_until_error(http, proxy.url + path)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert isinstance(error, httpx.ReadError), error  # ECONNRESET, not a clean EOF
    assert got == data[:RESET_AT]

    resumed = http.get(proxy.url + path, headers={"Range": f"bytes={len(got)}-"})
    assert resumed.status_code == 206
    assert resumed.headers["content-range"] == f"bytes {RESET_AT}-{len(data) - 1}/{len(data)}"
    assert got + resumed.content == data
    first, second = proxy.requests
    assert (first.status, first.bytes_sent, first.fault) == (200, RESET_AT, f"reset_after({RESET_AT})")
    assert (second.status, second.bytes_sent, second.fault) == (206, len(data) - RESET_AT, None)

    proxy.clear_rules()
    proxy.add(fp.reset_after(10, ranged=True), path="/blobs/", times=1)
    _, partial, error = _read_until_error(http, proxy.url + path)  # no Range: still applies
    assert isinstance(error, httpx.ReadError) and partial == data[:10]


def test_truncate_keeps_content_length_and_closes_cleanly(
    proxy: FaultProxy, big_blob: tuple[str, bytes], http: httpx.Client
) -> None:
    path, data = big_blob
    proxy.add(fp.truncate(1000), path="/blobs/", times=1)
    response, got, error = _read_until_error(http, proxy.url + path)
    assert response.headers["content-length"] == str(len(data))
    assert isinstance(error, httpx.RemoteProtocolError), error  # EOF before Content-Length bytes
    assert "peer closed connection" in str(error)
    assert got == data[:1000]
    assert http.get(proxy.url + path).content == data  # next request: a new connection, untouched
    assert [(r.bytes_sent, r.error) for r in proxy.requests] == [(1000, None), (len(data), None)]


def test_stall_before_headers_exceeds_a_client_timeout(proxy: FaultProxy, samples: dict[str, object]) -> None:
    image = _image(samples)
    proxy.add(fp.stall_before_headers(30), path="/manifests/", times=1)
    started = time.monotonic()
    with _plain_client(timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):
            _get_manifest(client, proxy.url, image)
        assert time.monotonic() - started < 15  # the client's 0.5 s timeout, not the 30 s stall
        assert _get_manifest(client, proxy.url, image).content == image.manifest
    stalled, normal = proxy.requests  # a stalled request does not block the snapshot
    assert (stalled.status, stalled.stalling, stalled.done) == (0, True, False)
    assert normal.status == 200
    proxy.stop()  # wakes the stall at once
    assert time.monotonic() - started < 25  # stopping wakes the stall, well before its 30 s
    assert proxy.requests[0].done and proxy.requests[0].error == "proxy stopped during a stall"


def test_stall_mid_body(proxy: FaultProxy, big_blob: tuple[str, bytes]) -> None:
    path, data = big_blob
    proxy.add(fp.stall_mid_body(30, after_bytes=5000), path="/blobs/", times=1)
    with _plain_client(timeout=httpx.Timeout(5, read=0.5)) as client:
        response, got, error = _read_until_error(client, proxy.url + path)
        assert response.status_code == 200 and response.headers["content-length"] == str(len(data))
        assert isinstance(error, httpx.ReadTimeout), error
        assert got == data[:5000]
        assert client.get(proxy.url + path).content == data


def test_flip_byte_changes_one_byte_and_keeps_the_digest_header(
    proxy: FaultProxy, samples: dict[str, object], http: httpx.Client
) -> None:
    image = _image(samples)
    proxy.add(fp.flip_byte(), path="/manifests/", times=1)
    flipped = _get_manifest(http, proxy.url, image)
    assert flipped.status_code == 200
    assert flipped.headers["docker-content-digest"] == image.digest
    assert flipped.headers["content-length"] == str(len(image.manifest))
    changed = [i for i, (a, b) in enumerate(zip(flipped.content, image.manifest, strict=True)) if a != b]
    assert len(flipped.content) == len(image.manifest) and changed == [len(image.manifest) // 2]
    assert flipped.content[changed[0]] == image.manifest[changed[0]] ^ 0x01
    assert sha256_digest(flipped.content) != image.digest

    config = image.config
    proxy.add(fp.flip_byte(0, xor=0xFF), path="/blobs/", times=1)
    blob = http.get(f"{proxy.url}/v2/{image.repo}/blobs/{config.digest}")
    assert blob.content == bytes([config.data[0] ^ 0xFF]) + config.data[1:]
    assert blob.headers["docker-content-digest"] == config.digest


def test_content_type_and_drop_header(
    proxy: FaultProxy, samples: dict[str, object], http: httpx.Client
) -> None:
    image = _image(samples)
    proxy.add(fp.content_type("text/plain"), path="/manifests/", times=1)
    proxy.add(fp.drop_header("Docker-Content-Digest"), path="/manifests/", times=1)
    retyped = _get_manifest(http, proxy.url, image)
    assert retyped.headers["content-type"] == "text/plain"
    assert retyped.headers.get_list("content-type") == ["text/plain"]
    assert retyped.content == image.manifest
    assert retyped.headers["docker-content-digest"] == image.digest
    undigested = _get_manifest(http, proxy.url, image)
    assert "docker-content-digest" not in undigested.headers
    assert undigested.headers["content-type"] == image.media_type
    assert undigested.content == image.manifest
    proxy.add(fp.set_header("Warning", '299 - "first"', '299 - "second"'), path="/manifests/", times=1)
    warned = _get_manifest(http, proxy.url, image)
    assert warned.headers.get_list("warning") == ['299 - "first"', '299 - "second"']


def test_custom_bodies(proxy: FaultProxy, samples: dict[str, object], http: httpx.Client) -> None:
    image = _image(samples)
    huge = json.dumps({"schemaVersion": 2, "padding": "x" * (4 * 1024 * 1024)}).encode()
    ambiguous = json.dumps({"schemaVersion": 2, "manifests": [], "layers": []}).encode()
    proxy.add(fp.body(huge, content_type=OCI_MANIFEST, keep_digest_header=True), path="/manifests/", times=1)
    proxy.add(fp.body(ambiguous, content_type=OCI_INDEX), path="/manifests/", times=1)
    proxy.add(fp.body(b'{"schemaVersion": 2,', status=200, headers={"X-A": "b"}), path="/manifests/", times=1)
    proxy.add(fp.rewrite_body(lambda b: b.replace(b'"schemaVersion":2', b'"schemaVersion":3')), times=1)

    big = _get_manifest(http, proxy.url, image)
    assert big.content == huge and big.headers["content-length"] == str(len(huge))
    assert big.headers["docker-content-digest"] == image.digest  # the upstream's, now wrong
    assert big.headers["content-type"] == OCI_MANIFEST
    both = _get_manifest(http, proxy.url, image)
    assert both.content == ambiguous and both.headers["content-type"] == OCI_INDEX
    assert "docker-content-digest" not in both.headers
    broken = _get_manifest(http, proxy.url, image)
    assert broken.content == b'{"schemaVersion": 2,' and broken.headers["x-a"] == "b"
    rewritten = _get_manifest(http, proxy.url, image)
    assert (
        rewritten.json()["schemaVersion"] == 3 and rewritten.headers["docker-content-digest"] == image.digest
    )
    assert len(rewritten.content) == int(rewritten.headers["content-length"])
    assert _get_manifest(http, proxy.url, image).content == image.manifest


# -- redirects -------------------------------------------------------------------------------------
def test_redirect_to_the_recording_server_without_authorization(
    proxy: FaultProxy, recorder: RecordingServer, samples: dict[str, object], http: httpx.Client
) -> None:
    image = _image(samples)
    layer = image.layers[0]
    assert recorder.url.startswith("http://127.0.0.2:")
    proxy.add(fp.redirect(recorder.url, append_path=True), path="/blobs/", method="GET")
    first = http.get(proxy.url + _layer_path(image), headers={"Authorization": "Bearer s3cret"})
    assert first.status_code == 307
    assert first.headers["location"] == recorder.url + _layer_path(image)
    assert _get_manifest(http, proxy.url, image).status_code == 200  # manifests are not redirected

    followed = http.get(first.headers["location"])  # followed by hand, without the header
    assert followed.status_code == 200 and followed.content == layer.data
    assert followed.headers["docker-content-digest"] == layer.digest
    assert proxy.requests[0].header("Authorization") == "Bearer s3cret"
    (seen,) = recorder.requests
    assert (seen.method, seen.path, seen.status) == ("GET", _layer_path(image), 200)
    assert seen.header("Authorization") is None
    assert seen.headers["host"] == recorder.host

    # control: the recorder does see the header when one is sent (and never forwards it)
    leaked = http.get(recorder.url + _layer_path(image), headers={"Authorization": "Bearer leaked"})
    assert leaked.content == layer.data
    assert recorder.requests[-1].header("authorization") == "Bearer leaked"
    other = http.get(recorder.url + "/anything/else?x=1")
    assert other.status_code == 200 and other.content == b"recording-server\n"


def test_recording_server_with_a_fixed_body(http: httpx.Client) -> None:
    with RecordingServer(body=b"fixed") as server:
        assert server.host.startswith("127.0.0.2:")
        assert http.get(server.url + "/v2/x/blobs/sha256:" + "0" * 64).content == b"fixed"
        assert http.post(server.url + "/post", content=b"123").content == b"fixed"
        assert [(r.method, r.request_body_bytes) for r in server.requests] == [("GET", 0), ("POST", 3)]
    _stopped_cleanly(server)


def test_https_proxy_redirects_to_plain_http(
    registry: Registry, recorder: RecordingServer, samples: dict[str, object]
) -> None:
    image = _image(samples)
    with FaultProxy.for_registry(registry, tls=True) as secure:
        assert secure.url.startswith("https://127.0.0.1:") and secure.ca_file is not None
        assert secure.ca_file.is_file()
        secure.add(fp.redirect(recorder.url, append_path=True), path="/blobs/")
        with httpx.Client(verify=secure.verify(), timeout=5, trust_env=False) as client:
            assert _get_manifest(client, secure.url, image).content == image.manifest
            bounced = client.get(secure.url + _layer_path(image))
            assert bounced.status_code == 307
            assert bounced.headers["location"].startswith("http://127.0.0.2:")
            assert client.get(bounced.headers["location"]).content == image.layers[0].data
        with httpx.Client(timeout=5, trust_env=False) as untrusting, pytest.raises(httpx.ConnectError):
            untrusting.get(secure.url + "/v2/")
        ca_file = secure.ca_file
    _stopped_cleanly(secure)
    assert not ca_file.exists()


def test_redirect_loop(proxy: FaultProxy, samples: dict[str, object]) -> None:
    image = _image(samples)
    url = proxy.url + _layer_path(image)
    proxy.add(fp.redirect_loop(), path="/blobs/")
    with _plain_client(follow_redirects=True, max_redirects=5) as client:
        with pytest.raises(httpx.TooManyRedirects):
            client.get(url)
        recorded = proxy.requests
        assert len(recorded) == 6 and {r.status for r in recorded} == {307}
        assert {r.response_header("Location") for r in recorded} == {url}

        proxy.clear_rules()
        proxy.clear()
        proxy.add(fp.redirect_loop(3), path="/blobs/")
        done = client.get(url)
        assert done.status_code == 200 and done.content == image.layers[0].data
        assert [r.status for r in proxy.requests] == [307, 307, 307, 200]


# -- auth ------------------------------------------------------------------------------------------
def _token(http: httpx.Client, challenge_value: str) -> str:
    """Fetch a token from the realm of the (first) Bearer challenge in a WWW-Authenticate value."""
    params = next(p for scheme, p in parse_challenges(challenge_value) if scheme.lower() == "bearer")
    query = {k: v for k, v in params.items() if k in ("service", "scope")}
    response = http.get(params["realm"], params=query)
    assert response.status_code == 200, response.text
    token: str = response.json().get("access_token") or response.json()["token"]
    return token


def test_unauthorized_forever_on_an_anonymous_registry(
    proxy: FaultProxy, samples: dict[str, object], http: httpx.Client
) -> None:
    image = _image(samples)
    proxy.add(fp.unauthorized_forever(), path=r"^/v2/samples/")
    assert http.get(proxy.url + "/v2/").status_code == 200
    headers = {"Accept": image.media_type}
    for _ in range(3):
        denied = http.get(proxy.url + _manifest_path(image), headers=headers)
        assert denied.status_code == 401
        assert denied.json()["errors"][0]["code"] == "UNAUTHORIZED"
        value = denied.headers["www-authenticate"]
        assert value == f'Bearer realm="{proxy.url}{fp.TOKEN_PATH}",service="faultproxy"'
        headers["Authorization"] = f"Bearer {_token(http, value)}"
    denied_requests = proxy.matching("^/v2/samples/")
    assert [r.status for r in denied_requests] == [401, 401, 401]
    assert denied_requests[-1].header("Authorization") == "Bearer faultproxy-token-2"
    assert [r.fault for r in proxy.matching(fp.TOKEN_PATH)] == ["token endpoint"] * 3


def test_unauthorized_forever_with_a_valid_token(
    token_registry: tuple[Registry, TokenServer], http: httpx.Client
) -> None:
    registry, token_server = token_registry
    path = "/v2/faults/none/tags/list"
    with FaultProxy.for_registry(registry) as proxy:
        challenged = http.get(proxy.url + path)
        assert challenged.status_code == 401
        upstream_challenge = challenged.headers["www-authenticate"]
        assert f'realm="{token_server.realm}"' in upstream_challenge
        auth = {"Authorization": f"Bearer {_token(http, upstream_challenge)}"}
        assert http.get(proxy.url + path, headers=auth).status_code == 404  # token accepted: NAME_UNKNOWN

        proxy.add(fp.unauthorized_forever(), path="/tags/list")
        for _ in range(2):
            denied = http.get(proxy.url + path, headers=auth)
            assert denied.status_code == 401
            assert denied.headers.get_list("www-authenticate") == [upstream_challenge]
        proxy.clear_rules()
        proxy.add(
            fp.unauthorized_forever(['Bearer realm="https://elsewhere.invalid/token"', 'Basic realm="x"'])
        )
        custom = http.get(proxy.url + path, headers=auth)
        assert custom.headers.get_list("www-authenticate") == [
            'Bearer realm="https://elsewhere.invalid/token"',
            'Basic realm="x"',
        ]
    _stopped_cleanly(proxy)


def test_challenge_rewriting(token_registry: tuple[Registry, TokenServer], http: httpx.Client) -> None:
    registry, token_server = token_registry
    path = "/v2/faults/none/tags/list"
    reordered = 'Bearer scope="{scope}",error="invalid_token",service="{service}" , realm="{realm}"'
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(fp.challenge(reordered), path="/tags/list", times=1)
        response = http.get(proxy.url + path)
        (value,) = response.headers.get_list("www-authenticate")
        assert value.startswith('Bearer scope="repository:faults/none:pull",error="invalid_token"')
        assert value.endswith(f'realm="{token_server.realm}"')
        token = _token(http, value)  # the realm inside still works
        assert http.get(proxy.url + path, headers={"Authorization": f"Bearer {token}"}).status_code == 404

        several = ['Basic realm="faultproxy"', 'Bearer realm="{realm}",service="{service}",scope="{scope}"']
        proxy.add(fp.challenge(several), path="/tags/list", times=1)
        assert (
            http.get(proxy.url + path).headers.get_list("www-authenticate")[0] == 'Basic realm="faultproxy"'
        )

        combined = 'Basic realm="a, b", Bearer realm="{realm}",service="{service}",scope="{scope}"'
        proxy.add(fp.challenge(combined), path="/tags/list", times=1)
        (one,) = http.get(proxy.url + path).headers.get_list("www-authenticate")
        assert [scheme for scheme, _ in parse_challenges(one)] == ["Basic", "Bearer"]
        assert parse_challenges(one)[0][1] == {"realm": "a, b"}
        assert _token(http, one)

        proxy.add(fp.challenge(lambda values: [v.replace("Bearer", "bearer") for v in values]), times=1)
        assert http.get(proxy.url + path).headers["www-authenticate"].startswith("bearer realm=")
        assert http.get(proxy.url + "/v2/").status_code == 401  # rules spent: untouched upstream
    _stopped_cleanly(proxy)


# -- misc ------------------------------------------------------------------------------------------
def test_index_sample_through_proxy_and_rule_objects(
    proxy: FaultProxy, samples: dict[str, object], http: httpx.Client
) -> None:
    index = samples["samples/index"]
    assert isinstance(index, PushedIndex)
    rule = Rule(
        [fp.content_type("application/json"), fp.drop_header("Docker-Content-Digest")], path="/index/"
    )
    assert proxy.add(rule) is rule
    response = http.get(f"{proxy.url}/v2/samples/index/manifests/latest", headers={"Accept": OCI_INDEX})
    assert response.content == index.manifest
    assert response.headers["content-type"] == "application/json"
    assert "docker-content-digest" not in response.headers
    proxy.remove(rule)
    assert (
        http.get(f"{proxy.url}/v2/samples/index/manifests/latest", headers={"Accept": OCI_INDEX}).headers[
            "content-type"
        ]
        == OCI_INDEX
    )
    with pytest.raises(TypeError):
        proxy.add(rule, times=1)
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("http://127.0.0.1:1", host="0.0.0.0")


def test_https_upstream_with_a_ca_file(tls_registry: Registry) -> None:
    with FaultProxy.for_registry(tls_registry) as proxy, _plain_client() as client:
        assert proxy.upstream == tls_registry.url and tls_registry.url.startswith("https://")
        assert client.get(proxy.url + "/v2/").status_code == 200
        proxy.add(fp.status(503), path="^/v2/$", times=1)
        assert client.get(proxy.url + "/v2/").status_code == 503
        assert client.get(proxy.url + "/v2/_catalog").json() == {"repositories": []}
    _stopped_cleanly(proxy)
