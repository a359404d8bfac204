"""The human views (inspect, tree, diff) at 60, 80, 120 and 200 columns, and unlimited (a pipe):
snapshots in ``tests/unit/snapshots/`` (``REGPEEK_UPDATE_SNAPSHOTS=1`` rewrites them), and on every
width the rules: no line wider than the width, no trailing space, every digest shown whole or in the
short form ``sha256:`` + 12 hex digits (and then the footnote says so), and each one a digest of the
image."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from regpeek.cli.diffview import diff_lines
from regpeek.cli.layout import DIGEST_NOTE, Line, cell_width
from regpeek.cli.render import inspect_lines
from regpeek.cli.tree import tree_lines
from regpeek.formats import mediatypes as mt
from regpeek.formats.config import ImageConfig, InspectResult, build_inspect
from regpeek.formats.diff import diff_images
from regpeek.formats.digest import Digest, compute
from regpeek.formats.manifest import ImageManifest, Index, parse
from regpeek.formats.reference import Reference
from regpeek.formats.tree import Node, image_node, index_node
from tests.unit.builders import attestation, descriptor, dumps, entry, fake_digest, index

SNAPSHOTS = Path(__file__).parent / "snapshots"
WIDTHS = [60, 80, 120, 200, None]
_DIGEST = re.compile(r"(sha256|sha512):([0-9a-f]+)")
_LONG_RUN = "RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl git " \
            "openssh-client && rm -rf /var/lib/apt/lists/* && useradd --create-home --uid 1000 app"  # fmt: skip


def _config(architecture: str = "amd64", extra_env: tuple[str, ...] = ()) -> bytes:
    return dumps(
        {
            "architecture": architecture,
            "os": "linux",
            "created": "2024-05-01T12:00:00Z",
            "author": "Team App <app@example.com>",
            "config": {
                "Env": [
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/app/bin:/opt/tools/bin",
                    "LANG=C.UTF-8",
                    "JAVA_OPTS=-XX:+UseContainerSupport -XX:MaxRAMPercentage=75.0 -Djava.security.egd=file:/dev/urandom",
                    *extra_env,
                ],
                "Entrypoint": ["/usr/bin/tini", "--", "/opt/app/bin/start"],
                "Cmd": ["--config", "/etc/app/config.yaml"],
                "WorkingDir": "/opt/app",
                "User": "app",
                "Labels": {
                    "org.opencontainers.image.source": "https://github.com/example/app",
                    "org.opencontainers.image.revision": "4f5f910f3c29643c1c85120f3d45c6f4fd3a099e",
                    "org.opencontainers.image.description": "An application image with a description long "
                    "enough to need more than one line at eighty columns",
                },
                "ExposedPorts": {"8080/tcp": {}, "8443/tcp": {}},
                "Volumes": {"/data": {}},
            },
            "history": [
                {"created": "2024-04-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
                {"created": "2024-04-01T00:00:01Z", "created_by": "/bin/sh -c #(nop)  CMD [\"bash\"]",
                 "empty_layer": True},
                {"created": "2024-05-01T12:00:00Z", "created_by": _LONG_RUN},
                {"created": "2024-05-01T12:00:05Z", "created_by": "COPY --chown=app:app build/app /opt/app"},
            ],
        }
    )  # fmt: skip


def _layers(seed: str) -> list[dict[str, Any]]:
    return [
        descriptor(mt.OCI_LAYER_GZIP, f"{seed}-base", 29_126_432),
        descriptor(mt.OCI_LAYER_ZSTD, f"{seed}-deps", 3_301_999),
        descriptor(mt.OCI_LAYER_GZIP, f"{seed}-app", 12_582_912),
        descriptor(mt.OCI_LAYER, f"{seed}-conf", 2_048),
    ]


def _image(reference: str = "registry.example.com:5000/team/application:1.2.3", seed: str = "v1",
           extra_env: tuple[str, ...] = ()) -> InspectResult:  # fmt: skip
    raw = _config(extra_env=extra_env)
    document = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(compute(raw)), "size": len(raw)},
        "layers": _layers(seed),
        "annotations": {"org.opencontainers.image.created": "2024-05-01T12:00:00Z"},
    }
    manifest = parse(dumps(document))
    assert isinstance(manifest, ImageManifest)
    top = parse(
        dumps(
            index(
                [
                    {**entry("linux/amd64"), "digest": str(manifest.digest), "size": len(manifest.raw)},
                    entry("linux/arm64/v8"),
                    entry("linux/arm/v7"),
                    entry("linux/ppc64le"),
                    entry("windows(10.0.17763.4010)/amd64"),
                    attestation(ref=str(manifest.digest)),
                ]
            )
        )
    )
    assert isinstance(top, Index)
    return build_inspect(
        reference=Reference.parse(reference),
        manifest=manifest,
        config=ImageConfig.parse(raw, compute(raw)),
        index=top,
        entry_platform=top.manifests[0].platform,
    )


def _tree() -> tuple[Node, set[str]]:
    result = _image()
    children = []
    digests: set[str] = set()
    for number, platform in enumerate(("linux/amd64", "linux/arm64/v8")):
        document = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": descriptor(mt.OCI_CONFIG, f"config{number}", 1500),
            "layers": _layers(platform),
        }
        manifest = parse(dumps(document))
        assert isinstance(manifest, ImageManifest)
        children.append(image_node(manifest, platform=platform))
        digests |= {str(manifest.digest), *(str(d.digest) for d in (manifest.config, *manifest.layers))}
    attest = Node("attestation", mt.OCI_MANIFEST, Digest.parse(fake_digest("att")), 800,
                  note=f"attestation for {children[0].digest}")  # fmt: skip
    root = index_node(result_index(result), [*children, attest])
    root.children.append(Node("referrer", mt.OCI_MANIFEST, Digest.parse(fake_digest("sig")), 600,
                              note="application/vnd.dev.cosign.artifact.sig.v1+json"))  # fmt: skip
    digests |= {fake_digest("att"), fake_digest("sig"), str(root.digest)}
    return root, digests


def result_index(result: InspectResult) -> Index:
    top = parse(dumps(index([entry("linux/amd64"), entry("linux/arm64/v8")])))
    assert isinstance(top, Index)
    return top


def _digests_of(result: InspectResult) -> set[str]:
    found = {str(result.digest), str(result.index_digest), str(result.config_digest)}
    found |= {str(layer.digest) for layer in result.layers}
    found |= {str(entry.digest) for entry in result.platforms or []}
    return found


def check_rules(lines: list[Line], width: int | None, known: set[str]) -> None:
    """No line past ``width``, no trailing space, each digest whole or short, and one of ``known``."""
    shortened = False
    for line in lines:
        text = line.text
        assert text == text.rstrip(), f"trailing space: {text!r}"
        if width is not None:
            assert cell_width(text) <= width, f"{cell_width(text)} > {width}: {text!r}"
        for match in _DIGEST.finditer(text):
            algorithm, hexpart = match.groups()
            whole = 64 if algorithm == "sha256" else 128
            end = match.end()
            assert end == len(text) or not text[end].isalnum(), f"a digest runs into text: {text!r}"
            if len(hexpart) == whole:
                assert match.group() in known, f"not a digest of the image: {match.group()}"
            else:
                assert len(hexpart) == 12, f"a digest cut: {text!r}"
                assert any(k.startswith(match.group()) for k in known), match.group()
                shortened = True
    words = " ".join(" ".join(line.text for line in lines).split())
    assert (DIGEST_NOTE in words) is shortened  # the footnote, exactly when something was shortened
    if width is None:
        assert not shortened


def snapshot(name: str, lines: list[Line]) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    text = "".join(line.text + "\n" for line in lines)
    if os.environ.get("REGPEEK_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}: run with REGPEEK_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(), f"{name} changed: compare with {path}"


def _label(width: int | None) -> str:
    return "pipe" if width is None else str(width)


@pytest.mark.parametrize("width", WIDTHS, ids=_label)
def test_inspect_view(width: int | None) -> None:
    result = _image()
    lines = inspect_lines(result, width)
    check_rules(lines, width, _digests_of(result))
    snapshot(f"inspect-{_label(width)}", lines)
    text = "\n".join(line.text for line in lines)
    for header in ("platform", "#", "media type" if width is None or width >= 80 else "size"):
        assert header in text
    assert "*" in text  # the chosen platform stays marked
    assert "Image digest" in text and "pins every platform" in text


@pytest.mark.parametrize("width", WIDTHS, ids=_label)
def test_tree_view(width: int | None) -> None:
    root, known = _tree()
    lines = tree_lines(root, "registry.example.com:5000/team/application:1.2.3", width)
    check_rules(lines, width, known)
    snapshot(f"tree-{_label(width)}", lines)


@pytest.mark.parametrize("width", WIDTHS, ids=_label)
def test_diff_view(width: int | None) -> None:
    before = _image()
    after = _image("registry.example.com:5000/team/application:1.3.0", seed="v2", extra_env=("DEBUG=1",))
    lines = diff_lines(diff_images(before, after), width)
    check_rules(lines, width, _digests_of(before) | _digests_of(after))
    snapshot(f"diff-{_label(width)}", lines)


def test_a_pipe_gets_one_stable_line_per_item() -> None:
    """No width: whole digests in the tables, one line per layer, never wrapped (grep finds them)."""
    result = _image()
    text = [line.text for line in inspect_lines(result, None)]
    for layer in result.layers:
        assert sum(str(layer.digest) in line for line in text) == 1
    assert any(line.startswith("History") for line in text)
    assert any(_LONG_RUN in line for line in text)


def test_snapshots_are_readable_json_free_text() -> None:
    """The snapshot files are plain text a reviewer can open (no control characters)."""
    for path in SNAPSHOTS.glob("*.txt"):
        assert all(ch == "\n" or ch.isprintable() for ch in path.read_text()), path
    assert json.dumps(sorted(p.name for p in SNAPSHOTS.glob("*.txt")))  # some exist


@pytest.mark.parametrize("width", [40, 60, 80, 200])
def test_a_digest_inside_a_word_is_never_cut(width: int) -> None:
    """``repo@sha256:...`` and ``key=sha256:...``: the line breaks before the digest, which stays whole
    (or is shortened where no line can hold it)."""
    from regpeek.cli.layout import Fit

    digest = fake_digest("inside")
    for text in (f"Built from  registry.example.com:5000/team/app@{digest}", f"label.key={digest} (pinned)"):
        fit = Fit(width)
        lines = [Line(part) for part in fit.wrap(text, width, indent=2)]
        check_rules(lines + fit.note(), width, {digest})
        assert any(digest in line.text for line in lines) is (width >= 2 + len(digest))
