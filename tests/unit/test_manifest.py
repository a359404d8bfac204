"""Manifest parsing: classification, refusals, descriptors, and choosing from an index."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regpeek.errors import (
    DigestMismatchError,
    MalformedError,
    NotFoundError,
    PlatformNotFoundError,
    SizeMismatchError,
    TooLargeError,
    UsageError,
    VerificationError,
)
from regpeek.formats import mediatypes as mt
from regpeek.formats.digest import Digest, compute
from regpeek.formats.manifest import (
    MAX_MANIFEST_SIZE,
    Descriptor,
    ImageManifest,
    Index,
    check_size,
    ensure_expected,
    parse,
    parse_json_object,
)
from regpeek.formats.platform import Platform, only
from regpeek.formats.schema1 import Schema1Manifest
from tests.unit.builders import (
    EMPTY_LAYER,
    attestation,
    descriptor,
    docker_manifest,
    dumps,
    entry,
    fake_digest,
    image_manifest,
    index,
    pretty,
    schema1_document,
    sha256,
    sign,
)

JSON = "application/json"
SCHEMA1_BODY = schema1_document(
    [(EMPTY_LAYER, {"id": "b", "parent": "a"}), (fake_digest("base"), {"id": "a"})]
)
SCHEMA1_UNSIGNED = pretty(SCHEMA1_BODY)
SCHEMA1_SIGNED = sign(SCHEMA1_UNSIGNED)

# (body, Content-Type, class, media_type)
CLASSIFY = [
    pytest.param(dumps(image_manifest()), mt.OCI_MANIFEST, ImageManifest, mt.OCI_MANIFEST, id="oci-manifest"),
    pytest.param(dumps(image_manifest(None)), mt.OCI_MANIFEST, ImageManifest, mt.OCI_MANIFEST,
                 id="oci-manifest-no-mediaType"),
    pytest.param(dumps(image_manifest(None)), JSON, ImageManifest, mt.OCI_MANIFEST,
                 id="oci-no-mediaType-as-application-json"),
    pytest.param(dumps(image_manifest(None)), None, ImageManifest, mt.OCI_MANIFEST,
                 id="oci-no-mediaType-no-content-type"),
    pytest.param(dumps(image_manifest()), JSON, ImageManifest, mt.OCI_MANIFEST,
                 id="oci-with-mediaType-as-application-json"),
    pytest.param(dumps(image_manifest()), None, ImageManifest, mt.OCI_MANIFEST,
                 id="oci-with-mediaType-no-content-type"),
    pytest.param(dumps(image_manifest(None)), mt.DOCKER_MANIFEST, ImageManifest, mt.DOCKER_MANIFEST,
                 id="content-type-wins-over-shape"),
    pytest.param(dumps(docker_manifest()), mt.DOCKER_MANIFEST, ImageManifest, mt.DOCKER_MANIFEST,
                 id="docker-schema2"),
    pytest.param(dumps(docker_manifest()), JSON, ImageManifest, mt.DOCKER_MANIFEST,
                 id="docker-schema2-as-application-json"),
    pytest.param(dumps(docker_manifest()), f"{mt.DOCKER_MANIFEST}; charset=utf-8", ImageManifest,
                 mt.DOCKER_MANIFEST, id="content-type-with-parameters"),
    pytest.param(dumps(docker_manifest()), mt.DOCKER_MANIFEST.upper(), ImageManifest, mt.DOCKER_MANIFEST,
                 id="content-type-uppercase"),
    pytest.param(dumps(image_manifest(config_type="application/vnd.example.thing.v1+json")), mt.OCI_MANIFEST,
                 ImageManifest, mt.OCI_MANIFEST, id="artifact-unknown-config-type"),
    pytest.param(dumps(index([entry("linux/amd64")], mt.DOCKER_MANIFEST_LIST)), mt.DOCKER_MANIFEST_LIST,
                 Index, mt.DOCKER_MANIFEST_LIST, id="docker-manifest-list"),
    pytest.param(dumps(index([entry("linux/amd64")], mt.DOCKER_MANIFEST_LIST)), JSON, Index,
                 mt.DOCKER_MANIFEST_LIST, id="manifest-list-as-application-json"),
    pytest.param(dumps(index([entry("linux/amd64")])), mt.OCI_INDEX, Index, mt.OCI_INDEX, id="oci-index"),
    pytest.param(dumps(index([entry("linux/amd64")], None)), JSON, Index, mt.OCI_INDEX,
                 id="oci-index-no-mediaType-as-application-json"),
    pytest.param(dumps(index([], None)), None, Index, mt.OCI_INDEX, id="empty-index-by-shape"),
    pytest.param(SCHEMA1_UNSIGNED, JSON, Schema1Manifest, mt.SCHEMA1, id="schema1-unsigned-application-json"),
    pytest.param(SCHEMA1_UNSIGNED, "text/plain", Schema1Manifest, mt.SCHEMA1,
                 id="schema1-unsigned-text-plain"),
    pytest.param(SCHEMA1_UNSIGNED, None, Schema1Manifest, mt.SCHEMA1, id="schema1-unsigned-no-content-type"),
    pytest.param(SCHEMA1_UNSIGNED, mt.SCHEMA1, Schema1Manifest, mt.SCHEMA1, id="schema1-unsigned"),
    pytest.param(SCHEMA1_SIGNED, mt.SCHEMA1_SIGNED, Schema1Manifest, mt.SCHEMA1_SIGNED, id="schema1-signed"),
    pytest.param(SCHEMA1_SIGNED, JSON, Schema1Manifest, mt.SCHEMA1_SIGNED,
                 id="schema1-signed-application-json"),
    pytest.param(SCHEMA1_SIGNED, "text/plain; charset=utf-8", Schema1Manifest, mt.SCHEMA1_SIGNED,
                 id="schema1-signed-text-plain"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "cls", "media_type"), CLASSIFY)
def test_classification(body: bytes, content_type: str | None, cls: type, media_type: str) -> None:
    manifest = parse(body, content_type)
    assert type(manifest) is cls
    assert manifest.media_type == media_type
    assert manifest.raw == body
    if cls is not Schema1Manifest:
        assert manifest.digest == compute(body)
        assert manifest.schema_version == 2


def test_image_manifest_fields() -> None:
    subject = descriptor(mt.OCI_MANIFEST, "subject", 321)
    body = dumps(
        image_manifest(
            layers=[
                descriptor(seed="a", size=10),
                descriptor(mt.DOCKER_FOREIGN_LAYER, "b", 20, urls=["https://example.com/b"]),
            ],
            annotations={"org.opencontainers.image.title": "x"},
            subject=subject,
            artifactType="application/vnd.example+type",
        )
    )
    manifest = parse(body, mt.OCI_MANIFEST)
    assert isinstance(manifest, ImageManifest)
    assert manifest.config == Descriptor(mt.OCI_CONFIG, Digest.parse(fake_digest("config")), 1234)
    assert [str(layer.digest) for layer in manifest.layers] == [fake_digest("a"), fake_digest("b")]
    assert manifest.layers[1].urls == ("https://example.com/b",)
    assert manifest.size == 30
    assert dict(manifest.annotations) == {"org.opencontainers.image.title": "x"}
    assert manifest.subject == Descriptor(mt.OCI_MANIFEST, Digest.parse(fake_digest("subject")), 321)
    assert manifest.artifact_type == "application/vnd.example+type"
    assert manifest.config.to_dict() == {
        "media_type": mt.OCI_CONFIG,
        "digest": fake_digest("config"),
        "size": 1234,
    }


def test_digest_algorithm_follows_the_request() -> None:
    body = dumps(image_manifest())
    assert parse(body, mt.OCI_MANIFEST, "sha512") == parse(body, mt.OCI_MANIFEST, "sha512")
    assert parse(body, mt.OCI_MANIFEST, "sha512").digest == compute(body, "sha512")


def _ambiguous(extra: dict[str, Any]) -> bytes:
    return dumps({**index([entry("linux/amd64")], None), **extra})


MALFORMED = [
    pytest.param(_ambiguous({"layers": []}), mt.OCI_INDEX, "ambiguous", id="ambiguous-manifests-and-layers"),
    pytest.param(_ambiguous({"layers": []}), mt.OCI_MANIFEST, "ambiguous", id="ambiguous-served-as-manifest"),
    pytest.param(_ambiguous({"config": descriptor()}), None, "ambiguous", id="ambiguous-manifests-and-config"),
    pytest.param(_ambiguous({"layers": [], "mediaType": mt.OCI_MANIFEST}), JSON, "ambiguous",
                 id="ambiguous-declared-manifest"),
    pytest.param(dumps(index([])), mt.OCI_MANIFEST, "declares", id="declared-index-served-as-manifest"),
    pytest.param(dumps(image_manifest()), mt.OCI_INDEX, "declares", id="declared-manifest-served-as-index"),
    pytest.param(dumps(docker_manifest()), mt.DOCKER_MANIFEST_LIST, "declares",
                 id="declared-schema2-served-as-list"),
    pytest.param(dumps(docker_manifest()), mt.SCHEMA1_SIGNED, "declares", id="declared-schema2-served-as-schema1"),
    # within one kind the declared type decides too: an OCI body is not relabelled Docker (issue 10, item 7)
    pytest.param(dumps(image_manifest()), mt.DOCKER_MANIFEST, "declares", id="declared-oci-served-as-schema2"),
    pytest.param(dumps(docker_manifest()), mt.OCI_MANIFEST, "declares", id="declared-schema2-served-as-oci"),
    pytest.param(dumps(index([])), mt.DOCKER_MANIFEST_LIST, "declares", id="declared-oci-index-served-as-list"),
    # another kind's fields make a document ambiguous, as containers/image says (issue 10, item 8)
    pytest.param(dumps({**image_manifest(), "fsLayers": []}), mt.OCI_MANIFEST, "ambiguous manifest: fsLayers",
                 id="manifest-with-fsLayers"),
    pytest.param(dumps({**docker_manifest(), "history": []}), None, "ambiguous manifest: history", id="schema2-with-history"),
    pytest.param(dumps({**image_manifest(), "signatures": []}), None, "ambiguous manifest: signatures",
                 id="manifest-with-signatures"),
    pytest.param(dumps({**index([]), "fsLayers": []}), None, "ambiguous manifest: fsLayers", id="index-with-fsLayers"),
    pytest.param(dumps({**index([]), "History": []}), None, "ambiguous manifest: History", id="case-insensitive"),
    pytest.param(dumps({**SCHEMA1_BODY, "layers": []}), JSON, "ambiguous manifest: layers", id="schema1-with-layers"),
    pytest.param(dumps({**SCHEMA1_BODY, "config": {}}), mt.SCHEMA1, "ambiguous manifest: config", id="schema1-with-config"),
    pytest.param(dumps({**SCHEMA1_BODY, "manifests": []}), None, "ambiguous manifest: manifests",
                 id="schema1-with-manifests"),
    pytest.param(SCHEMA1_UNSIGNED, mt.OCI_MANIFEST, "schemaVersion", id="schema1-served-as-oci"),
    pytest.param(dumps(image_manifest(None)), mt.SCHEMA1, "schemaVersion", id="oci-served-as-schema1"),
    pytest.param(b"not json", mt.OCI_MANIFEST, "not valid JSON", id="not-json"),
    pytest.param(b"\xff\xfe\x00garbage", None, "not valid JSON", id="not-utf8"),
    pytest.param(b"[]", JSON, "not a JSON object", id="json-array"),
    pytest.param(b'"manifest"', JSON, "not a JSON object", id="json-string"),
    pytest.param(b"true", JSON, "not a JSON object", id="quay-true-body"),
    pytest.param(b"", None, "not valid JSON", id="empty-body"),
    pytest.param(dumps({"schemaVersion": 3, "layers": []}), None, "schemaVersion", id="schemaVersion-3"),
    pytest.param(dumps({"layers": [], "config": descriptor()}), None, "schemaVersion", id="no-schemaVersion"),
    pytest.param(dumps({**image_manifest(), "schemaVersion": 1}), mt.OCI_MANIFEST, "schemaVersion",
                 id="oci-with-schemaVersion-1"),
    pytest.param(dumps({"schemaVersion": 2}), None, "neither", id="neither-manifest-nor-index"),
    pytest.param(dumps({**image_manifest(), "mediaType": 7}), None, "mediaType", id="mediaType-not-a-string"),
    pytest.param(dumps({k: v for k, v in image_manifest().items() if k != "config"}), mt.OCI_MANIFEST,
                 "no config", id="manifest-without-config"),
    pytest.param(dumps({**image_manifest(), "layers": {}}), mt.OCI_MANIFEST, "layers", id="layers-not-a-list"),
    pytest.param(dumps({k: v for k, v in image_manifest().items() if k != "layers"}), mt.OCI_MANIFEST,
                 "layers", id="manifest-without-layers"),
    pytest.param(dumps({**index([]), "manifests": {}}), mt.OCI_INDEX, "list", id="manifests-not-a-list"),
    pytest.param(dumps(image_manifest(annotations={"a": 1})), None, "annotations", id="annotation-not-string"),
    pytest.param(dumps(image_manifest(annotations=["a"])), None, "annotations", id="annotations-not-object"),
    pytest.param(dumps(image_manifest(subject="sha256:x")), None, "subject", id="subject-not-descriptor"),
    # JSON true == 1 in Python; schemaVersion must be the integer 1 or 2.
    pytest.param(dumps({**SCHEMA1_BODY, "schemaVersion": True}), JSON, "schemaVersion",
                 id="schemaVersion-true-is-not-1"),
    # json.loads raises RecursionError (not ValueError) on deep nesting: still a malformed document.
    pytest.param(b"[" * 100_000 + b"]" * 100_000, JSON, None, id="deeply-nested-array"),
    pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON, None, id="deeply-nested-object"),
]  # fmt: skip


def test_null_fields_of_another_kind_are_not_ambiguous() -> None:
    """Go's decoding sees ``"fsLayers": null`` as absent; so does regpeek."""
    body = dumps({**image_manifest(), "fsLayers": None, "manifests": None})
    assert isinstance(parse(body, mt.OCI_MANIFEST), ImageManifest)


