"""Squashfs images from a tar stream, with the tools every Apptainer host has.

Three ways, one result (the same paths, types, modes, owners, times, sizes and link targets):

``tar2sqfs`` (squashfs-tools-ng)
    reads the tar on stdin (``-k`` is not given, so the archive's times are kept); the root, which
    the stream leaves out, gets its mode, owner and time from ``--defaults``.
``mksquashfs-tar`` (squashfs-tools 4.6 and later)
    reads the tar on stdin with ``-tar -no-strip``; it ignores a ``./`` entry, so the root's mode,
    owner and time are passed as ``-root-mode``/``-root-uid``/``-root-gid``/``-root-time``. The
    ``-tar`` of squashfs-tools 4.5.1 (Debian 12) takes only ``-root-mode`` in tar mode: the root
    would be the invoking user's with the time of the build, so that mksquashfs is not used this way
    (``auto`` goes on to the pseudo file, and asking for ``mksquashfs-tar`` is a usage error).
``mksquashfs-pseudo`` (any squashfs-tools from 4.5)
    the tar is extracted into a private directory (:class:`~regpeek.disk.unpack.Unpacker`, without
    privileges: no owners, no device nodes) and a pseudo file (``-pf``) gives every path its mode, owner
    and time (``M``) and creates the device nodes (``B``/``C``). Extended attributes other than the
    ``user.`` ones an unprivileged process may set are lost this way (squashfs-tools 4.5 pseudo files
    cannot carry them).

``auto`` takes the first that is installed in that order.  Every tool runs with the chosen compressor
(``gzip``, ``zstd``, ``xz``), all CPUs, and without appending to an existing file, and without
``SOURCE_DATE_EPOCH`` in its environment: the build time is passed explicitly (the root's time,
mksquashfs's ``-mkfs-time``), and mksquashfs would otherwise clamp every time in the image to it.  A
tool that fails raises :class:`~regpeek.errors.LocalError` with the last lines it printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from regpeek.disk.flatten import TarSink
from regpeek.disk.layerentry import Limits
from regpeek.disk.tarstream import _tar_writer
from regpeek.errors import LocalError, UnsupportedError, UsageError

__all__ = ["COMPRESSIONS", "TOOLS", "RootAttributes", "SquashfsTool", "build_squashfs", "find_tool"]

COMPRESSIONS = ("gzip", "zstd", "xz")
TOOLS = ("auto", "tar2sqfs", "mksquashfs", "mksquashfs-tar", "mksquashfs-pseudo")
_PACKAGES = "squashfs-tools-ng (tar2sqfs) or squashfs-tools (mksquashfs)"
_PIPE_CHUNK = 1 << 20


@dataclass(frozen=True)
class SquashfsTool:
    """A way to build the squashfs: ``method`` is tar2sqfs, mksquashfs-tar or mksquashfs-pseudo."""

    method: str
    binary: str

    @property
    def streams(self) -> bool:
        """True when the tool reads the tar on stdin (no extracted tree on disk)."""
        return self.method != "mksquashfs-pseudo"


@dataclass(frozen=True)
class RootAttributes:
    """The root directory of the squashfs: from the image's ``./`` entry, else 0755, root, time 0."""

    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    mtime: int = 0


