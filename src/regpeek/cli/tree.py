"""``regpeek tree``: the index -> manifests -> config/layers structure, drawn with rich."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.session import session
from regpeek.formats.tree import Node

if TYPE_CHECKING:
    from rich.text import Text


@click.command("tree")
@click.argument("ref")
@click.option("--no-referrers", is_flag=True, help="Do not look up referrers.")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
@registry_options(platform=False)
def tree_command(settings: Settings, ref: str, no_referrers: bool, as_json: bool) -> None:
    """Draw REF as a tree: index, platform manifests, configs and layers with sizes; attestations and
    referrers marked."""
    with session(settings) as client:
        root = client.tree(ref, with_referrers=not no_referrers)
    if as_json:
        click.echo(json.dumps(root.to_json(), indent=2))
        return
    from rich.tree import Tree

    from regpeek.cli.render import make_console

    tree = Tree(_label(root, ref))
    _grow(tree, root)
    make_console(width=400).print(tree)


def _label(node: Node, title: str | None = None) -> Text:
    from rich.markup import escape
    from rich.text import Text

    from regpeek.cli.render import human_size

    styles = {
        "index": "bold",
        "manifest": "bold cyan",
        "schema1": "bold cyan",
        "attestation": "dim",
        "referrer": "magenta",
    }
    kind = f"[{styles.get(node.kind, '')}]{node.kind}[/]" if node.kind in styles else node.kind
    parts = [escape(title) if title else None, kind, escape(node.platform) if node.platform else None]
    parts += [
        str(node.digest) if node.digest else None,
        human_size(node.size) if node.size is not None else None,
    ]
    parts += [
        escape(node.media_type.removeprefix("application/vnd.")),
        f"({escape(node.note)})" if node.note else None,
    ]
    text = Text.from_markup("  ".join(part for part in parts if part))
    text.no_wrap = True  # a digest is never folded, however narrow the terminal
    text.overflow = "ignore"
    return text


def _grow(branch: object, node: Node) -> None:
    from rich.tree import Tree

    assert isinstance(branch, Tree)
    for child in node.children:
        _grow(branch.add(_label(child)), child)
