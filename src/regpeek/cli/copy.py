"""``regpeek copy`` (and its alias ``push``): an image from a registry, layout or archive to another."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Iterator
from typing import Any

import click

from regpeek.cli.help import examples
from regpeek.cli.options import PASSWORD_WARNING, Settings, registry_options
from regpeek.cli.output import echo, echo_json, warn
from regpeek.cli.scrub import remember_secrets
from regpeek.copy import DEFAULT_CHUNK_SIZE, CopyResult, copy
from regpeek.errors import UsageError
from regpeek.formats.units import format_size
from regpeek.network._sync.registry import Client
from regpeek.pull import PullProgress

_HELP = """Copy the image SRC to DST, verified; DST changes only when the image is complete.

\b
SRC and DST name images as skopeo does:
  REF                       a registry reference (docker:// optional)
  oci:PATH[:NAME]           an OCI layout directory
  oci-archive:FILE[:NAME]   a tar of an OCI layout
  docker-archive:FILE[:REPO:TAG]  what docker save writes and docker load reads

Without --platform a multi-platform image is copied whole (its index digest is kept); with it,
that platform's image manifest. A registry DST without a tag takes SRC's tag. Blobs the destination
has are not sent, blobs of another repository of the same registry are mounted, the others stream
from SRC without touching the disk; the tag is written last. The shared options apply to both sides;
--src-*/--dest-* set one side."""


@contextlib.contextmanager
def _side_clients(
    settings: Settings, src: dict[str, Any], dest: dict[str, Any]
) -> Iterator[tuple[Client, Client]]:
    """The source's client and the destination's (one client when both sides are configured alike)."""
    shared = settings.client_arguments()
    source_arguments = _side(shared, **src)
    dest_arguments = _side(shared, **dest)
    reader = Client(**source_arguments)
    writer = reader if dest_arguments == source_arguments else Client(**dest_arguments)
    clients = [reader] if writer is reader else [reader, writer]
    for client in clients:
        remember_secrets(client.credentials.secrets)
    try:
        yield reader, writer
    finally:
        for client in clients:
            remember_secrets(client.secrets)
            client.close()


def _side(
    shared: dict[str, Any], *, creds: str | None, authfile: str | None, plain_http: bool, insecure: bool
) -> dict[str, Any]:
    arguments = dict(shared)
    if creds is not None:
        username, sep, password = creds.partition(":")
        if not sep or not username:
            raise UsageError("credentials are given as USERNAME:PASSWORD")
        warn(PASSWORD_WARNING.replace("--password", "--src-creds/--dest-creds"))
        arguments.update(username=username, password=password, authfile=None)
    elif authfile is not None:
        arguments.update(username=None, password=None, authfile=authfile)
    if plain_http or insecure:
        options = arguments["options"]
        arguments["options"] = dataclasses.replace(
            options, plain_http=options.plain_http or plain_http, insecure=options.insecure or insecure
        )
    return arguments


def _parse_chunk(context: click.Context, parameter: click.Parameter, value: str | None) -> int:
    if value is None:
        return DEFAULT_CHUNK_SIZE
    from regpeek.formats.units import parse_size

    try:
        size = parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if size < 1:
        raise click.BadParameter("must be at least 1 byte")
    return size


def _copy_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--all-platforms", is_flag=True, help="Copy every platform (the default)."),
            click.option(
                "--jobs", "-j", type=click.IntRange(1, 64), default=4, show_default=True,
                help="Blobs copied at once.",
            ),
            click.option("--with-referrers", is_flag=True,
                         help="Also copy the artifacts that refer to the image (signatures, SBOMs)."),
            click.option("--allow-nondistributable", is_flag=True,
                         help="Copy foreign (non-distributable) layers too, from the URLs they name."),
            click.option("--dry-run", is_flag=True,
                         help="Only say what would be copied, mounted or is present (HEAD requests only)."),
            click.option("--chunk-size", metavar="SIZE", callback=_parse_chunk,
                         help="Blobs up to SIZE go up in one request, larger ones in chunks of SIZE "
                         "(default 32M; at least the registry's OCI-Chunk-Min-Length)."),
            click.option("--src-creds", metavar="USER:PASSWORD", help="Credentials for the source registry."),
            click.option("--dest-creds", metavar="USER:PASSWORD", help="Credentials for the destination."),
            click.option("--src-authfile", type=click.Path(dir_okay=False), help="Auth file for the source."),
            click.option("--dest-authfile", type=click.Path(dir_okay=False), help="Auth file for the destination."),
            click.option("--src-plain-http", is_flag=True, help="Talk plain HTTP to the source registry."),
            click.option("--dest-plain-http", is_flag=True, help="Talk plain HTTP to the destination registry."),
            click.option("--src-insecure", is_flag=True, help="Do not verify the source registry's TLS certificate."),
            click.option("--dest-insecure", is_flag=True, help="Do not verify the destination's TLS certificate."),
            click.option("--quiet", "-q", is_flag=True, help="No progress display."),
            click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (what was copied, mounted, present)."),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


def _run(settings: Settings, src: str, dst: str, **given: Any) -> None:
    as_json, quiet, dry_run = given.pop("as_json"), given.pop("quiet"), given["dry_run"]
    sides = {
        side: {
            "creds": given.pop(f"{side}_creds"),
            "authfile": given.pop(f"{side}_authfile"),
            "plain_http": given.pop(f"{side}_plain_http"),
            "insecure": given.pop(f"{side}_insecure"),
        }
        for side in ("src", "dest")
    }
    show = not quiet and not as_json and not dry_run and sys.stderr.isatty()
    with (
        _side_clients(settings, sides["src"], sides["dest"]) as (reader, writer),
        _progress(src, show) as bar,
    ):
        result = copy(reader, src, dst, dest_client=writer, platform=settings.platform, progress=bar, **given)
    if as_json:
        echo_json(result.to_dict())
        return
    if dry_run:
        _print_plan(result)
    print_summary(result)


@contextlib.contextmanager
def _progress(source: str, show: bool) -> Iterator[PullProgress | None]:
    if not show:
        yield None
        return
    from regpeek.cli.progress import RichPullProgress  # rich only when something is drawn

    with RichPullProgress(f"copying {source}") as progress:
        yield progress


def _print_plan(result: CopyResult) -> None:
    verbs = {"copied": "copy", "mounted": "mount", "present": "present", "skipped": "skip"}
    for blob in result.blobs:
        echo(f"{verbs[blob.action]:<8} {blob.digest} {format_size(blob.size):>10}  {blob.media_type}")
    for manifest in result.manifests:
        verb = "put" if manifest.action == "pushed" else "present"
        echo(
            f"{verb:<8} {manifest.digest} {format_size(manifest.size):>10}  {manifest.media_type} as {manifest.target}"
        )


def print_summary(result: CopyResult) -> None:
    """The result line (and notes, warnings) of a copy."""
    shown = [action for action in ("copied", "mounted", "present", "skipped") if result.count(action)]
    counts = ", ".join(f"{result.count(action)} {action}" for action in shown or ["copied"])
    verb = "would copy" if result.dry_run else "copied"
    line = (
        f"{verb} {result.source} to {result.destination}: {result.digest} "
        f"({len(result.blobs)} blobs: {counts}; {format_size(result.copied_bytes)}, {result.seconds:.1f}s)"
    )
    echo(line)
    if result.converted_from_schema1:
        warn(
            f"the digest changed: the schema1 source {result.source_digest} was converted to {result.digest}"
        )
    elif result.destination.startswith("docker-archive:"):
        echo(
            f"  (a docker archive holds no manifest: {result.source_digest} is read back as {result.digest})"
        )
    if result.referrers:
        echo(f"  with {len(result.referrers)} referrer(s)")
    skipped = result.count("skipped")
    if skipped:
        warn(f"{skipped} non-distributable layer(s) left out (--allow-nondistributable copies them)")


@click.command(
    "copy",
    help=_HELP,
    epilog=examples(
        "regpeek copy alpine:3.20 registry.example:5000/mirror/alpine:3.20",
        "regpeek copy --platform linux/arm64 alpine:3.20 oci-archive:alpine.tar",
        "regpeek copy --dry-run ghcr.io/org/app:1.2 registry.example:5000/org/app",
    ),
)
@click.argument("src")
@click.argument("dst")
@_copy_options
@registry_options()
def copy_command(settings: Settings, src: str, dst: str, **given: Any) -> None:
    _run(settings, src, dst, **given)


push_command = click.Command(
    "push",
    callback=copy_command.callback,
    params=copy_command.params,
    help="The same as copy: push oci:PATH[:NAME] (or any SRC) to the registry reference DST.\n\n" + _HELP,
    epilog=examples(
        "regpeek push oci:./layout:app registry.example:5000/team/app:1.0",
        "regpeek push docker-archive:app.tar registry.example:5000/team/app:1.0",
    ),
)
