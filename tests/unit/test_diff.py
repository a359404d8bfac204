"""Image diffs: one case per field, identical images, schema1 against OCI, and the rich rendering."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from regpeek.cli.diffview import diff_lines, signed_size
from regpeek.formats import mediatypes as mt
from regpeek.formats.config import ImageConfig, InspectResult, build_inspect, config_from_schema1
from regpeek.formats.diff import ImageDiff, diff_images, env_map
from regpeek.formats.digest import compute
from regpeek.formats.manifest import ImageManifest, parse
from regpeek.formats.reference import Reference
from regpeek.formats.schema1 import Schema1Manifest
from tests.unit.builders import EMPTY_LAYER, descriptor, dumps, fake_digest, schema1_document

L1, L2, L3 = fake_digest("l1"), fake_digest("l2"), fake_digest("l3")

BASE_CONFIG: dict[str, Any] = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-05-01T12:00:00Z",
    "config": {
        "Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "MODE=prod", "OPTS=a=b"],
        "Entrypoint": ["/init"],
        "Cmd": ["serve", "--port", "8080"],
        "WorkingDir": "/app",
        "User": "app",
        "Labels": {"org.opencontainers.image.version": "1.0", "team": "core"},
        "ExposedPorts": {"8080/tcp": {}, "9090/tcp": {}},
        "Volumes": {"/data": {}},
        "StopSignal": "SIGTERM",
    },
    "rootfs": {"type": "layers", "diff_ids": [fake_digest("diff1"), fake_digest("diff2")]},
    "history": [
        {"created": "2024-05-01T11:00:00Z", "created_by": "ADD rootfs.tar /"},
        {"created": "2024-05-01T11:30:00Z", "created_by": "ENV MODE=prod", "empty_layer": True},
        {"created": "2024-05-01T12:00:00Z", "created_by": "RUN make install"},
    ],
}
BASE_LAYERS = [descriptor(seed="l1", size=1000), descriptor(seed="l2", size=2000)]

Edit = Callable[[dict[str, Any]], None]


def image(
    reference: str = "registry.example/app:1",
    *,
    edit: Edit | None = None,
    layers: list[dict[str, Any]] | None = None,
    media_type: str = mt.OCI_MANIFEST,
    annotations: dict[str, str] | None = None,
) -> InspectResult:
    """An OCI image (config and manifest built as bytes, then parsed), with ``edit`` applied to the config."""
    document = copy.deepcopy(BASE_CONFIG)
    if edit is not None:
        edit(document)
    raw_config = dumps(document)
    config_digest = compute(raw_config)
    manifest_document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(config_digest), "size": len(raw_config)},
        "layers": BASE_LAYERS if layers is None else layers,
    }
    if annotations:
        manifest_document["annotations"] = annotations
    manifest = parse(dumps(manifest_document))
    assert isinstance(manifest, ImageManifest)
    return build_inspect(
        reference=Reference.parse(reference),
        manifest=manifest,
        config=ImageConfig.parse(raw_config, config_digest),
    )


def side(result: InspectResult) -> dict[str, Any]:
    return {
        "reference": str(result.reference),
        "digest": str(result.digest),
        "config_digest": str(result.config_digest) if result.config_digest else None,
        "media_type": result.media_type,
        "size": result.size,
    }


NO_MAPPING_CHANGES: dict[str, Any] = {"added": {}, "removed": {}, "changed": {}}
NO_SET_CHANGES: dict[str, Any] = {"added": [], "removed": []}
SHARED_BASE_LAYERS = [{"digest": L1, "size": 1000}, {"digest": L2, "size": 2000}]


def unchanged(a: InspectResult, b: InspectResult, *, identical: bool = False) -> dict[str, Any]:
    """The JSON of a diff in which nothing but the digests differs."""
    return {
        "before": side(a),
        "after": side(b),
        "identical": identical,
        "media_type": None,
        "platform": None,
        "created": None,
        "env": NO_MAPPING_CHANGES,
        "labels": NO_MAPPING_CHANGES,
        "annotations": NO_MAPPING_CHANGES,
        "entrypoint": None,
        "cmd": None,
        "user": None,
        "working_dir": None,
        "stop_signal": None,
        "exposed_ports": NO_SET_CHANGES,
        "volumes": NO_SET_CHANGES,
        "layers": {"shared": SHARED_BASE_LAYERS, "added": [], "removed": []},
        "size_change": 0,
        "history": {"common": 3, "added": [], "removed": []},
    }


def config_field(key: str, value: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        if value is None:
            del document["config"][key]
        else:
            document["config"][key] = value

    return edit


def top_field(key: str, value: Any) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document[key] = value

    return edit


def history(*steps: dict[str, Any]) -> Edit:
    def edit(document: dict[str, Any]) -> None:
        document["history"] = list(steps)

    return edit


BASE_HISTORY = BASE_CONFIG["history"]


def step_json(
    created_by: str | None, created: str | None = None, empty_layer: bool = False
) -> dict[str, Any]:
    return {
        "created": created,
        "created_by": created_by,
        "author": None,
        "comment": None,
        "empty_layer": empty_layer,
    }


FIELD_CASES: list[Any] = [
    pytest.param(
        top_field("architecture", "arm"),
        {
            "platform": {
                "before": {"os": "linux", "architecture": "amd64", "variant": None, "os_version": None},
                "after": {"os": "linux", "architecture": "arm", "variant": "v7", "os_version": None},
            }
        },
        id="platform",
    ),
    pytest.param(
        top_field("created", "2024-06-01T00:00:00Z"),
        {"created": {"before": "2024-05-01T12:00:00Z", "after": "2024-06-01T00:00:00Z"}},
        id="created",
    ),
    pytest.param(
        config_field(
            "Env", ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "OPTS=a=c", "DEBUG", "NEW="]
        ),
        {
            "env": {
                "added": {"DEBUG": None, "NEW": ""},
                "removed": {"MODE": "prod"},
                "changed": {
                    "OPTS": {"before": "a=b", "after": "a=c"},
                    "PATH": {"before": "/usr/bin:/bin", "after": "/usr/local/bin:/usr/bin:/bin"},
                },
            }
        },
        id="env",
    ),
    pytest.param(
        config_field("Labels", {"org.opencontainers.image.version": "1.1", "owner": "ops"}),
        {
            "labels": {
                "added": {"owner": "ops"},
                "removed": {"team": "core"},
                "changed": {"org.opencontainers.image.version": {"before": "1.0", "after": "1.1"}},
            }
        },
        id="labels",
    ),
    pytest.param(
        config_field("Entrypoint", ["/sbin/tini", "--"]),
        {"entrypoint": {"before": ["/init"], "after": ["/sbin/tini", "--"]}},
        id="entrypoint",
    ),
    pytest.param(
        config_field("Cmd", None),
        {"cmd": {"before": ["serve", "--port", "8080"], "after": None}},
        id="cmd-removed",
    ),
    pytest.param(
        config_field("Cmd", "serve --port 9090"),  # a shell string, as some old configs hold
        {"cmd": {"before": ["serve", "--port", "8080"], "after": ["serve --port 9090"]}},
        id="cmd-string",
    ),
    pytest.param(config_field("User", "0:0"), {"user": {"before": "app", "after": "0:0"}}, id="user"),
    pytest.param(
        config_field("WorkingDir", None), {"working_dir": {"before": "/app", "after": None}}, id="working_dir"
    ),
    pytest.param(
        config_field("StopSignal", "SIGQUIT"),
        {"stop_signal": {"before": "SIGTERM", "after": "SIGQUIT"}},
        id="stop_signal",
    ),
    pytest.param(
        config_field("ExposedPorts", {"8080/tcp": {}, "53/udp": {}, "443/tcp": {}}),
        {"exposed_ports": {"added": ["443/tcp", "53/udp"], "removed": ["9090/tcp"]}},
        id="exposed_ports",
    ),
    pytest.param(
        config_field("Volumes", {"/cache": {}}),
        {"volumes": {"added": ["/cache"], "removed": ["/data"]}},
        id="volumes",
    ),
    pytest.param(
        history(
            *BASE_HISTORY, {"created": "2024-06-01T00:00:00Z", "created_by": "USER app", "empty_layer": True}
        ),
        {
            "history": {
                "common": 3,
                "added": [step_json("USER app", "2024-06-01T00:00:00Z", True)],
                "removed": [],
            }
        },
        id="history-appended",
    ),
    pytest.param(
        history(
            BASE_HISTORY[0],
            {"created": "2024-06-01T00:00:00Z", "created_by": "ENV MODE=prod"},  # no longer empty_layer
            BASE_HISTORY[2],
        ),
        {
            "history": {
                "common": 1,
                "added": [
                    step_json("ENV MODE=prod", "2024-06-01T00:00:00Z"),
                    step_json("RUN make install", "2024-05-01T12:00:00Z"),
                ],
                "removed": [
                    step_json("ENV MODE=prod", "2024-05-01T11:30:00Z", True),
                    step_json("RUN make install", "2024-05-01T12:00:00Z"),
                ],
            }
        },
        id="history-diverges",
    ),
    pytest.param(
        history(*[{**step, "created": "2025-01-01T00:00:00Z"} for step in BASE_HISTORY]),
        {},  # steps compared by (created_by, empty_layer): a rebuild with new timestamps has no history change
        id="history-timestamps-only",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), FIELD_CASES)
def test_one_field_differs(edit: Edit, expected: dict[str, Any]) -> None:
    a = image()
    b = image("registry.example/app:2", edit=edit)
    diff = diff_images(a, b)
    assert diff.to_dict() == {**unchanged(a, b), **expected}
    assert not diff.identical
    assert diff.has_changes == bool(expected)


def test_layers_differ() -> None:
    a = image()
    b = image(layers=[descriptor(seed="l1", size=1000), descriptor(seed="l3", size=4096)])
    diff = diff_images(a, b)
    assert diff.to_dict() == {
        **unchanged(a, b),
        "layers": {
            "shared": [{"digest": L1, "size": 1000}],
            "added": [{"digest": L3, "size": 4096}],
            "removed": [{"digest": L2, "size": 2000}],
        },
        "size_change": 2096,
    }


def test_repeated_layer_digests_count_as_often_as_they_appear() -> None:
    a = image(
        layers=[descriptor(seed="l1", size=10), descriptor(seed="l1", size=10), descriptor(seed="l2", size=5)]
    )
    b = image(
        layers=[descriptor(seed="l1", size=10), descriptor(seed="l3", size=7), descriptor(seed="l3", size=7)]
    )
    assert diff_images(a, b).to_dict()["layers"] == {
        "shared": [{"digest": L1, "size": 10}],
        "added": [{"digest": L3, "size": 7}, {"digest": L3, "size": 7}],
        "removed": [{"digest": L1, "size": 10}, {"digest": L2, "size": 5}],
    }
    assert diff_images(a, b).size_change == 24 - 25


def test_manifest_media_type_and_annotations_differ() -> None:
    a = image(annotations={"org.opencontainers.image.revision": "abc", "gone": "x"})
    b = image(media_type=mt.DOCKER_MANIFEST, annotations={"org.opencontainers.image.revision": "def"})
    assert diff_images(a, b).to_dict() == {
        **unchanged(a, b),
        "media_type": {"before": mt.OCI_MANIFEST, "after": mt.DOCKER_MANIFEST},
        "annotations": {
            "added": {},
            "removed": {"gone": "x"},
            "changed": {"org.opencontainers.image.revision": {"before": "abc", "after": "def"}},
        },
    }


def test_identical_images_under_different_references() -> None:
    a = image("registry.example/app:1")
    b = image("registry.example/app@" + str(a.digest))
    diff = diff_images(a, b)
    assert diff.identical
    assert not diff.has_changes
    assert diff.to_dict() == unchanged(a, b, identical=True)
    assert diff.to_dict()["before"]["digest"] == diff.to_dict()["after"]["digest"]


def test_identical_wins_over_anything_else_the_results_say() -> None:
    a = image()
    b = image()
    assert diff_images(a, b).identical
    assert diff_images(a, b) == diff_images(a, b)  # frozen values, comparable


def test_digests_differ_but_no_compared_field_does() -> None:
    a = image()
    b = image(edit=top_field("comment", "rebuilt"))  # a config key the diff does not look at
    diff = diff_images(a, b)
    assert diff.to_dict() == unchanged(a, b)
    assert not diff.identical
    assert not diff.has_changes


GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def _schema1_image() -> InspectResult:
    body = dumps(
        schema1_document(
            [
                (EMPTY_LAYER, {"id": "c", "architecture": "amd64", "os": "linux",
                               "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["sh"]},
                               "created": "2020-01-01T00:00:00Z",
                               "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD sh"]},
                               "throwaway": True}),
                (L2, {"id": "b", "container_config": {"Cmd": ["/bin/sh", "-c", "make"]}}),
                (L1, {"id": "a"}),
            ]
        )
    )  # fmt: skip
    manifest = parse(body, "application/json")
    assert isinstance(manifest, Schema1Manifest)
    return build_inspect(
        reference=Reference.parse("old.example/app:1"),
        manifest=manifest,
        config=config_from_schema1(manifest),
    )


def test_schema1_against_oci_sizes_unknown() -> None:
    a = _schema1_image()
    b = image()
    diff = diff_images(a, b)
    assert a.size is None
    assert diff.size_change is None
    assert diff.to_dict() == {
        **unchanged(a, b),
        "media_type": {"before": mt.SCHEMA1, "after": mt.OCI_MANIFEST},
        "created": {"before": "2020-01-01T00:00:00Z", "after": "2024-05-01T12:00:00Z"},
        "env": {
            "added": {"MODE": "prod", "OPTS": "a=b"},
            "removed": {},
            "changed": {},
        },
        "labels": {
            "added": {"org.opencontainers.image.version": "1.0", "team": "core"},
            "removed": {},
            "changed": {},
        },
        "entrypoint": {"before": None, "after": ["/init"]},
        "cmd": {"before": ["sh"], "after": ["serve", "--port", "8080"]},
        "user": {"before": None, "after": "app"},
        "working_dir": {"before": None, "after": "/app"},
        "stop_signal": {"before": None, "after": "SIGTERM"},
        "exposed_ports": {"added": ["8080/tcp", "9090/tcp"], "removed": []},
        "volumes": {"added": ["/data"], "removed": []},
        "layers": {
            "shared": [{"digest": L1, "size": 1000}, {"digest": L2, "size": 2000}],
            "added": [],
            "removed": [],
        },
        "size_change": None,
        "history": {
            "common": 0,
            "added": [
                step_json("ADD rootfs.tar /", "2024-05-01T11:00:00Z"),
                step_json("ENV MODE=prod", "2024-05-01T11:30:00Z", True),
                step_json("RUN make install", "2024-05-01T12:00:00Z"),
            ],
            "removed": [
                # a schema1 entry without `created` gets Go's zero time, as containers/image converts it
                step_json(None, GO_ZERO_TIME),
                step_json("/bin/sh -c make", GO_ZERO_TIME),
                step_json("/bin/sh -c #(nop) CMD sh", "2020-01-01T00:00:00Z", True),
            ],
        },
    }


def test_env_map_splits_at_the_first_equals_sign() -> None:
    assert env_map(["A=1", "B=x=y", "C", "D=", "A=2"]) == {"A": "2", "B": "x=y", "C": None, "D": ""}


# -- rendering ------------------------------------------------------------------------------------


def render(diff: ImageDiff) -> str:
    return "".join(line.text + "\n" for line in diff_lines(diff, 200))


def _everything_changed() -> tuple[InspectResult, InspectResult]:
    def edit(document: dict[str, Any]) -> None:
        document["architecture"] = "arm64"
        document["created"] = "2024-06-01T00:00:00Z"
        config = document["config"]
        config["Env"] = ["PATH=/usr/local/bin:/bin", "LANG=C.UTF-8", "DEBUG=1"]
        config["Labels"] = {"org.opencontainers.image.version": "1.1", "team": "core", "[red]x": "[/]"}
        config["Entrypoint"] = ["/sbin/tini", "--"]
        config["User"] = "0:0"
        config["ExposedPorts"] = {"8080/tcp": {}}
        config["Volumes"] = {"/data": {}, "/cache": {}}
        document["history"] = [*BASE_HISTORY, {"created_by": "RUN apt-get install -y curl"}]

    a = image("registry.example/app:1")
    b = image(
        "registry.example/app:2",
        edit=edit,
        layers=[*BASE_LAYERS, descriptor(seed="l3", size=3 * 1024 * 1024)],
    )
    return a, b


def test_render_changes() -> None:
    a, b = _everything_changed()
    text = render(diff_images(a, b))
    lines = [line.rstrip() for line in text.splitlines()]
    assert lines[0] == f"- registry.example/app:1  {a.digest}"
    assert lines[1] == f"+ registry.example/app:2  {b.digest}"
    for expected in [
        "Platform",
        "  ~ linux/amd64 -> linux/arm64",
        "Created",
        "  ~ 2024-05-01T12:00:00Z -> 2024-06-01T00:00:00Z",
        "Env",
        "  + DEBUG=1",
        "  - MODE=prod",
        "  - OPTS=a=b",
        "  ~ PATH: /usr/bin:/bin -> /usr/local/bin:/bin",
        "Labels",
        "  + [red]x=[/]",  # printed as text, never as markup
        "  ~ org.opencontainers.image.version: 1.0 -> 1.1",
        "Entrypoint",
        '  - ["/init"]',
        '  + ["/sbin/tini", "--"]',
        "User",
        "  ~ app -> 0:0",
        "Exposed ports",
        "  - 9090/tcp",
        "Volumes",
        "  + /cache",
        "Layers",
        "History (after 3 common steps)",
        "  + RUN apt-get install -y curl",
        "  size 2.9 KiB -> 3.0 MiB (+3.0 MiB)",
    ]:
        assert expected in lines, expected
    layers = lines.index("Layers")
    assert lines[layers + 1].split() == ["digest", "size"]
    assert lines[layers + 2] == f"  +  {L3}  3.0 MiB"
    assert lines[layers + 3].split() == ["=", "2", "shared", "layers", "2.9", "KiB"]
    for absent in ("Cmd", "Working dir", "Stop signal", "Annotations", "Media type"):
        assert absent not in lines


def test_render_identical() -> None:
    a = image("registry.example/app:1")
    b = image("registry.example/app@" + str(a.digest))
    lines = render(diff_images(a, b)).splitlines()
    assert lines == [
        f"identical  {a.digest}",
        "  registry.example/app:1",
        f"  registry.example/app@{a.digest}",
    ]


def test_render_identical_same_reference_once() -> None:
    a = image()
    assert render(diff_images(a, a)).splitlines() == [f"identical  {a.digest}", "  registry.example/app:1"]


def test_render_without_compared_changes() -> None:
    a = image()
    b = image(edit=top_field("comment", "rebuilt"))
    lines = render(diff_images(a, b)).splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("no differences in the compared fields")


def test_render_removed_layers_and_unknown_sizes() -> None:
    a = _schema1_image()
    b = image(layers=[descriptor(seed="l1", size=1000)])
    lines = [line.rstrip() for line in render(diff_images(a, b)).splitlines()]
    assert f"  -  {L2}  unknown" in lines
    assert "  size unknown -> 1000 B (unknown)" in lines
    assert "  - /bin/sh -c #(nop) CMD sh  (empty layer)" in lines
    assert "History (after 0 common steps)" in lines


def test_render_sha512_digests_uncut() -> None:
    a = image()
    b = image(layers=[{"mediaType": mt.OCI_LAYER_GZIP, "digest": str(compute(b"x", "sha512")), "size": 1}])
    text = render(diff_images(a, b))
    assert str(compute(b"x", "sha512")) in text


@pytest.mark.parametrize(
    ("size", "expected"),
    [(None, "unknown"), (0, "0 B"), (10, "+10 B"), (-1536, "-1.5 KiB"), (3 * 1024**3, "+3.0 GiB")],
)
def test_signed_size(size: int | None, expected: str) -> None:
    assert signed_size(size) == expected
