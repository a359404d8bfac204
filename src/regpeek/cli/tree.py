"""``regpeek tree``: the index -> manifests -> config/layers structure, drawn with rich."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo_json
from regpeek.cli.session import session
from regpeek.formats.terminal import safe_text
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
        echo_json(root.to_dict())
        return
    from rich.tree import Tree

    from regpeek.cli.render import make_console

    tree = Tree(_label(root, ref))
    _grow(tree, root)
    make_console(width=400).print(tree)


def _label(node: Node, title: str | None = None) -> Text:
    """One line of the tree, assembled from plain text pieces: nothing from the registry is markup."""
    from rich.text import Text

    from regpeek.cli.render import human_size

    styles = {
        "index": "bold",
        "manifest": "bold cyan",
        "schema1": "bold cyan",
        "attestation": "dim",
        "referrer": "magenta",
    }
    parts: list[str | tuple[str, str]] = []
    if title:
        parts.append(safe_text(title))
    parts.append((node.kind, styles.get(node.kind, "")))
    if node.platform:
        parts.append(safe_text(node.platform))
    if node.digest:
        parts.append(str(node.digest))
    if node.size is not None:
        parts.append(human_size(node.size))
    parts.append(safe_text(node.media_type.removeprefix("application/vnd.")))
    if node.note:
        parts.append(f"({safe_text(node.note)})")
    text = Text("  ").join(Text(*part) if isinstance(part, tuple) else Text(part) for part in parts)
    text.no_wrap = True  # a digest is never folded, however narrow the terminal
    text.overflow = "ignore"
    return text


def _grow(branch: object, node: Node) -> None:
    from rich.tree import Tree

    assert isinstance(branch, Tree)
    for child in node.children:
        _grow(branch.add(_label(child)), child)
