"""Which HTTP proxy a request goes through: ``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``.

The rules are those of curl and of Go's ``net/http`` (which skopeo, podman and crane use):

- an ``https://`` request uses ``https_proxy`` (or ``HTTPS_PROXY``), else ``all_proxy`` (``ALL_PROXY``);
  an ``http://`` request uses ``http_proxy`` (or ``HTTP_PROXY``), else ``all_proxy``. The lowercase
  name wins when both are set, as in curl; an empty value means unset. ``HTTP_PROXY`` in upper case
  is ignored when ``REQUEST_METHOD`` is set (a CGI environment, where any client can set it: httpoxy).
- a proxy given explicitly (``--proxy URL``) is used for both schemes;
- ``NO_PROXY`` (or ``no_proxy``) is a comma-separated list. ``*`` turns proxies off. An entry is a
  host name, which matches itself and its subdomains (``example.com`` matches ``example.com`` and
  ``r.example.com``; ``.example.com`` and ``*.example.com`` match subdomains only), an IP address, or
  a CIDR block (``10.0.0.0/8``, ``fd00::/8``); any of them may end in ``:PORT`` to match one port only.
  Matching ignores case and a trailing dot;
- loopback hosts (``localhost``, ``127.0.0.0/8``, ``::1``) are never proxied, as Go and Docker do:
  a proxy elsewhere cannot reach this machine's loopback interface;
- a proxy URL without a scheme is ``http://``; ``https://`` proxies are supported (TLS to the proxy);
  SOCKS proxies are not.

>>> config = ProxyConfig.from_environ({"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": ".internal,10.0.0.0/8"})
>>> config.proxy_for("https", "registry.example", 443)
'http://proxy.corp:3128'
>>> config.proxy_for("https", "r.internal", 443), config.proxy_for("https", "10.1.2.3", 5000)
(None, None)
>>> config.proxy_for("http", "registry.example", 80) is None
True
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from regpeek.errors import UsageError

__all__ = ["NoProxyRule", "ProxyConfig", "describe_proxy", "is_loopback", "parse_no_proxy", "proxy_url"]

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_PORT_RE = re.compile(r"^(?P<host>.*?)(?::(?P<port>[0-9]+))?$")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_loopback(host: str) -> bool:
    """``localhost``, an address in ``127.0.0.0/8``, or ``::1`` (brackets allowed)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    return address is not None and address.is_loopback


def _address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def proxy_url(value: str, where: str) -> str:
    """A proxy URL as given (``host:port``, ``http://user:pass@host:port``), checked and with a scheme.

    Raises :class:`~regpeek.errors.UsageError` naming ``where`` (``--proxy``, ``HTTPS_PROXY``) for a
    scheme other than http or https, or no host.
    """
    text = value.strip()
    match = _SCHEME_RE.match(text)
    if match is None:
        text = "http://" + text
        scheme = "http"
    else:
        scheme = match.group(1).lower()
    if scheme not in ("http", "https"):
        raise UsageError(
            f"{where}: {scheme} proxies are not supported (give an http:// or https:// proxy URL)"
        )
    rest = text.split("://", 1)[1]
    authority = rest.split("/", 1)[0].rpartition("@")[2]
    if not authority or authority.startswith(":"):
        raise UsageError(f"{where}: the proxy URL {describe_proxy(text)!r} has no host")
    return text


def describe_proxy(url: str) -> str:
    """A proxy URL for messages and logs: without its user and password.

    >>> describe_proxy("http://user:secret@proxy:3128")
    'http://proxy:3128'
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    return f"{scheme}{sep}{host}{slash}{path}".rstrip("/")


@dataclass(frozen=True)
class NoProxyRule:
    """One ``NO_PROXY`` entry: a domain (with or without its own name), an address or a network."""

    domain: str | None = None  # lowercase, with a leading dot: ".example.com"
    match_self: bool = False  # "example.com" also matches example.com itself
    network: IPNetwork | None = None
    port: int | None = None
    everything: bool = False

    def matches(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            address = _address(host)
            return address is not None and address.version == self.network.version and address in self.network
        assert self.domain is not None
        name = host.lower().rstrip(".")
        return name.endswith(self.domain) or (self.match_self and name == self.domain[1:])


def parse_no_proxy(value: str) -> tuple[NoProxyRule, ...]:
    """The rules of a ``NO_PROXY`` value (entries that are not hosts, addresses or networks are skipped).

    >>> [rule.matches("a.example.com", 443) for rule in parse_no_proxy("example.com:5000, .example.com")]
    [False, True]
    """
    rules: list[NoProxyRule] = []
    for raw in value.split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return (NoProxyRule(everything=True),)
        rule = _rule(entry)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule(entry: str) -> NoProxyRule | None:
    try:  # a network, or an address (a /32 or /128 network), bracketed or not
        network = ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        pass
    else:
        return NoProxyRule(network=network)
    port: int | None = None
    if entry.startswith("["):  # [::1]:5000
        host, _, rest = entry[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        try:
            return NoProxyRule(network=ipaddress.ip_network(host, strict=False), port=port)
        except ValueError:
            return None
    match = _PORT_RE.match(entry)
    assert match is not None
    host = match.group("host")
    if match.group("port"):
        port = int(match.group("port"))
    try:
        return NoProxyRule(network=ipaddress.ip_network(host, strict=False), port=port)
    except ValueError:
        pass
    host = host.rstrip(".")
    if host.startswith("*."):
        host = host[1:]
    if not host or host == "." or "*" in host:
        return None
    match_self = not host.startswith(".")
    domain = host if host.startswith(".") else "." + host
    return NoProxyRule(domain=domain, match_self=match_self, port=port)


def _first(environ: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


@dataclass(frozen=True)
class ProxyConfig:
    """The proxies of one process: per scheme, with the ``NO_PROXY`` rules. No proxy by default."""

    http: str | None = None
    https: str | None = None
    no_proxy: tuple[NoProxyRule, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], explicit: str | None = None) -> ProxyConfig:
        """The proxies the environment names, or ``explicit`` (``--proxy``) for both schemes."""
        no_proxy = parse_no_proxy(_first(environ, "no_proxy", "NO_PROXY") or "")
        if explicit is not None:
            url = proxy_url(explicit, "--proxy")
            return cls(http=url, https=url, no_proxy=no_proxy)
        every = _first(environ, "all_proxy", "ALL_PROXY")
        https = _first(environ, "https_proxy", "HTTPS_PROXY") or every
        http_names = ("http_proxy",) if environ.get("REQUEST_METHOD") else ("http_proxy", "HTTP_PROXY")
        http = _first(environ, *http_names) or every
        return cls(
            http=proxy_url(http, "HTTP_PROXY") if http else None,
            https=proxy_url(https, "HTTPS_PROXY") if https else None,
            no_proxy=no_proxy,
        )

    def __bool__(self) -> bool:
        return bool(self.http or self.https)

    def proxy_for(self, scheme: str, host: str, port: int | None) -> str | None:
        """The proxy URL for a request to ``scheme://host:port``, or None to connect directly."""
        url = self.https if scheme == "https" else self.http
        if url is None or is_loopback(host):
            return None
        effective = port if port is not None else (443 if scheme == "https" else 80)
        name = host.strip("[]")
        if any(rule.matches(name, effective) for rule in self.no_proxy):
            return None
        return url
