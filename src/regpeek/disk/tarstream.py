"""Layer blobs as tar streams: decompression, and tars read (and written) one member at a time.

No network here: layers come in as readable byte streams (blobs already fetched and, by the caller,
verified) with their media types.

Decompression (:func:`open_layer`)
    gzip, zstd and plain tar are read as streams (flat memory for any layer size).  The content
    decides: the gzip (``1f 8b``) and zstd (``28 b5 2f fd``) magic numbers are sniffed, so a layer
    whose media type is unknown or wrong still opens; anything else is read as an uncompressed tar.

    :class:`LayerDecoder` does the same for a blob that arrives in chunks (the clients'
    ``open_blob(..., decompress=True)``, sync and async alike), with bounded output per step.

Reading (:func:`_read_tar`)
    Members come in stream order and tarfile's list of headers is emptied as they go, so memory is
    flat in the number of entries; the stream is then read to its end (checking the gzip trailer).
    PAX and GNU long-name headers over 1 MiB raise :class:`~regpeek.errors.TooLargeError` before
    tarfile reads them into memory; inside :func:`_layer_errors` a corrupt stream (tar, gzip, zstd)
    raises :class:`~regpeek.errors.MalformedError`.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import zstandard

from regpeek.errors import MalformedError, TooLargeError
from regpeek.formats import mediatypes

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from typing_extensions import Self

__all__ = [
    "LayerDecoder",
    "TarSink",
    "TarWriter",
    "declared_compression",
    "open_layer",
    "scan_members",
    "sniff_compression",
]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_SPECIAL_HEADER = 1 << 20  # PAX and GNU long-name headers, as Go's archive/tar
CHUNK = 1 << 20

_READ_ERRORS: tuple[type[BaseException], ...] = (
    tarfile.TarError,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    zstandard.ZstdError,
)
# Headers whose whole body tarfile reads into memory.
_SPECIAL_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


# -- decompression -------------------------------------------------------------------------------
def declared_compression(media_type: str) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``"none"`` as the media type says; None when it names no tar layer.

    >>> declared_compression("application/vnd.docker.image.rootfs.diff.tar.gzip")
    'gzip'
    """
    kind = mediatypes.normalize(media_type)
    if mediatypes.is_gzip_layer(kind):
        return "gzip"
    if mediatypes.is_zstd_layer(kind):
        return "zstd"
    if kind.endswith(".tar"):
        return "none"
    return None


