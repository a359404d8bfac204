"""Docker schema1: the canonical digest of signed manifests, layer order, and the synthesized config."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from regpeek.errors import MalformedError
from regpeek.formats import mediatypes as mt
from regpeek.formats.config import config_from_schema1
from regpeek.formats.manifest import parse
from regpeek.formats.schema1 import (
    EMPTY_LAYER,
    Schema1Manifest,
    canonical_payload,
    config_bytes,
    synthesize_config,
)
from tests.unit.builders import (
    b64url,
    dumps,
    fake_digest,
    format_split,
    pretty,
    protected_header,
    schema1_document,
    sha256,
    sign,
)

NEWEST_CONFIG = {
    "Hostname": "",
    "Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"],
    "Entrypoint": ["/entrypoint.sh"],
    "Cmd": ["serve", "--port", "80"],
    "Labels": {"maintainer": "someone", "org.example.version": "1.2"},
    "WorkingDir": "/srv",
    "User": "app",
    "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
    "Volumes": {"/data": {}},
}

# top first, as fsLayers/history list them
LAYERS: list[tuple[str, dict[str, Any]]] = [
    (
        EMPTY_LAYER,
        {
            "id": "c" * 64,
            "parent": "b" * 64,
            "created": "2024-01-03T00:00:00Z",
            "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ", 'CMD ["serve"]']},
            "config": NEWEST_CONFIG,
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "author": "Someone <someone@example.com>",
            "docker_version": "20.10.7",
            "throwaway": True,
        },
    ),
    (
        fake_digest("curl-layer"),
        {
            "id": "b" * 64,
            "parent": "a" * 64,
            "created": "2024-01-02T00:00:00Z",
            "container_config": {"Cmd": ["/bin/sh", "-c", "apk add curl"]},
        },
    ),
    (
        fake_digest("base-layer"),
        {
            "id": "a" * 64,
            "created": "2024-01-01T00:00:00Z",
            "author": "Base Author",
            "comment": "imported",
            "container_config": {"Cmd": "/bin/sh -c #(nop) ADD file:abc in / "},
        },
    ),
]
DOCUMENT = schema1_document(LAYERS, name="example/app", tag="1.0", architecture="arm64")
UNSIGNED = pretty(DOCUMENT)
SIGNED = sign(UNSIGNED)


def _parse(body: bytes, content_type: str | None = None) -> Schema1Manifest:
    manifest = parse(body, content_type)
    assert isinstance(manifest, Schema1Manifest)
    return manifest


def test_signed_digest_covers_the_canonical_payload() -> None:
    length, tail = format_split(UNSIGNED)
    canonical = SIGNED[:length] + tail
    assert canonical == UNSIGNED
    manifest = _parse(SIGNED, mt.SCHEMA1_SIGNED)
    assert str(manifest.digest) == sha256(canonical)
    assert str(manifest.digest) != sha256(SIGNED)
    assert manifest.signed
    assert manifest.raw == SIGNED
    assert manifest.media_type == mt.SCHEMA1_SIGNED
    assert canonical_payload(SIGNED, json.loads(SIGNED)) == canonical


def test_resigned_bodies_keep_the_digest() -> None:
    """distribution re-signs on every GET: new bytes, same digest."""
    length, tail = format_split(UNSIGNED)
    again = sign(UNSIGNED, [protected_header(length, tail, when="2031-05-06T07:08:09Z")])
    assert again != SIGNED
    assert _parse(again).digest == _parse(SIGNED).digest


def test_whitespace_around_a_signed_body_is_not_part_of_formatLength() -> None:
    """Go hands libtrust the JSON value without surrounding whitespace (regclient's fixture has some)."""
    padded = b"\n" + SIGNED + b" \n"
    assert str(_parse(padded).digest) == str(_parse(SIGNED).digest) == sha256(UNSIGNED)
    assert _parse(padded).raw == padded


def test_two_agreeing_signatures() -> None:
    length, tail = format_split(UNSIGNED)
    body = sign(UNSIGNED, [protected_header(length, tail, "2024-01-01T00:00:00Z"),
                           protected_header(length, tail, "2025-01-01T00:00:00Z")])  # fmt: skip
    manifest = _parse(body)
    assert str(manifest.digest) == sha256(UNSIGNED)
    assert manifest.signed


def test_protected_header_with_padding_and_sha512() -> None:
    length, tail = format_split(UNSIGNED)
    header = json.dumps({"formatLength": length, "formatTail": b64url(tail)}).encode()
    padded = base64.urlsafe_b64encode(header).decode()  # with '=' padding
    body = sign(UNSIGNED, [padded])
    assert str(parse(body, None, "sha512").digest) == "sha512:" + hashlib.sha512(UNSIGNED).hexdigest()


def _bad_protected(**header: Any) -> str:
    return b64url(json.dumps(header).encode())


LENGTH, TAIL = format_split(UNSIGNED)

BAD_SIGNATURES = [
    pytest.param([protected_header(LENGTH, TAIL), protected_header(LENGTH - 1, UNSIGNED[LENGTH - 1 :])],
                 "disagree", id="signatures-disagree-on-length"),
    pytest.param([protected_header(LENGTH, TAIL), protected_header(LENGTH, b"\n}\n")],
                 "disagree", id="signatures-disagree-on-tail"),
    pytest.param(["!!!"], "base64url|JSON", id="protected-not-base64"),
    pytest.param([b64url(b"not json")], "not JSON", id="protected-not-json"),
    pytest.param([b64url(b"[1]")], "formatLength", id="protected-not-object"),
    pytest.param([_bad_protected(formatTail=b64url(TAIL))], "formatLength", id="no-formatLength"),
    pytest.param([_bad_protected(formatLength=LENGTH)], "formatLength", id="no-formatTail"),
    pytest.param([_bad_protected(formatLength=str(LENGTH), formatTail=b64url(TAIL))], "formatLength",
                 id="formatLength-string"),
    pytest.param([_bad_protected(formatLength=True, formatTail=b64url(TAIL))], "formatLength",
                 id="formatLength-bool"),
    pytest.param([_bad_protected(formatLength=0, formatTail=b64url(TAIL))], "outside", id="formatLength-zero"),
    pytest.param([_bad_protected(formatLength=10**9, formatTail=b64url(TAIL))], "outside",
                 id="formatLength-past-the-end"),
    pytest.param([_bad_protected(formatLength=LENGTH, formatTail="!!!")], "base64url|not JSON",
                 id="tail-not-base64"),
    pytest.param([protected_header(LENGTH, b"garbage")], "not JSON", id="payload-not-json"),
]  # fmt: skip


@pytest.mark.parametrize(("protected", "message"), BAD_SIGNATURES)
def test_bad_signatures(protected: list[str], message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        parse(sign(UNSIGNED, protected), mt.SCHEMA1_SIGNED)


@pytest.mark.parametrize(
    "signatures",
    [
        pytest.param({"protected": "x"}, id="not-a-list"),
        pytest.param(["x"], id="entry-not-object"),
        pytest.param([{"signature": "x"}], id="no-protected"),
        pytest.param([{"protected": 5}], id="protected-not-string"),
    ],
)
def test_malformed_signature_structure(signatures: Any) -> None:
    with pytest.raises(MalformedError):
        parse(dumps({**DOCUMENT, "signatures": signatures}), mt.SCHEMA1_SIGNED)


@pytest.mark.parametrize(
    "body",
    [pytest.param(UNSIGNED, id="pretty"), pytest.param(dumps(DOCUMENT), id="compact")],
)
def test_unsigned_is_hashed_as_is(body: bytes) -> None:
    manifest = _parse(body, mt.SCHEMA1)
    assert str(manifest.digest) == sha256(body)
    assert not manifest.signed
    assert manifest.media_type == mt.SCHEMA1


def test_empty_signatures_list_is_unsigned() -> None:
    body = dumps({**DOCUMENT, "signatures": []})
    assert str(_parse(body).digest) == sha256(body)


def test_fields_and_layers_base_first() -> None:
    manifest = _parse(SIGNED)
    assert (manifest.name, manifest.tag, manifest.architecture) == ("example/app", "1.0", "arm64")
    assert manifest.schema_version == 1
    assert [str(layer.blob_sum) for layer in manifest.layers] == [
        fake_digest("base-layer"),
        fake_digest("curl-layer"),
        EMPTY_LAYER,
    ]
    assert [layer.throwaway for layer in manifest.layers] == [False, False, True]
    assert [layer.v1["id"] for layer in manifest.layers] == ["a" * 64, "b" * 64, "c" * 64]
    assert manifest.newest["docker_version"] == "20.10.7"


def test_throwaway_must_be_true_exactly() -> None:
    body = dumps(schema1_document([(EMPTY_LAYER, {"throwaway": "true"}), (EMPTY_LAYER, {"throwaway": 1})]))
    assert [layer.throwaway for layer in _parse(body).layers] == [False, False]


MALFORMED = [
    pytest.param({**DOCUMENT, "fsLayers": []}, id="no-layers"),
    pytest.param({**DOCUMENT, "fsLayers": None}, id="fsLayers-null"),
    pytest.param({k: v for k, v in DOCUMENT.items() if k != "history"}, id="no-history"),
    pytest.param({**DOCUMENT, "history": DOCUMENT["history"][:-1]}, id="history-shorter"),
    pytest.param({**DOCUMENT, "fsLayers": [{"blobSum": "sha256:bad"}] * 3}, id="bad-blobSum"),
    pytest.param({**DOCUMENT, "fsLayers": [{"blobSum": 5}] * 3}, id="blobSum-not-string"),
    pytest.param({**DOCUMENT, "fsLayers": ["x"] * 3}, id="fsLayer-not-object"),
    pytest.param({**DOCUMENT, "history": [{"v1Compatibility": "{"}] * 3}, id="v1-not-json"),
    pytest.param({**DOCUMENT, "history": [{"v1Compatibility": "[]"}] * 3}, id="v1-not-object"),
    pytest.param({**DOCUMENT, "history": [{"v1Compatibility": {}}] * 3}, id="v1-not-a-string"),
]


@pytest.mark.parametrize("document", MALFORMED)
def test_malformed(document: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        parse(dumps(document), mt.SCHEMA1)


# What containers/image's schema1 -> OCI conversion keeps: image-spec fields only, in image-spec's order
# (Hostname, docker_version, id/parent... are dropped), maps sorted, history items ordered as Go writes them.
EXPECTED_CONFIG: dict[str, Any] = {
    "created": "2024-01-03T00:00:00Z",
    "author": "Someone <someone@example.com>",
    "architecture": "arm64",
    "os": "linux",
    "variant": "v8",
    "config": {
        "User": "app",
        "ExposedPorts": {"443/tcp": {}, "80/tcp": {}},
        "Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"],
        "Entrypoint": ["/entrypoint.sh"],
        "Cmd": ["serve", "--port", "80"],
        "Volumes": {"/data": {}},
        "WorkingDir": "/srv",
        "Labels": {"maintainer": "someone", "org.example.version": "1.2"},
    },
    "history": [
        {
            "created": "2024-01-01T00:00:00Z",
            "created_by": "/bin/sh -c #(nop) ADD file:abc in / ",
            "author": "Base Author",
            "comment": "imported",
        },
        {"created": "2024-01-02T00:00:00Z", "created_by": "/bin/sh -c apk add curl"},
        {
            "created": "2024-01-03T00:00:00Z",
            "created_by": '/bin/sh -c #(nop)  CMD ["serve"]',
            "author": "Someone <someone@example.com>",
            "empty_layer": True,
        },
    ],
}


def test_synthesize_config() -> None:
    config = synthesize_config(_parse(SIGNED))
    assert config == EXPECTED_CONFIG
    assert list(config) == list(EXPECTED_CONFIG)  # image-spec's field order, which decides the bytes
    assert list(config["config"]) == list(EXPECTED_CONFIG["config"])
    assert [list(item) for item in config["history"]] == [list(item) for item in EXPECTED_CONFIG["history"]]


def test_config_bytes_are_go_json() -> None:
    raw = config_bytes(_parse(SIGNED))
    assert raw.startswith(
        b'{"created":"2024-01-03T00:00:00Z","author":"Someone \\u003csomeone@example.com\\u003e",'
    )
    compact = json.dumps(EXPECTED_CONFIG, separators=(",", ":"), ensure_ascii=False)
    assert raw == compact.replace("<", "\\u003c").replace(">", "\\u003e").encode()


def _newest_only(v1: dict[str, Any]) -> Schema1Manifest:
    return _parse(dumps(schema1_document([(EMPTY_LAYER, v1)], architecture="amd64")))


def test_docker_only_fields_and_nulls_are_dropped() -> None:
    """The fields item 10 of issue 10 names: none of them is an OCI image-config field."""
    config = synthesize_config(_newest_only({
        "docker_version": "1.9.1", "container": "x", "container_config": {"Cmd": ["sh"]}, "id": "i", "parent": "p",
        "Size": 3, "throwaway": False, "os": "linux", "architecture": "amd64",
        "config": {
            "Hostname": "h", "Domainname": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
            "Tty": False, "OpenStdin": False, "StdinOnce": False, "Image": "sha256:abc", "OnBuild": [],
            "Healthcheck": {"Test": ["CMD", "true"]}, "Volumes": None, "Entrypoint": None, "Env": None,
            "Labels": {}, "Cmd": ["sh"], "ArgsEscaped": True, "StopSignal": "SIGTERM", "User": "",
        },
    }))  # fmt: skip
    assert config == {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "StopSignal": "SIGTERM", "ArgsEscaped": True},
        "history": [{"created": "0001-01-01T00:00:00Z", "created_by": "sh"}],
    }


def test_go_decoding_rules() -> None:
    """Keys match case-insensitively (the last one wins), times are re-encoded as Go's RFC3339Nano."""
    config = synthesize_config(_newest_only({
        "Created": "2016-02-16T21:25:24.035599120+00:00", "OS": "linux", "architecture": "amd64",
        "Author": "a", "author": "b", "config": {"env": ["A=1"], "Env": ["B=2"], "user": "u"},
    }))  # fmt: skip
    assert config["created"] == "2016-02-16T21:25:24.03559912Z"
    assert config["author"] == "b"
    assert config["config"] == {"User": "u", "Env": ["B=2"]}
    assert config["history"][0]["created"] == "0001-01-01T00:00:00Z"  # the history step reads `created` only


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("2020-09-13T12:26:40Z", "2020-09-13T12:26:40Z", id="utc"),
        pytest.param("2020-09-13T12:26:40.500000000Z", "2020-09-13T12:26:40.5Z", id="trailing-zeros"),
        pytest.param("2020-09-13T12:26:40.000Z", "2020-09-13T12:26:40Z", id="zero-fraction"),
        pytest.param("2020-09-13T12:26:40.1234567891Z", "2020-09-13T12:26:40.123456789Z", id="beyond-ns"),
        pytest.param("2020-09-13T12:26:40+02:00", "2020-09-13T12:26:40+02:00", id="offset-kept"),
        pytest.param("2020-09-13T12:26:40-00:00", "2020-09-13T12:26:40Z", id="zero-offset"),
        pytest.param("2020-02-30T12:26:40Z", None, id="bad-day"),
        pytest.param("2020-09-13 12:26:40Z", None, id="space"),
        pytest.param(5, None, id="not-a-string"),
    ],
)
def test_created_as_go_reencodes_it(given: Any, expected: str | None) -> None:
    config = synthesize_config(_newest_only({"created": given}))
    assert config.get("created") == expected


