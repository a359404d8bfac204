"""``regpeek inspect``: the whole picture of an image, readable or JSON; many images as JSON Lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo_json
from regpeek.cli.session import session
from regpeek.cli.template import Template, template_option

SIF_PREFIX = "sif:"
#: regpeek.batch.JOBS and PER_REGISTRY (not imported here: the one-shot path does not load asyncio).
JOBS = 32
PER_REGISTRY = 16

#: The keys of ``inspect --json`` (InspectResult.to_dict), which --format may name.
INSPECT_KEYS = (
    "reference", "registry", "repository", "tag", "digest", "index_digest", "media_type", "schema_version",
    "platform", "platforms", "created", "author", "docker_version", "config_digest", "env", "entrypoint",
    "cmd", "working_dir", "user", "labels", "exposed_ports", "volumes", "stop_signal", "layers", "history",
    "size", "annotations",
)  # fmt: skip
#: The keys of ``inspect --json sif:FILE``.
SIF_KEYS = (
    "path", "size", "header", "descriptors", "primary_partition", "definition", "oci_config", "labels",
    "source", "warnings",
)  # fmt: skip


@click.command(
    "inspect",
    epilog=examples(
        "regpeek inspect alpine:3.20",
        "regpeek inspect --format '{digest} {platform.architecture} {layers[0].size}' alpine busybox",
        "regpeek inspect --json --platform linux/arm64 ghcr.io/org/app:1.2",
    ),
)
@click.argument("refs", metavar="REF...", nargs=-1)
@click.option(
    "--from-file",
    "from_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read references from FILE, one per line (- for stdin).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys in the README).")
@template_option("image (one line each)")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 256),
    default=JOBS,
    show_default=True,
    help="Images inspected at once (many references).",
)
@click.option(
    "--per-registry",
    "per_registry",
    type=click.IntRange(1, 64),
    default=PER_REGISTRY,
    show_default=True,
    help="Requests in flight to one registry at most (many references); a 429 pauses the registry.",
)
@registry_options()
def inspect_command(
    settings: Settings,
    refs: tuple[str, ...],
    from_file: str | None,
    as_json: bool,
    template: str | None,
    jobs: int,
    per_registry: int,
) -> None:
    """Show the manifest, config, layers and platforms of REF.

    REF may also be oci:PATH[:NAME] (an image in a local OCI layout) or sif:FILE (a Singularity/Apptainer
    image file: header, objects, definition, stored OCI config, source image).

    With several references, or --from-file, print JSON Lines: one object per reference in input
    order, an {"reference", "error"} object for each that failed; the exit status is the highest met.
    With --format, one line per reference (failures on stderr).
    """
    if not refs and from_file is None:
        raise click.UsageError("give at least one REF, or --from-file")
    if as_json and template is not None:
        raise click.UsageError("give --json or --format, not both")
    if from_file == "-" and settings.password_stdin:
        raise click.UsageError("--password-stdin and --from-file - both read standard input: use --authfile")
    sif = len(refs) == 1 and from_file is None and refs[0].startswith(SIF_PREFIX)
    compiled = Template(template, SIF_KEYS if sif else INSPECT_KEYS) if template is not None else None
    if sif:
        _inspect_sif(refs[0][len(SIF_PREFIX) :], as_json, compiled)
        return
    if any(ref.startswith(SIF_PREFIX) for ref in refs):
        raise click.UsageError("a sif:FILE is inspected on its own, not with other references")
    if len(refs) == 1 and from_file is None:
        with session(settings) as client:
            result = client.inspect(refs[0], settings.platform)
        if compiled is not None:
            click.echo(compiled.render(result.to_dict()))
        elif as_json:
            echo_json(result.to_dict())
        else:
            from regpeek.cli.render import render_inspect

            render_inspect(result)
        return
    from regpeek.cli.many import inspect_lines

    stream = _open_references(from_file) if from_file is not None else None
    try:
        code = inspect_lines(settings, _references(refs, stream), jobs, compiled, per_registry)
    finally:
        if stream is not None and stream is not sys.stdin:
            stream.close()
    if code:
        sys.exit(code)


def _open_references(path: str) -> TextIO:
    """``--from-file``: the file (or stdin for ``-``); one that cannot be read is exit 7."""
    if path == "-":
        return sys.stdin
    from regpeek.errors import LocalError

    try:
        return open(path, encoding="utf-8", errors="replace")
    except OSError as error:
        raise LocalError(f"cannot read {path}: {error.strerror}") from None


def _inspect_sif(path: str, as_json: bool, template: Template | None) -> None:
    if not path:
        raise click.UsageError("sif: needs a file, as in sif:image.sif")
    from regpeek.disk.sif import inspect_sif

    inspection = inspect_sif(path)
    if template is not None:
        click.echo(template.render(inspection.to_dict()))
    elif as_json:
        echo_json(inspection.to_dict())
    else:
        from regpeek.cli.sifview import render_sif

        render_sif(inspection)


def _references(refs: tuple[str, ...], from_file: TextIO | None) -> Iterator[str]:
    yield from refs
    if from_file is not None:
        from regpeek.batch import read_references

        yield from read_references(from_file)
