"""``regpeek inspect``: the whole picture of one image, readable or as one JSON object."""

from __future__ import annotations

import json

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.session import session


@click.command("inspect")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (keys in the README).")
@registry_options()
def inspect_command(settings: Settings, ref: str, as_json: bool) -> None:
    """Show the manifest, config, layers and platforms of REF."""
    with session(settings) as client:
        result = client.inspect(ref, settings.platform)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        from regpeek.cli.render import render_inspect

        render_inspect(result)
