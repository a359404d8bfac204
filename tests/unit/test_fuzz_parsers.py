"""The fuzz layer over regpeek's parsers of untrusted input.

The unit tests beside this file check each parser with tables and a couple of hundred hypothesis
examples of loosely shaped text.  Here the inputs are built to go deeper, and there are more of them:

- manifests: arbitrary bytes, mutated real manifests, and JSON documents shaped like manifests,
  indexes and schema1 (signed too), whose members have random types; ``parse`` returns a manifest
  whose digest is right, or raises :class:`~regpeek.errors.VerificationError` -- and what it returns
  can be inspected (config, JSON output) without anything else going wrong;
- well-formed manifests, indexes, schema1 documents and configs, which must parse to exactly what
  was built, and the same spoiled in one member; each run asserts the fraction of its inputs that
  parsed (the success paths are fuzzed, not only the refusals);
- references and platforms: arbitrary text and mutations of valid spellings give a value or
  :class:`~regpeek.errors.UsageError`, and what parses prints back to itself;
- ``WWW-Authenticate``: never raises, and challenges rendered with any quoting parse back exactly.

``FUZZ_EXAMPLES=N`` sets every test's ``max_examples`` (default 100) for a longer, time-boxed run::

    FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/unit/test_fuzz_parsers.py
"""

from __future__ import annotations

import base64
import json
import os
import string
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regpeek.errors import RegpeekError, UsageError, VerificationError, parse_error_body
from regpeek.formats import mediatypes as mt
from regpeek.formats.challenge import Challenge, parse_all
from regpeek.formats.challenge import parse as parse_challenges
from regpeek.formats.config import ImageConfig, build_inspect, config_from_schema1
from regpeek.formats.digest import Digest, compute
from regpeek.formats.manifest import Descriptor, ImageManifest, Index, parse
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference, Repository
from regpeek.formats.schema1 import Schema1Manifest
from tests.unit import builders
from tests.unit.strategies import (
    ARCH_SPELLINGS,
    VARIANT_SPELLINGS,
    digests,
    hex_digits,
    references,
    repositories,
    tags,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# -- JSON-shaped strategies ----------------------------------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_ANY_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_MEDIA_TYPES = st.sampled_from(
    [
        *mt.MANIFEST_MEDIA_TYPES,
        mt.OCI_CONFIG,
        mt.OCI_EMPTY,
        mt.DOCKER_CONFIG,
        mt.OCI_LAYER_GZIP,
        "application/json",
        "",
    ]
)
_CONTENT_TYPES = st.one_of(
    st.none(),
    _MEDIA_TYPES,
    _MEDIA_TYPES.map(lambda media_type: f"{media_type}; charset=utf-8"),
    st.sampled_from(
        ["text/plain", "text/html", "application/octet-stream", "APPLICATION/VND.OCI.IMAGE.INDEX.V1+JSON"]
    ),
    st.text(max_size=20),
)


def _or_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``strategy``, sometimes any JSON value in its place."""
    return st.one_of(strategy, strategy, strategy, _ANY_JSON)


_DIGEST_TEXTS = st.one_of(
    digests().map(str),
    digests().map(str),
    digests().map(str),
    st.sampled_from(
        [
            "sha256:../../../../etc/passwd",
            "sha256:" + "A" * 64,
            "sha256:" + "a" * 63,
            "sha512:" + "b" * 64,
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:",
            ":",
            "",
        ]
    ),
)
_PLATFORM_JSON = st.fixed_dictionaries(
    {},
    optional={
        "os": _or_junk(st.sampled_from(["linux", "windows", "unknown", "Linux", "macos", ""])),
        "architecture": _or_junk(st.sampled_from([*ARCH_SPELLINGS, "unknown", ""])),
        "variant": _or_junk(st.sampled_from(VARIANT_SPELLINGS)),
        "os.version": _or_junk(st.sampled_from(["10.0.17763.4010", "", "x"])),
        "os.features": _or_junk(st.lists(st.text(max_size=6), max_size=3)),
    },
)


@st.composite
def _inline_data(draw: st.DrawFn) -> dict[str, Any]:
    """``digest``, ``size`` and ``data`` that agree (or, sometimes, do not)."""
    data = draw(st.binary(max_size=20))
    digest = str(compute(data)) if draw(st.booleans()) else draw(_DIGEST_TEXTS)
    size = len(data) if draw(st.booleans()) else draw(st.integers(-1, 30))
    encoded = base64.b64encode(data).decode()
    spoil = draw(st.sampled_from(["", "", "", "!", "=", " "]))
    return {"digest": digest, "size": size, "data": encoded + spoil}


@st.composite
def _spoiled(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A document from ``base`` with, half the time, one to three members deleted, added or given
    values of another type (the other half stays as built, so the parsers' success paths get
    exercised too)."""
    document = dict(draw(base))
    if draw(st.booleans()):
        return document
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.one_of(st.sampled_from(sorted(document) or ["x"]), st.sampled_from(_MEMBERS)))
        if draw(st.booleans()) and key in document:
            del document[key]
        else:
            document[key] = draw(_ANY_JSON)
    return document


