"""The command line's output as people and scripts meet it: views at 60/80/120/200 columns and in a
pipe, ``--format`` templates, every ``--help`` ending with examples, shell completion, and no tar
written to a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from regpeek.cli.layout import Line
from regpeek.cli.main import COMMANDS, cli
from tests.integration.api import registry_flags, run_cli
from tests.support.fixtures import require_tool
from tests.support.images import Pushed, PushedImage, PushedIndex
from tests.support.registry import Registry
from tests.unit.test_views import check_rules


def _known(samples: dict[str, Pushed]) -> set[str]:
    """Every digest the samples hold (manifests, configs, layers, indexes)."""
    found: set[str] = set()
    for image in samples.values():
        found.add(image.digest)
        for part in [image, *getattr(image, "children", []), getattr(image, "attestation", None)]:
            if isinstance(part, PushedImage):
                found |= {part.digest, part.config.digest, *(layer.digest for layer in part.layers)}
    return found


def _lines(text: str) -> list[Line]:
    return [Line(line) for line in text.splitlines()]


@pytest.mark.parametrize("width", [60, 80, 120, 200])
@pytest.mark.parametrize("command", ["inspect", "tree", "diff"])
def test_views_fit_the_width(
    command: str, width: int, registry: Registry, samples: dict[str, Pushed], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    index = f"{registry.host}/samples/index"
    argv = {
        "inspect": ["inspect", index],
        "tree": ["tree", "--no-referrers", index],
        "diff": ["diff", "--platform-a", "linux/amd64", "--platform-b", "linux/arm64", index, index],
    }[command]
    done = run_cli(argv[0], *registry_flags(registry), *argv[1:])
    assert done.code == (1 if command == "diff" else 0), done.stderr
    check_rules(_lines(done.text), width, _known(samples))
    if command == "inspect":
        assert "Image digest" in done.text and "linux/amd64 *" in done.text


@pytest.mark.parametrize("width", [60, 80, 120, 200])
def test_the_sif_view_fits_the_width(
    width: int,
    registry: Registry,
    samples: dict[str, Pushed],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_tool("tar2sqfs")
    sif = tmp_path / "image.sif"
    built = run_cli("sif", *registry_flags(registry), "--quiet", f"{registry.host}/samples/index", str(sif))
    assert built.code == 0, built.stderr
    monkeypatch.setenv("COLUMNS", str(width))
    done = run_cli("inspect", f"sif:{sif}")
    assert done.code == 0, done.stderr
    check_rules(_lines(done.text), width, _known(samples))
    assert "Objects" in done.text and "Definition" in done.text


def test_a_pipe_gets_whole_digests_and_no_trailing_spaces(
    registry: Registry, samples: dict[str, Pushed], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    done = run_cli("inspect", *registry_flags(registry), f"{registry.host}/samples/index")
    assert done.code == 0
    check_rules(_lines(done.text), None, _known(samples))
    image = samples["samples/index"]
    assert isinstance(image, PushedIndex)
    lines = done.text.splitlines()
    for child in image.children:  # each platform's row holds its whole digest, on one line: greppable
        assert any(child.digest in line and line.startswith(child.platform.os) for line in lines), (
            child.digest
        )


def test_format_one_line_per_image(registry: Registry, samples: dict[str, Pushed]) -> None:
    oci, docker = samples["samples/oci"], samples["samples/docker"]
    assert isinstance(oci, PushedImage) and isinstance(docker, PushedImage)
    template = "{digest} {platform.architecture} {layers[0].size} {labels} {tag}"
    done = run_cli("inspect", *registry_flags(registry), "--format", template,
                   f"{registry.host}/samples/oci", f"{registry.host}/samples/docker", f"{registry.host}/samples/none")  # fmt: skip
    assert done.code == 3
    lines = done.text.splitlines()
    assert len(lines) == 2
    assert lines[0].split(" ", 3)[:3] == [oci.digest, "amd64", str(oci.layers[0].size)]
    assert lines[1].startswith(docker.digest + " amd64 ")
    assert lines[0].endswith(" latest")
    assert done.stderr.startswith(f"regpeek: error: {registry.host}/samples/none: ")
    one = run_cli("inspect", *registry_flags(registry), "--format", "{index_digest}|{platforms[2].variant}",
                  f"{registry.host}/samples/index")  # fmt: skip
    assert one.text == f"{samples['samples/index'].digest}|v7\n"


def test_format_for_listings_and_diff(registry: Registry, samples: dict[str, Pushed]) -> None:
    flags = registry_flags(registry)
    tags = run_cli("tags", *flags, "--format", "{source}:{tag} ({count})", f"{registry.host}/samples/oci")
    assert tags.text == f"{registry.host}/samples/oci:latest (1)\n"
    catalog = run_cli("catalog", *flags, "--format", "{repository}", registry.host)
    assert "samples/oci\n" in catalog.text and catalog.code == 0
    diff = run_cli("diff", *flags, "--format", "{identical} {before.digest}", f"{registry.host}/samples/oci",
                   f"{registry.host}/samples/oci")  # fmt: skip
    assert diff.text == f"true {samples['samples/oci'].digest}\n"
    referrers = run_cli("referrers", *flags, "--format", "{digest}", f"{registry.host}/samples/oci")
    assert (referrers.code, referrers.text) == (0, "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["inspect", "--format", "{nope}"], "unknown key 'nope'; the keys are: annotations, author",
                     id="inspect"),
        pytest.param(["tags", "--format", "{name}"], "the keys are: count, pages, source, tag, tags", id="tags"),
        pytest.param(["inspect", "--format", "{}"], "name a key in every {}", id="positional"),
        pytest.param(["inspect", "--format", "{digest"], "--format: expected '}'", id="syntax"),
    ],
)  # fmt: skip
def test_format_errors_before_any_traffic(argv: list[str], message: str, registry: Registry) -> None:
    registry.mark()
    done = run_cli(argv[0], *registry_flags(registry), *argv[1:], f"{registry.host}/samples/oci")
    assert done.code == 2
    assert message in done.stderr
    assert registry.requests() == []


def test_format_unknown_nested_key_names_the_keys_there(
    registry: Registry, samples: dict[str, Pushed]
) -> None:
    done = run_cli(
        "inspect", *registry_flags(registry), "--format", "{platform.arch}", f"{registry.host}/samples/oci"
    )
    assert done.code == 2
    assert "unknown key 'arch' in platform; there: architecture, os, os_version, variant" in done.stderr


def _commands() -> list[list[str]]:
    names = [[name] for name in COMMANDS if name != "cache"]
    return [[], *names, ["cache"], ["cache", "info"], ["cache", "prune"]]


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv) or "regpeek")
def test_every_help_ends_with_examples(argv: list[str]) -> None:
    done = run_cli(*argv, "--help")
    assert done.code == 0
    text = done.text
    tail = text[text.rindex("Examples:") :]
    examples = [line.strip() for line in tail.splitlines()[1:] if line.strip()]
    assert 2 <= len(examples) <= 3, text
    assert all(line.startswith(("regpeek ", "echo ")) for line in examples), examples
    assert "Options:" not in tail and "Commands:" not in tail, "examples must come last"
    assert max(len(line) for line in text.splitlines()) <= 100


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [(["regpeek", "ins"], 1, "inspect"), (["regpeek", "log"], 1, "login"), (["regpeek", "cache", "pr"], 2, "prune"),
     (["regpeek", "inspect", "--plat"], 2, "--platform")],
)  # fmt: skip
def test_bash_completion(words: list[str], cword: int, expected: str) -> None:
    env = {
        **os.environ,
        "_REGPEEK_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(words),
        "COMP_CWORD": str(cword),
    }
    done = subprocess.run(
        [sys.executable, "-m", "regpeek"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert f"plain,{expected}" in done.stdout.splitlines()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    env = {**os.environ, "_REGPEEK_COMPLETE": f"{shell}_source"}
    done = subprocess.run(
        [sys.executable, "-m", "regpeek"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "_REGPEEK_COMPLETE" in done.stdout


def test_export_refuses_to_write_a_tar_to_a_terminal(registry: Registry, samples: dict[str, Pushed]) -> None:
    primary, replica = pty.openpty()
    try:
        registry.mark()
        done = subprocess.run(
            [sys.executable, "-m", "regpeek", "export", "--plain-http", f"{registry.host}/samples/oci", "-"],
            stdout=replica, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
    finally:
        os.close(replica)
        os.close(primary)
    assert done.returncode == 2
    assert "refusing to write a tar to a terminal" in done.stderr
    assert registry.requests() == []


def test_export_to_a_pipe_draws_no_progress(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """With stdout a pipe and stderr a terminal, nothing is drawn: the tar's reader may be printing."""
    primary, replica = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "regpeek", "export", "--plain-http", f"{registry.host}/samples/oci", "-"],
            stdout=subprocess.PIPE, stderr=replica, check=False,
        )  # fmt: skip
        os.set_blocking(primary, False)
        try:
            drawn = os.read(primary, 65536)
        except BlockingIOError:
            drawn = b""
    finally:
        os.close(replica)
        os.close(primary)
    assert done.returncode == 0
    assert done.stdout[257:262] == b"ustar"  # a tar
    assert drawn == b""


def test_progress_speed_in_the_sizes_units() -> None:
    from rich.progress import Progress

    from regpeek.cli.progress import _SpeedColumn

    progress = Progress()
    task = progress.add_task("x", total=100)
    progress.tasks[task].finished_speed = 3 * 1024 * 1024 + 200 * 1024
    assert str(_SpeedColumn().render(progress.tasks[task])) == "3.2 MiB/s"
    assert json.dumps(cli.name)  # the group exists