def _mksquashfs_output(binary: str, option: str) -> str:
    try:
        done = subprocess.run(
            [binary, option], capture_output=True, text=True, timeout=30, check=False, env=_environment()
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


def _mksquashfs_has_tar(binary: str) -> bool:
    """Whether ``binary`` reads a tar on stdin and sets the root's owner and time when it does.

    squashfs-tools 4.5.1 has ``-tar`` but ignores ``-root-uid``, ``-root-gid`` and ``-root-time`` in
    tar mode (the root is the invoking user's, with the current time); 4.6 honours them.
    """
    if "-tar" not in _mksquashfs_output(binary, "-help").split():
        return False
    match = re.search(r"version (\d+)\.(\d+)", _mksquashfs_output(binary, "-version"))
    return match is not None and (int(match[1]), int(match[2])) >= (4, 6)


def _environment() -> dict[str, str]:
    """This process's environment without ``SOURCE_DATE_EPOCH`` (mksquashfs clamps every time to it)."""
    return {key: value for key, value in os.environ.items() if key != "SOURCE_DATE_EPOCH"}


def find_tool(choice: str = "auto") -> SquashfsTool:
    """The tool for ``choice`` (one of :data:`TOOLS`); UsageError naming the packages when missing.

    ``mksquashfs`` is the streamed ``-tar`` way when the installed mksquashfs has it with the root
    options (squashfs-tools 4.6 and later), else the pseudo file way.
    """
    if choice not in TOOLS:
        raise UsageError(f"unknown squashfs tool {choice!r}: expected one of {', '.join(TOOLS)}")
    tar2sqfs = shutil.which("tar2sqfs")
    mksquashfs = shutil.which("mksquashfs")
    if choice in ("auto", "tar2sqfs") and tar2sqfs:
        return SquashfsTool("tar2sqfs", tar2sqfs)
    if choice == "tar2sqfs":
        raise UsageError(
            "tar2sqfs is not installed: install squashfs-tools-ng, or use --squashfs-tool mksquashfs"
        )
    if mksquashfs is None:
        if choice == "auto":
            raise UsageError(f"no squashfs tool found: install {_PACKAGES}")
        raise UsageError(
            "mksquashfs is not installed: install squashfs-tools (or squashfs-tools-ng for tar2sqfs)"
        )
    if choice in ("auto", "mksquashfs", "mksquashfs-tar") and _mksquashfs_has_tar(mksquashfs):
        return SquashfsTool("mksquashfs-tar", mksquashfs)
    if choice == "mksquashfs-tar":
        raise UsageError(
            f"{mksquashfs} cannot build from a tar stream with the root directory's owner and time "
            "(squashfs-tools 4.6 or later can): use tar2sqfs or mksquashfs-pseudo"
        )
    return SquashfsTool("mksquashfs-pseudo", mksquashfs)


#: CPUs a squashfs tool may use; None means all this process may use. A run of several builds at once
#: in worker processes (``regpeek sif --from-file --jobs N``) gives each its share.
PROCESSORS: int | None = None


def jobs() -> int:
    """The CPUs a squashfs tool may use: :data:`PROCESSORS`, else all this process may use."""
    if PROCESSORS:
        return PROCESSORS
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _command(tool: SquashfsTool, output: Path, compression: str, root: RootAttributes) -> list[str]:
    if tool.method == "tar2sqfs":
        return [
            tool.binary,
            "--quiet",
            "--no-skip",
            "--force",
            "-c",
            compression,
            "-j",
            str(jobs()),
            "--defaults",
            f"uid={root.uid},gid={root.gid},mode=0{root.mode & 0o7777:o},mtime={max(0, root.mtime)}",
            str(output),
        ]
    command = [tool.binary]
    command += ["-", str(output), "-tar", "-no-strip"] if tool.method == "mksquashfs-tar" else []
    command += [
        "-noappend",
        "-comp",
        compression,
        "-processors",
        str(jobs()),
        "-quiet",
        "-no-progress",
        "-exit-on-error",
        "-root-mode",
        f"{root.mode & 0o7777:o}",
        "-root-uid",
        str(root.uid),
        "-root-gid",
        str(root.gid),
        "-root-time",
        str(max(0, root.mtime)),
        "-mkfs-time",
        str(max(0, root.mtime)),
    ]
    return command


def _failure(tool: SquashfsTool, code: int, stderr: bytes) -> LocalError:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    detail = "; ".join(lines[-3:]) if lines else "no message"
    return LocalError(f"{os.path.basename(tool.binary)} failed (exit {code}): {detail}")


@contextlib.contextmanager
def _running(command: list[str], tool: SquashfsTool, *, stdin: bool) -> Iterator[subprocess.Popen[bytes]]:
    """The tool as a child process; killed if the block fails; its failure raised as LocalError.

    A Ctrl-C at any point after the tool started (even while its stderr reader is starting) kills it:
    it must not go on writing after regpeek has removed its output and exited.
    """
    errors: list[bytes] = []
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    try:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=_environment(),
            )
        except OSError as exc:
            raise LocalError(f"cannot run {tool.binary}: {exc.strerror}") from None
        started = process
        reader = threading.Thread(
            target=lambda: errors.append(started.stderr.read() if started.stderr else b"")
        )
        reader.start()  # waits until the thread runs: a Ctrl-C may come meanwhile, with the tool running
        yield process
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        code = process.wait()
    except BaseException:  # the block failed, or Ctrl-C while the tool works: it must not go on
        if process is not None:
            process.kill()
            process.wait()
        if reader is not None and reader.ident is not None:  # started: it ends with the tool's stderr
            reader.join()
        raise
    reader.join()
    if code != 0:
        raise _failure(tool, code, b"".join(errors))


