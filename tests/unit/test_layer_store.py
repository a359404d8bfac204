"""The layer store's two doors, called directly: ``add`` (store a verified file) and ``fetch`` (put a
stored blob somewhere, verified again where it lands).

Written against the surviving mutants of ``make mutate`` for ``disk/cache.py`` (docs/testing.md), which
the integration tests of pulls sharing a store did not tell apart: the size bound (``>`` vs ``>=``),
"already there" judged by size, the use recorded in the entry's mtime (LRU eviction), an entry of the
wrong size or content removed on fetch, a miss that creates nothing, and the results returned.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from regpeek.disk.cache import LayerStore
from regpeek.formats.digest import Digest
from regpeek.formats.manifest import Descriptor

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OLD = 1_000_000_000  # an mtime long past: a use must move it forward


def _descriptor(data: bytes) -> Descriptor:
    return Descriptor(LAYER, Digest.parse("sha256:" + hashlib.sha256(data).hexdigest()), len(data))


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _stored(tmp_path: Path, data: bytes) -> tuple[LayerStore, Descriptor, Path]:
    """A store under ``tmp_path`` holding ``data``: the store, its descriptor and the entry's path."""
    store = LayerStore(tmp_path / "cache")
    descriptor = _descriptor(data)
    assert store.add(descriptor, _file(tmp_path / "src", data)) is True
    return store, descriptor, store.path_for(descriptor.digest)


def test_add_stores_up_to_max_bytes_and_not_beyond(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "cache", max_bytes=8)
    fits, over = b"12345678", b"123456789"
    assert store.add(_descriptor(fits), _file(tmp_path / "fits", fits)) is True
    assert store.path_for(_descriptor(fits).digest).read_bytes() == fits
    assert store.add(_descriptor(over), _file(tmp_path / "over", over)) is False
    assert not store.path_for(_descriptor(over).digest).exists()


def test_add_refuses_a_file_that_does_not_match_its_descriptor(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "cache")
    claimed = _descriptor(b"the real layer")
    assert store.add(claimed, _file(tmp_path / "other", b"something else")) is False
    assert not store.path_for(claimed.digest).exists()


def test_add_of_an_entry_already_there_is_a_use(tmp_path: Path) -> None:
    data = b"layer bytes"
    store, descriptor, entry = _stored(tmp_path, data)
    os.utime(entry, (OLD, OLD))
    inode = entry.stat().st_ino
    assert store.add(descriptor, _file(tmp_path / "b", data)) is True
    assert entry.stat().st_ino == inode  # not rewritten
    assert entry.stat().st_mtime > OLD  # but used


def test_add_replaces_an_entry_of_the_wrong_size(tmp_path: Path) -> None:
    data = b"the whole layer"
    store, descriptor, entry = _stored(tmp_path, data)
    entry.write_bytes(data[:4])  # truncated behind the store's back
    assert store.add(descriptor, _file(tmp_path / "b", data)) is True
    assert entry.read_bytes() == data


def test_fetch_of_a_miss_creates_nothing(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "cache")
    descriptor = _descriptor(b"never stored")
    target = tmp_path / "target"
    assert store.fetch(descriptor, target) is False
    assert not target.exists()
    assert not store.path_for(descriptor.digest).parent.exists()


def test_fetch_places_a_verified_copy_and_records_the_use(tmp_path: Path) -> None:
    data = b"stored layer"
    store, descriptor, entry = _stored(tmp_path, data)
    os.utime(entry, (OLD, OLD))
    target = tmp_path / "copy"
    assert store.fetch(descriptor, target) is True
    assert target.read_bytes() == data and target.stat().st_ino != entry.stat().st_ino
    assert entry.stat().st_mtime > OLD


def test_fetch_with_link_in_a_work_area_is_a_hard_link(tmp_path: Path) -> None:
    store, descriptor, entry = _stored(tmp_path, b"linked layer")
    with store.work_area() as area:
        target = area / "blob"
        assert store.fetch(descriptor, target, link=True) is True
        assert target.stat().st_ino == entry.stat().st_ino


def test_fetch_removes_an_entry_of_the_wrong_size_and_leaves_no_target(tmp_path: Path) -> None:
    data = b"a layer of some length"
    store, descriptor, entry = _stored(tmp_path, data)
    entry.write_bytes(data + b"!")
    target = tmp_path / "target"
    assert store.fetch(descriptor, target) is False
    assert not target.exists() and not entry.exists()


def test_fetch_removes_an_entry_whose_content_changed_and_leaves_no_target(tmp_path: Path) -> None:
    store = LayerStore(tmp_path / "cache")
    data = b"a layer of some length"
    descriptor = _descriptor(data)
    entry = store.path_for(descriptor.digest)
    for link in (False, True):
        assert store.add(descriptor, _file(tmp_path / "src", data)) is True
        entry.write_bytes(data.upper())  # same size, other bytes
        with store.work_area() as area:
            target = area / "blob"
            assert store.fetch(descriptor, target, link=link) is False
            assert not target.exists() and not entry.exists()
