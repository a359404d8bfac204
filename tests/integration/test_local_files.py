"""Local files an attacker may plant: a cache directory of another user, symbolic links in place of the
cache's and the layout's lock and journal files; and a password on the command line.

CI runs as root, which is what makes a planted link dangerous: the tests that need a second user
drop to ``nobody`` (uid 65534) with ``setpriv``, as tests/unit/test_unpack.py does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from regpeek.cli.options import PASSWORD_WARNING
from tests.integration.api import registry_flags, run_cli
from tests.support.fixtures import PASSWORD, USERNAME
from tests.support.images import PushedImage, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to act as nobody"
)


@pytest.fixture(scope="module")
def image(registry: Registry) -> PushedImage:
    with pusher_for(registry) as pusher:
        return push_oci_image(pusher, "local/files", "v1")


@pytest.fixture
def shared_top() -> Iterator[Path]:
    """A directory nobody can pass through (pytest's own tmp dirs are 0700, root's)."""
    top = Path(tempfile.mkdtemp(prefix="regpeek-planted-"))
    top.chmod(0o711)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_file()
        else "link"
        for path in sorted(root.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@needs_root
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["cache", "prune", "--all"], id="cache-prune"),
        pytest.param(["cache", "info"], id="cache-info"),
        pytest.param(["inspect"], id="inspect"),
        pytest.param(["pull"], id="pull"),
        pytest.param(["unpack"], id="unpack"),
    ],
)
def test_a_cache_directory_of_another_user_is_refused(
    argv: list[str], registry: Registry, image: PushedImage, shared_top: Path
) -> None:
    """nobody owns the cache directory and has planted ``.lock`` and ``.journal`` links to root-only
    files: root's regpeek refuses the directory (exit 2, one line) before any traffic, and the files
    outside are neither created nor truncated (the old cache created ``.lock``'s target and truncated
    ``.journal``'s on a prune, and appended to it on every put)."""
    private = shared_top / "root-only"
    private.mkdir(mode=0o700)
    secret = private / "secret"
    secret.write_bytes(b"root's data\n")
    created = private / "created-by-root"
    cache = shared_top / "cache"
    cache.mkdir()
    os.chown(cache, 65534, 65534)
    for name, target in ((".lock", created), (".journal", secret), (".usage", secret)):
        subprocess.run([*NOBODY, "ln", "-s", str(target), str(cache / name)], check=True)
    assert (cache / ".lock").lstat().st_uid == 65534
    registry.mark()
    command = [*argv, "--cache-dir", str(cache)]
    if argv[0] != "cache":
        command += [*registry_flags(registry), f"{registry.host}/{image.repo}:{image.tag}"]
    if argv[0] in ("pull", "unpack"):
        command.append(str(shared_top / "dest"))
    done = run_cli(*command)
    assert done.code == 2, done.stderr
    assert _one_line(done.stderr) == (
        f"regpeek: error: refusing to use {cache}: it is owned by uid 65534, not by you (uid 0); "
        "give another --cache-dir, or --no-cache"
    )
    assert secret.read_bytes() == b"root's data\n"
    assert not created.exists()
    assert sorted(p.name for p in cache.iterdir()) == [".journal", ".lock", ".usage"]
    assert registry.requests() == []
    assert not (shared_top / "dest").exists()


@needs_root
def test_the_environment_cache_directory_of_another_user_is_refused_too(
    registry: Registry, image: PushedImage, shared_top: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = shared_top / "cache"
    cache.mkdir()
    os.chown(cache, 65534, 65534)
    monkeypatch.setenv("REGPEEK_CACHE_DIR", str(cache))
    done = run_cli("digest", *registry_flags(registry), f"{registry.host}/{image.repo}:{image.tag}")
    assert done.code == 2
    assert "refusing to use" in _one_line(done.stderr)
    # --no-cache does not look at it
    done = run_cli(
        "digest", "--no-cache", *registry_flags(registry), f"{registry.host}/{image.repo}:{image.tag}"
    )
    assert (done.code, done.text.strip()) == (0, image.digest)


@needs_root
def test_a_planted_layout_lock_link_is_refused(
    registry: Registry, image: PushedImage, shared_top: Path
) -> None:
    """A layout another user can write to, with ``.regpeek.lock`` a link to a root-only path: the old
    code opened it with ``a+b`` and so created the file; now the pull stops (exit 2) and the layout is
    left as it was."""
    layout = shared_top / "layout"
    assert (
        run_cli(
            "pull", *registry_flags(registry), f"{registry.host}/{image.repo}:{image.tag}", str(layout)
        ).code
        == 0
    )
    for path in (layout, *layout.rglob("*")):
        os.lchown(path, 65534, 65534)
    private = shared_top / "root-only"
    private.mkdir(mode=0o700)
    created = private / "created-by-root"
    (layout / ".regpeek.lock").unlink()
    subprocess.run([*NOBODY, "ln", "-s", str(created), str(layout / ".regpeek.lock")], check=True)
    before = _tree(layout)
    done = run_cli(
        "pull",
        *registry_flags(registry),
        "--ref-name",
        "again",
        f"{registry.host}/{image.repo}:{image.tag}",
        str(layout),
    )
    assert done.code == 2, done.stderr
    assert (
        _one_line(done.stderr)
        == f"regpeek: error: refusing to use {layout / '.regpeek.lock'}: it is a symbolic link"
    )
    assert not created.exists()
    assert _tree(layout) == before
    assert not list(layout.glob(".regpeek-staging-*"))


def test_a_layout_lock_link_is_refused_for_the_same_user(
    registry: Registry, image: PushedImage, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    layout.mkdir()
    outside = tmp_path / "outside"
    (layout / ".regpeek.lock").symlink_to(outside)
    done = run_cli(
        "pull", *registry_flags(registry), f"{registry.host}/{image.repo}:{image.tag}", str(layout)
    )
    assert done.code == 2
    assert "it is a symbolic link" in _one_line(done.stderr)
    assert not outside.exists()
    assert not (layout / "index.json").exists()


def test_password_on_the_command_line_warns(htpasswd_registry: Registry) -> None:
    with pusher_for(htpasswd_registry) as pusher:
        pushed = push_oci_image(pusher, "warn/password", "v1")
    ref = f"{htpasswd_registry.host}/{pushed.repo}:{pushed.tag}"
    flags = registry_flags(htpasswd_registry)
    done = run_cli("digest", *flags, "-u", USERNAME, "-p", PASSWORD, ref)
    assert (done.code, done.text.strip()) == (0, pushed.digest)
    assert done.stderr == f"regpeek: warning: {PASSWORD_WARNING}\n"
    assert "--password-stdin" in done.stderr and PASSWORD not in done.stderr
    quiet = run_cli("digest", *flags, "-u", USERNAME, "--password-stdin", ref, stdin=PASSWORD + "\n")
    assert (quiet.code, quiet.stderr) == (0, "")