_MEMBERS = [
    "schemaVersion", "mediaType", "manifests", "config", "layers", "subject", "annotations", "artifactType",
    "fsLayers", "history", "signatures", "digest", "size", "platform", "urls", "data",
]  # fmt: skip
_ANNOTATIONS = st.dictionaries(
    st.sampled_from(
        ["vnd.docker.reference.type", "vnd.docker.reference.digest", "a", "org.opencontainers.image.ref.name"]
    ),
    st.sampled_from(["attestation-manifest", "x", ""]),
    max_size=2,
)
_DESCRIPTOR_FIELDS = st.fixed_dictionaries(
    {"mediaType": _MEDIA_TYPES, "digest": _DIGEST_TEXTS, "size": st.integers(0, 2**40)},
    optional={
        "platform": _or_junk(_PLATFORM_JSON),
        "urls": st.lists(st.sampled_from(["https://a.example/x", "http://b/", "ftp://c", ""]), max_size=2),
        "annotations": _ANNOTATIONS,
        "artifactType": st.sampled_from(["application/vnd.example+json", ""]),
    },
)
_DESCRIPTORS = _spoiled(
    st.one_of(
        _DESCRIPTOR_FIELDS,
        st.tuples(_DESCRIPTOR_FIELDS, _inline_data()).map(lambda pair: {**pair[0], **pair[1]}),
    )
)
_V1_COMPATIBILITY = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=8),
        "throwaway": _or_junk(st.booleans()),
        "created": _or_junk(st.just("2024-01-02T03:04:05Z")),
        "config": _or_junk(
            st.fixed_dictionaries({}, optional={"Env": _ANY_JSON, "Cmd": _ANY_JSON, "Labels": _ANY_JSON})
        ),
        "container_config": _or_junk(st.fixed_dictionaries({}, optional={"Cmd": _ANY_JSON})),
        "architecture": _or_junk(st.sampled_from(ARCH_SPELLINGS)),
        "os": _or_junk(st.just("linux")),
    },
)
_HISTORY_ENTRY = st.one_of(
    _V1_COMPATIBILITY.map(lambda v1: {"v1Compatibility": json.dumps(v1)}),
    st.fixed_dictionaries({}, optional={"v1Compatibility": _or_junk(st.text(max_size=10))}),
)
_SIGNATURE = st.fixed_dictionaries(
    {},
    optional={
        "protected": _or_junk(
            st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "formatLength": _or_junk(st.integers(-5, 5000)),
                        "formatTail": _or_junk(st.text(max_size=8)),
                    },
                ).map(lambda header: builders.b64url(json.dumps(header).encode())),
                st.text(max_size=12),
            )
        ),
        "signature": st.text(max_size=8),
    },
)
_COMMON = {
    "annotations": _or_junk(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
    "subject": _DESCRIPTORS,
    "artifactType": _or_junk(st.text(max_size=10)),
}
_INDEXES = st.fixed_dictionaries(
    {"schemaVersion": st.just(2), "manifests": st.lists(_DESCRIPTORS, max_size=4)},
    optional={"mediaType": st.sampled_from([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST]), **_COMMON},
)
_IMAGES = st.fixed_dictionaries(
    {"schemaVersion": st.just(2), "config": _DESCRIPTORS, "layers": st.lists(_DESCRIPTORS, max_size=4)},
    optional={"mediaType": st.sampled_from([mt.OCI_MANIFEST, mt.DOCKER_MANIFEST]), **_COMMON},
)


@st.composite
def _schema1_documents(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(0, 3))
    document: dict[str, Any] = {
        "schemaVersion": 1,
        "name": draw(st.text(max_size=10)),
        "tag": draw(st.text(max_size=10)),
        "architecture": draw(st.sampled_from(ARCH_SPELLINGS)),
        "fsLayers": [{"blobSum": draw(_DIGEST_TEXTS)} for _ in range(count)],
        "history": [draw(_HISTORY_ENTRY) for _ in range(count)],
    }
    if draw(st.booleans()):
        document["signatures"] = draw(st.lists(_SIGNATURE, max_size=2))
    if draw(st.booleans()):
        document["mediaType"] = draw(st.sampled_from([mt.SCHEMA1, mt.SCHEMA1_SIGNED]))
    return document


_ANY_DOCUMENT = st.dictionaries(st.sampled_from(_MEMBERS), _ANY_JSON, max_size=6)
_DOCUMENTS = st.one_of(_spoiled(_INDEXES), _spoiled(_IMAGES), _spoiled(_schema1_documents()), _ANY_DOCUMENT)

# Well-formed documents (they must parse; see the well-formed properties below) and the same with
# one member spoiled: part of _DOCUMENTS, so the loosely shaped fuzzing reaches the success paths.
_GOOD_DIGESTS = digests().map(str)
_GOOD_SIZES = st.integers(0, 2**40)
_GOOD_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
_GOOD_ANNOTATIONS = st.dictionaries(_GOOD_TEXT, _GOOD_TEXT, max_size=3)
_GOOD_PLATFORMS = st.fixed_dictionaries(
    {
        "os": st.sampled_from(["linux", "windows", "freebsd"]),
        "architecture": st.sampled_from(["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64"]),
    },
    optional={
        "variant": st.sampled_from(["v6", "v7", "v8"]),
        "os.version": st.sampled_from(["10.0.17763.4010"]),
    },
)


def _good_descriptors(
    media_types: list[str], *, platform: bool = False, **optional: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, st.SearchStrategy[Any]] = {
        "mediaType": st.sampled_from(media_types), "digest": _GOOD_DIGESTS, "size": _GOOD_SIZES,
    }  # fmt: skip
    if platform:
        required["platform"] = _GOOD_PLATFORMS
    return st.fixed_dictionaries(required, optional={"annotations": _GOOD_ANNOTATIONS, **optional})


_OCI_LAYERS = [mt.OCI_LAYER, mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, mt.OCI_LAYER_NONDISTRIBUTABLE_GZIP]
_DOCKER_LAYERS = [mt.DOCKER_LAYER, mt.DOCKER_LAYER_TAR, mt.DOCKER_FOREIGN_LAYER]
_URLS = st.lists(st.sampled_from(["https://a.example/layer", "http://b.example/x"]), min_size=1, max_size=2)
_GOOD_OCI_IMAGES = st.fixed_dictionaries(
    {
        "schemaVersion": st.just(2),
        "config": _good_descriptors([mt.OCI_CONFIG]),
        "layers": st.lists(_good_descriptors(_OCI_LAYERS, urls=_URLS), max_size=5),
    },
    optional={
        "mediaType": st.just(mt.OCI_MANIFEST),  # optional in OCI: sniffed from the members
        "annotations": _GOOD_ANNOTATIONS,
        "subject": _good_descriptors([mt.OCI_MANIFEST]),
    },
)
_GOOD_DOCKER_IMAGES = st.fixed_dictionaries(
    {
        "schemaVersion": st.just(2),
        "mediaType": st.just(mt.DOCKER_MANIFEST),
        "config": _good_descriptors([mt.DOCKER_CONFIG]),
        "layers": st.lists(_good_descriptors(_DOCKER_LAYERS), min_size=1, max_size=5),
    }
)
_GOOD_INDEXES = st.one_of(
    st.fixed_dictionaries(
        {
            "schemaVersion": st.just(2),
            "mediaType": st.just(mt.OCI_INDEX),
            "manifests": st.lists(
                _good_descriptors([mt.OCI_MANIFEST, mt.OCI_INDEX], platform=True), max_size=5
            ),
        },
        optional={"annotations": _GOOD_ANNOTATIONS},
    ),
    st.fixed_dictionaries(
        {
            "schemaVersion": st.just(2),
            "mediaType": st.just(mt.DOCKER_MANIFEST_LIST),
            "manifests": st.lists(
                _good_descriptors([mt.DOCKER_MANIFEST], platform=True), min_size=1, max_size=5
            ),
        }
    ),
)
_GOOD_V1 = st.fixed_dictionaries(
    {"id": hex_digits(64)},
    optional={
        "throwaway": st.booleans(),
        "created": st.just("2024-01-02T03:04:05Z"),
        "config": st.fixed_dictionaries(
            {}, optional={"Env": st.lists(_GOOD_TEXT, max_size=2), "Cmd": st.lists(_GOOD_TEXT, max_size=2)}
        ),
        "architecture": st.sampled_from(["amd64", "arm64"]),
        "os": st.just("linux"),
    },
)


@st.composite
def _good_schema1(draw: st.DrawFn) -> tuple[bytes, dict[str, Any], bytes]:
    """(bytes as served, the document, the unsigned payload whose digest is the manifest's)."""
    layers = draw(st.lists(st.tuples(digests().map(str), _GOOD_V1), min_size=1, max_size=4))
    document = builders.schema1_document(
        layers,
        name=draw(repositories()),
        tag=draw(tags()),
        architecture=draw(st.sampled_from(ARCH_SPELLINGS)),
    )
    unsigned = builders.pretty(document)
    return (builders.sign(unsigned) if draw(st.booleans()) else unsigned), document, unsigned


_GOOD_CONFIGS = st.fixed_dictionaries(
    {
        "architecture": st.sampled_from(["amd64", "arm64", "arm"]),
        "os": st.sampled_from(["linux", "windows"]),
        "rootfs": st.fixed_dictionaries(
            {"type": st.just("layers"), "diff_ids": st.lists(_GOOD_DIGESTS, max_size=4)}
        ),
    },
    optional={
        "created": st.just("2024-01-02T03:04:05.123456789Z"),
        "author": _GOOD_TEXT,
        "variant": st.sampled_from(["v7", "v8"]),
        "config": st.fixed_dictionaries(
            {},
            optional={
                "Env": st.lists(_GOOD_TEXT.map(lambda text: f"K={text}"), max_size=3),
                "Entrypoint": st.lists(_GOOD_TEXT, min_size=1, max_size=3),
                "Cmd": st.lists(_GOOD_TEXT, min_size=1, max_size=3),
                "Labels": _GOOD_ANNOTATIONS,
                "WorkingDir": st.just("/app"),
                "User": st.sampled_from(["root", "1000:1000"]),
            },
        ),
        "history": st.lists(
            st.fixed_dictionaries(
                {"created_by": _GOOD_TEXT},
                optional={"empty_layer": st.booleans(), "created": st.just("2024-01-02T03:04:05Z")},
            ),
            max_size=4,
        ),
    },
)


_GOOD_MANIFESTS = st.one_of(_GOOD_OCI_IMAGES, _GOOD_DOCKER_IMAGES, _GOOD_INDEXES)


@st.composite
def _spoiled_once(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed manifest or index with one member (top-level or of one descriptor) deleted, set to
    another JSON value, or left as it is."""
    document: dict[str, Any] = json.loads(json.dumps(draw(_GOOD_MANIFESTS)))
    targets: list[dict[str, Any]] = [document]
    for key in ("config", "subject"):
        if isinstance(document.get(key), dict):
            targets.append(document[key])
    targets += [item for key in ("layers", "manifests") for item in document.get(key, [])]
    target = draw(st.sampled_from(targets))
    key = draw(st.sampled_from(sorted(target)))
    action = draw(st.sampled_from(["keep", "delete", "replace"]))
    if action == "delete":
        del target[key]
    elif action == "replace":
        target[key] = draw(_ANY_JSON)
    return document


_DOCUMENTS = st.one_of(_DOCUMENTS, _GOOD_MANIFESTS, _spoiled_once(), _spoiled_once())

_SEEDS = [
    builders.dumps(builders.image_manifest()),
    builders.dumps(builders.docker_manifest()),
    builders.dumps(builders.index([builders.entry("linux", "amd64"), builders.attestation()])),
    builders.sign(builders.pretty(builders.schema1_document([(builders.EMPTY_LAYER, {"throwaway": True})]))),
]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A real manifest with a few bytes flipped, deleted, inserted or the body cut short."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "delete", "insert", "cut"]))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "delete" and data:
            del data[position]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=3))
        else:
            del data[position:]
    return bytes(data)


def _json_bytes(document: Any, indent: int | None) -> bytes:
    return json.dumps(document, indent=indent).encode()


_MANIFEST_BYTES = st.one_of(
    st.binary(max_size=300),
    _mutated(),
    st.builds(_json_bytes, _DOCUMENTS, st.sampled_from([None, 3])),
    st.builds(builders.sign, st.builds(_json_bytes, _DOCUMENTS, st.just(3))),
)


# -- manifests -----------------------------------------------------------------------------------
def _check_descriptor(descriptor: Descriptor) -> None:
    assert Digest.parse(str(descriptor.digest)) == descriptor.digest
    assert isinstance(descriptor.size, int) and descriptor.size >= 0
    assert isinstance(descriptor.media_type, str)
    if descriptor.data is not None:
        assert compute(descriptor.data, descriptor.digest.algorithm) == descriptor.digest
        assert len(descriptor.data) == descriptor.size


def _inspect_json(
    manifest: ImageManifest | Schema1Manifest, config: ImageConfig, index: Index | None
) -> None:
    """What ``regpeek inspect --json`` would print: it must build and serialise."""
    platform = index.runnable[0].platform if index is not None and index.runnable else None
    result = build_inspect(
        reference=Reference.parse("registry.example/app:1"),
        manifest=manifest, config=config, index=index, entry_platform=platform,
    )  # fmt: skip
    json.dumps(result.to_dict())


def _check_manifest(data: bytes, content_type: str | None, algorithm: str = "sha256") -> None:
    try:
        manifest = parse(data, content_type, algorithm)
    except VerificationError:
        return
    assert manifest.raw == data
    if isinstance(manifest, Schema1Manifest):
        assert manifest.digest.algorithm == algorithm
        assert all(Digest.parse(str(layer.blob_sum)) == layer.blob_sum for layer in manifest.layers)
        _inspect_json(manifest, config_from_schema1(manifest), None)
        return
    assert manifest.digest == compute(data, algorithm)
    if isinstance(manifest, Index):
        for entry in manifest.manifests:
            _check_descriptor(entry)
        return
    assert isinstance(manifest, ImageManifest)
    for descriptor in (manifest.config, *manifest.layers):
        _check_descriptor(descriptor)
    _inspect_json(manifest, ImageConfig(b"{}", None, {}), None)


@fuzz
@given(_MANIFEST_BYTES, _CONTENT_TYPES, st.sampled_from(["sha256", "sha256", "sha512"]))
def test_manifest_bytes_parse_or_raise_verification_error(
    data: bytes, content_type: str | None, algorithm: str
) -> None:
    _check_manifest(data, content_type, algorithm)


@fuzz
@given(_DOCUMENTS, _CONTENT_TYPES)
def test_manifest_shaped_documents_parse_or_raise_verification_error(
    document: dict[str, Any], content_type: str | None
) -> None:
    _check_manifest(json.dumps(document).encode(), content_type)


@fuzz
@given(
    st.lists(st.tuples(digests().map(str), _V1_COMPATIBILITY), min_size=1, max_size=4),
    st.text(max_size=12),
    st.sampled_from([None, mt.SCHEMA1_SIGNED, "application/json", "text/plain"]),
)
def test_signed_schema1_digest_is_the_unsigned_payloads(
    layers: list[tuple[str, dict[str, Any]]], name: str, content_type: str | None
) -> None:
    unsigned = builders.pretty(builders.schema1_document(layers, name=name))
    signed = builders.sign(unsigned)
    try:
        manifest = parse(signed, content_type)
    except VerificationError:  # e.g. a sha512 blobSum is fine, but other junk is refused
        return
    assert isinstance(manifest, Schema1Manifest) and manifest.signed
    assert manifest.digest == compute(unsigned)
    assert manifest.name == name
    assert len(manifest.layers) == len(layers)
    _inspect_json(manifest, config_from_schema1(manifest), None)


@fuzz
@given(st.one_of(_ANY_JSON, st.builds(dict, _V1_COMPATIBILITY), st.fixed_dictionaries({}, optional={
    "architecture": _ANY_JSON, "os": _ANY_JSON, "variant": _ANY_JSON, "config": _ANY_JSON, "container_config": _ANY_JSON,
    "rootfs": _or_junk(st.fixed_dictionaries({"diff_ids": _or_junk(st.lists(st.text(max_size=5), max_size=2))})),
    "history": _or_junk(st.lists(_or_junk(st.fixed_dictionaries({}, optional={
        "created": _ANY_JSON, "created_by": _ANY_JSON, "empty_layer": _ANY_JSON})), max_size=3)),
})))  # fmt: skip
def test_config_documents_parse_or_raise_verification_error(document: Any) -> None:
    raw = json.dumps(document).encode()
    try:
        config = ImageConfig.parse(raw, compute(raw))
    except VerificationError:
        assert not isinstance(document, dict)
        return
    manifest = parse(builders.dumps(builders.image_manifest()))
    assert isinstance(manifest, ImageManifest)
    _inspect_json(manifest, config, None)


@fuzz
@given(st.binary(max_size=200))
def test_registry_error_bodies_never_raise(body: bytes) -> None:
    for detail in parse_error_body(body):
        assert isinstance(str(detail), str)


# -- well-formed documents, and well-formed documents spoiled a little -----------------------------
# The strategies above mostly build documents that must be refused. These build documents that must
# parse, each checked field by field against what was built, and then the same documents with one
# member spoiled: so the success paths are fuzzed too, and each run asserts how many parsed.
def _expect_descriptor(descriptor: Descriptor, document: dict[str, Any]) -> None:
    assert str(descriptor.digest) == document["digest"]
    assert descriptor.size == document["size"]
    assert descriptor.media_type == document["mediaType"]
    assert dict(descriptor.annotations or {}) == document.get("annotations", {})
    assert list(descriptor.urls) == document.get("urls", [])
    # and back to JSON as it came (empty annotations/urls left out; the platform is the index's business)
    assert descriptor.to_oci() == {k: v for k, v in document.items() if k != "platform" and v not in ({}, [])}


def _expect_parsed(document: dict[str, Any], raw: bytes, manifest: Any) -> None:
    """What parse returned is what was built, member by member."""
    assert manifest.raw == raw and manifest.digest == compute(raw)
    assert manifest.media_type == document.get("mediaType", mt.OCI_MANIFEST)
    if "manifests" in document:
        assert isinstance(manifest, Index)
        assert len(manifest.manifests) == len(document["manifests"])
        for entry, entry_doc in zip(manifest.manifests, document["manifests"], strict=True):
            _expect_descriptor(entry, entry_doc)
            assert entry.platform is not None
            assert entry.platform.os == entry_doc["platform"]["os"]
            assert entry.platform.architecture == entry_doc["platform"]["architecture"]
        return
    assert isinstance(manifest, ImageManifest)
    _expect_descriptor(manifest.config, document["config"])
    assert len(manifest.layers) == len(document["layers"])
    for layer, layer_doc in zip(manifest.layers, document["layers"], strict=True):
        _expect_descriptor(layer, layer_doc)
    assert dict(manifest.annotations) == document.get("annotations", {})
    if "subject" in document:
        assert manifest.subject is not None
        _expect_descriptor(manifest.subject, document["subject"])
    else:
        assert manifest.subject is None


@fuzz
@given(_GOOD_MANIFESTS, st.sampled_from([None, 0, 3]))
def test_well_formed_manifests_and_indexes_parse_to_what_was_built(
    document: dict[str, Any], indent: int | None
) -> None:
    raw = json.dumps(document, indent=indent).encode()
    content_type = document.get("mediaType")  # as a registry sends it (None: sniffed)
    manifest = parse(raw, content_type)
    _expect_parsed(document, raw, manifest)
    _check_manifest(raw, content_type)  # and inspect --json builds from it


@fuzz
@given(_good_schema1(), st.sampled_from([None, mt.SCHEMA1_SIGNED, mt.SCHEMA1]))
def test_well_formed_schema1_parses_to_what_was_built(
    case: tuple[bytes, dict[str, Any], bytes], content_type: str | None
) -> None:
    raw, document, unsigned = case
    manifest = parse(raw, content_type)
    assert isinstance(manifest, Schema1Manifest)
    assert manifest.digest == compute(unsigned)
    assert manifest.signed == (raw != unsigned)
    assert (manifest.name, manifest.tag) == (document["name"], document["tag"])
    # base first: the document lists them top first
    assert [str(layer.blob_sum) for layer in manifest.layers] == [
        entry["blobSum"] for entry in reversed(document["fsLayers"])
    ]
    _inspect_json(manifest, config_from_schema1(manifest), None)


@fuzz
@given(_GOOD_CONFIGS)
def test_well_formed_configs_parse_to_what_was_built(document: dict[str, Any]) -> None:
    raw = json.dumps(document).encode()
    config = ImageConfig.parse(raw, compute(raw))
    inner = document.get("config", {})
    assert config.env == inner.get("Env", [])
    assert config.entrypoint == inner.get("Entrypoint")
    assert config.platform.os == document["os"] and config.platform.architecture == document["architecture"]
    assert config.author == (document.get("author") or None)  # an empty author is no author
    assert config.created_raw == document.get("created")
    manifest = parse(builders.dumps(builders.image_manifest()))
    assert isinstance(manifest, ImageManifest)
    _inspect_json(manifest, config, None)


def _parses(data: bytes, content_type: str | None) -> bool:
    """``_check_manifest``, and whether the bytes parsed."""
    try:
        parse(data, content_type)
    except VerificationError:
        _check_manifest(data, content_type)
        return False
    _check_manifest(data, content_type)
    return True


def _fraction_parsed(strategy: st.SearchStrategy[tuple[bytes, str | None]]) -> tuple[int, int]:
    """Run a fuzz property over ``strategy``; (parsed, examples) of the generated inputs."""
    outcomes: list[bool] = []

    @fuzz
    @given(strategy)
    def run(case: tuple[bytes, str | None]) -> None:
        outcomes.append(_parses(*case))

    run()
    return sum(outcomes), len(outcomes)


def _as_served(document: dict[str, Any]) -> tuple[bytes, str | None]:
    media_type = document.get("mediaType")
    return json.dumps(document).encode(), media_type if isinstance(media_type, str) else None


def test_spoiled_well_formed_manifests_still_mostly_parse() -> None:
    """One member spoiled in a third of them, deleted in a third: at least 40% must still parse (the
    kept third, plus the optional members; about 65-70% measured), every failure a VerificationError."""
    parsed, examples = _fraction_parsed(_spoiled_once().map(_as_served))
    assert examples >= min(EXAMPLES, 50)
    assert parsed / examples >= 0.4, f"{parsed} of {examples} parsed"


def test_manifest_shaped_documents_reach_the_success_path() -> None:
    """``_DOCUMENTS`` (loosely shaped ones, well-formed ones, and well-formed ones spoiled once) must
    parse often enough that the success paths are fuzzed: at least 15% (about 30-45% measured)."""
    parsed, examples = _fraction_parsed(
        st.tuples(_DOCUMENTS.map(lambda document: json.dumps(document).encode()), _CONTENT_TYPES)
    )
    assert examples >= min(EXAMPLES, 50)
    assert parsed / examples >= 0.15, f"{parsed} of {examples} parsed"


def test_manifest_bytes_reach_the_success_path() -> None:
    """``_MANIFEST_BYTES`` (random bytes, mutated real manifests, documents as JSON) also parse
    sometimes: at least 4% (about 13-20% measured)."""
    parsed, examples = _fraction_parsed(st.tuples(_MANIFEST_BYTES, _CONTENT_TYPES))
    assert examples >= min(EXAMPLES, 50)
    assert parsed / examples >= 0.04, f"{parsed} of {examples} parsed"


# -- references ----------------------------------------------------------------------------------
_CANONICAL = set(string.ascii_letters + string.digits + "._-/:@[]")


@st.composite
def _mutated_reference(draw: st.DrawFn) -> tuple[Reference, str]:
    """A valid reference, and its text with characters replaced, dropped, doubled or inserted."""
    ref = draw(references())
    text = list(draw(st.sampled_from(["", "docker://"])) + str(ref))
    alphabet = st.sampled_from([*"/:@._-Aaz09 \t\n%é\\", "sha256:", "docker://", "//", "::"])
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["replace", "drop", "double", "insert"]))
        if action == "insert" or position == len(text):
            text.insert(position, draw(alphabet))
        elif action == "replace":
            text[position] = draw(alphabet)
        elif action == "drop":
            del text[position]
        else:
            text.insert(position, text[position])
    return ref, "".join(text)


def _check_reference_text(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except UsageError:
        return
    canonical = str(ref)
    assert set(canonical) <= _CANONICAL, canonical
    assert Reference.parse(canonical) == ref
    assert ref.target == (str(ref.digest) if ref.digest else ref.tag)
    try:
        repository = Repository.parse(str(ref.repo))
    except UsageError as error:  # a repository that parsed inside a reference must parse alone
        raise AssertionError(f"{ref.repo} does not parse: {error}") from None
    assert repository == ref.repo


@fuzz
@given(_mutated_reference())
def test_references_round_trip_and_mutations_parse_or_raise_usage_error(case: tuple[Reference, str]) -> None:
    ref, mutated = case
    assert Reference.parse(str(ref)) == ref
    assert Reference.parse(f"docker://{ref}") == ref
    _check_reference_text(mutated)


@fuzz
@given(st.one_of(st.text(max_size=300), st.text(alphabet="abc/:@.-_0123456789", min_size=200, max_size=300)))
def test_reference_text_parses_or_raises_usage_error(text: str) -> None:
    _check_reference_text(text)


# -- platforms -----------------------------------------------------------------------------------
_PLATFORM_PIECES = st.sampled_from(
    ["linux", "windows", "Linux", "macos", "darwin", "/", "//", "(", ")", "(10.0.17763)", *ARCH_SPELLINGS,
     *[v for v in VARIANT_SPELLINGS if v], " ", "", "\t", "é", ".", "-", "_", "+", "+gpu", "%", "%2B", "%25",
     "%ff", "(+win32k)", "(10.0%2B1+a+b)"]
)  # fmt: skip


@fuzz
@given(st.one_of(st.text(max_size=40), st.lists(_PLATFORM_PIECES, max_size=7).map("".join)))
def test_platform_text_parses_or_raises_usage_error(text: str) -> None:
    try:
        platform = Platform.parse(text)
    except UsageError:
        return
    again = Platform.parse(str(platform))
    assert again == replace(platform, os_version="", os_features=())  # str() leaves the OS options out
    assert Platform.parse(str(again)) == again
    assert Platform.parse(platform.format_all()) == platform  # format_all() keeps them


@fuzz
@given(st.one_of(_PLATFORM_JSON, st.dictionaries(st.text(max_size=10), _ANY_JSON, max_size=5)))
def test_platform_json_never_raises(document: dict[str, Any]) -> None:
    platform = Platform.from_json(document)
    assert all(isinstance(part, str) for part in (platform.os, platform.architecture, platform.variant))
    json.dumps(platform.to_dict())


# -- WWW-Authenticate ----------------------------------------------------------------------------
_TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
_TOKENS = st.text(alphabet=_TOKEN_CHARS, min_size=1, max_size=10)
_SEPARATORS = st.sampled_from([",", ", ", " ,", " , ", ",\t", ",,"])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def _rendered_challenges(draw: st.DrawFn) -> tuple[str, list[Challenge]]:
    """Challenges with parameters of any value, rendered with varied quoting, spacing and order."""
    expected: list[Challenge] = []
    rendered: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        scheme = draw(_TOKENS.filter(lambda token: "=" not in token))
        names = draw(st.lists(_TOKENS.map(str.lower), max_size=4, unique=True))
        params = {name: draw(st.one_of(st.text(max_size=20), _TOKENS)) for name in names}
        parts = []
        for name, value in params.items():
            bare = value and all(char in _TOKEN_CHARS for char in value) and draw(st.booleans())
            equals = draw(st.sampled_from(["=", " = ", "= ", "\t=\t"]))
            case = draw(st.sampled_from([str.lower, str.upper, str.title]))
            parts.append(f"{case(name)}{equals}{value if bare else _quote(value)}")
        text = draw(st.sampled_from([str.lower, str.upper, str.title]))(scheme)
        if parts:
            text += draw(st.sampled_from([" ", "  ", "\t"])) + draw(_SEPARATORS).join(parts)
        rendered.append(text)
        expected.append(Challenge(scheme.lower(), params))
    return draw(_SEPARATORS).join(rendered), expected


@fuzz
@given(_rendered_challenges())
def test_rendered_challenges_parse_back(case: tuple[str, list[Challenge]]) -> None:
    header, expected = case
    assert parse_challenges(header) == expected
    assert parse_all([header, header]) == expected + expected


@fuzz
@given(
    st.one_of(
        st.text(max_size=400),
        st.lists(st.sampled_from(['"', "\\", "=", ",", " ", "Bearer", "realm", "a=="]), max_size=30).map(
            "".join
        ),
    )
)
def test_any_header_parses_without_raising(header: str) -> None:
    challenges = parse_challenges(header)
    for challenge in challenges:
        assert challenge.scheme and challenge.scheme == challenge.scheme.lower()
        assert isinstance(challenge.scopes, tuple)


def test_documented_errors_are_regpeek_errors() -> None:
    """What the properties above accept as failures is part of regpeek's documented error tree."""
    assert issubclass(VerificationError, RegpeekError) and VerificationError.exit_code == 5
    assert issubclass(UsageError, RegpeekError) and UsageError.exit_code == 2