def build_squashfs(
    tool: SquashfsTool,
    write_tar: Callable[[TarSink | tarfile.TarFile], object],
    output: Path,
    *,
    compression: str = "gzip",
    root: RootAttributes | None = None,
    workdir: Path | None = None,
) -> None:
    """Build ``output`` from the entries ``write_tar`` writes to the sink it is given (then closes).

    ``workdir`` holds the extracted tree of the pseudo-file way (a private directory is made there).
    """
    if compression not in COMPRESSIONS:
        raise UsageError(f"unknown compression {compression!r}: expected one of {', '.join(COMPRESSIONS)}")
    root = root or RootAttributes()
    if tool.streams:
        with _running(_command(tool, output, compression, root), tool, stdin=True) as process:
            assert process.stdin is not None
            pipe = _Pipe(process.stdin)
            try:
                write_tar(_tar_writer(pipe))  # type: ignore[arg-type]
            except BrokenPipeError:
                pass  # the tool stopped reading: its exit status says why
            finally:
                pipe.done = True
        return
    _build_with_pseudo_file(tool, write_tar, output, compression, root, workdir or output.parent)


class _Pipe:
    """A pipe for a tar writer that ignores writes once the build is over (``done``).

    A tar writer left behind by a failure (the tool gone, Ctrl-C) flushes its buffer when it is
    garbage-collected: into a broken or closed pipe, that would print a traceback on stderr.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.done = False

    def write(self, data: bytes) -> int:
        if self.done:
            return len(data)
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            self.done = True  # the first failure is raised; the reader is gone for good
            raise

    def flush(self) -> None:
        if not self.done:
            self._stream.flush()


# -- the pseudo-file way -------------------------------------------------------------------------
def _no_line_breaks(name: str) -> str:
    if "\n" in name or "\r" in name:
        raise UnsupportedError(
            f"a path with a line break cannot be described to mksquashfs ({name!r}): use tar2sqfs"
        )
    return name


def _pseudo_name(name: str) -> str:
    """A path as a pseudo file names it: characters other than letters, digits and ``/._-+`` escaped."""
    return "".join(ch if ch.isalnum() or ch in "/._-+" else "\\" + ch for ch in _no_line_breaks(name))


def _action_path(name: str) -> str:
    """A path as an action's ``pathname()`` matches it: a quoted string of an escaped fnmatch pattern."""
    pattern = "".join("\\" + ch if ch in "\\*?[]" else ch for ch in _no_line_breaks(name))
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _PseudoRecorder(TarSink):
    """Passes entries to a tar writer (the extracted tree), and says in a pseudo file and an action
    file what that tree, extracted without privileges, cannot hold.

    Files, symlinks and FIFOs whose owner is not root or whose mode the owner-access extraction
    changed get an ``M`` line (mode, owner, time); device nodes a ``B``/``C`` line (mksquashfs creates
    them). Directories get actions instead (``guid()``, ``chmod()`` at their ``pathname()``): squashfs-tools
    4.5 refuses a pseudo line for a directory whose content also has one. The action file starts with
    ``guid(0,0) @ true``, so whatever needs nothing is root's, as in the image.
    """

    def __init__(self, out: TarSink, pseudo: BinaryIO, actions: BinaryIO) -> None:
        self._out = out
        self._pseudo = pseudo
        self._actions = actions
        actions.write(b"guid(0,0) @ true\n")

    def _write(self, stream: BinaryIO, line: str) -> None:
        stream.write(line.encode("utf-8", "surrogateescape"))

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: BinaryIO | None = None) -> None:
        name = tarinfo.name.strip("/")
        if name in ("", "."):
            self._out.addfile(tarinfo, fileobj)
            return
        mode = tarinfo.mode & 0o7777
        times = max(0, int(tarinfo.mtime))
        owned = bool(tarinfo.uid or tarinfo.gid)
        if tarinfo.ischr() or tarinfo.isblk():
            kind = "C" if tarinfo.ischr() else "B"
            owner = f"{tarinfo.uid} {tarinfo.gid}"
            devices = f"{tarinfo.devmajor} {tarinfo.devminor}"
            self._write(self._pseudo, f"{_pseudo_name(name)} {kind} {times} {mode:o} {owner} {devices}\n")
            return  # created by mksquashfs, not extracted
        self._out.addfile(tarinfo, fileobj)
        if tarinfo.isdir():
            if owned:
                self._write(
                    self._actions, f"guid({tarinfo.uid},{tarinfo.gid}) @ pathname({_action_path(name)})\n"
                )
            if mode & 0o700 != 0o700 or mode & 0o7000:
                self._write(self._actions, f"chmod({mode:o}) @ pathname({_action_path(name)})\n")
        elif not tarinfo.islnk():  # a hard link shares its target's inode
            if tarinfo.issym():
                changed = owned
                mode = 0o777
            else:
                changed = owned or mode & 0o600 != 0o600 or bool(mode & 0o7000)
            if changed:
                owner = f"{tarinfo.uid} {tarinfo.gid}"
                self._write(self._pseudo, f"{_pseudo_name(name)} M {times} {mode:o} {owner}\n")

    def close(self) -> None:
        self._out.close()


