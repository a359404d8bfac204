"""``regpeek inspect``: the whole picture of an image, readable or JSON; many images as JSON Lines."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo_json
from regpeek.cli.session import session

SIF_PREFIX = "sif:"


@click.command("inspect")
@click.argument("refs", metavar="REF...", nargs=-1)
@click.option(
    "--from-file",
    "from_file",
    type=click.File("r"),
    help="Read references from FILE, one per line (- for stdin).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys in the README).")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 256),
    default=16,
    show_default=True,
    help="Images inspected at once (many references).",
)
@registry_options()
def inspect_command(
    settings: Settings,
    refs: tuple[str, ...],
    from_file: TextIO | None,
    as_json: bool,
    jobs: int,
) -> None:
    """Show the manifest, config, layers and platforms of REF.

    REF may also be oci:PATH[:NAME] (an image in a local OCI layout) or sif:FILE (a Singularity/Apptainer
    image file: header, objects, definition, stored OCI config, source image).

    With several references, or --from-file, print JSON Lines: one object per reference in input
    order, an {"reference", "error"} object for each that failed; the exit status is the highest met.
    """
    if not refs and from_file is None:
        raise click.UsageError("give at least one REF, or --from-file")
    if len(refs) == 1 and from_file is None and refs[0].startswith(SIF_PREFIX):
        _inspect_sif(refs[0][len(SIF_PREFIX) :], as_json)
        return
    if any(ref.startswith(SIF_PREFIX) for ref in refs):
        raise click.UsageError("a sif:FILE is inspected on its own, not with other references")
    if len(refs) == 1 and from_file is None:
        with session(settings) as client:
            result = client.inspect(refs[0], settings.platform)
        if as_json:
            echo_json(result.to_dict())
        else:
            from regpeek.cli.render import render_inspect

            render_inspect(result)
        return
    from regpeek.cli.many import inspect_lines

    code = inspect_lines(settings, _references(refs, from_file), jobs)
    if code:
        sys.exit(code)


def _inspect_sif(path: str, as_json: bool) -> None:
    if not path:
        raise click.UsageError("sif: needs a file, as in sif:image.sif")
    from regpeek.disk.sif import inspect_sif

    inspection = inspect_sif(path)
    if as_json:
        echo_json(inspection.to_dict())
    else:
        from regpeek.cli.sifview import render_sif

        render_sif(inspection)


def _references(refs: tuple[str, ...], from_file: TextIO | None) -> Iterator[str]:
    yield from refs
    if from_file is not None:
        from regpeek.batch import read_references

        yield from read_references(from_file)