def test_synthesize_config_with_diff_ids() -> None:
    ids = [fake_digest("d1"), fake_digest("d2")]
    config = synthesize_config(_parse(SIGNED), ids)
    assert config["rootfs"] == {"type": "layers", "diff_ids": ids}


def test_synthesize_config_defaults() -> None:
    body = dumps(schema1_document([(fake_digest("x"), {"id": "x"})], architecture="s390x"))
    assert synthesize_config(_parse(body)) == {
        "architecture": "s390x",
        "os": "linux",
        "config": {},
        "history": [{"created": "0001-01-01T00:00:00Z"}],  # Go's zero time, as containers/image writes it
    }


def test_config_from_schema1() -> None:
    config = config_from_schema1(_parse(SIGNED))
    assert config.digest is None
    assert config.raw == config_bytes(_parse(SIGNED))
    assert json.loads(config.raw) == EXPECTED_CONFIG
    assert "docker_version" not in config.document  # not an OCI field; still reported:
    assert config.env == ["PATH=/usr/local/bin:/usr/bin", "LANG=C.UTF-8"]
    assert config.entrypoint == ["/entrypoint.sh"]
    assert config.cmd == ["serve", "--port", "80"]
    assert config.labels == {"maintainer": "someone", "org.example.version": "1.2"}
    assert config.working_dir == "/srv"
    assert config.user == "app"
    assert config.exposed_ports == ["443/tcp", "80/tcp"]
    assert config.volumes == ["/data"]
    assert config.created_raw == "2024-01-03T00:00:00Z"
    assert config.author == "Someone <someone@example.com>"
    assert config.docker_version == "20.10.7"
    assert str(config.platform) == "linux/arm64"
    assert [(h.created_by, h.empty_layer) for h in config.history] == [
        ("/bin/sh -c #(nop) ADD file:abc in / ", False),
        ("/bin/sh -c apk add curl", False),
        ('/bin/sh -c #(nop)  CMD ["serve"]', True),
    ]