@pytest.mark.parametrize(("body", "content_type", "message"), MALFORMED)
def test_malformed(body: bytes, content_type: str | None, message: str | None) -> None:
    with pytest.raises(MalformedError, match=message):
        parse(body, content_type)


def test_malformed_error_is_a_verification_error() -> None:
    with pytest.raises(VerificationError) as info:
        parse(_ambiguous({"layers": []}), mt.OCI_INDEX)
    assert info.value.exit_code == 5


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        pytest.param(MAX_MANIFEST_SIZE, True, id="exactly-4MiB"),
        pytest.param(MAX_MANIFEST_SIZE + 1, False, id="4MiB-plus-one"),
    ],
)
def test_size_cap(size: int, ok: bool) -> None:
    body = dumps(image_manifest())
    body += b" " * (size - len(body))
    assert len(body) == size
    if ok:
        assert parse(body, mt.OCI_MANIFEST).digest == compute(body)
    else:
        with pytest.raises(TooLargeError, match=str(MAX_MANIFEST_SIZE)):
            parse(body, mt.OCI_MANIFEST)


def test_size_cap_is_checked_before_parsing() -> None:
    with pytest.raises(TooLargeError):
        parse(b"x" * (MAX_MANIFEST_SIZE + 1))
    with pytest.raises(TooLargeError):
        parse_json_object("config", b"{}" + b" " * MAX_MANIFEST_SIZE)


