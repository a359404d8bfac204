"""Request economy across processes (issue 13): what one ``inspect`` costs at the registry and at its
token server, with the cache's tag memo and the auth state kept on disk.

Every CLI run here builds a new client (a new ``RegistryAuth`` with nothing in memory), as a new
process does; one test runs real processes. The counts are read from the real registry's access log
and the token server's own record.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from regpeek.disk.cache import BlobCache
from regpeek.formats.challenge import Challenge
from tests.integration.api import registry_flags, run_cli
from tests.support.images import PushedImage, PushedIndex, push_index, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.tokenserver import TokenServer

pytestmark = pytest.mark.usefixtures("no_user_credentials")


@pytest.fixture(scope="module")
def pushed(token_registry: tuple[Registry, TokenServer]) -> dict[str, PushedIndex | PushedImage]:
    registry, _ = token_registry
    with pusher_for(registry) as pusher:
        return {
            "index": push_index(pusher, "economy/index", "v1", "oci"),
            "index-v2": push_index(pusher, "economy/index", "v2", "oci"),
            "other": push_oci_image(pusher, "economy/other", "v1"),
        }


@pytest.fixture
def cache_dir() -> Path:
    return Path(os.environ["REGPEEK_CACHE_DIR"])  # the test's own (tests/integration/conftest.py)


def _inspect(registry: Registry, ref: str, *extra: str) -> str:
    platform = "linux/arm/v7" if ref.startswith("economy/index") else "linux/amd64"
    done = run_cli("inspect", "--json", *registry_flags(registry), "--platform", platform, *extra,
                   f"{registry.host}/{ref}")  # fmt: skip
    assert done.code == 0, done.stderr
    digest: str = json.loads(done.stdout)["digest"]
    return digest


def _calls(registry: Registry) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in registry.requests()]


def _count(registry: Registry, tokens: TokenServer, run: object) -> tuple[list[tuple[str, str, int]], int]:
    registry.mark()
    tokens.clear()
    assert callable(run)
    run()
    return _calls(registry), len(tokens.requests)


def test_cold_repeat_and_new_tag(token_registry: tuple[Registry, TokenServer],
                                 pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path) -> None:  # fmt: skip
    registry, tokens = token_registry
    index = pushed["index"]
    assert isinstance(index, PushedIndex)
    child = index.child("linux", "arm", "v7")
    base = "/v2/economy/index"

    # cold: no challenge known yet, so one 401, then 1 token request and 3 GETs (no HEAD first)
    calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1"))
    assert calls == [
        ("GET", f"{base}/manifests/v1", 401),
        ("GET", f"{base}/manifests/v1", 200),
        ("GET", f"{base}/manifests/{child.digest}", 200),
        ("GET", f"{base}/blobs/{child.config.digest}", 200),
    ]
    assert token_count == 1

    # repeat, unchanged tag: one HEAD with the kept token, everything else from the cache
    digests: list[str] = []
    calls, token_count = _count(
        registry, tokens, lambda: digests.append(_inspect(registry, "economy/index:v1"))
    )
    assert calls == [("HEAD", f"{base}/manifests/v1", 200)]
    assert token_count == 0
    assert digests == [child.digest]

    # a new tag of the same repository, within the token's lifetime: no token request, no 401; the
    # tag is never seen so it is one GET, and the manifests it leads to are in the cache
    calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v2"))
    assert calls == [("GET", f"{base}/manifests/v2", 200)]
    assert token_count == 0

    # a new repository of the known registry: the kept challenge sends it to the token service first
    other = pushed["other"]
    assert isinstance(other, PushedImage)
    calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/other:v1"))
    assert calls == [
        ("GET", "/v2/economy/other/manifests/v1", 200),
        ("GET", f"/v2/economy/other/blobs/{other.config.digest}", 200),
    ]
    assert token_count == 1
    assert [t.scopes for t in tokens.requests] == [["repository:economy/other:pull"]]


def test_moved_tag_is_fetched_again(token_registry: tuple[Registry, TokenServer], cache_dir: Path) -> None:
    registry, tokens = token_registry
    with pusher_for(registry) as pusher:
        first = push_oci_image(pusher, "economy/moving", "t", labels={"round": "1"})
    ref = "economy/moving:t"
    assert _inspect(registry, ref) == first.digest
    with pusher_for(registry) as pusher:
        second = push_oci_image(pusher, "economy/moving", "t", labels={"round": "2"})
    assert second.digest != first.digest
    registry.mark()
    tokens.clear()
    assert _inspect(registry, ref) == second.digest  # the memo's digest is not believed over the HEAD
    assert _calls(registry) == [
        ("HEAD", "/v2/economy/moving/manifests/t", 200),
        ("GET", f"/v2/economy/moving/manifests/{second.digest}", 200),
        ("GET", f"/v2/economy/moving/blobs/{second.config.digest}", 200),
    ]
    assert tokens.requests == []
    registry.mark()
    assert _inspect(registry, ref) == second.digest
    assert _calls(registry) == [("HEAD", "/v2/economy/moving/manifests/t", 200)]


def test_no_cache_keeps_nothing(token_registry: tuple[Registry, TokenServer],
                                pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path) -> None:  # fmt: skip
    registry, tokens = token_registry
    for _ in range(2):
        calls, token_count = _count(
            registry, tokens, lambda: _inspect(registry, "economy/index:v1", "--no-cache")
        )
        assert [status for _, _, status in calls] == [401, 200, 200, 200]
        assert token_count == 1
    assert not (cache_dir / "auth").exists() and not (cache_dir / "tags").exists()


def _token_files(cache_dir: Path) -> list[Path]:
    found = []
    for path in sorted((cache_dir / "auth").iterdir()):
        if json.loads(path.read_bytes())["key"].startswith("token "):
            found.append(path)
    return found


def test_auth_state_on_disk(token_registry: tuple[Registry, TokenServer],
                            pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path) -> None:  # fmt: skip
    registry, tokens = token_registry
    _inspect(registry, "economy/index:v1")
    auth = cache_dir / "auth"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o700
    records = [json.loads(path.read_bytes()) for path in sorted(auth.iterdir())]
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in auth.iterdir())
    challenge = next(r for r in records if r["key"] == f"challenge {registry.host}")
    assert challenge["scheme"] == "bearer" and challenge["realm"] == tokens.realm
    (token,) = [r for r in records if r["key"].startswith("token ")]
    assert token["key"].startswith(f"token {registry.host} repository:economy/index:pull ")
    assert token["scopes"] == ["repository:economy/index:pull"]
    assert token["username"] == "" and token["source"] == ""  # anonymous
    granted = tokens.requests[-1] if tokens.requests else None
    assert granted is None or granted.status == 200


def test_rejected_token_is_dropped_and_fetched_once(token_registry: tuple[Registry, TokenServer],
                                                    pushed: dict[str, PushedIndex | PushedImage],
                                                    cache_dir: Path) -> None:  # fmt: skip
    registry, tokens = token_registry
    _inspect(registry, "economy/index:v1")
    (path,) = _token_files(cache_dir)
    record = json.loads(path.read_bytes())
    record["token"] = "not-a-token-the-registry-signed"
    path.write_text(json.dumps(record))
    calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1"))
    assert [(m, s) for m, _, s in calls] == [("HEAD", 401), ("HEAD", 200)]
    assert token_count == 1
    assert json.loads(path.read_bytes())["token"] != "not-a-token-the-registry-signed"
    calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1"))
    assert [(m, s) for m, _, s in calls] == [("HEAD", 200)] and token_count == 0


def test_expired_token_is_not_used(token_registry: tuple[Registry, TokenServer],
                                   pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path) -> None:  # fmt: skip
    registry, tokens = token_registry
    _inspect(registry, "economy/index:v1")
    (path,) = _token_files(cache_dir)
    record = json.loads(path.read_bytes())
    record["expires"] = 1.0  # 1970
    path.write_text(json.dumps(record))
    calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1"))
    assert [(m, s) for m, _, s in calls] == [("HEAD", 200)]  # no 401: the challenge is kept
    assert token_count == 1


def test_stale_challenge_is_replaced(token_registry: tuple[Registry, TokenServer],
                                     pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path,
                                     tmp_path: Path) -> None:  # fmt: skip
    """A kept challenge whose token service is another one (its tokens the registry refuses): the 401's
    challenge replaces it and the request is retried once; a realm that cannot be reached too."""
    registry, tokens = token_registry
    cache = BlobCache(cache_dir)
    with TokenServer(tmp_path / "elsewhere") as elsewhere:
        cache.auth.save_challenge(
            registry.host, Challenge("bearer", {"realm": elsewhere.realm, "service": "x"})
        )
        calls, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1"))
        assert len(elsewhere.requests) == 1  # the stale realm was asked once
    assert [(m, s) for m, _, s in calls] == [("GET", 401), ("GET", 200), ("GET", 200), ("GET", 200)]
    assert token_count == 1
    kept = cache.auth.challenge(registry.host)
    assert kept is not None and kept.realm == tokens.realm

    # a realm nobody answers at: forgotten at once, the registry's 401 names the real one
    cache.auth.save_challenge(registry.host, Challenge("bearer", {"realm": "http://127.0.0.1:9/token"}))
    for path in _token_files(cache_dir):
        path.unlink()
    calls, token_count = _count(
        registry, tokens, lambda: _inspect(registry, "economy/index:v1", "--retries", "0")
    )
    assert [(m, s) for m, _, s in calls] == [("HEAD", 401), ("HEAD", 200)]
    assert token_count == 1
    kept = cache.auth.challenge(registry.host)
    assert kept is not None and kept.realm == tokens.realm


def test_tokens_are_per_identity(token_registry: tuple[Registry, TokenServer],
                                 pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path) -> None:  # fmt: skip
    """A token kept for anonymous access is not used with credentials, nor the other way round; the
    password is in no file of the cache."""
    from tests.support.fixtures import PASSWORD, USERNAME

    registry, tokens = token_registry
    _inspect(registry, "economy/index:v1")
    _, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1", "-u", USERNAME,
                                                                   "-p", PASSWORD))  # fmt: skip
    assert token_count == 1 and tokens.requests[0].username == USERNAME
    assert len(_token_files(cache_dir)) == 2
    _, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1", "-u", USERNAME,
                                                                   "-p", PASSWORD))  # fmt: skip
    assert token_count == 0
    for path in cache_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes()


def test_symlinked_record_is_not_followed(token_registry: tuple[Registry, TokenServer],
                                          pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path,
                                          tmp_path: Path) -> None:  # fmt: skip
    registry, tokens = token_registry
    _inspect(registry, "economy/index:v1")
    (path,) = _token_files(cache_dir)
    elsewhere = tmp_path / "planted"
    elsewhere.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(elsewhere)
    _, token_count = _count(registry, tokens, lambda: _inspect(registry, "economy/index:v1"))
    assert token_count == 1  # the link was not read
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600  # replaced by a file
    assert elsewhere.read_bytes() != path.read_bytes()


def test_new_processes(token_registry: tuple[Registry, TokenServer],
                       pushed: dict[str, PushedIndex | PushedImage], cache_dir: Path) -> None:  # fmt: skip
    """The same economy between real processes: the second pays one HEAD and no token request."""
    registry, tokens = token_registry
    command = [sys.executable, "-m", "regpeek", "inspect", "--json", *registry_flags(registry),
               "--platform", "linux/arm/v7", f"{registry.host}/economy/index:v1"]  # fmt: skip
    for expected, expected_tokens in (([401, 200, 200, 200], 1), ([200], 0)):
        registry.mark()
        tokens.clear()
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert [r.status for r in registry.requests()] == expected
        assert len(tokens.requests) == expected_tokens