# -- Go's decoding, as containers/image applies it to the newest v1Compatibility -----------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),  # a leap year
        ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"),  # divisible by 400: leap
        ("2023-02-29T00:00:00Z", None),
        ("1900-02-29T00:00:00Z", None),  # divisible by 100, not 400: not leap
        ("2023-02-28T00:00:00Z", "2023-02-28T00:00:00Z"),
        ("2024-04-30T00:00:00Z", "2024-04-30T00:00:00Z"),
        ("2024-04-31T00:00:00Z", None),
        ("2024-01-31T00:00:00Z", "2024-01-31T00:00:00Z"),
        ("2024-12-31T23:59:59Z", "2024-12-31T23:59:59Z"),
        ("2024-13-01T00:00:00Z", None),
        ("2024-00-01T00:00:00Z", None),
        ("2024-01-00T00:00:00Z", None),
        ("2024-01-01T24:00:00Z", None),
        ("2024-01-01T00:60:00Z", None),
        ("2024-01-01T00:00:60Z", None),
        ("2024-01-01T00:00:00+23:59", "2024-01-01T00:00:00+23:59"),
        ("2024-01-01T00:00:00+24:00", None),
        ("2024-01-01T00:00:00-05:60", None),
        ("2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00-00:00", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00+01:00", "2024-01-01T00:00:00+01:00"),
        ("2024-01-01T00:00:00.123456789123Z", "2024-01-01T00:00:00.123456789Z"),  # nanoseconds at most
        ("2024-01-01T00:00:00.120000Z", "2024-01-01T00:00:00.12Z"),  # trailing zeros dropped
        ("2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01 00:00:00Z", None),
        (20240101, None),
    ],
)
def test_created_is_reencoded_as_go_would_or_left_out(value: Any, expected: str | None) -> None:
    document = schema1_document([(fake_digest("a"), {"id": "a", "created": value, "architecture": "amd64"})])
    manifest = parse(pretty(document))
    assert isinstance(manifest, Schema1Manifest)
    config = synthesize_config(manifest)
    assert config.get("created") == expected
    assert config["history"][0]["created"] == (expected or "0001-01-01T00:00:00Z")