def _build_with_pseudo_file(
    tool: SquashfsTool,
    write_tar: Callable[[TarSink | tarfile.TarFile], object],
    output: Path,
    compression: str,
    root: RootAttributes,
    workdir: Path,
) -> None:
    import tempfile

    from regpeek.disk.unpack import Unpacker

    with tempfile.TemporaryDirectory(prefix=".regpeek-squashfs-", dir=workdir) as scratch:
        tree = Path(scratch) / "root"
        pseudo_path = Path(scratch) / "pseudo"
        actions_path = Path(scratch) / "actions"
        read_end, write_end = os.pipe()
        # modes the owner can read and search, whatever the image says: mksquashfs reads the tree as
        # this user, and the pseudo file sets the real modes
        unpacker = Unpacker(tree, as_root=False, limits=Limits.none(), owner_access=True)
        failure: list[BaseException] = []

        def extract() -> None:
            try:
                with open(read_end, "rb") as stream:
                    unpacker.apply(stream, name="the merged image")
            except BaseException as exc:
                failure.append(exc)

        reader = threading.Thread(target=extract)
        reader.start()
        try:
            with (
                open(write_end, "wb") as stream,
                open(pseudo_path, "wb") as pseudo,
                open(actions_path, "wb") as actions,
            ):
                pipe = _Pipe(stream)
                try:
                    write_tar(_PseudoRecorder(_tar_writer(pipe), pseudo, actions))  # type: ignore[arg-type]
                finally:
                    pipe.done = True
        except BrokenPipeError:
            reader.join()
            if failure:  # the extraction stopped reading: its error says why
                raise failure[0] from None
            raise
        finally:
            reader.join()
        if failure:
            raise failure[0]
        unpacker.finish()
        command = [tool.binary, str(tree), str(output), *_command(tool, output, compression, root)[1:]]
        command += ["-pf", str(pseudo_path), "-af", str(actions_path)]
        with _running(command, tool, stdin=False):
            pass
