"""Proxy selection from the environment: HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, NO_PROXY suffixes and CIDR
blocks, loopback never proxied (regpeek.formats.proxy)."""

from __future__ import annotations

import pytest

from regpeek.errors import UsageError
from regpeek.formats.proxy import ProxyConfig, describe_proxy, is_loopback, parse_no_proxy, proxy_url

P = "http://proxy.corp:3128"


@pytest.mark.parametrize(
    ("environ", "scheme", "expected"),
    [
        pytest.param({"HTTPS_PROXY": P}, "https", P, id="https-proxy"),
        pytest.param({"HTTPS_PROXY": P}, "http", None, id="https-proxy-not-for-http"),
        pytest.param({"HTTP_PROXY": P}, "http", P, id="http-proxy"),
        pytest.param({"HTTP_PROXY": P}, "https", None, id="http-proxy-not-for-https"),
        pytest.param({"ALL_PROXY": P}, "https", P, id="all-proxy-https"),
        pytest.param({"all_proxy": P}, "http", P, id="all-proxy-http-lowercase"),
        pytest.param({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://upper:2"}, "https",
                     "http://lower:1", id="lowercase-wins"),
        pytest.param({"HTTPS_PROXY": "", "ALL_PROXY": P}, "https", P, id="empty-is-unset"),
        pytest.param({"HTTPS_PROXY": "proxy.corp:3128"}, "https", P, id="no-scheme-means-http"),
        pytest.param({"HTTP_PROXY": P, "REQUEST_METHOD": "GET"}, "http", None, id="httpoxy-cgi"),
        pytest.param({"http_proxy": P, "REQUEST_METHOD": "GET"}, "http", P, id="cgi-lowercase-kept"),
        pytest.param({}, "https", None, id="nothing"),
    ],
)  # fmt: skip
def test_environment(environ: dict[str, str], scheme: str, expected: str | None) -> None:
    assert ProxyConfig.from_environ(environ).proxy_for(scheme, "registry.example", None) == expected


def test_explicit_proxy_is_for_both_schemes_and_wins() -> None:
    config = ProxyConfig.from_environ({"HTTPS_PROXY": "http://env:1"}, "http://given:2")
    assert config.proxy_for("https", "r.example", 443) == "http://given:2"
    assert config.proxy_for("http", "r.example", 80) == "http://given:2"


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "direct"),
    [
        pytest.param("*", "anything.example", 443, True, id="star"),
        pytest.param("example.com", "example.com", 443, True, id="domain-itself"),
        pytest.param("example.com", "r.example.com", 443, True, id="domain-subdomain"),
        pytest.param("example.com", "a.b.example.com", 443, True, id="domain-deep-subdomain"),
        pytest.param("example.com", "notexample.com", 443, False, id="not-a-suffix-of-labels"),
        pytest.param(".example.com", "example.com", 443, False, id="leading-dot-subdomains-only"),
        pytest.param(".example.com", "r.example.com", 443, True, id="leading-dot-subdomain"),
        pytest.param("*.example.com", "r.example.com", 443, True, id="star-dot"),
        pytest.param("*.example.com", "example.com", 443, False, id="star-dot-not-itself"),
        pytest.param("EXAMPLE.com", "r.Example.COM", 443, True, id="case-insensitive"),
        pytest.param("example.com.", "r.example.com", 443, True, id="trailing-dot"),
        pytest.param("example.com:5000", "example.com", 5000, True, id="port-match"),
        pytest.param("example.com:5000", "example.com", 443, False, id="port-mismatch"),
        pytest.param("10.0.0.0/8", "10.20.30.40", 5000, True, id="cidr-v4"),
        pytest.param("10.0.0.0/8", "11.0.0.1", 5000, False, id="cidr-v4-outside"),
        pytest.param("192.168.1.10", "192.168.1.10", 443, True, id="ip-exact"),
        pytest.param("192.168.1.10", "192.168.1.11", 443, False, id="ip-other"),
        pytest.param("fd00::/8", "fd12:3456::1", 443, True, id="cidr-v6"),
        pytest.param("[fd00::1]:5000", "fd00::1", 5000, True, id="ipv6-with-port"),
        pytest.param("10.0.0.0/8", "ten.example", 443, False, id="cidr-vs-name"),
        pytest.param(" a.example , ,b.example ", "b.example", 443, True, id="spaces-and-empty-entries"),
        pytest.param("", "r.example", 443, False, id="empty"),
    ],
)  # fmt: skip
def test_no_proxy(no_proxy: str, host: str, port: int, direct: bool) -> None:
    config = ProxyConfig.from_environ({"HTTPS_PROXY": P, "NO_PROXY": no_proxy})
    assert (config.proxy_for("https", host, port) is None) is direct


def test_no_proxy_lowercase_wins() -> None:
    config = ProxyConfig.from_environ({"HTTPS_PROXY": P, "no_proxy": "a.example", "NO_PROXY": "b.example"})
    assert config.proxy_for("https", "a.example", 443) is None
    assert config.proxy_for("https", "b.example", 443) == P


def test_no_proxy_applies_to_an_explicit_proxy() -> None:
    config = ProxyConfig.from_environ({"NO_PROXY": "internal.example"}, "http://given:2")
    assert config.proxy_for("https", "r.internal.example", 443) is None


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "127.0.0.1", "127.3.4.5", "::1", "[::1]"])
def test_loopback_is_never_proxied(host: str) -> None:
    assert is_loopback(host)
    assert (
        ProxyConfig.from_environ({"HTTPS_PROXY": P, "HTTP_PROXY": P}).proxy_for("https", host, 5000) is None
    )


@pytest.mark.parametrize("host", ["localhost.example", "128.0.0.1", "::2", "registry.test"])
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("proxy:3128", "http://proxy:3128"),
        ("https://proxy.corp:443", "https://proxy.corp:443"),
        ("http://user:p%40ss@proxy:3128", "http://user:p%40ss@proxy:3128"),
        ("HTTP://Proxy:3128", "HTTP://Proxy:3128"),
    ],
)
def test_proxy_url(value: str, expected: str) -> None:
    assert proxy_url(value, "--proxy") == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("socks5://proxy:1080", "socks5 proxies are not supported"),
        ("socks5h://proxy:1080", "socks5h proxies are not supported"),
        ("http://", "has no host"),
        ("http://user:pw@:3128", "has no host"),
    ],
)
def test_bad_proxy_urls(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        ProxyConfig.from_environ({"HTTPS_PROXY": value})
    assert "pw" not in str(info.value)
    assert "HTTPS_PROXY" in str(info.value)


def test_describe_proxy_hides_credentials() -> None:
    assert describe_proxy("http://user:s3cret@proxy.corp:3128") == "http://proxy.corp:3128"
    assert describe_proxy("http://proxy.corp:3128/") == "http://proxy.corp:3128"


def test_unusable_no_proxy_entries_are_skipped() -> None:
    assert parse_no_proxy("*.,.,:80") == ()