def test_config_fields_of_the_wrong_go_type_are_left_out_and_nulls_become_empty() -> None:
    v1 = {
        "id": "a",
        "config": {
            "Env": ["A=1", None],  # null in a []string: ""
            "Cmd": ["x", 1],  # a number: the whole field is dropped
            "Volumes": {"/data": {}, "/null": None},
            "ExposedPorts": {"80/tcp": "open"},  # not an object: dropped
            "Labels": {"a": "1", "b": None},
            "WorkingDir": 7,
        },
    }
    manifest = parse(pretty(schema1_document([(fake_digest("a"), v1)])))
    assert isinstance(manifest, Schema1Manifest)
    inner = synthesize_config(manifest)["config"]
    assert inner == {"Env": ["A=1", ""], "Volumes": {"/data": {}, "/null": {}}, "Labels": {"a": "1", "b": ""}}


def test_history_created_by_joins_the_container_cmd() -> None:
    layers = [
        (fake_digest("top"), {"id": "t", "container_config": {"Cmd": "/bin/sh -c echo"}}),
        (fake_digest("mid"), {"id": "m", "container_config": {"Cmd": ["/bin/sh", "-c", None, 3, "run"]}}),
        (fake_digest("base"), {"id": "b", "container_config": {"Cmd": 5}}),
    ]
    manifest = parse(pretty(schema1_document(layers)))
    assert isinstance(manifest, Schema1Manifest)
    history = synthesize_config(manifest)["history"]  # base first
    assert "created_by" not in history[0]
    assert history[1]["created_by"] == "/bin/sh -c   run"
    assert history[2]["created_by"] == "/bin/sh -c echo"


