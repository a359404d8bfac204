"""``regpeek tags``: every tag of a repository, one per line."""

from __future__ import annotations

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.session import session


@click.command("tags")
@click.argument("repository")
@registry_options(platform=False)
def tags_command(settings: Settings, repository: str) -> None:
    """Print every tag of REPOSITORY, one per line, following pagination."""
    with session(settings) as client:
        tags = client.tags(repository)
    for tag in tags:
        click.echo(tag)
