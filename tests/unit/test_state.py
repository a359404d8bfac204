"""The cache's small records (disk/state.py): tag memo, auth challenges and tokens on disk."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from regpeek.disk.cache import BlobCache, NullCache
from regpeek.disk.state import AuthState, StoredToken
from regpeek.errors import UnsafePathError
from regpeek.formats.challenge import Challenge
from regpeek.formats.digest import Digest

DIGEST = Digest.parse("sha256:" + "ab" * 32)


def _state(cache: BlobCache, now: float) -> AuthState:
    return AuthState(cache.auth.records, wall=lambda: now)


def test_tag_memo_round_trip_and_modes(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    assert cache.tags.get("h:5000", "a/b", "v1") is None
    cache.tags.put("h:5000", "a/b", "v1", DIGEST, "application/vnd.oci.image.index.v1+json")
    assert cache.tags.get("h:5000", "a/b", "v1") == (DIGEST, "application/vnd.oci.image.index.v1+json")
    assert cache.tags.get("h:5000", "a/b", "v2") is None
    assert cache.tags.get("other:5000", "a/b", "v1") is None
    (path,) = (tmp_path / "c" / "tags").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "c" / "tags").stat().st_mode) == 0o700


def test_a_record_under_another_name_is_not_believed(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    cache.tags.put("h", "a", "v1", DIGEST, None)
    (path,) = (tmp_path / "c" / "tags").iterdir()
    other = cache.tags.records.path_for("tag h/a:v2")
    other.write_bytes(path.read_bytes())
    os.chmod(other, 0o600)
    assert cache.tags.get("h", "a", "v2") is None
    assert not other.exists()  # removed as bad


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"key": "tag h/a:v1", "digest": "sha256:nothex"}'])
def test_malformed_records_are_misses(tmp_path: Path, content: bytes) -> None:
    cache = BlobCache(tmp_path / "c")
    cache.tags.put("h", "a", "v1", DIGEST, None)
    path = cache.tags.records.path_for("tag h/a:v1")
    path.write_bytes(content)
    assert cache.tags.get("h", "a", "v1") is None


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    cache.tags.put("h", "a", "v1", DIGEST, None)
    path = cache.tags.records.path_for("tag h/a:v1")
    target = tmp_path / "target"
    target.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(target)
    assert cache.tags.get("h", "a", "v1") is None
    assert not path.is_symlink()
    cache.tags.put("h", "a", "v1", DIGEST, "x")  # written as a new file, never through a link
    assert target.read_bytes() != path.read_bytes()


def test_a_directory_of_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = BlobCache(tmp_path / "c")
    cache.tags.put("h", "a", "v1", DIGEST, None)
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    with pytest.raises(UnsafePathError):
        BlobCache(tmp_path / "c").tags.get("h", "a", "v1")


def test_challenge_keeps_scheme_realm_and_service_only(tmp_path: Path) -> None:
    state = BlobCache(tmp_path / "c").auth
    state.save_challenge(
        "h:1",
        Challenge(
            "bearer", {"realm": "https://auth/t", "service": "s", "scope": "repository:a:pull", "error": "x"}
        ),
    )
    assert state.challenge("h:1") == Challenge("bearer", {"realm": "https://auth/t", "service": "s"})
    state.save_challenge("h:2", Challenge("basic", {"realm": "r"}))
    assert state.challenge("h:2") == Challenge("basic", {"realm": "r"})
    state.forget_challenge("h:1")
    assert state.challenge("h:1") is None


def test_tokens_expire_and_are_per_scope_and_identity(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    _state(cache, 1000.0).save_token("h", "repository:a:pull", "id1",
                                     StoredToken("tok", 1300.0, ("repository:a:pull",), "", ""))  # fmt: skip
    live = _state(cache, 1299.0).token("h", "repository:a:pull", "id1")
    assert live is not None and (live.value, live.expires, live.scopes) == (
        "tok",
        1300.0,
        ("repository:a:pull",),
    )
    assert _state(cache, 1000.0).token("h", "repository:b:pull", "id1") is None
    assert _state(cache, 1000.0).token("h", "repository:a:pull", "id2") is None
    assert _state(cache, 1300.0).token("h", "repository:a:pull", "id1") is None  # expired: gone
    assert _state(cache, 1000.0).token("h", "repository:a:pull", "id1") is None


def test_clear_and_prune_all_remove_the_records(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    cache.tags.put("h", "a", "v1", DIGEST, None)
    cache.auth.save_challenge("h", Challenge("basic", {}))
    cache.clear()
    assert cache.tags.get("h", "a", "v1") is None and cache.auth.challenge("h") is None
    cache.tags.put("h", "a", "v1", DIGEST, None)
    cache.prune(0)
    assert cache.tags.get("h", "a", "v1") is None
    cache.tags.put("h", "a", "v1", DIGEST, None)
    cache.prune(10**9)
    assert cache.tags.get("h", "a", "v1") == (DIGEST, None)  # only emptying removes them


def test_null_cache_keeps_nothing() -> None:
    assert NullCache().tags is None and NullCache().auth is None


def test_token_record_is_json_with_its_key(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "c")
    cache.auth.save_token("h", "s", "id", StoredToken("tok", 2e9, ("s",), "--username", "alice"))
    (path,) = (tmp_path / "c" / "auth").iterdir()
    record = json.loads(path.read_bytes())
    assert record["key"] == "token h s id" and record["username"] == "alice"
