"""pytest fixtures for integration tests: ``from tests.support.fixtures import *`` in a conftest.

Registries are module-scoped (startup takes ~0.1 s, pushing the sample set ~1 s), so a test module
shares one of each kind; tests that need an empty registry use ``fresh_registry``.  Tests that count
requests call ``registry.mark()`` first.  All data lives under pytest's tmp dirs, every process is
stopped at teardown.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .images import Pushed, load_samples
from .push import Pusher
from .push import pusher_for as _make_pusher
from .registry import Registry, start_registry
from .tokenserver import TokenServer

USERNAME = "alice"
PASSWORD = "s3cret-pass"
USERS = {USERNAME: PASSWORD}

_TOOLS = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "htpasswd": "apache2-utils",
    "siftool": "siftool",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "tar2sqfs": "squashfs-tools-ng",
}


def require_tool(binary: str) -> None:
    """Fail (or skip, with REGPEEK_SKIP_MISSING_TOOLS=1) when an external tool is not installed."""
    if shutil.which(binary) is not None:
        return
    message = f"{binary} not found: apt-get install -y {_TOOLS.get(binary, binary)}"
    if os.environ.get("REGPEEK_SKIP_MISSING_TOOLS") == "1":
        pytest.skip(message)
    pytest.fail(message)


def _workdir(factory: pytest.TempPathFactory, name: str) -> Path:
    return factory.mktemp(name, numbered=True)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous plain-HTTP registry (schema1 pushes disabled), shared by the module."""
    require_tool("docker-registry")
    with start_registry(_workdir(tmp_path_factory, "registry")) as reg:
        yield reg


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[Registry]:
    """An empty anonymous registry for one test."""
    require_tool("docker-registry")
    with start_registry(tmp_path / "registry") as reg:
        yield reg


@pytest.fixture(scope="module")
def schema1_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry with ``compatibility.schema1.enabled``: accepts signed schema1 pushes."""
    require_tool("docker-registry")
    with start_registry(_workdir(tmp_path_factory, "schema1-registry"), schema1=True) as reg:
        yield reg


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, TokenServer]]:
    """(registry, token server): Bearer auth; anonymous pull, ``alice``/``s3cret-pass`` pull+push."""
    require_tool("docker-registry")
    workdir = _workdir(tmp_path_factory, "token-registry")
    with (
        TokenServer(workdir / "token-server", users=USERS) as token_server,
        start_registry(workdir / "registry", auth="token", token_server=token_server) as reg,
    ):
        yield reg, token_server


@pytest.fixture(scope="module")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Basic auth (bcrypt htpasswd) with the single user ``alice``/``s3cret-pass``."""
    require_tool("docker-registry")
    require_tool("htpasswd")
    with start_registry(_workdir(tmp_path_factory, "htpasswd-registry"), auth="htpasswd", users=USERS) as reg:
        yield reg


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous HTTPS registry; trust ``registry.ca_file``."""
    require_tool("docker-registry")
    with start_registry(_workdir(tmp_path_factory, "tls-registry"), tls=True) as reg:
        yield reg


@pytest.fixture
def pusher_for() -> Iterator[Callable[..., Pusher]]:
    """Factory ``pusher_for(registry, *, username=None, password=None, anonymous=False)``.

    The pusher trusts the registry's CA and logs in as its configured user unless told otherwise;
    every pusher made is closed at teardown.
    """
    made: list[Pusher] = []

    def factory(reg: Registry, **options: Any) -> Pusher:
        pusher = _make_pusher(reg, **options)
        made.append(pusher)
        return pusher

    yield factory
    for pusher in made:
        pusher.close()


@pytest.fixture
def no_user_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own auth files out of a test (``pytestmark = usefixtures(...)``)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def samples(registry: Registry) -> dict[str, Pushed]:
    """The :func:`tests.support.images.load_samples` set, pushed once per module to ``registry``."""
    with _make_pusher(registry) as pusher:
        return load_samples(pusher)


@pytest.fixture(scope="module")
def schema1_samples(schema1_registry: Registry) -> dict[str, Pushed]:
    """The sample set including ``samples/schema1``, pushed once per module to ``schema1_registry``."""
    with _make_pusher(schema1_registry) as pusher:
        return load_samples(pusher, schema1=True)


__all__ = [
    "PASSWORD",
    "USERNAME",
    "USERS",
    "fresh_registry",
    "htpasswd_registry",
    "no_user_credentials",
    "pusher_for",
    "registry",
    "require_tool",
    "samples",
    "schema1_registry",
    "schema1_samples",
    "tls_registry",
    "token_registry",
]