# -- descriptors --------------------------------------------------------------------------------

BAD_DESCRIPTORS = [
    pytest.param("sha256:x", id="not-an-object"),
    pytest.param({"mediaType": mt.OCI_LAYER, "size": 1}, id="no-digest"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": "sha256:abc", "size": 1}, id="short-digest"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": "sha256:" + "A" * 64, "size": 1}, id="uppercase-digest"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": "sha256:../../etc/passwd", "size": 1},
                 id="path-in-digest"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": 5, "size": 1}, id="digest-not-string"),
    pytest.param({"mediaType": 5, "digest": fake_digest("x"), "size": 1}, id="mediaType-not-string"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": fake_digest("x")}, id="no-size"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": fake_digest("x"), "size": -1}, id="negative-size"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": fake_digest("x"), "size": "1"}, id="size-string"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": fake_digest("x"), "size": 1.5}, id="size-float"),
    pytest.param({"mediaType": mt.OCI_LAYER, "digest": fake_digest("x"), "size": True}, id="size-bool"),
    pytest.param({**descriptor(), "platform": "linux/amd64"}, id="platform-not-object"),
    pytest.param({**descriptor(), "urls": "https://x"}, id="urls-not-list"),
    pytest.param({**descriptor(), "urls": [1]}, id="urls-not-strings"),
    pytest.param({**descriptor(), "data": "!!!not base64"}, id="data-not-base64"),
    pytest.param({**descriptor(), "data": 12}, id="data-not-string"),
    pytest.param({**descriptor(), "annotations": {"k": None}}, id="annotation-null"),
]  # fmt: skip


