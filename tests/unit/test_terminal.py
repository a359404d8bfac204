"""Terminal safety: ``safe_text`` and ``safe_json``, then every attack through every rich renderer.

Each attack is a row: what a registry could put in a label, a media type or a platform, and the visible
escape a person must see instead. The renderers (inspect, diff, tree, pull progress) and the CLI's error
line must show it so, and let no control character through.
"""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from regpeek.formats import mediatypes as mt
from regpeek.formats.config import ImageConfig, InspectResult, build_inspect
from regpeek.formats.diff import diff_images
from regpeek.formats.digest import Digest, compute
from regpeek.formats.manifest import ImageManifest, parse
from regpeek.formats.reference import Reference
from regpeek.formats.terminal import is_safe, safe_json, safe_text
from regpeek.formats.tree import Node
from tests.integration.api import run_cli
from tests.unit.builders import dumps, fake_digest

# What must never reach a terminal (written apart from regpeek's own table): C0 but tab and newline,
# DEL, C1, bidi controls, line and paragraph separators, surrogates.
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

# (name, what the registry sends, what a person must see)
ATTACKS = [
    ("osc0-title", "\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    (
        "osc8-hyperlink",
        "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
        "\\x1b]8;;http://evil.example/",
    ),
    ("osc52-clipboard", "\x1b]52;c;cm0gLXJmIH4=\x07", "\\x1b]52;c;cm0gLXJmIH4=\\x07"),
    ("csi-clear-screen", "\x1b[2J", "\\x1b[2J"),
    ("csi-cursor-report", "\x1b[6n", "\\x1b[6n"),
    ("csi-conceal", "\x1b[8mhidden", "\\x1b[8mhidden"),
    ("bel", "ding\x07", "ding\\x07"),
    ("c1-csi", "\x9b2J", "\\x9b2J"),
    ("c1-osc", "\x9d0;owned\x9c", "\\x9d0;owned\\x9c"),
    ("bidi-override", "\u202eexe.txt", "\\u202eexe.txt"),
    ("bidi-isolate", "\u2066x\u2069", "\\u2066x\\u2069"),
    ("bidi-marks", "\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),
    ("carriage-return", "ok\rspoof", "ok\\rspoof"),
    ("backspace", "x\x08", "x\\x08"),
    ("nul-and-del", "\x00\x7f", "\\x00\\x7f"),
    ("line-separator", "a\u2028b", "a\\u2028b"),
    ("lone-surrogate", "\ud800", "\\ud800"),
    ("markup-hyperlink", "[link=http://evil.example]click[/link]", "[link=http://evil.example]click[/link]"),
    ("markup-close-all", "[/]", "[/]"),
    ("markup-style", "[bold red]x[/bold red]", "[bold red]x[/bold red]"),
    ("emoji-code", ":thumbs_up:", ":thumbs_up:"),
]
ATTACK_IDS = [name for name, _, _ in ATTACKS]


def assert_safe(text: str, shown: str, where: str) -> None:
    bad = sorted({f"U+{ord(c):04X}" for c in FORBIDDEN.findall(text)})
    assert not bad, f"{where}: {bad} reached the terminal: {text!r}"
    assert shown in text, f"{where}: {shown!r} is not shown: {text!r}"


# -- safe_text -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "attack", "shown"), ATTACKS, ids=ATTACK_IDS)
def test_safe_text_shows_each_attack_as_escapes(name: str, attack: str, shown: str) -> None:
    assert shown in safe_text(attack)
    assert is_safe(safe_text(attack))
    assert (safe_text(attack) == attack) == is_safe(attack)  # markup and emoji codes are text


@pytest.mark.parametrize(
    ("text", "newlines", "expected"),
    [
        ("plain text, café, 日本, emoji 😀", False, "plain text, café, 日本, emoji 😀"),
        ("tab\tstays", False, "tab\tstays"),
        ("two\nlines", False, "two\\nlines"),
        ("two\nlines", True, "two\nlines"),
        ("crlf\r\n", True, "crlf\\r\n"),
        ("\x1b\x9b\x85\xa0", False, "\\x1b\\x9b\\x85\xa0"),  # NEL is C1; NBSP is printable
        ("back\\slash", False, "back\\slash"),  # not doubled: the escapes are for reading
    ],
)
def test_safe_text_table(text: str, newlines: bool, expected: str) -> None:
    assert safe_text(text, newlines=newlines) == expected


_SPECIAL = st.sampled_from(
    [
        "\x00",
        "\x07",
        "\x1b",
        "\n",
        "\r",
        "\t",
        "\x7f",
        "\x85",
        "\x9b",
        "\u202e",
        "\u2066",
        "\ud800",
        "\udfff",
        "[",
    ]
)
_TEXT = st.text(st.one_of(st.characters(), _SPECIAL))


@given(_TEXT)
def test_safe_text_output_is_always_safe(text: str) -> None:
    out = safe_text(text)
    assert FORBIDDEN.search(out) is None and "\n" not in out
    kept = safe_text(text, newlines=True)
    assert FORBIDDEN.search(kept) is None
    assert kept.count("\n") == text.count("\n")
    if is_safe(text):
        assert out == text


# -- safe_json -----------------------------------------------------------------------------------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@given(_JSON)
def test_safe_json_is_exact_and_safe(value: Any) -> None:
    for text in (safe_json(value), safe_json(value, compact=True), safe_json(value, ascii_only=True)):
        assert json.loads(text) == value
        assert FORBIDDEN.search(text) is None
        text.encode("utf-8")  # a lone surrogate is an escape, never a raw code point
    assert safe_json(value, ascii_only=True).isascii()


def test_safe_json_keeps_readable_text_and_escapes_the_rest() -> None:
    value = {"label": "café \x1b[2J \x9b \u202e \ud800 \x7f"}
    text = safe_json(value, compact=True)
    assert text == '{"label":"café \\u001b[2J \\u009b \\u202e \\ud800 \\u007f"}'
    assert json.loads(text) == value


# -- every renderer ------------------------------------------------------------------------------
def _console(file: io.StringIO, **options: Any) -> Console:
    return Console(file=file, width=400, color_system=None, highlight=False, **options)


def _image(attack: str, *, plain: bool = False) -> InspectResult:
    """An image whose every shown field holds ``attack`` (or a benign one with ``plain``)."""
    value = "ok" if plain else attack
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "os.version": value,
        "author": value,
        "created": "2024-05-01T12:00:00Z",
        "config": {
            "Env": [f"EVIL={value}", f"{value}=x"],
            "Entrypoint": [value],
            "Cmd": [value],
            "WorkingDir": value,
            "User": value,
            "StopSignal": value,
            "Labels": {"evil": value, f"key{value}": "x"},
            "ExposedPorts": {f"{value}/tcp": {}},
            "Volumes": {value: {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [fake_digest("diff")]},
        "history": [{"created": value, "created_by": value, "comment": value}],
    }
    raw = json.dumps(config).encode()
    manifest = parse(
        dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": str(compute(raw)), "size": len(raw)},
                "layers": [{"mediaType": mt.OCI_LAYER_GZIP + value, "digest": fake_digest("l1"), "size": 10}],
                "annotations": {"title": value},
            }
        )
    )
    assert isinstance(manifest, ImageManifest)
    return build_inspect(
        reference=Reference.parse("registry.example/app:1"),
        manifest=manifest,
        config=ImageConfig.parse(raw, compute(raw)),
    )


