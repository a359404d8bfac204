"""Networks people have: HTTP proxies (CONNECT and plain), NO_PROXY, loopback registries without TLS, and
host names that do not resolve. Real registries; the proxy is tests/support/httpproxy.py.

The registries are addressed as ``registry.test:PORT``, a name only the test proxy resolves (to
127.0.0.1): a request that reaches them went through the proxy. Loopback names are never proxied (as
in Go and Docker), so they could not show that. (The test harness's own log-sync requests to the
registries may pass through the proxy too, since urllib reads the same variables: the assertions
look only at requests for registry.test.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.api import Api, client_options, run_cli
from tests.support.certs import PROXY_ONLY_HOST
from tests.support.fixtures import PASSWORD, USERNAME, USERS, require_tool
from tests.support.httpproxy import HttpProxy
from tests.support.images import Pushed, PushedImage, load_samples
from tests.support.push import pusher_for
from tests.support.registry import Registry, start_registry

PROXY_USER, PROXY_PASSWORD = "squid", "proxy-pass-77"


@pytest.fixture(scope="module")
def tls_basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An HTTPS registry with Basic auth (alice), whose certificate also names registry.test."""
    require_tool("docker-registry")
    require_tool("htpasswd")
    workdir = tmp_path_factory.mktemp("tls-basic-registry")
    with start_registry(workdir, tls=True, auth="htpasswd", users=USERS) as registry:
        yield registry


@pytest.fixture(scope="module")
def tls_samples(tls_basic_registry: Registry) -> dict[str, Pushed]:
    with pusher_for(tls_basic_registry) as pusher:
        return load_samples(pusher)


@pytest.fixture
def proxy() -> Iterator[HttpProxy]:
    with HttpProxy(hosts={PROXY_ONLY_HOST: "127.0.0.1"}) as running:
        yield running


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                 "NO_PROXY", "no_proxy", "REQUEST_METHOD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _name(registry: Registry, repo: str) -> str:
    return f"{PROXY_ONLY_HOST}:{registry.port}/{repo}"


