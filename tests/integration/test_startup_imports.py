"""Start-up: what a one-shot command imports (issue 13). Not timed: the modules themselves are checked,
so a regression names the module that came back (and ``bench/startup.py`` says what it costs).

``regpeek inspect --json`` of a cached tag runs in a real process under ``python -X importtime``; no
module on the deny list may be imported: the human views (rich, pygments, the renderers), httpx's
command line, asyncio, archives and compression (tarfile, gzip: a layer is never read), pull,
batch and cluster machinery. ``email`` and ``http.cookiejar`` stay imported: httpx imports both at
its own import (``http.client`` itself imports ``email.parser``), which README's Performance section
measures as part of the HTTP stack's floor.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.api import registry_flags
from tests.support.images import push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry

DENIED = (
    "rich",
    "pygments",
    "httpx._main",
    "asyncio",
    "tarfile",
    "gzip",
    "sqlite3",
    "concurrent.futures",
    "multiprocessing",
    "regpeek.pull",
    "regpeek.batch",
    "regpeek.cluster",
    "regpeek.aio",
    "regpeek.disk.tarstream",
    "regpeek.disk.unpack",
    "regpeek.disk.archive",
    "regpeek.cli.progress",
    "regpeek.cli.render",
    "regpeek.network._async.registry",
)


def _imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self [us]" not in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _denied(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == d or n.startswith(d + ".") for d in DENIED))


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-X", "importtime", *args], capture_output=True, text=True,
                          timeout=120, check=False, env=env)  # fmt: skip


def test_version_imports_no_click() -> None:
    done = _run("-m", "regpeek", "--version")
    assert done.returncode == 0 and done.stdout.startswith("regpeek ")
    names = _imported(done.stderr)
    assert "regpeek._version" in names  # the parse works
    assert not {n for n in names if n.split(".")[0] in ("click", "httpx", "typing")}


def test_inspect_json_imports_nothing_denied(registry: Registry, tmp_path: Path) -> None:
    with pusher_for(registry) as pusher:
        image = push_oci_image(pusher, "startup/app", "v1")
    env = {**os.environ, "REGPEEK_CACHE_DIR": str(tmp_path / "cache")}
    command = [
        "-m",
        "regpeek",
        "inspect",
        "--json",
        *registry_flags(registry),
        f"{registry.host}/startup/app:v1",
    ]
    for _ in range(2):  # cold, then warm: the one-shot path a repeat takes
        done = _run(*command, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        assert image.digest in done.stdout
    names = _imported(done.stderr)
    assert "regpeek.network._sync.registry" in names and "httpx" in names  # the parse works
    assert _denied(names) == []


def test_no_tls_context_is_loaded_for_plain_http(registry: Registry, tmp_path: Path) -> None:
    """Certificates are loaded (the costly part of a TLS context) only when a request is https."""
    with pusher_for(registry) as pusher:
        push_oci_image(pusher, "startup/plain", "v1")
    probe = (
        "import ssl, sys\n"
        "loaded = []\n"
        "for name in ('load_default_certs', 'load_verify_locations', 'set_default_verify_paths'):\n"
        "    original = getattr(ssl.SSLContext, name)\n"
        "    def wrapper(self, *a, _o=original, _n=name, **k):\n"
        "        loaded.append(_n)\n"
        "        return _o(self, *a, **k)\n"
        "    setattr(ssl.SSLContext, name, wrapper)\n"
        "from regpeek.cli.main import main\n"
        "code = main(sys.argv[1:])\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "REGPEEK_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", probe, "inspect", "--json", *registry_flags(registry),
                           f"{registry.host}/startup/plain:v1"], capture_output=True, text=True, timeout=120,
                          check=False, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stderr


@pytest.mark.parametrize("flag", ["--version"])
def test_version_output_matches_the_package(flag: str) -> None:
    from regpeek import __version__

    done = subprocess.run(
        [sys.executable, "-m", "regpeek", flag], capture_output=True, text=True, check=False
    )
    assert done.stdout == f"regpeek {__version__}\n" and done.returncode == 0