@pytest.mark.parametrize("value", BAD_DESCRIPTORS)
def test_malformed_descriptor(value: Any) -> None:
    with pytest.raises(MalformedError):
        Descriptor.from_json(value, "layer 0")
    with pytest.raises(MalformedError):
        parse(dumps(image_manifest(layers=[value])), mt.OCI_MANIFEST)
    with pytest.raises(MalformedError):
        parse(dumps(index([value])), mt.OCI_INDEX)


def _inline(data: bytes, digest: str | None = None, size: int | None = None) -> dict[str, Any]:
    return {
        "mediaType": mt.OCI_EMPTY,
        "digest": digest or sha256(data),
        "size": len(data) if size is None else size,
        "data": base64.b64encode(data).decode(),
    }


def test_descriptor_inline_data_verified() -> None:
    value = _inline(b"{}")
    assert Descriptor.from_json(value, "config").data == b"{}"
    manifest = parse(dumps(image_manifest(config=value)), mt.OCI_MANIFEST)
    assert isinstance(manifest, ImageManifest)
    assert manifest.config.data == b"{}"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(_inline(b"{}", digest=sha256(b"[]")), DigestMismatchError, id="data-wrong-digest"),
        pytest.param(_inline(b"{}", size=3), SizeMismatchError, id="data-wrong-size"),
    ],
)
def test_descriptor_bad_inline_data(value: dict[str, Any], error: type[VerificationError]) -> None:
    with pytest.raises(error):
        Descriptor.from_json(value, "config")
    with pytest.raises(VerificationError):
        parse(dumps(image_manifest(config=value)), mt.OCI_MANIFEST)