def test_architecture_and_os_fall_back_to_the_manifest_and_linux() -> None:
    manifest = parse(pretty(schema1_document([(fake_digest("a"), {"id": "a"})], architecture="arm64")))
    assert isinstance(manifest, Schema1Manifest)
    config = synthesize_config(manifest)
    assert (config["architecture"], config["os"]) == ("arm64", "linux")
    own = parse(
        pretty(schema1_document([(fake_digest("a"), {"id": "a", "architecture": "s390x", "os": "plan9"})]))
    )
    assert isinstance(own, Schema1Manifest)
    assert (synthesize_config(own)["architecture"], synthesize_config(own)["os"]) == ("s390x", "plan9")


def test_config_bytes_are_go_json_with_the_diff_ids() -> None:
    v1 = {"id": "a", "architecture": "amd64", "config": {"Labels": {"html": "<b>&</b>", "u": "é\u2028"}}}
    manifest = parse(pretty(schema1_document([(fake_digest("a"), v1)])))
    assert isinstance(manifest, Schema1Manifest)
    diff_ids = [fake_digest("d")]
    raw = config_bytes(manifest, diff_ids)
    assert b'"html":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e"' in raw
    assert '"u":"é\\u2028"'.encode() in raw  # UTF-8 kept, U+2028 escaped
    assert json.loads(raw)["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    assert json.loads(config_bytes(manifest)).get("rootfs") is None
    assert b" " not in raw.replace(b"<b>", b"")  # compact


def test_schema1_media_type_follows_the_signatures_when_the_header_names_none() -> None:
    unsigned = pretty(schema1_document([(fake_digest("a"), {"id": "a"})]))
    for content_type, body, expected in (
        (None, unsigned, mt.SCHEMA1),
        (None, sign(unsigned), mt.SCHEMA1_SIGNED),
        ("application/json", sign(unsigned), mt.SCHEMA1_SIGNED),
        (mt.SCHEMA1_SIGNED, sign(unsigned), mt.SCHEMA1_SIGNED),
    ):
        manifest = parse(body, content_type)
        assert isinstance(manifest, Schema1Manifest)
        assert manifest.media_type == expected, content_type
