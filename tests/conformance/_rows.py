"""Shared pieces of the conformance suites: upstream citations, rows, and the intentional differences.

Every row of a suite is one upstream test case, translated. It carries the line of the upstream test
file it comes from (``Suite.cite(line)`` gives ``repo@commit path:line``) and, when regpeek
deliberately behaves otherwise, ``intentional=KEY``: the row then asserts regpeek's documented
behaviour instead of upstream's, and :data:`INTENTIONAL` says why. The README's "Conformance" section
lists every key with its reason (``test_readme.py`` checks that it does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

#: The upstream commits the suites were translated from.
DISTRIBUTION_REFERENCE = ("distribution/reference", "0965666a6ade2e06035fe352e38344be1e68951a")
CONTAINERD_PLATFORMS = ("containerd/platforms", "09756f59cb1d6b3fb368f371043d36e634789537")
CONTAINERS_IMAGE = ("containers/image", "df7e80d2d19872b61f352a8a182ec934dc0c2346")
DISTRIBUTION = ("distribution/distribution", "0d6b721dc3ceacb5d678c25b718b2f40a507c2d8")
GO_CONTAINERREGISTRY = ("google/go-containerregistry", "3f4ff3ca60f51c876ac4bd89e9a787157aaa4f15")
REGCLIENT = ("regclient/regclient", "725072f65f14ab63d6b220246c3a889dcd5e2f5f")

#: Every deliberate difference from an upstream expectation: key -> reason (the README repeats them).
INTENTIONAL = {
    "sha512-accepted": (
        "sha512 digests are accepted: the OCI spec registers sha512 and regpeek verifies it "
        "(distribution/reference's tests leave sha512 unregistered, so their row expects a refusal)"
    ),
    "digest-exact-length": (
        "a digest must have its algorithm's exact length (64 hex digits for sha256) before it goes "
        "into a URL or a path (CVE-2024-3727); upstream's WithDigest accepts any 32+ hex digits"
    ),
    "image-id-refused": (
        "a bare 64-hex string is an image ID, not a repository: regpeek refuses it instead of reading "
        "it as a digest-only reference (ParseAnyReference), since it needs a repository to fetch from"
    ),
    "digest-only-is-a-name": (
        "regpeek parses names (ParseNormalizedNamed), never digest-only references: `sha256:<hex>` is "
        "the repository `sha256` with a tag, as `docker pull` reads it"
    ),
    "tag-kept-with-digest": (
        "with both a tag and a digest the digest decides what is fetched and the tag is kept for "
        "display (ParseDockerRef drops the tag)"
    ),
    "normalised-at-parse": (
        "regpeek normalises a platform when it parses it (containerd only when it matches): "
        "`linux/arm` is shown as `linux/arm/v7` and `linux/arm64/v8` as `linux/arm64`"
    ),
    "bare-os-refused": (
        "a platform that names only an OS (`linux`, `windows(10.0.17763)`, `linux(+gpu)`) is refused "
        "with 'give an architecture': containerd fills in the host's architecture, but regpeek never "
        "lets the machine it runs on change which image is chosen (the same specifier with `/amd64` "
        "is checked instead)"
    ),
    "windows-version-prefix": (
        "a Windows os.version selects by prefix: `windows(10.0.17763)` matches 10.0.17763 and "
        "10.0.17763.*; an entry without an os.version does not match a wanted one, and the LTSC host "
        "compatibility window containerd applies (a 2025 host runs 2022 images) is not modelled, "
        "because regpeek chooses an image for the version asked, not for a host"
    ),
    "oci-assumed-without-mediatype": (
        "a schemaVersion 2 image manifest without mediaType is taken as OCI (the OCI spec made "
        "mediaType optional; Docker schema2 always declares it), whatever its config's media type"
    ),
    "validated-not-guessed": (
        "regpeek classifies and validates in one step: a document it recognises but cannot use "
        "(empty descriptor digest, null layers, unstrippable signatures, empty bytes) is refused with "
        "a verification error instead of being given a type or a digest"
    ),
    "containerd-variants": (
        "platform choice follows containerd, not containers/image: an arm entry without a variant is "
        "arm/v7 (so a v5 host does not take it, and a v7 host prefers it to arm/v6), and an unknown "
        "variant matches only itself instead of falling back to the variant-less entry"
    ),
    "containerd-os-features": (
        "an index entry whose os.features the wanted platform does not list is not chosen, as with "
        "containerd's matcher (`--platform linux(+sse4)/amd64` chooses it); containers/image ignores "
        "os.features"
    ),
    "lenient-challenge": (
        "WWW-Authenticate is parsed leniently: an unquoted value runs to the next comma or space "
        "(distribution stops at the first non-token character and drops the rest of the header), so a "
        "slightly malformed challenge from a real registry still yields its realm"
    ),
    "stale-signature": (
        "containers/image's fixture schema2-to-schema1-by-docker.json was edited after it was signed (its "
        "formatLength is 10895 but the signatures begin at byte 10900) and containers/image parses schema1 "
        "without reading the signatures; regpeek takes the digest from the signed payload and refuses a "
        "signature that cuts the document short, so these rows check the same document with the stale "
        "signature removed"
    ),
    "oci-config-not-docker-config": (
        "a schema1 image's config is the OCI config skopeo writes when it copies the image into an "
        "OCI layout, not containers/image's intermediate Docker schema2 config (ToSchema2Config), "
        "whose image ID this row checks"
    ),
}


@dataclass(frozen=True)
class Suite:
    """One upstream test file."""

    repo: str
    commit: str
    path: str

    @classmethod
    def of(cls, upstream: tuple[str, str], path: str) -> Suite:
        return cls(upstream[0], upstream[1], path)

    def cite(self, line: int) -> str:
        return f"{self.repo}@{self.commit} {self.path}:{line}"


class Row(Protocol):
    line: int
    intentional: str | None


def params(suite: Suite, rows: Sequence[Any], name: str = "") -> list[Any]:
    """``pytest.param`` per row, with an id of the upstream line (and test name), checked keys."""
    out = []
    for row in rows:
        if row.intentional is not None and row.intentional not in INTENTIONAL:
            raise AssertionError(f"{suite.cite(row.line)}: unknown intentional key {row.intentional!r}")
        label = f"{name}:L{row.line}" if name else f"L{row.line}"
        out.append(pytest.param(row, id=label + ("-intentional" if row.intentional else "")))
    return out


def count(rows: Iterable[Any]) -> tuple[int, int]:
    """(rows, intentional rows)."""
    rows = list(rows)
    return len(rows), sum(1 for row in rows if row.intentional)
