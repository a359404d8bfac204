"""``regpeek unpack`` and ``regpeek export``: an image as a root filesystem directory or one flat tar."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import BinaryIO

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, SizeLimit, registry_options, size_limit_options
from regpeek.cli.output import echo, echo_json, warn
from regpeek.cli.session import pull_progress, session
from regpeek.rootfs import export_image, unpack_image


@click.command(
    "unpack",
    epilog=examples(
        "regpeek unpack alpine:3.20 ./rootfs",
        "regpeek unpack --platform linux/arm64 oci:./layout:3.20 ./rootfs-arm64",
    ),
)
@click.argument("source")
@click.argument("rootfs", type=click.Path(file_okay=False))
@click.option("--allow-nondistributable", is_flag=True, help="Fetch foreign layers from their URLs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@size_limit_options
@registry_options()
def unpack_command(
    settings: Settings,
    size_limit: SizeLimit,
    source: str,
    rootfs: str,
    allow_nondistributable: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Apply the layers of SOURCE in order into the directory ROOTFS (missing or empty).

    SOURCE is a registry reference or oci:PATH[:NAME]. Whiteouts are applied; nothing is written
    outside ROOTFS, which is made private (mode 0700). As root, ownership and device nodes are kept;
    otherwise they are skipped and counted in one warning line. If the layers would expand past the
    size limit (--max-size) or anything else fails (Ctrl-C and SIGTERM too), what was written is removed.
    """
    show = not quiet and not as_json and sys.stderr.isatty()
    with session(settings) as client, pull_progress(source, show) as progress:
        result = unpack_image(
            client,
            source,
            rootfs,
            platform=settings.platform,
            allow_nondistributable=allow_nondistributable,
            progress=progress,
            **size_limit.arguments(),
        )
    warning = result.report.warning()
    if warning:
        warn(warning)
    if as_json:
        echo_json(result.to_dict())
        return
    report = result.report
    echo(
        f"unpacked {source} ({result.digest}) into {rootfs}: {len(result.layers)} layers, "
        f"{report.files} files, {report.directories} directories, {report.symlinks} symlinks"
    )


@click.command(
    "export",
    epilog=examples(
        "regpeek export alpine:3.20 alpine.tar", "regpeek export alpine:3.20 - | tar -tvf - | less"
    ),
)
@click.argument("source")
@click.argument("output")
@click.option("--allow-nondistributable", is_flag=True, help="Fetch foreign layers from their URLs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@size_limit_options
@registry_options()
def export_command(
    settings: Settings,
    size_limit: SizeLimit,
    source: str,
    output: str,
    allow_nondistributable: bool,
    quiet: bool,
) -> None:
    """Write the merged root filesystem of SOURCE as one tar to OUTPUT ("-" for stdout).

    Like crane export: whiteouts are applied and never appear in the tar. OUTPUT appears only when
    the export is complete; past the size limit (--max-size) it stops with exit 5 and no OUTPUT.
    A tar is not written to a terminal (exit 2), and "-" draws no progress bars.
    """
    if output == "-" and _is_terminal(sys.stdout):
        raise click.UsageError("refusing to write a tar to a terminal: redirect stdout, or give a file")
    show = not quiet and output != "-" and sys.stderr.isatty()
    with session(settings) as client, pull_progress(source, show) as progress, _output(output) as out:
        report = export_image(
            client,
            source,
            out,
            platform=settings.platform,
            allow_nondistributable=allow_nondistributable,
            progress=progress,
            **size_limit.arguments(),
        )
    warning = report.warning()
    if warning:
        warn(warning)


def _is_terminal(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def _output(output: str) -> Iterator[BinaryIO]:
    """stdout for ``-``; otherwise a temporary file beside OUTPUT, renamed into place only when the
    export succeeds. A file problem (no such directory, no permission, a full disk) is exit 7 naming
    OUTPUT, never the temporary name."""
    if output == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    from regpeek.disk.files import write_file_atomically
    from regpeek.errors import LocalError

    try:
        with write_file_atomically(output) as out:
            yield out
    except OSError as error:
        raise LocalError(f"cannot write {output}: {error.strerror or error}") from None
