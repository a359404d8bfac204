"""``regpeek tags``: a repository's tags, from paginated listings (``catalog`` is in ``catalog.py``)."""

from __future__ import annotations

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo, echo_json
from regpeek.cli.session import session
from regpeek.cli.template import Template, template_option

#: --format keys: the --json keys plus the item's own name.
TAG_KEYS = ("source", "tags", "count", "pages", "tag")


@click.command(
    "tags",
    epilog=examples(
        "regpeek tags library/alpine",
        "regpeek tags --format '{source}:{tag}' ghcr.io/org/app",
        "regpeek tags --json registry.example:5000/team/app",
    ),
)
@click.argument("repository")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON object with the tags and how many pages it took."
)
@template_option("tag (keys: tag, source, count, pages)")
@registry_options(platform=False)
def tags_command(settings: Settings, repository: str, as_json: bool, template: str | None) -> None:
    """Print every tag of REPOSITORY, one per line, following pagination."""
    compiled = Template(template, TAG_KEYS) if template is not None else None
    with session(settings) as client:
        listing = client.list_tags(repository)
    if as_json:
        echo_json(listing.to_dict("tags"))
        return
    whole = listing.to_dict("tags")
    for tag in listing.names:
        if compiled is not None:
            click.echo(compiled.render({**whole, "tag": tag}))
        else:
            echo(tag)
