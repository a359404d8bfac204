"""The squashfs tool as a child process (regpeek.disk.squashfs._running): whatever stops regpeek, the
tool does not go on running."""

from __future__ import annotations

import subprocess
import threading
from typing import Any

import pytest

from regpeek.disk import squashfs
from regpeek.errors import LocalError


def test_a_ctrl_c_while_the_stderr_reader_starts_still_kills_the_tool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Thread.start`` waits for the new thread to run: on a busy machine a Ctrl-C lands there, with
    the tool already running (seen as a leftover tool in test_sif_build's Ctrl-C test)."""
    made: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def recording(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        made.append(popen(*args, **kwargs))
        return made[-1]

    class Interrupted(threading.Thread):
        def start(self) -> None:
            super().start()
            raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "Popen", recording)  # as squashfs looks them up
    monkeypatch.setattr(threading, "Thread", Interrupted)
    tool = squashfs.SquashfsTool("mksquashfs-pseudo", "/bin/sh")
    try:
        with pytest.raises(KeyboardInterrupt), squashfs._running(["sleep", "60"], tool, stdin=False):
            pytest.fail("the block must not run")
        assert len(made) == 1 and made[0].returncode == -9  # killed, and reaped
    finally:
        for process in made:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_tool_that_fails_says_why() -> None:
    tool = squashfs.SquashfsTool("mksquashfs-pseudo", "/bin/sh")
    with (
        pytest.raises(LocalError, match=r"sh failed \(exit 3\): no room"),
        squashfs._running(["/bin/sh", "-c", "echo 'no room' >&2; exit 3"], tool, stdin=False),
    ):
        pass