def _text(lines: Any) -> str:
    return "".join(line.text + "\n" for line in lines)


@pytest.mark.parametrize(("name", "attack", "shown"), ATTACKS, ids=ATTACK_IDS)
@pytest.mark.parametrize("width", [None, 80])
def test_inspect_rendering(name: str, attack: str, shown: str, width: int | None) -> None:
    from regpeek.cli.render import inspect_lines

    out = _text(inspect_lines(_image(attack), width))
    assert_safe(out, shown, "inspect")
    assert out.count(shown) >= 12  # every field shows it


@pytest.mark.parametrize(("name", "attack", "shown"), ATTACKS, ids=ATTACK_IDS)
def test_diff_rendering(name: str, attack: str, shown: str) -> None:
    from regpeek.cli.diffview import diff_lines

    out = _text(diff_lines(diff_images(_image(attack, plain=True), _image(attack)), None))
    assert_safe(out, shown, "diff")
    assert out.count(shown) >= 10


@pytest.mark.parametrize(("name", "attack", "shown"), ATTACKS, ids=ATTACK_IDS)
def test_tree_rendering(name: str, attack: str, shown: str) -> None:
    from regpeek.cli.tree import tree_lines

    digest = Digest.parse(fake_digest("m"))
    root = Node("index", mt.OCI_INDEX, digest, 100)
    child = Node("manifest", mt.OCI_MANIFEST, digest, 10, platform=attack, note=attack)
    child.children.append(Node("layer", mt.OCI_LAYER_GZIP + attack, digest, 5))
    root.children += [child, Node("referrer", mt.OCI_MANIFEST, digest, 1, note=attack)]
    out = _text(tree_lines(root, "registry.example/app:1", None))
    assert_safe(out, shown, "tree")
    assert out.count(shown) == 4


