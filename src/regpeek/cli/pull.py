"""``regpeek pull``: an image (or every platform of it) into an OCI layout, verified."""

from __future__ import annotations

import sys

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo, echo_json, warn
from regpeek.cli.session import pull_progress, session
from regpeek.disk.layout import LayoutReference
from regpeek.pull import pull


def _human(size: int) -> str:
    from regpeek.cli.render import human_size

    return human_size(size)


@click.command(
    "pull",
    epilog=examples(
        "regpeek pull alpine:3.20 ./layout",
        "regpeek pull --all-platforms alpine:3.20 ./layout",
        "regpeek pull --platform linux/arm64 --ref-name alpine-arm alpine:3.20 ./layout",
    ),
)
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--all-platforms", is_flag=True, help="Keep the index and pull every platform.")
@click.option(
    "--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True, help="Blobs downloaded at once."
)
@click.option(
    "--allow-nondistributable",
    is_flag=True,
    help="Fetch foreign (non-distributable) layers from the URLs their descriptors name.",
)
@click.option("--ref-name", help="Name for the image in index.json (default: the tag, else the reference).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (digests, sizes, seconds).")
@registry_options()
def pull_command(
    settings: Settings,
    ref: str,
    dest: str,
    all_platforms: bool,
    jobs: int,
    allow_nondistributable: bool,
    ref_name: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Pull REF into the OCI image layout DEST (created if needed).

    Blobs are verified as they stream; DEST changes only when the whole image is verified. On any
    failure, Ctrl-C or SIGTERM, DEST is left as it was (removed, if this pull created it). DEST may
    also be oci:PATH[:NAME], or an archive, oci-archive:FILE[:NAME] or docker-archive:FILE[:REPO:TAG]
    (what regpeek copy writes, for the host's platform unless --platform or --all-platforms).
    """
    show = not quiet and not as_json and sys.stderr.isatty()
    if LayoutReference.is_local(dest):
        target = LayoutReference.parse(dest)
        if target.transport != "oci":
            _pull_to_archive(settings, ref, dest, all_platforms, jobs, allow_nondistributable, show, as_json)
            return
        dest, ref_name = str(target.path), ref_name or target.name
    with session(settings) as client, pull_progress(ref, show) as progress:
        result = pull(
            client,
            ref,
            dest,
            platform=settings.platform,
            all_platforms=all_platforms,
            jobs=jobs,
            allow_nondistributable=allow_nondistributable,
            ref_name=ref_name,
            progress=progress,
        )
    if as_json:
        echo_json(result.to_dict())
        return
    fetched = [blob for blob in result.blobs if blob.downloaded]
    skipped = [blob for blob in result.blobs if blob.skipped]
    line = (
        f"pulled {result.reference} into {result.destination} as {result.ref_name}: {result.digest} "
        f"({len(fetched)} of {len(result.blobs)} blobs downloaded, {_human(result.downloaded_bytes)}, "
        f"{result.seconds:.1f}s)"
    )
    echo(line)
    if skipped:
        warn(f"{len(skipped)} non-distributable layer(s) left out (--allow-nondistributable fetches them)")


def _pull_to_archive(
    settings: Settings,
    ref: str,
    dest: str,
    all_platforms: bool,
    jobs: int,
    allow_nondistributable: bool,
    show: bool,
    as_json: bool,
) -> None:
    """``pull REF oci-archive:FILE`` is ``copy`` to that archive, with pull's platform default."""
    from regpeek.cli.copy import print_summary
    from regpeek.copy import copy

    with session(settings) as client, pull_progress(ref, show) as progress:
        platform = settings.platform or (None if all_platforms else client.default_platform)
        result = copy(client, ref, dest, platform=platform, jobs=jobs,
                      allow_nondistributable=allow_nondistributable, progress=progress)  # fmt: skip
    if as_json:
        echo_json(result.to_dict())
    else:
        print_summary(result)