def test_descriptor_optional_fields() -> None:
    value = {
        **descriptor(mt.OCI_MANIFEST, "x", 7),
        "platform": {"os": "linux", "architecture": "aarch64", "variant": "v8"},
        "annotations": {"a": "b"},
        "artifactType": "application/vnd.example",
        "urls": None,
    }
    got = Descriptor.from_json(value, "entry")
    assert got.platform == Platform("linux", "arm64")
    assert dict(got.annotations) == {"a": "b"}
    assert got.artifact_type == "application/vnd.example"
    assert got.urls == ()
    assert got.data is None


def test_ensure_expected() -> None:
    body = dumps(image_manifest())
    manifest = parse(body, mt.OCI_MANIFEST)
    ensure_expected(manifest, compute(body), "m")
    ensure_expected(manifest, None, "m")
    wrong = Digest.parse(fake_digest("other"))
    with pytest.raises(DigestMismatchError) as info:
        ensure_expected(manifest, wrong, "manifest x")
    assert (info.value.expected, info.value.actual) == (wrong, compute(body))


# -- Index.select -----------------------------------------------------------------------------


def _index(*entries: dict[str, Any]) -> Index:
    result = parse(dumps(index(list(entries))), mt.OCI_INDEX)
    assert isinstance(result, Index)
    return result


BUILDKIT_INDEX = _index(
    entry("linux/amd64", "amd64"),
    entry("linux/arm64", "arm64"),
    entry("linux/arm/v7", "armv7"),
    attestation("att-amd64", fake_digest("amd64")),
    attestation("att-arm64", fake_digest("arm64")),
)


@pytest.mark.parametrize(
    ("wanted", "seed"),
    [
        pytest.param("linux/amd64", "amd64", id="amd64"),
        pytest.param("linux/amd64/v3", "amd64", id="amd64-v3-falls-back"),
        pytest.param("linux/arm64", "arm64", id="arm64"),
        pytest.param("linux/arm64/v8", "arm64", id="arm64-v8"),
        pytest.param("linux/arm/v7", "armv7", id="arm-v7"),
        pytest.param("linux/arm", "armv7", id="arm-default-v7"),
        pytest.param("linux/arm/v8", "armv7", id="arm-v8-falls-back-to-v7"),
    ],
)
def test_select(wanted: str, seed: str) -> None:
    assert str(BUILDKIT_INDEX.select(only(Platform.parse(wanted))).digest) == fake_digest(seed)


def test_attestations_are_not_runnable_and_never_chosen() -> None:
    assert [str(e.platform) for e in BUILDKIT_INDEX.runnable] == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
    ]
    assert [e.is_attestation for e in BUILDKIT_INDEX.manifests] == [False, False, False, True, True]
    with pytest.raises(PlatformNotFoundError):
        BUILDKIT_INDEX.select(only(Platform("unknown", "unknown")))


def test_attestation_by_annotation_only() -> None:
    tagged = descriptor(
        mt.OCI_MANIFEST, "att", 1, platform={"os": "linux", "architecture": "amd64"},
        annotations={"vnd.docker.reference.type": "attestation-manifest"},
    )  # fmt: skip
    index_ = _index(tagged, entry("linux/amd64", "real"))
    assert str(index_.select(only(Platform.parse("linux/amd64"))).digest) == fake_digest("real")


def test_platformless_entries_not_runnable() -> None:
    index_ = _index(descriptor(mt.OCI_MANIFEST, "nop", 1), entry("linux/amd64", "amd64"))
    assert [str(e.digest) for e in index_.runnable] == [fake_digest("amd64")]


def test_first_wins_among_equal_matches() -> None:
    index_ = _index(
        entry("linux/amd64", "first"), entry("linux/amd64", "second"), entry("linux/x86_64", "third")
    )
    assert str(index_.select(only(Platform.parse("linux/amd64"))).digest) == fake_digest("first")