def test_https_through_a_connect_proxy_carries_no_registry_credentials(
    tls_basic_registry: Registry,
    tls_samples: dict[str, Pushed],
    proxy: HttpProxy,
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    """HTTPS_PROXY is honoured: a CONNECT tunnel per connection, which carries neither the registry's
    Authorization nor the password in any form; the registry answers through it."""
    registry = tls_basic_registry
    clean_proxy_env.setenv("HTTPS_PROXY", proxy.url())
    registry.mark()
    done = run_cli("inspect", "--json", "--ca-file", str(registry.ca_file), "-u", USERNAME, "--password-stdin",
                   _name(registry, "samples/oci"), stdin=PASSWORD + "\n")  # fmt: skip
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["digest"] == tls_samples["samples/oci"].digest
    seen = proxy.seen(PROXY_ONLY_HOST)
    assert seen and {(r.method, r.target) for r in seen} == {
        ("CONNECT", f"{PROXY_ONLY_HOST}:{registry.port}")
    }
    secret = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for request in seen:
        assert "authorization" not in request.headers
        assert "proxy-authorization" not in request.headers
        assert not any(PASSWORD in value or secret in value for value in request.headers.values())
    assert [r.method for r in registry.requests() if r.status == 200] == [
        "GET",
        "GET",
    ]  # the tag (never seen: one GET, no HEAD first), the config


def test_proxy_credentials_come_from_the_proxy_url_only(
    tls_basic_registry: Registry,
    tls_samples: dict[str, Pushed],
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    """A proxy that wants a login gets Proxy-Authorization from --proxy's user:password; without them,
    exit 4 at once, never the registry's credentials."""
    registry = tls_basic_registry
    with HttpProxy(hosts={PROXY_ONLY_HOST: "127.0.0.1"}, credentials=(PROXY_USER, PROXY_PASSWORD)) as proxy:
        flags = ["--ca-file", str(registry.ca_file), "-u", USERNAME, "--password-stdin", "--retries", "3"]
        refused = run_cli("digest", *flags, "--proxy", proxy.url(), _name(registry, "samples/oci"),
                          stdin=PASSWORD)  # fmt: skip
        assert refused.code == 6, refused.stderr
        assert "407" in refused.stderr and "user and password in the proxy URL" in refused.stderr
        assert len(proxy.seen(PROXY_ONLY_HOST)) == 1  # not retried
        proxy.clear()
        done = run_cli("digest", *flags, "--proxy", proxy.url(user=PROXY_USER, password=PROXY_PASSWORD),
                       _name(registry, "samples/oci"), stdin=PASSWORD)  # fmt: skip
        assert done.code == 0, done.stderr
        assert done.text == tls_samples["samples/oci"].digest + "\n"
        expected = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
        assert [r.headers.get("proxy-authorization") for r in proxy.seen(PROXY_ONLY_HOST)] == [
            expected
        ] * len(proxy.seen(PROXY_ONLY_HOST))
        assert all("authorization" not in r.headers for r in proxy.seen(PROXY_ONLY_HOST))
        assert PROXY_PASSWORD not in done.stderr + refused.stderr


def test_plain_http_through_a_forwarding_proxy(
    registry: Registry, samples: dict[str, Pushed], proxy: HttpProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY for a plain-HTTP registry: each request goes to the proxy in absolute form and the
    registry serves exactly what the proxy forwarded."""
    clean_proxy_env.setenv("http_proxy", proxy.url())
    registry.mark()
    done = run_cli("pull", "--plain-http", "--no-cache", "--quiet", _name(registry, "samples/docker"),
                   str(Path(registry.workdir) / "pulled-through-proxy"))  # fmt: skip
    assert done.code == 0, done.stderr
    forwarded = [
        (r.method, r.target.split(f":{registry.port}", 1)[1], r.status) for r in proxy.seen(PROXY_ONLY_HOST)
    ]
    served = [(r.method, r.path, r.status) for r in registry.requests()]
    assert sorted(forwarded) == sorted(served)  # blobs come concurrently
    assert all(
        r.target.startswith(f"http://{PROXY_ONLY_HOST}:{registry.port}/v2/")
        for r in proxy.seen(PROXY_ONLY_HOST)
    )
    image = samples["samples/docker"]
    assert isinstance(image, PushedImage)
    assert len(served) == 2 + len(image.layers)  # manifest, config, layers


def test_no_proxy_sends_the_host_direct(
    registry: Registry, proxy: HttpProxy, clean_proxy_env: pytest.MonkeyPatch, api: Api
) -> None:
    """NO_PROXY (suffix match) takes registry.test out of the proxy: the request goes direct, the name
    does not resolve, and that fails at once, once, with exit 6."""
    clean_proxy_env.setenv("HTTP_PROXY", proxy.url())
    clean_proxy_env.setenv("NO_PROXY", "example.com, .test")
    done = run_cli("tags", "--plain-http", "--retries", "3", _name(registry, "samples/docker"))
    assert done.code == 6
    assert done.stderr == (
        f"regpeek: error: cannot resolve host {PROXY_ONLY_HOST} (for tags of {_name(registry, 'samples/docker')})\n"
    )
    assert proxy.seen(PROXY_ONLY_HOST) == []


def test_a_name_that_does_not_resolve_is_one_attempt(registry: Registry, api: Api) -> None:
    from regpeek.errors import RegistryUnavailableError

    with pytest.raises(RegistryUnavailableError, match=r"cannot resolve host nothing\.invalid"):
        api.call(registry, "tags", "nothing.invalid/app", client={"retries": 3})
    assert api.last_client.http.sent == 1


def test_a_loopback_registry_without_tls_needs_no_plain_http(
    registry: Registry, samples: dict[str, Pushed], api: Api
) -> None:
    """127.0.0.1 and localhost: TLS is tried once, then plain HTTP for the rest of the client's life."""
    image = samples["samples/index"]
    for host in (registry.host, f"localhost:{registry.port}"):
        registry.mark()
        result = api.call(registry, "inspect", f"{host}/samples/index", client={"plain_http": False})
        assert str(result.index_digest) == image.digest
        served = [r for r in registry.requests() if r.status == 200]
        assert len(served) == 3
        assert api.last_client.http.sent == 4  # the three GETs and the one TLS attempt
    done = run_cli("digest", "--retries", "0", f"{registry.host}/samples/index")
    assert (done.code, done.text) == (0, image.digest + "\n")


def test_a_loopback_registry_with_tls_stays_verified(tls_registry: Registry) -> None:
    """A loopback registry that does speak TLS is not downgraded: its certificate must be trusted."""
    with pusher_for(tls_registry) as pusher:
        pushed = load_samples(pusher)
    refused = run_cli("digest", "--retries", "0", f"{tls_registry.host}/samples/oci")
    assert refused.code == 6 and "certificate verification failed" in refused.stderr
    assert refused.stdout == b""
    done = run_cli(
        "digest", "--retries", "0", "--ca-file", str(tls_registry.ca_file), f"{tls_registry.host}/samples/oci"
    )
    assert (done.code, done.text) == (0, pushed["samples/oci"].digest + "\n"), done.stderr


def test_proxies_in_the_library(
    registry: Registry, samples: dict[str, Pushed], proxy: HttpProxy, api: Api
) -> None:
    """Both clients take HttpOptions(proxies=...): the same routing as the command line."""
    from regpeek.formats.proxy import ProxyConfig
    from regpeek.network.transport import HttpOptions

    options = HttpOptions(**client_options(registry), proxies=ProxyConfig.from_environ({}, proxy.url()))
    digest = api.call(registry, "digest", _name(registry, "samples/oci"), client={"options": options})
    assert str(digest) == samples["samples/oci"].digest
    assert [r.method for r in proxy.seen(PROXY_ONLY_HOST)] == ["HEAD"]
