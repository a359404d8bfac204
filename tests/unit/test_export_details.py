"""What ``export_tar`` writes beyond the tree itself: extended attributes, the parents it adds, the refusal
reasons it counts, the limits it is given, a ``TarSink`` it is handed, and whiteouts of a whole path.

Each test here was written against a surviving mutant of ``make mutate`` for ``disk/flatten.py``
(docs/testing.md): dropping the xattr PAX headers, the added parents' mtime, ``_Refused(None)`` for the
hard-link refusals, ignoring ``limits``, never passing a ``TarSink`` through, and ``and`` for ``or`` in
the "hidden below" test.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Sequence
from typing import BinaryIO

import pytest

from regpeek.disk.flatten import TarSink, export_tar
from regpeek.disk.layerentry import Limits, UnpackReport
from regpeek.errors import TooLargeError
from tests.support.layers import Entry, tar_bytes

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def _opener(data: bytes) -> Callable[[], BinaryIO]:
    return lambda: io.BytesIO(data)


def _export(
    layers: Sequence[Sequence[Entry]], limits: Limits | None = None
) -> tuple[list[tarfile.TarInfo], UnpackReport]:
    out = io.BytesIO()
    report = export_tar([(_opener(tar_bytes(layer)), OCI_TAR) for layer in layers], out, limits=limits)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        return tar.getmembers(), report


def test_xattrs_are_kept_and_other_pax_headers_are_not() -> None:
    entry = Entry("f", data=b"x", xattrs={"user.origin": b"layer", "security.capability": b"\x01\x02"})
    members, _ = _export([[entry]])
    (member,) = members
    xattrs = {k: v for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr.")}
    assert xattrs == {"SCHILY.xattr.user.origin": "layer", "SCHILY.xattr.security.capability": "\x01\x02"}
    # the layer's own path/mtime PAX records are not copied through: the output's are its own
    assert set(member.pax_headers) - set(xattrs) <= {"path", "mtime", "linkpath", "size", "uid", "gid"}


def test_parents_no_layer_holds_are_added_0755_with_mtime_0_after_the_entries() -> None:
    members, report = _export([[Entry("a/b/c", data=b"deep")]])
    assert [m.name for m in members] == ["a/b/c", "a", "a/b"]
    for parent in members[1:]:
        assert parent.isdir() and parent.mode == 0o755 and parent.mtime == 0
    assert report.directories == 0


def test_a_root_entry_is_not_followed_by_an_added_root() -> None:
    members, _ = _export([[Entry(".", "dir", mode=0o755), Entry("f", data=b"x")]])
    assert [m.name for m in members] == [".", "f"]


@pytest.mark.parametrize(
    ("layers", "reason"),
    [
        ([[Entry("self", "hardlink", linkname="self")]], "unsafe hardlink"),
        ([[Entry("d", "dir"), Entry("h", "hardlink", linkname="d")]], "hardlink to directory"),
        (
            [[Entry("t", data=b"t")], [Entry("t", "whiteout"), Entry("h", "hardlink", linkname="t")]],
            "hardlink target missing",
        ),
        (
            [[Entry("d/t", data=b"t")], [Entry("d", "opaque"), Entry("h", "hardlink", linkname="d/t")]],
            "hardlink target missing",
        ),
    ],
    ids=["to-itself", "to-a-directory", "target-whited-out", "target-under-opaque"],
)
def test_hard_link_refusals_are_counted_by_reason(layers: list[list[Entry]], reason: str) -> None:
    members, report = _export(layers)
    assert report.skipped == {reason: 1}
    assert "h" not in [m.name for m in members] and "self" not in [m.name for m in members]


def test_a_whited_out_path_and_everything_under_it_are_gone_but_not_its_siblings() -> None:
    lower = [
        Entry("d", "dir"),
        Entry("d/x", data=b"x"),
        Entry("d/y", data=b"y"),
        Entry("e", "dir"),
        Entry("e/z", data=b"z"),
    ]
    members, report = _export([lower, [Entry("d/x", "whiteout"), Entry("e", "whiteout")]])
    assert sorted(m.name for m in members) == ["d", "d/y"]
    assert report.whiteouts == 2


def test_the_limits_given_are_the_limits_applied() -> None:
    layers = [[Entry("big", data=b"x" * 4096)]]
    with pytest.raises(TooLargeError):
        _export(layers, limits=Limits(max_bytes=1024))
    members, _ = _export(layers, limits=Limits(max_bytes=8192))
    assert [m.name for m in members] == ["big"]


def test_a_tar_sink_receives_every_entry_and_is_closed() -> None:
    class Sink(TarSink):
        def __init__(self) -> None:
            self.entries: list[tuple[str, bytes | None]] = []
            self.closed = False

        def addfile(self, info: tarfile.TarInfo, content: BinaryIO | None = None) -> None:
            self.entries.append((info.name, content.read() if content is not None else None))

        def close(self) -> None:
            self.closed = True

    sink = Sink()
    export_tar([(_opener(tar_bytes([Entry("d", "dir"), Entry("d/f", data=b"data")])), OCI_TAR)], sink)
    assert sink.entries == [("d", None), ("d/f", b"data")] and sink.closed
