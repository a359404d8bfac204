"""Image configs and the inspect result built from manifest, config and index."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from regpeek.errors import MalformedError, TooLargeError
from regpeek.formats import mediatypes as mt
from regpeek.formats.config import HistoryEntry, ImageConfig, build_inspect, config_from_schema1
from regpeek.formats.digest import Digest, compute
from regpeek.formats.manifest import MAX_MANIFEST_SIZE, ImageManifest, Index, parse
from regpeek.formats.platform import Platform
from regpeek.formats.reference import Reference
from regpeek.formats.schema1 import Schema1Manifest
from tests.unit.builders import (
    EMPTY_LAYER,
    attestation,
    descriptor,
    dumps,
    entry,
    fake_digest,
    image_manifest,
    index,
    schema1_document,
)

TOP_KEYS = {
    "reference", "registry", "repository", "tag", "digest", "index_digest", "media_type", "schema_version",
    "platform", "platforms", "created", "author", "docker_version", "config_digest", "env", "entrypoint",
    "cmd", "working_dir", "user", "labels", "exposed_ports", "volumes", "stop_signal", "layers", "history",
    "size", "annotations",
}  # fmt: skip
PLATFORM_KEYS = {"os", "architecture", "variant", "os_version"}
LAYER_KEYS = {"digest", "size", "media_type", "diff_id"}

CONFIG_DOC: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-05-01T12:00:00Z",
    "author": "Builder",
    "docker_version": "24.0.7",
    "config": {
        "Env": ["PATH=/bin", "A=1"],
        "Entrypoint": ["/init"],
        "Cmd": ["run", "--fast"],
        "WorkingDir": "/app",
        "User": "1000:1000",
        "Labels": {"b": "2", "a": "1"},
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
        "Volumes": {"/var/lib": {}, "/data": {}},
        "StopSignal": "SIGTERM",
    },
    "rootfs": {"type": "layers", "diff_ids": [fake_digest("diff1"), fake_digest("diff2")]},
    "history": [
        {"created": "2024-05-01T11:00:00Z", "created_by": "ADD rootfs.tar /", "comment": "base"},
        {"created": "2024-05-01T11:30:00Z", "created_by": "ENV A=1", "empty_layer": True},
        {"created": "2024-05-01T12:00:00Z", "created_by": "RUN make", "author": "me"},
    ],
}
CONFIG_RAW = dumps(CONFIG_DOC)


def _manifest(**extra: Any) -> ImageManifest:
    manifest = parse(dumps(image_manifest(**extra)), mt.OCI_MANIFEST)
    assert isinstance(manifest, ImageManifest)
    return manifest


def _config(document: dict[str, Any]) -> ImageConfig:
    return ImageConfig.parse(dumps(document), None)


# -- ImageConfig -------------------------------------------------------------------------------


def test_image_config_fields() -> None:
    config = ImageConfig.parse(CONFIG_RAW, compute(CONFIG_RAW))
    assert config.raw == CONFIG_RAW
    assert config.digest == compute(CONFIG_RAW)
    assert config.platform == Platform("linux", "amd64")
    assert config.created_raw == "2024-05-01T12:00:00Z"
    assert config.created == datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    assert config.author == "Builder"
    assert config.docker_version == "24.0.7"
    assert config.env == ["PATH=/bin", "A=1"]
    assert config.entrypoint == ["/init"]
    assert config.cmd == ["run", "--fast"]
    assert config.working_dir == "/app"
    assert config.user == "1000:1000"
    assert config.labels == {"b": "2", "a": "1"}
    assert config.exposed_ports == ["53/udp", "8080/tcp"]
    assert config.volumes == ["/data", "/var/lib"]
    assert config.stop_signal == "SIGTERM"
    assert config.diff_ids == [Digest.parse(fake_digest("diff1")), Digest.parse(fake_digest("diff2"))]
    assert config.history == [
        HistoryEntry("2024-05-01T11:00:00Z", "ADD rootfs.tar /", None, "base", False),
        HistoryEntry("2024-05-01T11:30:00Z", "ENV A=1", None, None, True),
        HistoryEntry("2024-05-01T12:00:00Z", "RUN make", "me", None, False),
    ]


# (config document, property, expected)
FIELD_CASES = [
    pytest.param({}, "env", [], id="no-config-env-empty"),
    pytest.param({}, "entrypoint", None, id="no-config-entrypoint-none"),
    pytest.param({}, "labels", {}, id="no-config-labels-empty"),
    pytest.param({}, "history", [], id="no-history"),
    pytest.param({}, "diff_ids", [], id="no-rootfs"),
    pytest.param({"config": {"Env": None, "Cmd": None, "Labels": None}}, "env", [], id="null-env"),
    pytest.param({"config": {"Cmd": None}}, "cmd", None, id="null-cmd"),
    pytest.param({"config": {"Cmd": "echo hi"}}, "cmd", ["echo hi"], id="cmd-shell-string"),
    pytest.param({"config": {"Cmd": []}}, "cmd", [], id="cmd-empty-list"),
    pytest.param({"config": {"WorkingDir": ""}}, "working_dir", None, id="empty-working-dir"),
    pytest.param({"config": {"Labels": {"n": 1}}}, "labels", {"n": "1"}, id="label-value-stringified"),
    pytest.param({"config": {"ExposedPorts": ["80"]}}, "exposed_ports", [], id="ports-not-object"),
    pytest.param({"container_config": {"Cmd": ["legacy"]}}, "cmd", ["legacy"], id="legacy-container-config"),
    pytest.param({"config": {}, "container_config": {"Cmd": ["legacy"]}}, "cmd", None,
                 id="config-wins-over-container-config"),
    pytest.param({"created": 5}, "created", None, id="created-not-string"),
    pytest.param({"history": [{"empty_layer": "true"}, "x"]}, "history",
                 [HistoryEntry(None, None, None, None, False)], id="history-junk-tolerated"),
    pytest.param({"architecture": "aarch64", "os": "linux", "variant": "v8"}, "platform",
                 Platform("linux", "arm64"), id="platform-normalised"),
    pytest.param({"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.4010"}, "platform",
                 Platform("windows", "amd64", "", "10.0.17763.4010"), id="platform-os-version"),
]  # fmt: skip


@pytest.mark.parametrize(("document", "name", "expected"), FIELD_CASES)
def test_image_config_field(document: dict[str, Any], name: str, expected: Any) -> None:
    assert getattr(_config(document), name) == expected


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param(b"[]", MalformedError, id="array"),
        pytest.param(b"{", MalformedError, id="truncated"),
        pytest.param(b"{}" + b" " * MAX_MANIFEST_SIZE, TooLargeError, id="over-4MiB"),
    ],
)
def test_image_config_parse_errors(raw: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        ImageConfig.parse(raw, None)


# -- build_inspect -----------------------------------------------------------------------------


def test_inspect_single_platform_image_to_json() -> None:
    manifest = _manifest(annotations={"org.opencontainers.image.source": "https://example.com/src"})
    config = ImageConfig.parse(CONFIG_RAW, manifest.config.digest)
    result = build_inspect(
        reference=Reference.parse("ghcr.io/org/app:1.0"),
        manifest=manifest,
        config=config,
    )
    data = result.to_dict()
    assert set(data) == TOP_KEYS
    assert data == {
        "reference": "ghcr.io/org/app:1.0",
        "registry": "ghcr.io",
        "repository": "org/app",
        "tag": "1.0",
        "digest": str(manifest.digest),
        "index_digest": None,
        "media_type": mt.OCI_MANIFEST,
        "schema_version": 2,
        "platform": {"os": "linux", "architecture": "amd64", "variant": None, "os_version": None},
        "platforms": None,
        "created": "2024-05-01T12:00:00Z",
        "author": "Builder",
        "docker_version": "24.0.7",
        "config_digest": fake_digest("config"),
        "env": ["PATH=/bin", "A=1"],
        "entrypoint": ["/init"],
        "cmd": ["run", "--fast"],
        "working_dir": "/app",
        "user": "1000:1000",
        "labels": {"b": "2", "a": "1"},
        "exposed_ports": ["53/udp", "8080/tcp"],
        "volumes": ["/data", "/var/lib"],
        "stop_signal": "SIGTERM",
        "layers": [
            {
                "digest": fake_digest("l1"),
                "size": 10,
                "media_type": mt.OCI_LAYER_GZIP,
                "diff_id": fake_digest("diff1"),
            },
            {
                "digest": fake_digest("l2"),
                "size": 20,
                "media_type": mt.OCI_LAYER_GZIP,
                "diff_id": fake_digest("diff2"),
            },
        ],
        "history": [
            {
                "created": "2024-05-01T11:00:00Z",
                "created_by": "ADD rootfs.tar /",
                "author": None,
                "comment": "base",
                "empty_layer": False,
            },
            {
                "created": "2024-05-01T11:30:00Z",
                "created_by": "ENV A=1",
                "author": None,
                "comment": None,
                "empty_layer": True,
            },
            {
                "created": "2024-05-01T12:00:00Z",
                "created_by": "RUN make",
                "author": "me",
                "comment": None,
                "empty_layer": False,
            },
        ],
        "size": 30,
        "annotations": {"org.opencontainers.image.source": "https://example.com/src"},
    }
    json.dumps(data)  # serialisable as it is


def test_inspect_diff_ids_dropped_when_counts_differ() -> None:
    manifest = _manifest()
    config = _config({**CONFIG_DOC, "rootfs": {"type": "layers", "diff_ids": [fake_digest("only-one")]}})
    result = build_inspect(
        reference=Reference.parse("x/y@" + fake_digest("m")), manifest=manifest, config=config
    )
    assert [layer["diff_id"] for layer in result.to_dict()["layers"]] == [None, None]
    assert result.to_dict()["tag"] is None


def _index(*entries: dict[str, Any]) -> Index:
    result = parse(dumps(index(list(entries), mt.DOCKER_MANIFEST_LIST)), mt.DOCKER_MANIFEST_LIST)
    assert isinstance(result, Index)
    return result


def test_inspect_from_index_lists_runnable_platforms() -> None:
    idx = _index(
        entry("linux/amd64", "amd64", mt.DOCKER_MANIFEST),
        entry("linux/arm/v7", "armv7", mt.DOCKER_MANIFEST),
        attestation(),
    )
    manifest = _manifest()
    result = build_inspect(
        reference=Reference.parse("docker.io/library/app:latest"),
        manifest=manifest,
        config=ImageConfig.parse(CONFIG_RAW, manifest.config.digest),
        index=idx,
        entry_platform=idx.manifests[0].platform,
    )
    data = result.to_dict()
    assert set(data) == TOP_KEYS
    assert data["index_digest"] == str(idx.digest)
    assert data["digest"] == str(manifest.digest)
    assert result.index_media_type == mt.DOCKER_MANIFEST_LIST
    assert data["platforms"] == [
        {"os": "linux", "architecture": "amd64", "variant": None, "os_version": None,
         "digest": fake_digest("amd64"), "media_type": mt.DOCKER_MANIFEST, "size": 500},
        {"os": "linux", "architecture": "arm", "variant": "v7", "os_version": None,
         "digest": fake_digest("armv7"), "media_type": mt.DOCKER_MANIFEST, "size": 500},
    ]  # fmt: skip
    assert set(data["platform"]) == PLATFORM_KEYS
    for layer in data["layers"]:
        assert set(layer) == LAYER_KEYS


@pytest.mark.parametrize(
    ("config_doc", "entry_platform", "expected"),
    [
        pytest.param({"os": "linux", "architecture": "amd64"}, "linux/amd64", "linux/amd64", id="agree"),
        pytest.param({}, "linux/arm64", "linux/arm64", id="config-without-platform"),
        pytest.param({"os": "linux", "architecture": "arm", "variant": "v6"}, "linux/arm/v6", "linux/arm/v6",
                     id="config-variant"),
        # The config leaves the variant out: the chosen entry's variant applies, not arm's default v7.
        pytest.param({"os": "linux", "architecture": "arm"}, "linux/arm/v6", "linux/arm/v6",
                     id="arm-variant-from-entry"),
        pytest.param({"os": "linux", "architecture": "arm"}, "linux/arm/v5", "linux/arm/v5",
                     id="arm-v5-variant-from-entry"),
        pytest.param({"os": "windows", "architecture": "amd64"}, "windows(10.0.17763.4010)/amd64",
                     "windows/amd64 (10.0.17763.4010)", id="os-version-from-entry"),
    ],
)  # fmt: skip
def test_inspect_platform_fills_gaps_from_entry(
    config_doc: dict[str, Any], entry_platform: str, expected: str
) -> None:
    result = build_inspect(
        reference=Reference.parse("x/y:t"),
        manifest=_manifest(),
        config=_config(config_doc),
        index=_index(entry("linux/amd64")),
        entry_platform=Platform.parse(entry_platform),
    )
    assert result.platform.describe() == expected


def _schema1() -> Schema1Manifest:
    body = dumps(
        schema1_document(
            [
                (EMPTY_LAYER, {"id": "c", "architecture": "amd64", "os": "linux",
                               "config": {"Env": ["X=1"], "Cmd": ["sh"]}, "created": "2020-01-01T00:00:00Z",
                               "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD sh"]},
                               "throwaway": True}),
                (fake_digest("top"), {"id": "b", "container_config": {"Cmd": ["/bin/sh", "-c", "make"]}}),
                (fake_digest("base"), {"id": "a"}),
            ]
        )
    )  # fmt: skip
    manifest = parse(body, "application/json")
    assert isinstance(manifest, Schema1Manifest)
    return manifest


def test_inspect_schema1() -> None:
    manifest = _schema1()
    result = build_inspect(
        reference=Reference.parse("localhost:5000/old:1"),
        manifest=manifest,
        config=config_from_schema1(manifest),
    )
    data = result.to_dict()
    assert set(data) == TOP_KEYS
    assert data["schema_version"] == 1
    assert data["media_type"] == mt.SCHEMA1
    assert data["digest"] == str(manifest.digest)
    assert data["config_digest"] is None
    assert data["size"] is None
    assert data["index_digest"] is None
    assert data["platforms"] is None
    assert data["annotations"] == {}
    assert data["env"] == ["X=1"]
    assert data["cmd"] == ["sh"]
    assert data["created"] == "2020-01-01T00:00:00Z"
    assert data["platform"] == {"os": "linux", "architecture": "amd64", "variant": None, "os_version": None}
    assert data["layers"] == [
        {"digest": fake_digest("base"), "size": None, "media_type": mt.DOCKER_LAYER, "diff_id": None},
        {"digest": fake_digest("top"), "size": None, "media_type": mt.DOCKER_LAYER, "diff_id": None},
    ]
    assert [(h["created_by"], h["empty_layer"]) for h in data["history"]] == [
        (None, False),
        ("/bin/sh -c make", False),
        ("/bin/sh -c #(nop) CMD sh", True),
    ]


def test_inspect_size_sums_compressed_layer_sizes() -> None:
    manifest = _manifest(layers=[descriptor(seed="a", size=5), descriptor(seed="b", size=7)])
    result = build_inspect(reference=Reference.parse("x/y:t"), manifest=manifest, config=_config({}))
    assert result.size == 12
    assert result.to_dict()["size"] == 12


def test_inspect_with_zero_layers() -> None:
    manifest = _manifest(layers=[])
    result = build_inspect(reference=Reference.parse("x/y:t"), manifest=manifest, config=_config({}))
    assert result.to_dict()["size"] == 0
    assert result.to_dict()["layers"] == []
    assert result.config_digest == Digest.parse(fake_digest("config"))
