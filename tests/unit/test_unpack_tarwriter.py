"""The tar writer of export and sif (:class:`regpeek.disk.tarstream.TarWriter`) against tarfile.

The writer builds plain ustar headers itself and hands everything else to tarfile; whatever it is
given, its output must be the bytes ``tarfile.open(mode="w|", format=PAX_FORMAT)`` writes.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regpeek.disk.tarstream import TarWriter, _ustar_header

Entry = tuple[tarfile.TarInfo, bytes | None]


def _with_tarfile(entries: Sequence[Entry]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, errors="surrogateescape") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _with_writer(entries: Sequence[Entry], flush_size: int = 1 << 20) -> bytes:
    out = io.BytesIO()
    writer = TarWriter(out, flush_size=flush_size)
    for info, data in entries:
        writer.addfile(info, io.BytesIO(data) if data is not None else None)
    writer.close()
    return out.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, **fields: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _file(name: str, data: bytes, **fields: Any) -> Entry:
    return _info(name, size=len(data), **fields), data


FAST_CASES: list[Entry] = [
    _file("etc/hostname", b"box\n", mode=0o644, mtime=1_600_000_000),
    _file("empty", b""),
    _file("block", b"x" * 512),
    _file("usr/bin/su", b"\x7fELF" * 300, mode=0o104755, uid=0, gid=0),
    (_info("var/tmp", tarfile.DIRTYPE, mode=0o1777), None),
    (_info("home/user/", tarfile.DIRTYPE, mode=0o700, uid=1000, gid=1000, uname="user", gname="users"), None),
    (_info("bin", tarfile.SYMTYPE, linkname="usr/bin", mode=0o777), None),
    (_info("usr/bin/sh", tarfile.LNKTYPE, linkname="usr/bin/dash"), None),
    (_info("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666), None),
    (_info("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0, mode=0o660, gid=6), None),
    (_info("run/fifo", tarfile.FIFOTYPE, mode=0o600), None),
    _file("n" * 100, b"exactly 100 bytes of name"),
    (_info("l", tarfile.SYMTYPE, linkname="t" * 100), None),
    _file("big-owner", b"1", uid=8**7 - 1, gid=8**7 - 1, uname="u" * 32, gname="g" * 32),
    _file("max-time", b"1", mtime=8**11 - 1),
]

# Entries whose headers tarfile writes with a PAX record (or refuses): the writer must defer.
SLOW_CASES: list[Entry] = [
    _file("n" * 101, b"a long name"),
    _file("d/" * 60 + "f", b"deep"),
    (_info("l", tarfile.SYMTYPE, linkname="t" * 101), None),
    _file("caf\u00e9", b"non-ASCII name"),
    _file("bad\udcff", b"undecodable name"),
    (_info("l2", tarfile.SYMTYPE, linkname="\u00fcber"), None),
    _file("o", b"1", uid=8**7),
    _file("o2", b"1", gid=2**32),
    _file("o3", b"1", uname="u" * 33),
    _file("o4", b"1", gname="gr\u00fcn"),
    _file("t", b"1", mtime=1_600_000_000.5),
    _file("t2", b"1", mtime=-1),
    _file("t3", b"1", mtime=8**11),
    _file("x", b"xattr", pax_headers={"SCHILY.xattr.user.a": "b"}),
]


@pytest.mark.parametrize("entry", FAST_CASES, ids=lambda e: e[0].name[:20])
def test_plain_headers_are_built_directly_and_match_tarfile(entry: Entry) -> None:
    info, _ = entry
    assert _ustar_header(info) == info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
    assert _with_writer([entry]) == _with_tarfile([entry])


@pytest.mark.parametrize("entry", SLOW_CASES, ids=lambda e: repr(e[0].name[:20]))
def test_headers_needing_pax_go_to_tarfile(entry: Entry) -> None:
    assert _ustar_header(entry[0]) is None
    assert _with_writer([entry]) == _with_tarfile([entry])


def test_a_stream_of_every_case_is_tarfiles_stream_at_any_flush_size() -> None:
    entries = FAST_CASES + SLOW_CASES + FAST_CASES
    expected = _with_tarfile(entries)
    for flush_size in (1, 512, 10_000, 1 << 20):
        assert _with_writer(entries, flush_size) == expected
    with tarfile.open(fileobj=io.BytesIO(expected)) as tar:
        names = tar.getnames()
    assert names[0] == "etc/hostname" and len(names) == len(entries)


def test_what_tarfile_refuses_is_refused() -> None:
    device = _info("dev/huge", tarfile.CHRTYPE, devmajor=8**7, devminor=1)
    assert _ustar_header(device) is None
    for entry in ((device, None), (_info("none", uname=None), None)):
        with pytest.raises(ValueError):
            _with_tarfile([entry])
        with pytest.raises(ValueError):
            _with_writer([entry])


def test_empty_archive_and_close_twice() -> None:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.close()
    writer.close()
    assert out.getvalue() == _with_tarfile([]) == bytes(tarfile.RECORDSIZE)
    with pytest.raises(OSError):
        writer.addfile(_info("late"))


def test_short_content_raises_as_tarfile_does() -> None:
    info = _info("short", size=10)
    with pytest.raises(OSError, match="unexpected end of data"):
        TarWriter(io.BytesIO()).addfile(info, io.BytesIO(b"12345"))


def test_large_content_is_copied_in_chunks() -> None:
    data = bytes(range(256)) * 20_000  # 5 MB, more than one chunk, not a block multiple
    entries = [_file("big", data), _file("after", b"tail")]
    assert _with_writer(entries, flush_size=1 << 16) == _with_tarfile(entries)


_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=120)
_numbers = st.one_of(st.integers(0, 8**7 + 2), st.integers(-2, 2**34))
_kinds = st.sampled_from(
    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE]
)


@st.composite
def _entries(draw: st.DrawFn) -> Entry:
    kind = draw(_kinds)
    info = _info(
        draw(_names),
        kind,
        mode=draw(st.integers(0, 0o177777)),
        uid=draw(_numbers),
        gid=draw(_numbers),
        mtime=draw(st.one_of(st.integers(-1, 8**11 + 1), st.floats(0, 2e9))),
        uname=draw(st.text(max_size=34)),
        gname=draw(st.sampled_from(["", "root", "g" * 33])),
    )
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = draw(_names)
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = draw(_numbers), draw(_numbers)
    data = None
    if kind == tarfile.REGTYPE:
        data = draw(st.binary(max_size=1500))
        info.size = len(data)
    return info, data


@settings(max_examples=300, deadline=None)
@given(st.lists(_entries(), max_size=6), st.sampled_from([1, 700, 1 << 20]))
def test_any_entries_are_written_as_tarfile_writes_them(entries: list[Entry], flush_size: int) -> None:
    try:
        expected = _with_tarfile(entries)
    except ValueError:  # tarfile refuses the entry (a number no field holds): so does the writer
        with pytest.raises(ValueError):
            _with_writer(entries, flush_size)
        return
    assert _with_writer(entries, flush_size) == expected
