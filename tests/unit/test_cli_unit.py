"""The CLI in-process, for everything that needs no registry: version, usage errors, exit codes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from regpeek._version import __version__
from regpeek.cli.main import main


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real auth files, and no debug log handlers left behind by ``--debug``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    logger = logging.getLogger("regpeek")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _one_error_line(err: str) -> str:
    assert err.endswith("\n")
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == "regpeek 0.1.0\n"
    assert __version__ == "0.1.0"
    assert err == ""


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("Usage: regpeek")
    for command in ("inspect", "manifest", "config", "digest", "tags"):
        assert command in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["inspect", "Ubuntu"], "regpeek: error: invalid reference 'Ubuntu'", id="inspect"),
        pytest.param(["manifest", "ubuntu:-x"], "regpeek: error: invalid reference 'ubuntu:-x'", id="manifest"),
        pytest.param(["config", "a" * 64], "regpeek: error: invalid reference '" + "a" * 64 + "'", id="config"),
        pytest.param(["digest", "https://ghcr.io/a/b"], "regpeek: error: invalid reference 'https://ghcr.io/a/b'",
                     id="digest"),
        pytest.param(["tags", "UPPER"], "regpeek: error: invalid reference 'UPPER'", id="tags"),
        pytest.param(["inspect", "alpine", "--platform", "linux/arm/v7/x"],
                     "regpeek: error: invalid platform 'linux/arm/v7/x'", id="platform-four-parts"),
        pytest.param(["manifest", "alpine", "--platform", "linux"], "regpeek: error: invalid platform 'linux'",
                     id="platform-bare-os"),
        pytest.param(["digest", "alpine", "--platform", "linux/amd 64"],
                     "regpeek: error: invalid platform 'linux/amd 64'", id="platform-bad-characters"),
        pytest.param(["inspect", "alpine", "--password", "pw"],
                     "regpeek: error: --password and --password-stdin need --username", id="password-no-user"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_error_line(err).startswith(message)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["inspect"], id="missing-argument"),
        pytest.param(["inspect", "alpine", "--no-such-option"], id="unknown-option"),
        pytest.param(["frobnicate"], id="unknown-command"),
        pytest.param(["inspect", "alpine", "--retries", "-1"], id="retries-out-of-range"),
        pytest.param(["inspect", "alpine", "--timeout", "abc"], id="timeout-not-a-number"),
    ],
)
def test_click_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "Error:" in err


@pytest.mark.parametrize("command", ["inspect", "manifest", "config", "digest", "tags"])
def test_unreachable_registry_exits_6(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code = main([command, "127.0.0.1:1/x", "--plain-http", "--retries", "0", "--timeout", "2"])
    out, err = capsys.readouterr()
    assert code == 6, err
    assert out == ""
    assert _one_error_line(err).startswith("regpeek: error: cannot reach 127.0.0.1:1")


def test_debug_shows_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "Ubuntu", "--debug"]) == 2
    _, err = capsys.readouterr()
    err = "".join(line for line in err.splitlines(keepends=True) if not line.startswith("regpeek: debug:"))
    assert err.startswith("Traceback (most recent call last):")
    assert "regpeek.errors.UsageError" in err
    assert (
        err.splitlines()[-1] == "regpeek: error: invalid reference 'Ubuntu': bad path component 'Ubuntu' "
        "(repository names must be lowercase)"
    )


def test_no_traceback_without_debug(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "Ubuntu"]) == 2
    _, err = capsys.readouterr()
    assert _one_error_line(err) == (
        "regpeek: error: invalid reference 'Ubuntu': bad path component 'Ubuntu' (repository names must be lowercase)"
    )
