"""Ctrl-C and SIGTERM in the middle of ``pull``, ``unpack``, ``export`` and ``sif``: nothing is left behind
that was not there before (a DEST the command created, temporary files, the cache's work area).

regpeek runs as a real process (``python -m regpeek``) against the registry behind a fault proxy
that holds one layer's body: the signal is sent once the proxy shows that download under way (an
event, not a delay), so the command is always interrupted mid-download.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.faultproxy import FaultProxy, stall_mid_body
from tests.support.fixtures import require_tool
from tests.support.images import Pushed, PushedImage
from tests.support.registry import Registry

WAIT = 60.0


@pytest.fixture
def held(registry: Registry, samples: dict[str, Pushed]) -> Iterator[tuple[FaultProxy, PushedImage]]:
    """A proxy in front of the registry that holds samples/docker's last layer after its headers."""
    image = samples["samples/docker"]
    assert isinstance(image, PushedImage)
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(stall_mid_body(300, after_bytes=0), path=f"/blobs/{image.layers[-1].digest}")
        yield proxy, image


def _tree(directory: Path) -> dict[str, str]:
    """Every path below ``directory`` with a hash of its content (directories as "dir")."""
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = str(path.relative_to(directory))
        if path.is_dir() and not path.is_symlink():
            found[relative] = "dir"
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[relative] = "other"
    return found


def _interrupt(
    argv: list[str], proxy: FaultProxy, digest: str, how: signal.Signals, cwd: Path
) -> tuple[int, str]:
    """Run regpeek, wait until the held layer is being downloaded, send ``how``; exit code and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "regpeek", *argv],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not any(r.stalling and digest in r.path for r in proxy.requests):
            if process.poll() is not None:
                raise AssertionError(f"regpeek ended before the held layer: {process.communicate()[1]}")
            if time.monotonic() > deadline:
                raise AssertionError("the held layer was never requested")
            time.sleep(0.01)
        process.send_signal(how)
        _, stderr = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


SIGNALS = [pytest.param(signal.SIGINT, 130, "interrupted", id="ctrl-c"),
           pytest.param(signal.SIGTERM, 143, "terminated", id="sigterm")]  # fmt: skip


@pytest.mark.parametrize(("how", "code", "word"), SIGNALS)
@pytest.mark.parametrize("command", ["pull", "unpack", "export", "sif"])
def test_an_interrupted_command_leaves_nothing(
    command: str,
    how: signal.Signals,
    code: int,
    word: str,
    held: tuple[FaultProxy, PushedImage],
    tmp_path: Path,
) -> None:
    if command == "sif":
        require_tool("tar2sqfs")
    proxy, image = held
    work = tmp_path / "work"
    work.mkdir()
    (work / "existing").write_text("kept\n")
    cache = Path(os.environ["REGPEEK_CACHE_DIR"])
    before = _tree(work)
    target = {"pull": "new/layout", "unpack": "rootfs", "export": "out.tar", "sif": "out.sif"}[command]
    argv = [command, "--plain-http", "--retries", "0", "--quiet", f"{proxy.host}/samples/docker", target]
    if command == "pull":
        argv.insert(1, "--no-cache")
    status, stderr = _interrupt(argv, proxy, str(image.layers[-1].digest), how, work)
    assert status == code, stderr
    assert stderr.strip().endswith(f"regpeek: {word}")
    assert "Traceback" not in stderr
    assert _tree(work) == before  # no DEST, no parent it made, no temporary file
    work_areas = cache / "layers" / "work"
    assert (
        not work_areas.exists() or [p.name for p in work_areas.iterdir() if not p.name.startswith(".")] == []
    )


@pytest.mark.parametrize(("how", "code", "word"), SIGNALS)
def test_an_interrupted_pull_leaves_an_existing_layout_as_it_was(
    how: signal.Signals,
    code: int,
    word: str,
    registry: Registry,
    held: tuple[FaultProxy, PushedImage],
    tmp_path: Path,
) -> None:
    proxy, image = held
    layout = tmp_path / "layout"
    first = subprocess.run(  # an image without the held layer, so that the second pull must fetch it
        [
            sys.executable,
            "-m",
            "regpeek",
            "pull",
            "--plain-http",
            "--quiet",
            "--platform",
            "linux/arm64",
            f"{registry.host}/samples/index",
            str(layout),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    before = _tree(layout)
    status, stderr = _interrupt(
        ["pull", "--plain-http", "--no-cache", "--quiet", f"{proxy.host}/samples/docker", str(layout)],
        proxy,
        str(image.layers[-1].digest),
        how,
        tmp_path,
    )
    assert status == code, stderr
    assert _tree(layout) == before
