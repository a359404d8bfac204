"""``regpeek tags``: a repository's tags, from paginated listings (``catalog`` is in ``catalog.py``)."""

from __future__ import annotations

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo, echo_json
from regpeek.cli.session import session


@click.command("tags")
@click.argument("repository")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON object with the tags and how many pages it took."
)
@registry_options(platform=False)
def tags_command(settings: Settings, repository: str, as_json: bool) -> None:
    """Print every tag of REPOSITORY, one per line, following pagination."""
    with session(settings) as client:
        listing = client.list_tags(repository)
    if as_json:
        echo_json(listing.to_dict("tags"))
        return
    for tag in listing.names:
        echo(tag)
