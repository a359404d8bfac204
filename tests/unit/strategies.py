"""Hypothesis strategies shared by the unit tests: references, digests, platforms, header text."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from regpeek.formats.digest import Digest
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference

_LOWER_ALNUM = string.ascii_lowercase + string.digits
_TAG_FIRST = string.ascii_letters + string.digits + "_"
_TAG_REST = _TAG_FIRST + ".-"


def _alnum(max_size: int = 6) -> st.SearchStrategy[str]:
    return st.text(_LOWER_ALNUM, min_size=1, max_size=max_size)


@st.composite
def path_components(draw: st.DrawFn) -> str:
    """One repository path component: ``[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*``."""
    parts = [draw(_alnum())]
    for _ in range(draw(st.integers(0, 2))):
        separator = draw(st.sampled_from([".", "_", "__", "-", "--", "---"]))
        parts += [separator, draw(_alnum())]
    return "".join(parts)


def repositories(min_components: int = 1) -> st.SearchStrategy[str]:
    return st.lists(path_components(), min_size=min_components, max_size=3).map("/".join)


def hex_digits(length: int) -> st.SearchStrategy[str]:
    return st.binary(min_size=length // 2, max_size=length // 2).map(bytes.hex)


def digests() -> st.SearchStrategy[Digest]:
    return st.one_of(
        hex_digits(64).map(lambda h: Digest("sha256", h)),
        hex_digits(128).map(lambda h: Digest("sha512", h)),
    )


def tags() -> st.SearchStrategy[str]:
    return st.builds(
        lambda first, rest: first + rest,
        st.sampled_from(_TAG_FIRST),
        st.text(_TAG_REST, max_size=20),
    )


@st.composite
def hosts(draw: st.DrawFn) -> str:
    """A registry host that the parser recognises as one (localhost, a dot, a port or uppercase)."""
    kind = draw(st.sampled_from(["localhost", "dotted", "port", "upper", "ipv6"]))
    port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    if kind == "localhost":
        host = "localhost"
    elif kind == "dotted":
        labels = draw(st.lists(_alnum(5), min_size=2, max_size=3))
        host = ".".join(labels)
        if host in ("index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com"):
            host = "example.com"
    elif kind == "port":
        host = draw(_alnum(5))
        port = port or 5000
    elif kind == "upper":
        host = draw(st.text(string.ascii_uppercase, min_size=1, max_size=4)) + draw(_alnum(3))
    else:
        host = "[::1]"
    return f"{host}:{port}" if port is not None else host


@st.composite
def references(draw: st.DrawFn) -> Reference:
    """A valid, already normalised reference (its ``str`` parses back to it)."""
    if draw(st.booleans()):
        registry = "docker.io"
        repository = draw(
            st.one_of(repositories(1).map(lambda r: f"library/{r}"), repositories(2)).filter(
                lambda r: "/" in r
            )
        )
    else:
        registry = draw(hosts())
        repository = draw(repositories(1))
    digest = draw(st.one_of(st.none(), digests()))
    tag = draw(tags()) if digest is None else draw(st.one_of(st.none(), tags()))
    return Reference(registry, repository, tag, digest)


def reference_texts() -> st.SearchStrategy[str]:
    """Text in the rough shape of references, including near misses and junk."""
    pieces = st.sampled_from(
        ["ubuntu", "library", "Foo", "localhost", ":5000", "/", "//", ":", "@", "sha256:", "a" * 64,
         "docker://", "https://", "index.docker.io", "..", "_", "__", "-", "latest", " ", "\n", "é", "A"]
    )  # fmt: skip
    return st.one_of(
        st.text(max_size=40),
        st.lists(st.one_of(pieces, st.text(_LOWER_ALNUM, max_size=4)), max_size=8).map("".join),
    )


_OSES = ["linux", "windows", "darwin", "freebsd", "Linux", "macos", "MacOS", "solaris", "plan9"]
ARCH_SPELLINGS = ["amd64", "x86_64", "x86-64", "arm64", "aarch64", "arm", "armhf", "armel", "386", "i386", "i686",
           "ppc64le", "s390x", "riscv64", "mips64le", "AMD64", "ARM64"]  # fmt: skip
VARIANT_SPELLINGS = ["", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "5", "6", "7", "8", "8.0", "v8.0", "9", "9.0",
             "v9", "v9.0", "V7", "V8"]  # fmt: skip


def platforms(*, with_version: bool = False) -> st.SearchStrategy[Platform]:
    """Normalised platforms built from real-world spellings and a few arbitrary ones."""
    os_names = st.one_of(st.sampled_from(_OSES), st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True))
    arches = st.one_of(st.sampled_from(ARCH_SPELLINGS), st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True))
    variants = st.one_of(
        st.sampled_from(VARIANT_SPELLINGS), st.from_regex(r"v?[0-9]{1,2}(\.[0-9])?", fullmatch=True)
    )
    versions = (
        st.from_regex(r"10\.0\.[0-9]{1,5}(\.[0-9]{1,4})?", fullmatch=True) if with_version else st.just("")
    )
    return st.builds(Platform.create, os_names, arches, variants, versions)


def header_text() -> st.SearchStrategy[str]:
    """Text that looks a bit like WWW-Authenticate header values, and plain junk."""
    pieces = st.sampled_from(
        ["Bearer", "Basic", "Negotiate", " ", ",", "=", "==", '"', "\\", "realm", "scope", "service",
         "error", "abc", "x y", "\t", "(", ")", "é"]
    )  # fmt: skip
    return st.one_of(st.text(max_size=60), st.lists(pieces, max_size=20).map("".join))