# Rich's own drawing on a terminal: hiding the cursor, erasing and moving up a line, colours.
_RICH_OWN = re.compile(r"\x1b\[(?:\?25[lh]|[0-9;]*m|2K|[0-9]*[ABCDGK])|\r")


@pytest.mark.parametrize(("name", "attack", "shown"), ATTACKS, ids=ATTACK_IDS)
def test_pull_progress_label(name: str, attack: str, shown: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer's media type labels its bar (the part after the last dot): drawn on a terminal."""
    from regpeek.cli import progress as progress_module

    attack, shown = attack.replace(".", "_"), shown.replace(".", "_")
    out = io.StringIO()
    console = Console(file=out, width=300, force_terminal=True, color_system=None)
    monkeypatch.setattr(progress_module, "Console", lambda **_: console)
    digest = Digest.parse(fake_digest("layer"))
    with progress_module.RichPullProgress(f"pulling {attack}") as progress:
        progress.blob_started(digest, 100, mt.OCI_LAYER_GZIP + attack)
        progress.blob_advanced(digest, 50)
    drawn = _RICH_OWN.sub("", out.getvalue())  # the last frame is drawn when the display stops
    assert_safe(drawn, shown, "progress")
    assert drawn.count(shown) >= 2  # the title and the layer's label


@pytest.mark.parametrize(("name", "attack", "shown"), ATTACKS, ids=ATTACK_IDS)
def test_error_line(name: str, attack: str, shown: str, tmp_path: Any) -> None:
    """The CLI's one error line (here naming a missing layout) shows controls as escapes."""
    # One path component: oci:PATH:NAME splits at ':', and a path folds '//'.
    attack, shown = (text.replace(":", "_").replace("/", "_") for text in (attack, shown))
    result = run_cli("inspect", f"oci:{tmp_path}/{attack}")
    assert result.code == 3, result
    assert result.stderr.count("\n") == 1, result.stderr
    assert_safe(result.stderr, shown, "error line")


def test_streams_cannot_fail_to_encode(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout on an ASCII stream: what it cannot encode is written as escapes, never raises."""
    from regpeek.cli.output import configure_streams

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)
    configure_streams()
    stream.write("café \ud800 ☃")  # as rich writes: straight to sys.stdout
    assert raw.getvalue() == b"caf\\xe9 \\ud800 \\u2603"