def test_better_rank_beats_order() -> None:
    index_ = _index(entry("linux/386", "i386"), entry("linux/amd64/v2", "v2"), entry("linux/amd64", "v1"))
    assert str(index_.select(only(Platform.parse("linux/amd64/v3"))).digest) == fake_digest("v2")
    index_ = _index(entry("linux/arm/v7", "arm"), entry("linux/arm64", "arm64"))
    assert str(index_.select(only(Platform.parse("linux/arm64"))).digest) == fake_digest("arm64")


def test_strict_select() -> None:
    index_ = _index(entry("linux/amd64", "amd64"))
    with pytest.raises(PlatformNotFoundError):
        index_.select(only(Platform.parse("linux/amd64/v2"), strict=True))


def test_windows_os_version_select() -> None:
    index_ = _index(
        entry("windows(10.0.20348.2113)/amd64", "ltsc2022"),
        entry("windows(10.0.17763.4010)/amd64", "ltsc2019"),
    )
    picked = index_.select(only(Platform.parse("windows(10.0.17763)/amd64")))
    assert str(picked.digest) == fake_digest("ltsc2019")
    assert str(index_.select(only(Platform.parse("windows/amd64"))).digest) == fake_digest("ltsc2022")


def test_platform_not_found_names_available() -> None:
    with pytest.raises(PlatformNotFoundError) as info:
        BUILDKIT_INDEX.select(only(Platform.parse("linux/s390x")))
    error = info.value
    assert error.wanted == "linux/s390x"
    assert error.available == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert (
        str(error) == "no image for platform linux/s390x; available: linux/amd64, linux/arm64, linux/arm/v7"
    )
    assert isinstance(error, NotFoundError)
    assert error.exit_code == 3


def test_platform_not_found_in_empty_index() -> None:
    with pytest.raises(PlatformNotFoundError, match="available: none"):
        _index(attestation()).select(only(Platform.parse("linux/amd64")))


def test_platform_not_found_describes_os_version() -> None:
    index_ = _index(entry("windows(10.0.20348.2113)/amd64", "w"))
    with pytest.raises(PlatformNotFoundError) as info:
        index_.select(only(Platform.parse("windows(10.0.17763)/amd64")))
    assert info.value.available == ["windows/amd64 (10.0.20348.2113)"]
    assert info.value.wanted == "windows/amd64 (10.0.17763)"


# -- arbitrary input -----------------------------------------------------------------------------

_CONTENT_TYPES = st.sampled_from([None, JSON, "text/plain", *mt.MANIFEST_MEDIA_TYPES])
_KEYS = st.sampled_from(
    ["schemaVersion", "mediaType", "manifests", "layers", "config", "digest", "size", "platform",
     "fsLayers", "history", "signatures", "blobSum", "v1Compatibility", "data", "annotations", "subject",
     "urls", "protected", "os", "architecture"]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(mt.MANIFEST_MEDIA_TYPES),
    st.sampled_from([fake_digest("x"), "sha256:bad", "e30", "{}", 'eyJmb3JtYXRMZW5ndGgiOjF9']),
    st.text(max_size=8),
)  # fmt: skip
_JSONISH = st.recursive(
    _SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_KEYS, children, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), _CONTENT_TYPES)
def test_arbitrary_bytes_give_manifest_or_verification_error(data: bytes, content_type: str | None) -> None:
    try:
        result = parse(data, content_type)
    except VerificationError:
        return
    assert isinstance(result, (ImageManifest, Index, Schema1Manifest))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_KEYS, _JSONISH, max_size=6), _CONTENT_TYPES)
def test_arbitrary_documents_give_manifest_or_verification_error(
    document: dict[str, Any], content_type: str | None
) -> None:
    data = json.dumps(document).encode()
    try:
        result = parse(data, content_type)
    except VerificationError:
        return
    assert isinstance(result, (ImageManifest, Index, Schema1Manifest))
    assert result.raw == data


