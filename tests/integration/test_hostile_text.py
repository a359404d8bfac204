"""A hostile registry's text never drives the terminal, and never crashes regpeek.

An image pushed to the real registry carries terminal attacks in every field a person sees (labels,
env, history, annotations, author, user, working dir, platform strings, media types, artifact types):
OSC 0/8/52 (title, hyperlink, clipboard), CSI (clear screen, cursor report, conceal), BEL, the C1
forms of CSI and OSC, bidi overrides and isolates, rich markup (``[link=...]``, ``[/]``), CR, BS,
NUL, DEL, newlines and a lone surrogate. Tags, the catalog, error bodies, ``Warning`` headers and a
rate-limit source header carry them through the fault proxy. Every command runs as a real process
(real pipes, and a real pseudo-terminal for the pull progress bars) and must exit as usual, show the
data as visible escapes (``\\x1b``), and let no control character through; JSON output must decode to
the exact values.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import random
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import faultproxy as fp
from tests.support.faultproxy import FaultProxy
from tests.support.images import (
    FIXED_CREATED,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    make_tar,
    push_oci_image,
)
from tests.support.images import compress as compress_layer
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.util import sha256_digest

# Every attack at once. JSON carries all of it (the lone surrogate as the escape \ud800).
HOSTILE = (
    "\x1b]0;pwned-title\x07"  # OSC 0: set the window title
    "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"  # OSC 8: a hyperlink
    "\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: write the clipboard
    "\x1b[2J\x1b[6n\x1b[8m"  # CSI: clear the screen, report the cursor (typed into the shell), conceal
    "\x9b31m\x9d0;c1-title\x9c"  # C1: 8-bit CSI, OSC, ST
    "\u202eexe.txt\u202c\u2066iso\u2069\u200f\u061c"  # bidi override, isolate, marks
    "[link=http://evil.example]x[/link][bold]b[/][/]"  # rich markup
    "\rspoof\x08\x00\x7f\nsecond line"  # CR, BS, NUL, DEL, a newline
    "\ud800"  # a lone surrogate
)
# For a layer's media type, whose part after the last dot labels the pull progress bar: no dots.
HOSTILE_KIND = (
    "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[6n\x9b31m\u202e\u2066[link=http:evil]x[/link][/]\x7f\ud800"
)
HOSTILE_LAYER_TYPE = OCI_LAYER_GZIP + HOSTILE_KIND
# For an HTTP header (Warning): no CR, LF, NUL, VT, FF, quote or backslash, and no surrogate.
HOSTILE_HEADER = (
    "\x1b]0;pwned-title\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[6n\x9b31m\u202eexe.txt\u2066"
    "[link=http://evil.example]x[/link][/]\x7f\x08"
)

# What must never reach stdout or stderr: C0 controls but tab and newline, DEL, C1, the bidi
# controls, line/paragraph separators, surrogates (written independently of regpeek's own table).
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
# The visible escapes that prove the data was shown, not dropped.
SHOWN = ["\\x1b]0;pwned-title\\x07", "\\x1b]52;c;", "\\x9b31m", "\\u202e", "\\x7f"]


def _plain_http(*extra: str) -> list[str]:
    return ["--plain-http", "--retries", "0", *extra]


def _jdump(document: Any) -> bytes:
    """JSON as a registry could serve it: ASCII, lone surrogates as \\ud800 escapes."""
    return json.dumps(document, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class Hostile:
    registry: Registry
    repo: str
    index_digest: str
    manifest_digest: str
    layer_digest: str
    config: bytes
    labels: dict[str, str]
    plain: str  # a benign image to diff against

    def ref(self, host: str | None = None, tag: str = "latest") -> str:
        return f"{host or self.registry.host}/{self.repo}:{tag}"


@pytest.fixture(scope="module")
def hostile(registry: Registry) -> Hostile:
    repo = "hostile/img"
    with pusher_for(registry) as pusher:
        push_oci_image(pusher, "hostile/plain", "1")
        tar = make_tar({"payload.bin": random.Random(8).randbytes(256 * 1024)})
        layer = compress_layer(tar, "gzip")
        pusher.push_blob(repo, layer)
        labels = {"evil": HOSTILE, HOSTILE: "evil key", "surrogate": "\ud800", "cafe": "café ☃"}
        config = _jdump(
            {
                "created": FIXED_CREATED,
                "author": HOSTILE,
                "architecture": "amd64",
                "os": "linux",
                "os.version": HOSTILE,
                "config": {
                    "User": HOSTILE,
                    "Env": ["PATH=/bin", f"EVIL={HOSTILE}", f"{HOSTILE}=x"],
                    "Entrypoint": [HOSTILE],
                    "Cmd": [HOSTILE],
                    "WorkingDir": HOSTILE,
                    "Labels": labels,
                    "StopSignal": HOSTILE,
                    "ExposedPorts": {HOSTILE: {}},
                    "Volumes": {HOSTILE: {}},
                },
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(tar)]},
                "history": [
                    {"created": FIXED_CREATED, "created_by": HOSTILE, "author": HOSTILE, "comment": HOSTILE},
                    {"created": HOSTILE, "created_by": "ENV x", "empty_layer": True},
                ],
            }
        )
        pusher.push_blob(repo, config)
        manifest = _jdump(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(config), "size": len(config)},
                "layers": [
                    {"mediaType": HOSTILE_LAYER_TYPE, "digest": sha256_digest(layer), "size": len(layer)}
                ],
                "annotations": {"org.opencontainers.image.title": HOSTILE, HOSTILE: "evil key"},
            }
        )
        manifest_digest = pusher.push_manifest(repo, sha256_digest(manifest), manifest, OCI_MANIFEST)
        entry = {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
        evil_platform = {"architecture": HOSTILE, "os": HOSTILE, "os.version": HOSTILE, "variant": HOSTILE}
        index = _jdump(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {**entry, "platform": {"architecture": "amd64", "os": "linux"}},
                    {**entry, "platform": evil_platform},
                ],
                "annotations": {HOSTILE: HOSTILE},
            }
        )
        index_digest = pusher.push_manifest(repo, "latest", index, OCI_INDEX)
        # A referrer of the index, found through the sha256-<hex> fallback tag (distribution 2.8.2
        # has no referrers API), whose artifact type and annotations are hostile.
        empty = b"{}"
        pusher.push_blob(repo, empty)
        empty_descriptor = {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha256_digest(empty),
            "size": 2,
        }
        referrer = _jdump(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": HOSTILE,
                "config": empty_descriptor,
                "layers": [empty_descriptor],
                "subject": {"mediaType": OCI_INDEX, "digest": index_digest, "size": len(index)},
            }
        )
        referrer_digest = pusher.push_manifest(repo, sha256_digest(referrer), referrer, OCI_MANIFEST)
        fallback = _jdump(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": referrer_digest,
                        "size": len(referrer),
                        "artifactType": HOSTILE,
                        "annotations": {HOSTILE: HOSTILE},
                    }
                ],
            }
        )
        pusher.push_manifest(repo, index_digest.replace(":", "-"), fallback, OCI_INDEX)
    return Hostile(
        registry=registry,
        repo=repo,
        index_digest=index_digest,
        manifest_digest=manifest_digest,
        layer_digest=sha256_digest(layer),
        config=config,
        labels=labels,
        plain=f"{registry.host}/hostile/plain:1",
    )


# -- running regpeek as a real process ----------------------------------------------------------
@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: bytes

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout={self.stdout[:3000]!r}\nstderr={self.stderr[:3000]!r}>"


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "FORCE_COLOR", "NO_COLOR")}
    env.update(extra)
    return env


def regpeek(*args: str, **env: str) -> Run:
    """``python -m regpeek ARGS`` with stdout and stderr on pipes."""
    done = subprocess.run(
        [sys.executable, "-m", "regpeek", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=_environment(**env),
        timeout=120,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def terminal_safe(data: bytes, where: str) -> str:
    """The text written, asserting it is UTF-8 and holds no forbidden character."""
    text = data.decode("utf-8")
    bad = sorted({f"U+{ord(c):04X}" for c in FORBIDDEN.findall(text)})
    assert not bad, f"{where}: {bad} reached the terminal:\n{text!r}"
    return text


def assert_shown(text: str, where: str, shown: list[str] = SHOWN) -> None:
    missing = [escape for escape in shown if escape not in text]
    assert not missing, f"{where}: the data is not shown (missing {missing}):\n{text}"


def exact_json(data: bytes, where: str) -> Any:
    """Decode JSON output, asserting it is valid and that no control reached the stream either."""
    terminal_safe(data, where)
    return json.loads(data)


# -- the commands --------------------------------------------------------------------------------
def test_inspect_shows_hostile_fields_as_escapes(hostile: Hostile) -> None:
    run = regpeek("inspect", *_plain_http("--platform", "linux/amd64"), hostile.ref())
    assert run.code == 0, run
    assert run.stderr == b"", run
    out = terminal_safe(run.stdout, "inspect stdout")
    assert_shown(
        out, "inspect", [*SHOWN, "\\ud800", "[link=http://evil.example]x[/link]", "[/]", "\\rspoof\\x08"]
    )
    for label in ("Author", "User", "Working dir", "Env", "Labels", "Annotations", "Platform", "Stop signal"):
        assert label in out
    assert "café ☃" in out
    # One value per line: a newline inside a value is shown as \n, never starts a line of its own.
    assert "\\nsecond line" in re.sub(r"\n *", "", out)  # long values are folded: unfold them
    assert not [line for line in out.splitlines() if line.lstrip().startswith("second line")]
    # The hostile platform of the second index entry is listed, escaped.
    assert out.count("\\x1b]0;pwned-title") >= 10


def test_inspect_json_is_exact_and_safe(hostile: Hostile) -> None:
    run = regpeek("inspect", "--json", *_plain_http("--platform", "linux/amd64"), hostile.ref())
    assert run.code == 0, run
    document = exact_json(run.stdout, "inspect --json")
    assert document["labels"] == hostile.labels
    assert document["labels"]["surrogate"] == "\ud800"
    assert document["author"] == HOSTILE
    assert document["env"] == ["PATH=/bin", f"EVIL={HOSTILE}", f"{HOSTILE}=x"]
    assert document["annotations"] == {"org.opencontainers.image.title": HOSTILE, HOSTILE: "evil key"}
    assert document["layers"][0]["media_type"] == HOSTILE_LAYER_TYPE
    assert document["history"][0]["created_by"] == HOSTILE
    assert "café ☃" in run.stdout.decode()  # non-ASCII stays readable


def test_inspect_many_json_lines_are_exact_and_safe(hostile: Hostile) -> None:
    missing = f"{hostile.registry.host}/hostile/img:missing"
    run = regpeek("inspect", *_plain_http("--platform", "linux/amd64"), hostile.ref(), hostile.plain, missing)
    assert run.code == 3, run  # the worst of the batch: not found
    lines = [json.loads(line) for line in terminal_safe(run.stdout, "inspect JSON Lines").splitlines()]
    assert [line["reference"] for line in lines] == [hostile.ref(), hostile.plain, missing]
    assert lines[0]["labels"] == hostile.labels
    assert lines[2]["error"]["code"] == 3


def test_inspect_survives_an_ascii_locale(hostile: Hostile) -> None:
    """A stream that cannot encode a character writes an escape instead of raising; JSON stays JSON."""
    flags = [*_plain_http("--platform", "linux/amd64"), hostile.ref()]
    run = regpeek("inspect", *flags, PYTHONIOENCODING="ascii")
    assert run.code == 0, run
    assert "caf\\xe9 \\u2603" in terminal_safe(run.stdout, "ascii stdout")
    run = regpeek("inspect", "--json", *flags, PYTHONIOENCODING="ascii")
    assert run.code == 0, run
    assert exact_json(run.stdout, "ascii JSON")["labels"] == hostile.labels
    assert run.stdout.isascii()
    run = regpeek("inspect", *flags, hostile.plain, PYTHONIOENCODING="ascii")
    assert run.code == 0, run
    assert json.loads(run.stdout.splitlines()[0])["labels"] == hostile.labels


def test_tree_shows_hostile_platforms_media_types_and_referrers(hostile: Hostile) -> None:
    run = regpeek("tree", *_plain_http(), hostile.ref())
    assert run.code == 0, run
    out = terminal_safe(run.stdout, "tree")
    assert_shown(out, "tree", [*SHOWN, "\\ud800", "[/]"])
    assert "referrer" in out and hostile.index_digest in out
    run = regpeek("tree", "--json", *_plain_http(), hostile.ref())
    assert run.code == 0, run
    tree = exact_json(run.stdout, "tree --json")
    assert tree["children"][-1]["kind"] == "referrer"
    assert tree["children"][-1]["note"] == HOSTILE


def test_diff_shows_hostile_changes_as_escapes(hostile: Hostile) -> None:
    run = regpeek("diff", *_plain_http("--platform", "linux/amd64"), hostile.plain, hostile.ref())
    assert run.code == 1, run  # the images differ (diff(1)'s 1), and nothing went wrong:
    assert run.stderr == b"", run
    out = terminal_safe(run.stdout, "diff")
    assert_shown(out, "diff", [*SHOWN, "\\ud800", "[link=http://evil.example]x[/link]"])
    for section in ("Env", "Labels", "Annotations", "User", "Working dir", "History"):
        assert section in out
    run = regpeek("diff", "--json", *_plain_http("--platform", "linux/amd64"), hostile.plain, hostile.ref())
    assert run.code == 1, run
    assert exact_json(run.stdout, "diff --json")["labels"]["added"]["evil"] == HOSTILE


def test_referrers_show_hostile_artifact_types(hostile: Hostile) -> None:
    run = regpeek("referrers", *_plain_http(), hostile.ref())
    assert run.code == 0, run
    out = terminal_safe(run.stdout, "referrers")
    assert_shown(out, "referrers", [*SHOWN, "\\nsecond line"])
    assert len(out.splitlines()) == 1  # one referrer, one line
    run = regpeek("referrers", "--json", *_plain_http(), hostile.ref())
    assert run.code == 0, run
    assert exact_json(run.stdout, "referrers --json")["referrers"][0]["artifact_type"] == HOSTILE


HOSTILE_TAGS = ["1.0", HOSTILE, "\x1b]52;c;cm0gLXJmIH4=\x07", "\ud800"]


def test_tags_and_catalog_from_a_hostile_listing(hostile: Hostile) -> None:
    with FaultProxy.for_registry(hostile.registry) as proxy:
        proxy.add(fp.body(_jdump({"name": hostile.repo, "tags": HOSTILE_TAGS})), path=r"/tags/list")
        proxy.add(fp.body(_jdump({"repositories": ["ok/repo", HOSTILE]})), path=r"^/v2/_catalog")
        run = regpeek("tags", *_plain_http(), f"{proxy.host}/{hostile.repo}")
        assert run.code == 0, run
        out = terminal_safe(run.stdout, "tags")
        assert_shown(out, "tags", [*SHOWN, "\\ud800"])
        assert len(out.splitlines()) == len(HOSTILE_TAGS)  # one tag per line, newlines escaped
        run = regpeek("tags", "--json", *_plain_http(), f"{proxy.host}/{hostile.repo}")
        assert run.code == 0, run
        assert exact_json(run.stdout, "tags --json")["tags"] == HOSTILE_TAGS
        run = regpeek("catalog", *_plain_http(), proxy.host)
        assert run.code == 0, run
        out = terminal_safe(run.stdout, "catalog")
        assert_shown(out, "catalog")
        assert len(out.splitlines()) == 2


def test_registry_error_body_and_warning_header(hostile: Hostile) -> None:
    error = _jdump({"errors": [{"code": "MANIFEST_UNKNOWN", "message": HOSTILE}]})
    header = HOSTILE_HEADER.encode("utf-8").decode("latin-1")  # the proxy writes headers as latin-1
    with FaultProxy.for_registry(hostile.registry) as proxy:
        proxy.add(
            fp.status(404, data=error, headers={"Content-Type": "application/json"}), path=r"/manifests/gone$"
        )
        proxy.add(fp.set_header("Warning", f'299 - "{header}"'), path=r"/manifests/")
        run = regpeek("inspect", *_plain_http(), f"{proxy.host}/{hostile.repo}:gone")
        assert run.code == 3, run
        assert run.stdout == b""
        err = terminal_safe(run.stderr, "error line")
        assert len(err.splitlines()) == 1, err  # one line, the body's newline escaped
        assert err.startswith("regpeek: error: ") and "MANIFEST_UNKNOWN" in err
        assert_shown(err, "error line", [*SHOWN, "\\ud800", "\\nsecond line"])
        run = regpeek("inspect", "--debug", *_plain_http(), f"{proxy.host}/{hostile.repo}:gone")
        assert run.code == 3, run
        err = terminal_safe(run.stderr, "--debug traceback")
        assert "Traceback" in err and "\\x1b]52;c;" in err

        run = regpeek("inspect", *_plain_http("--platform", "linux/amd64"), hostile.ref(proxy.host))
        assert run.code == 0, run
        terminal_safe(run.stdout, "inspect stdout")
        err = terminal_safe(run.stderr, "warning line")
        assert err.startswith("regpeek: warning from registry: "), err
        assert len(err.splitlines()) == 1, err  # the same warning is shown once
        assert_shown(
            err, "warning", ["\\x1b]0;pwned-title\\x07", "\\x1b]52;c;", "\\x9b31m", "\\u202e", "\\x7f"]
        )
        assert "[link=http://evil.example]x[/link][/]" in err


def test_platform_not_found_lists_hostile_platforms_escaped(hostile: Hostile) -> None:
    run = regpeek("inspect", *_plain_http("--platform", "linux/s390x"), hostile.ref())
    assert run.code == 3, run
    err = terminal_safe(run.stderr, "error line")
    assert err.startswith("regpeek: error: no image for platform linux/s390x") and len(err.splitlines()) == 1
    assert "\\x1b]0;pwned-title\\x07" in err


def test_config_and_manifest_stay_byte_for_byte(hostile: Hostile) -> None:
    """``regpeek config`` and ``manifest`` print the document as served: that is their contract."""
    run = regpeek("config", *_plain_http("--platform", "linux/amd64"), hostile.ref())
    assert run.code == 0, run
    assert run.stdout == hostile.config


# -- pull progress on a real terminal ------------------------------------------------------------
# Rich's own drawing on a terminal: SGR colours, hiding the cursor, erasing and moving up a line.
RICH_OWN = re.compile(r"\x1b\[(?:\?25[lh]|[0-9;]*m|2K|[0-9]*[ABCDGK])|\r")
RAW_ATTACKS = ["\x1b]", "\x07", "\x1b[2J", "\x1b[6n", "\x9b", "\x9d", "\u202e", "\u2066", "\x7f", "\x08"]


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
    try:
        yield master, slave
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_pull_progress_labels_on_a_terminal(
    hostile: Hostile, tmp_path: Path, pty_pair: tuple[int, int]
) -> None:
    """The layer's media type labels its progress bar: drawn on a real terminal, escaped."""
    master, slave = pty_pair
    label = "\\x1b]52;c;cm0gLXJmIH4=\\x07"  # the escaped label, as the bar must show it
    seen = threading.Event()
    drawn = bytearray()

    def hold(body: bytes) -> bytes:  # answer the layer once its bar has been drawn (or after 30 s)
        seen.wait(30)
        return body

    def read_terminal() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process is gone and the terminal closed
                return
            if not chunk:
                return
            drawn.extend(chunk)
            if label.encode() in drawn:
                seen.set()

    with FaultProxy.for_registry(hostile.registry) as proxy:
        proxy.add(fp.rewrite_body(hold), path=f"/blobs/{hostile.layer_digest}$", method="GET")
        command = [sys.executable, "-m", "regpeek", "pull", *_plain_http("--platform", "linux/amd64"),
                   hostile.ref(proxy.host), str(tmp_path / "layout")]  # fmt: skip
        env = _environment(TERM="xterm-256color", COLUMNS="250", LINES="50")
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env
        )
        os.close(slave)
        reader = threading.Thread(target=read_terminal, daemon=True)
        reader.start()
        stdout, _ = process.communicate(timeout=120)
        reader.join(timeout=30)
    assert process.returncode == 0, (stdout, bytes(drawn))
    assert seen.is_set(), f"the progress bar never showed the escaped label: {bytes(drawn)!r}"
    text = bytes(drawn).decode("utf-8")
    attacks = [attack for attack in RAW_ATTACKS if attack in text]
    assert not attacks, f"{attacks} reached the terminal: {text!r}"
    terminal_safe(RICH_OWN.sub("", text).encode(), "pull progress (rich's own sequences removed)")
    out = terminal_safe(stdout, "pull stdout")
    assert out.startswith("pulled ") and hostile.manifest_digest in out

    run = regpeek(
        "pull", "--json", *_plain_http("--platform", "linux/amd64"), hostile.ref(), str(tmp_path / "again")
    )
    assert run.code == 0, run
    blobs = exact_json(run.stdout, "pull --json")["blobs"]
    assert HOSTILE_LAYER_TYPE in [blob["media_type"] for blob in blobs]


def test_ratelimit_source_header(hostile: Hostile) -> None:
    header = HOSTILE_HEADER.encode("utf-8").decode("latin-1")
    with FaultProxy.for_registry(hostile.registry) as proxy:
        limits = fp.set_header("RateLimit-Limit", "100;w=21600")
        proxy.add(
            [limits, fp.set_header("Docker-RateLimit-Source", header)], path=r"/manifests/", method="HEAD"
        )
        run = regpeek("ratelimit", *_plain_http(), hostile.ref(proxy.host))
    assert run.code == 0, run
    out = terminal_safe(run.stdout, "ratelimit")
    assert out.startswith("limit 100 per 6h, source ") and len(out.splitlines()) == 1
    assert_shown(out, "ratelimit", ["\\x1b]0;pwned-title\\x07", "\\x9b31m", "\\u202e", "\\x7f"])
