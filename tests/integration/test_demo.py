"""The newcomer's path: ``scripts/demo.py --keep`` prints commands that work from another terminal, uses
a cache of its own, and a SIGTERM removes the registry and its data; ``make demo`` installs only what
the demo needs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fixtures import require_tool

ROOT = Path(__file__).resolve().parents[2]


def _until(process: subprocess.Popen[str], needle: str, timeout: float = 120) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("the demo ended early:\n" + "".join(lines))
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError("the demo never said " + needle)


def test_the_demo_keeps_a_registry_for_another_terminal_and_cleans_up_on_sigterm(tmp_path: Path) -> None:
    require_tool("docker-registry")
    user_cache = tmp_path / "user-cache"
    env = {**os.environ, "REGPEEK_CACHE_DIR": str(user_cache)}
    demo = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--only-registry"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        lines = _until(demo, "Press Ctrl-C")
        text = "".join(lines)
        assert "In another terminal" in text and "source " in text and "pipx install ." in text
        cache = re.search(r"export REGPEEK_CACHE_DIR=(\S+)", text)
        assert cache is not None
        workdir = Path(cache.group(1)).parent
        assert workdir.is_dir() and workdir != user_cache.parent
        suggested = [line.strip() for line in lines if line.startswith("  regpeek ")]
        assert len(suggested) >= 4
        for command in suggested:  # as typed in another terminal, with the demo's cache
            bin_dir = Path(sys.executable).parent
            done = subprocess.run(
                command, shell=True, capture_output=True, text=True, check=False,
                env={**env, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "REGPEEK_CACHE_DIR": cache.group(1)},
            )  # fmt: skip
            assert done.returncode in (0, 1), f"{command}: {done.stderr}"  # diff says 1 for a difference
        assert not user_cache.exists()  # never the user's cache
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
        assert not workdir.exists()
        registries = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
        assert str(workdir) not in registries
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_make_demo_installs_only_what_the_demo_needs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    demo = makefile[makefile.index("$(VENV)/.demo:") :].split("\n\n", 1)[0]
    assert "install-deps.sh demo" in demo and "'.[demo]'" in demo and "[test]" not in demo
    script = (ROOT / "scripts" / "install-deps.sh").read_text()
    demo_packages = re.search(r'if \[ "\$\{1:-\}" = "demo" \]; then\n\s+packages=\(([^)]*)\)', script)
    assert demo_packages is not None
    assert set(demo_packages.group(1).split()) == {
        "python3-venv", "docker-registry", "siftool", "squashfs-tools", "squashfs-tools-ng"
    }  # fmt: skip
    assert "python3-venv" in script.split("else", 1)[1]


@pytest.mark.parametrize("shell_line", ["source .venv/bin/activate", "pipx install ."])
def test_the_readme_says_how_to_get_regpeek_on_the_path(shell_line: str) -> None:
    assert shell_line in (ROOT / "README.md").read_text()
