"""``regpeek sif``: an image as a Singularity/Apptainer SIF file (or, with ``--sandbox``, a directory)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, SizeLimit, registry_options, size_limit_options
from regpeek.cli.output import echo, echo_json, warn
from regpeek.cli.session import pull_progress, session
from regpeek.disk.squashfs import COMPRESSIONS, TOOLS
from regpeek.sif import StageCallback, build_sandbox, build_sif


@contextmanager
def _stages(show: bool) -> Iterator[StageCallback | None]:
    """A transient status line on stderr for the steps after the pull (none when not shown)."""
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.text import Text

    with Console(stderr=True).status(Text("")) as status:
        yield lambda line: status.update(Text(line))


@click.command(
    "sif",
    epilog=examples(
        "regpeek sif --platform linux/arm64 --compression zstd ghcr.io/org/app:1.2 app.sif",
        "regpeek sif --sandbox oci:./layout:app ./app-sandbox",
        "regpeek sif --from-file images.txt --out-dir /shared/sif --jobs 4",
    ),
)
@click.argument("source", required=False)
@click.argument("out", type=click.Path(dir_okay=True), required=False)
@click.option(
    "--from-file",
    "from_file",
    type=click.File("r"),
    help="Build one SIF per reference in FILE (one per line, - for stdin) into --out-dir.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Where --from-file writes its SIFs (created if missing), named from each reference.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="SIFs built at once, each in a worker process (--from-file).",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="SCHEDULER_ADDRESS",
    envvar="REGPEEK_DASK_SCHEDULER",
    help="Build on this Dask cluster, one task per reference (--from-file; needs regpeek[dask]; "
    "default $REGPEEK_DASK_SCHEDULER).",
)
@click.option(
    "--worker-cache-dir",
    type=click.Path(file_okay=False),
    help="The cache (and layer store) each Dask worker uses: local scratch or a shared filesystem "
    "(default: the worker's $REGPEEK_CACHE_DIR or user cache directory).",
)
@click.option(
    "--sandbox", is_flag=True, help="Write an Apptainer sandbox directory OUT instead of a SIF file."
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default="gzip",
    show_default=True,
    help="Squashfs compressor (gzip is read by every kernel and squashfuse).",
)
@click.option(
    "--squashfs-tool",
    type=click.Choice(TOOLS),
    default="auto",
    show_default=True,
    help="What builds the squashfs: auto takes tar2sqfs, then mksquashfs (-tar when it has it, else a "
    "pseudo file); mksquashfs-tar and mksquashfs-pseudo force one way.",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing OUT file (with --from-file: rebuild every SIF)."
)
@click.option("--allow-nondistributable", is_flag=True, help="Fetch foreign layers from their URLs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@size_limit_options
@registry_options()
def sif_command(
    settings: Settings,
    size_limit: SizeLimit,
    source: str | None,
    out: str | None,
    sandbox: bool,
    compression: str,
    squashfs_tool: str,
    force: bool,
    allow_nondistributable: bool,
    quiet: bool,
    as_json: bool,
    from_file: TextIO | None,
    out_dir: str | None,
    jobs: int,
    dask_address: str | None,
    worker_cache_dir: str | None,
) -> None:
    """Build the Singularity/Apptainer image OUT.sif from SOURCE, as `apptainer pull` would.

    SOURCE is a registry reference or oci:PATH[:NAME]. The layers are pulled (verified, through the
    shared layer cache), flattened with the image's owners and modes, joined by the files Apptainer
    adds (/.singularity.d, mount points), turned into a squashfs (tar2sqfs or mksquashfs: no root or
    Apptainer needed) and written as a SIF. OUT appears only when complete.

    With --from-file, one SIF per reference goes into --out-dir, named from the reference
    (docker.io/library/alpine:3.20 -> docker.io_library_alpine+3.20.sif); JSON Lines in input
    order; a SIF already built from the same image is skipped (--force rebuilds); the exit status
    is the highest met. --dask runs the builds on an existing Dask cluster.
    """
    if from_file is not None or out_dir is not None:
        if from_file is None or out_dir is None:
            raise click.UsageError("--from-file and --out-dir go together")
        if source is not None or out is not None:
            raise click.UsageError("give SOURCE OUT, or --from-file with --out-dir, not both")
        if sandbox:
            raise click.UsageError("--sandbox builds one directory: it does not go with --from-file")
        if worker_cache_dir is not None and dask_address is None:
            raise click.UsageError("--worker-cache-dir goes with --dask (local workers use --cache-dir)")
        from regpeek.cli.sifmany import build_lines

        code = build_lines(
            settings,
            size_limit,
            from_file,
            out_dir,
            jobs=jobs,
            dask=dask_address,
            worker_cache_dir=worker_cache_dir,
            compression=compression,
            squashfs_tool=squashfs_tool,
            force=force,
            allow_nondistributable=allow_nondistributable,
            quiet=quiet,
        )
        if code:
            sys.exit(code)
        return
    if source is None or out is None:
        raise click.UsageError("give SOURCE and OUT (or --from-file with --out-dir)")
    if worker_cache_dir is not None:
        raise click.UsageError("--worker-cache-dir goes with --dask and --from-file")
    show = not quiet and not as_json and sys.stderr.isatty()
    with session(settings) as client, pull_progress(source, show) as progress, _stages(show) as on_stage:
        if sandbox:
            sandbox_result = build_sandbox(
                client,
                source,
                out,
                platform=settings.platform,
                allow_nondistributable=allow_nondistributable,
                progress=progress,
                **size_limit.arguments(),
            )
        else:
            result = build_sif(
                client,
                source,
                out,
                platform=settings.platform,
                compression=compression,
                squashfs_tool=squashfs_tool,
                force=force,
                allow_nondistributable=allow_nondistributable,
                progress=progress,
                on_stage=on_stage,
                **size_limit.arguments(),
            )
    report = sandbox_result.report if sandbox else result.report
    warning = report.warning()
    if warning:
        warn(warning)
    if sandbox:
        if as_json:
            echo_json(sandbox_result.to_dict())
        else:
            echo(
                f"wrote sandbox {out} from {sandbox_result.reference} ({sandbox_result.digest}, "
                f"{sandbox_result.platform}) in {sandbox_result.seconds:.1f}s"
            )
        return
    if as_json:
        echo_json(result.to_dict())
        return
    from regpeek.formats.units import format_size

    echo(
        f"wrote {out} from {result.reference} ({result.digest}, {result.platform}): "
        f"{format_size(result.size)}, SIF id {result.sif_id}, squashfs by {result.squashfs_tool} "
        f"({result.compression}), {result.seconds:.1f}s"
    )