def sniff_compression(head: bytes) -> str:
    """``"gzip"`` or ``"zstd"`` when ``head`` starts with their magic number, else ``"none"``."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Prefixed(io.RawIOBase):
    """``prefix`` then the rest of ``source``: lets us sniff a stream that cannot seek."""

    def __init__(self, prefix: bytes, source: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._source.read(len(view)) or b""
        view[: len(data)] = data
        return len(data)


def _read_head(fileobj: BinaryIO, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = fileobj.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def open_layer(fileobj: BinaryIO, media_type: str) -> BinaryIO:
    """A streaming reader of the uncompressed tar inside a layer blob.

    The magic bytes decide (see :func:`sniff_compression`); ``media_type`` is advisory, so an unknown or
    wrong one does not matter (compare with :func:`declared_compression` to warn about it).  Closing the
    reader does not close ``fileobj``.  Corrupt data raises while reading
    (:meth:`~regpeek.disk.unpack.Unpacker.apply` turns it into :class:`~regpeek.errors.MalformedError`).
    """
    head = _read_head(fileobj, len(ZSTD_MAGIC))
    source = io.BufferedReader(_Prefixed(head, fileobj), buffer_size=CHUNK)
    compression = sniff_compression(head)
    if compression == "gzip":
        return cast(BinaryIO, gzip.GzipFile(fileobj=source, mode="rb"))
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
        return cast(BinaryIO, reader)
    return cast(BinaryIO, source)


class LayerDecoder:
    """Decompresses a layer blob fed in chunks: gzip (several members, zero padding between them, as
    gzip reads them), zstd (several frames) or plain, sniffed from the first bytes like
    :func:`open_layer`.

    :meth:`feed` and :meth:`finish` yield the uncompressed bytes in pieces of at most about
    :data:`CHUNK` (a zstd step can give up to 32 MiB from 1 KiB of input, the format's worst case), so
    a small, highly compressed blob never expands all at once in memory. A corrupt or truncated
    stream raises :class:`~regpeek.errors.MalformedError`.
    """

    _ZSTD_STEP = 1024  # zstd input per call: its output cannot be bounded otherwise

    def __init__(self) -> None:
        self.compression: str | None = None
        self._head = b""
        self._decoder: Any = None  # zlib's or zstandard's decompressobj, for the current member
        self._members = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """The uncompressed bytes ``chunk`` completes."""
        if self.compression is None:
            self._head += chunk
            if len(self._head) < len(ZSTD_MAGIC):
                return
            chunk, self._head = self._head, b""
            self.compression = sniff_compression(chunk)
        with _layer_errors():
            yield from self._decode(chunk)

    def finish(self) -> Iterator[bytes]:
        """What is left once the blob has ended; raises if the compressed stream stopped mid-way."""
        if self.compression is None:
            self.compression = sniff_compression(self._head)
            with _layer_errors():
                yield from self._decode(self._head)
            self._head = b""
        if self._decoder is not None and not self._decoder.eof:
            raise MalformedError(f"unreadable layer: the {self.compression} stream is truncated")
        if self.compression == "gzip" and self._members == 0:
            raise MalformedError("unreadable layer: an empty gzip stream")

    def _decode(self, data: bytes) -> Iterator[bytes]:
        if self.compression == "none":
            if data:
                yield data
            return
        while data:
            if self._decoder is None:
                data = self._start_member(data)
                if not data:
                    return
            if self.compression == "gzip":
                piece = self._decoder.decompress(data, CHUNK)
                data = self._decoder.unconsumed_tail
            else:
                piece = self._decoder.decompress(data[: self._ZSTD_STEP])
                data = data[self._ZSTD_STEP :]
            if piece:
                yield piece
            if self._decoder.eof:  # a member or frame ended; what follows starts the next one
                data = self._decoder.unused_data + data
                self._decoder = None

    def _start_member(self, data: bytes) -> bytes:
        """Begin the next gzip member or zstd frame; gzip's zero padding between members is skipped."""
        if self.compression == "gzip":
            if self._members and not data.strip(b"\0"):
                return b""
            data = data.lstrip(b"\0") if self._members else data
            if not data.startswith(GZIP_MAGIC[: len(data)]):
                raise MalformedError("unreadable layer: data after the gzip stream")
            self._decoder = zlib.decompressobj(wbits=31)
        else:
            self._decoder = zstandard.ZstdDecompressor().decompressobj()
        self._members += 1
        return data


# -- reading tars --------------------------------------------------------------------------------
class _BoundedTarInfo(tarfile.TarInfo):
    """Refuses PAX and GNU long-name headers over 1 MiB before tarfile reads them into memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _SPECIAL_TYPES and info.size > MAX_SPECIAL_HEADER:
            raise TooLargeError(
                f"tar extended header of {info.size} bytes (limit {MAX_SPECIAL_HEADER})",
                size=info.size,
                limit=MAX_SPECIAL_HEADER,
            )
        return info


class _StreamingTarFile(tarfile.TarFile):
    """A TarFile whose header list is declared, so that stream reading can forget the headers."""

    members: list[tarfile.TarInfo]


class TarSink:
    """Receives tar entries one at a time (:func:`~regpeek.disk.flatten.export_tar` writes to one)."""

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: BinaryIO | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


_NUL = b"\0"
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_OCTAL_7 = 8**7  # the largest value + 1 of an 8-byte number field (7 octal digits and a NUL)
_OCTAL_11 = 8**11  # of a 12-byte one
_NO_DEVICE = _NUL * 16
_NO_PREFIX = _NUL * 167  # prefix (155) and the 12 bytes that end the block
_DEVICES = (tarfile.CHRTYPE, tarfile.BLKTYPE)


def _ustar_header(info: tarfile.TarInfo) -> bytes | None:
    """``info.tobuf(PAX_FORMAT)``'s bytes when they are a single ustar block, built directly; else None.

    That is when tarfile would add no PAX header: none given, names and link targets ASCII and at most
    100 bytes, user and group names ASCII and at most 32, owners, size and mtime integers that fit
    their octal fields. tarfile builds the same block through a dictionary, ``copy.copy`` and a dozen
    helper calls, which costs more than the flattening of a small file.
    """
    if info.pax_headers:
        return None
    name, linkname, uname, gname = info.name, info.linkname, info.uname, info.gname
    uid, gid, size, mtime, mode, kind = info.uid, info.gid, info.size, info.mtime, info.mode, info.type
    if kind == tarfile.DIRTYPE and not name.endswith("/"):
        name += "/"
    if not (
        type(uid) is int
        and type(gid) is int
        and type(size) is int
        and type(mtime) is int
        and type(mode) is int
        and 0 <= uid < _OCTAL_7
        and 0 <= gid < _OCTAL_7
        and 0 <= size < _OCTAL_11
        and 0 <= mtime < _OCTAL_11
        and type(kind) is bytes
        and len(kind) == 1
        and isinstance(name, str)
        and isinstance(linkname, str)
        and isinstance(uname, str)
        and isinstance(gname, str)
        and len(name) <= 100
        and len(linkname) <= 100
        and len(uname) <= 32
        and len(gname) <= 32
        and name.isascii()
        and linkname.isascii()
        and uname.isascii()
        and gname.isascii()
    ):
        return None
    if kind in _DEVICES:
        major, minor = info.devmajor, info.devminor
        if not (
            type(major) is int and type(minor) is int and 0 <= major < _OCTAL_7 and 0 <= minor < _OCTAL_7
        ):
            return None
        devices = b"%07o\0%07o\0" % (major, minor)
    else:
        devices = _NO_DEVICE
    header = b"".join(
        (
            name.encode("ascii").ljust(100, _NUL),
            b"%07o\0%07o\0%07o\0%011o\0%011o\0        " % (mode & 0o7777, uid, gid, size, mtime),
            kind,
            linkname.encode("ascii").ljust(100, _NUL),
            b"ustar\x0000",
            uname.encode("ascii").ljust(32, _NUL),
            gname.encode("ascii").ljust(32, _NUL),
            devices,
            _NO_PREFIX,
        )
    )
    return header[:148] + b"%06o\0" % sum(header) + header[155:]


class TarWriter(TarSink):
    """Writes a PAX tar stream to ``out`` byte for byte as ``tarfile.open(fileobj=out, mode="w|",
    format=PAX_FORMAT, errors="surrogateescape")`` does, with less work per entry.

    Headers that need no PAX record are built directly (:func:`_ustar_header`), any other by tarfile;
    content is copied in large chunks, and the output goes to ``out`` in writes of about ``flush_size``
    bytes. Like tarfile's, :meth:`close` ends the archive (two zero blocks, padded to a 10 KiB record)
    and leaves ``out`` open; members are not remembered.
    """

    def __init__(self, out: BinaryIO, *, flush_size: int = CHUNK) -> None:
        self._out = out
        self._pending = bytearray()
        self._flush_size = flush_size
        self._offset = 0
        self.closed = False

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data
        if len(self._pending) >= self._flush_size:
            self._out.write(self._pending)
            self._pending = bytearray()

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: BinaryIO | None = None) -> None:
        if self.closed:
            raise OSError("TarWriter is closed")
        header = _ustar_header(tarinfo)
        if header is None:
            header = tarinfo.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")
        self._write(header)
        self._offset += len(header)
        if fileobj is None:
            return
        remaining = size = tarinfo.size
        while remaining:
            data = fileobj.read(min(remaining, CHUNK))
            if not data:
                raise OSError("unexpected end of data")
            self._write(data)
            remaining -= len(data)
        padding = -size % _BLOCK
        if padding:
            self._write(_NUL * padding)
        self._offset += size + padding

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        end = self._offset + 2 * _BLOCK
        self._pending += _NUL * (2 * _BLOCK + (-end % _RECORD))
        self._out.write(self._pending)
        self._pending = bytearray()


def _tar_writer(out: BinaryIO) -> TarWriter:
    return TarWriter(out)


def _members(tar: _StreamingTarFile) -> Iterator[tarfile.TarInfo]:
    """The members in stream order; tarfile would otherwise keep every header in ``tar.members``."""
    while (info := tar.next()) is not None:
        yield info
        tar.members.clear()


def scan_members(fileobj: BinaryIO) -> Iterator[tarfile.TarInfo]:
    """The headers of a tar in a seekable file, in order, without reading the members' content (tarfile
    seeks over it): each ``TarInfo`` has ``offset_data`` and ``size``. Extended headers are bounded as
    when reading layers; a corrupt archive raises ``tarfile.TarError``."""
    with _StreamingTarFile.open(
        fileobj=fileobj, mode="r:", tarinfo=_BoundedTarInfo, errors="surrogateescape"
    ) as tar:
        yield from _members(tar)


def _drain(stream: BinaryIO) -> None:
    """Read to the end (padding after the tar): checks the gzip trailer, lets a digest wrapper see it all."""
    while stream.read(CHUNK):
        pass


def _read_tar(stream: BinaryIO) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """Each member with its tar (for ``extractfile``), then the stream is drained.

    Run the loop inside :func:`_layer_errors`: read errors also surface while the caller reads content.
    """
    with _StreamingTarFile.open(
        fileobj=stream, mode="r|", tarinfo=_BoundedTarInfo, errors="surrogateescape"
    ) as tar:
        for info in _members(tar):
            yield tar, info
    _drain(stream)


@contextmanager
def _layer_errors() -> Iterator[None]:
    """Turns the errors of a corrupt stream (tar, gzip, zstd) into MalformedError."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise MalformedError(f"unreadable layer: {exc}") from exc


def _content(tar: tarfile.TarFile, info: tarfile.TarInfo) -> BinaryIO | None:
    return cast(BinaryIO, tar.extractfile(info)) if info.isreg() else None