# The whole message for each malformed case above: the one line the CLI prints (exit 5).
EXACT_MESSAGES = {
    "ambiguous-manifests-and-layers": "ambiguous manifest: it has both manifests and layers/config",
    "ambiguous-served-as-manifest": "ambiguous manifest: it has both manifests and layers/config",
    "ambiguous-manifests-and-config": "ambiguous manifest: it has both manifests and layers/config",
    "ambiguous-declared-manifest": "ambiguous manifest: it has both manifests and layers/config",
    "declared-index-served-as-manifest": "manifest declares application/vnd.oci.image.index.v1+json but was served as application/vnd.oci.image.manifest.v1+json",
    "declared-manifest-served-as-index": "manifest declares application/vnd.oci.image.manifest.v1+json but was served as application/vnd.oci.image.index.v1+json",
    "declared-schema2-served-as-list": "manifest declares application/vnd.docker.distribution.manifest.v2+json but was served as application/vnd.docker.distribution.manifest.list.v2+json",
    "declared-schema2-served-as-schema1": "manifest declares application/vnd.docker.distribution.manifest.v2+json but was served as application/vnd.docker.distribution.manifest.v1+prettyjws",
    "declared-oci-served-as-schema2": "manifest declares application/vnd.oci.image.manifest.v1+json but was served as application/vnd.docker.distribution.manifest.v2+json",
    "declared-schema2-served-as-oci": "manifest declares application/vnd.docker.distribution.manifest.v2+json but was served as application/vnd.oci.image.manifest.v1+json",
    "declared-oci-index-served-as-list": "manifest declares application/vnd.oci.image.index.v1+json but was served as application/vnd.docker.distribution.manifest.list.v2+json",
    "manifest-with-fsLayers": "ambiguous manifest: fsLayers in an image manifest",
    "schema2-with-history": "ambiguous manifest: history in an image manifest",
    "manifest-with-signatures": "ambiguous manifest: signatures in an image manifest",
    "index-with-fsLayers": "ambiguous manifest: fsLayers in an index",
    "case-insensitive": "ambiguous manifest: History in an index",
    "schema1-with-layers": "ambiguous manifest: layers in a schema1 manifest",
    "schema1-with-config": "ambiguous manifest: config in a schema1 manifest",
    "schema1-with-manifests": "ambiguous manifest: manifests in a schema1 manifest",
    "schema1-served-as-oci": "unsupported manifest schemaVersion 1",
    "oci-served-as-schema1": "schema1 manifest without schemaVersion 1",
    "not-json": "manifest is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    "not-utf8": "manifest is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    "json-array": "manifest is not a JSON object",
    "json-string": "manifest is not a JSON object",
    "quay-true-body": "manifest is not a JSON object",
    "empty-body": "manifest is not valid JSON: Expecting value: line 1 column 1 (char 0)",
    "schemaVersion-3": "unsupported manifest schemaVersion 3",
    "no-schemaVersion": "unsupported manifest schemaVersion None",
    "oci-with-schemaVersion-1": "unsupported manifest schemaVersion 1",
    "neither-manifest-nor-index": "document is neither an image manifest nor an index",
    "mediaType-not-a-string": "manifest mediaType is not a string",
    "manifest-without-config": "image manifest has no config",
    "layers-not-a-list": "image manifest layers must be a list",
    "manifest-without-layers": "image manifest layers must be a list",
    "manifests-not-a-list": "index manifests must be a list",
    "annotation-not-string": "annotations must be an object of strings",
    "annotations-not-object": "annotations must be an object of strings",
    "subject-not-descriptor": "subject is not a descriptor object",
    "schemaVersion-true-is-not-1": "unsupported manifest schemaVersion None",
}


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        pytest.param(*p.values[:2], EXACT_MESSAGES[str(p.id)], id=p.id)
        for p in MALFORMED
        if p.id in EXACT_MESSAGES
    ],
)
def test_malformed_messages_in_full(body: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(MalformedError) as info:
        parse(body, content_type)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("descriptor_json", "message"),
    [
        ({"mediaType": 1, "digest": "sha256:" + "a" * 64, "size": 1}, "layer 0: mediaType and digest must be strings"),
        ({"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": -1}, "layer 0: size must be a non-negative integer"),
        ({"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": True}, "layer 0: size must be a non-negative integer"),
        ({"mediaType": "x/y", "digest": "md5:aa", "size": 1}, "layer 0: unsupported digest algorithm 'md5' in 'md5:aa'"),
        ({"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": 1, "platform": "linux"}, "layer 0: platform must be an object"),
        ({"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": 1, "urls": "https://x"}, "layer 0: urls must be a list of strings"),
        ({"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": 1, "data": "!!!!"}, "layer 0: data is not valid base64"),
        ({"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": 2, "data": "aGk="}, "digest mismatch for layer 0 inline data: expected sha256:" + "a" * 64 + ", got " + str(compute(b"hi"))),
    ],
)  # fmt: skip
def test_descriptor_errors_name_the_descriptor(descriptor_json: dict[str, Any], message: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse(dumps(image_manifest(layers=[descriptor_json])), mt.OCI_MANIFEST)
    assert str(info.value) == message


def test_descriptor_errors_name_config_subject_and_index_entries() -> None:
    bad = {"mediaType": "x/y", "digest": "sha256:" + "a" * 64, "size": -1}
    with pytest.raises(MalformedError, match=r"^config: size"):
        parse(dumps({**image_manifest(), "config": bad}), mt.OCI_MANIFEST)
    with pytest.raises(MalformedError, match=r"^subject: size"):
        parse(dumps(image_manifest(subject=bad)), mt.OCI_MANIFEST)
    with pytest.raises(MalformedError, match=r"^index entry 1: size"):
        parse(dumps(index([entry("linux/amd64"), bad])), mt.OCI_INDEX)


def test_inline_data_must_be_strict_base64() -> None:
    data = base64.b64encode(b"hello").decode()
    good = {"mediaType": "x/y", "digest": str(compute(b"hello")), "size": 5}
    parsed = parse(dumps(image_manifest(layers=[{**good, "data": data}])), mt.OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest) and parsed.layers[0].data == b"hello"
    with pytest.raises(MalformedError, match="not valid base64"):
        parse(dumps(image_manifest(layers=[{**good, "data": data[:2] + "\n" + data[2:]}])), mt.OCI_MANIFEST)


def test_descriptor_to_oci_round_trips_and_leaves_empty_members_out() -> None:
    full = {
        "mediaType": mt.OCI_LAYER_GZIP, "digest": str(compute(b"x")), "size": 1,
        "urls": ["https://a.example/x"], "annotations": {"k": "v"}, "artifactType": "application/x",
    }  # fmt: skip
    assert Descriptor.from_json(full, "d").to_oci() == full
    bare = {"mediaType": mt.OCI_LAYER_GZIP, "digest": str(compute(b"x")), "size": 1}
    assert Descriptor.from_json({**bare, "urls": [], "annotations": {}}, "d").to_oci() == bare
    assert Descriptor.from_json({**bare, "artifactType": 7}, "d").artifact_type is None
    assert Descriptor.from_json({"digest": bare["digest"], "size": 1}, "d").media_type == ""


def test_select_takes_a_platform_as_text() -> None:
    parsed = parse(dumps(index([entry("linux/amd64"), entry("linux/arm64/v8")])), mt.OCI_INDEX)
    assert isinstance(parsed, Index)
    assert parsed.select("linux/arm64").platform == Platform.parse("linux/arm64/v8")
    assert parsed.select(Platform.parse("linux/amd64")).platform == Platform.parse("linux/amd64")
    with pytest.raises(UsageError):
        parsed.select("not a platform!")


def test_too_large_names_size_and_limit() -> None:
    with pytest.raises(TooLargeError) as info:
        check_size("manifest x", MAX_MANIFEST_SIZE + 1)
    assert (info.value.size, info.value.limit) == (MAX_MANIFEST_SIZE + 1, MAX_MANIFEST_SIZE)
    assert (
        str(info.value)
        == f"manifest x is {MAX_MANIFEST_SIZE + 1} bytes, over the {MAX_MANIFEST_SIZE}-byte limit"
    )


def test_remaining_messages_and_top_level_artifact_type() -> None:
    """Survivors of the mutation run: what the last messages say, and a non-string artifactType."""
    body = dumps({**image_manifest(), "fsLayers": [], "history": []})
    with pytest.raises(MalformedError) as info:
        parse(body, mt.OCI_MANIFEST)
    assert str(info.value) == "ambiguous manifest: fsLayers, history in an image manifest"
    manifest = parse(dumps(image_manifest()), mt.OCI_MANIFEST)
    other = Digest.parse("sha256:" + "0" * 64)
    with pytest.raises(DigestMismatchError) as mismatch:
        ensure_expected(manifest, other, "manifest ghcr.io/org/app@" + str(other))
    assert mismatch.value.what == "manifest ghcr.io/org/app@" + str(other)
    with pytest.raises(TooLargeError) as large:
        parse_json_object("config of x", b" " * (MAX_MANIFEST_SIZE + 1))
    assert str(large.value).startswith("config of x is ")
    odd = parse(dumps(image_manifest(artifactType=7)), mt.OCI_MANIFEST)
    assert isinstance(odd, ImageManifest) and odd.artifact_type is None


def test_an_unknown_declared_media_type_is_not_taken_as_the_manifests() -> None:
    """A document declaring a type regpeek does not know is classified by its shape; its media type is
    that kind's, not the unknown text (a survivor of the mutation run)."""
    for content_type in (None, "application/json"):
        manifest = parse(dumps(image_manifest("application/vnd.example+json")), content_type)
        assert manifest.media_type == mt.OCI_MANIFEST
