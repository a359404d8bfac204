"""``regpeek tree``: the index -> manifests -> config/layers structure, one node per line.

Laid out for the output's width (:mod:`regpeek.cli.layout`): a node's line holds its kind, platform,
digest and size; what does not fit (the media type, a note) continues on the lines below it, under
the node, never past the width. Digests are whole when every node's first line can hold a whole
one, else all short (``sha256:`` + 12 hex digits) with a footnote; ``--json`` has them whole.
"""

from __future__ import annotations

import click

from regpeek.cli.help import examples
from regpeek.cli.layout import (
    Fit,
    Line,
    cell_width,
    clean,
    output_width,
    short_digest,
    shorten_digests,
    write_lines,
)
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo_json
from regpeek.cli.session import session
from regpeek.formats.tree import Node

_STYLES = {
    "index": "bold",
    "manifest": "cyan",
    "schema1": "cyan",
    "attestation": "dim",
    "referrer": "yellow",
}


@click.command(
    "tree",
    epilog=examples(
        "regpeek tree alpine:3.20",
        "regpeek tree --no-referrers ghcr.io/org/app:1.2",
        "regpeek tree --json alpine | jq '.children[].platform'",
    ),
)
@click.argument("ref")
@click.option("--no-referrers", is_flag=True, help="Do not look up referrers.")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON.")
@registry_options(platform=False)
def tree_command(settings: Settings, ref: str, no_referrers: bool, as_json: bool) -> None:
    """Draw REF as a tree: index, platform manifests, configs and layers with sizes; attestations and
    referrers marked.
    """
    with session(settings) as client:
        root = client.tree(ref, with_referrers=not no_referrers)
    if as_json:
        echo_json(root.to_dict())
        return
    write_lines(tree_lines(root, ref, output_width()))


def _head(node: Node, title: str | None) -> list[str]:
    """The pieces that belong on a node's first line: title, kind, platform, size (digest apart)."""
    pieces = [clean(title)] if title else []
    pieces.append(node.kind)
    if node.platform:
        pieces.append(clean(node.platform))
    return pieces


def _tail(node: Node, short: bool) -> list[str]:
    from regpeek.cli.render import human_size

    pieces = [human_size(node.size)] if node.size is not None else []
    pieces.append(clean(node.media_type.removeprefix("application/vnd.")))
    if node.note:
        note = clean(node.note)
        pieces.append(f"({shorten_digests(note) if short else note})")
    return pieces


def _walk(node: Node, depth: int = 0, title: str | None = None) -> list[tuple[Node, int, str | None]]:
    found = [(node, depth, title)]
    for child in node.children:
        found += _walk(child, depth + 1)
    return found


def tree_lines(root: Node, title: str, width: int | None) -> list[Line]:
    """The tree of ``root`` at ``width`` cells (None: one line per node, digests whole)."""
    fit = Fit(width)
    nodes = _walk(root, 0, title)
    if width is not None:  # whole digests only if each node's kind, platform and digest fit its line
        for node, depth, node_title in nodes:
            first = " ".join(_head(node, node_title)) + (f"  {node.digest}" if node.digest else "")
            if node.digest and 4 * depth + cell_width(first) > width:
                fit.shortened = True
                break
    lines: list[Line] = []
    _draw(root, "", "", title, fit, lines)
    return lines + fit.note()


def _draw(node: Node, prefix: str, below: str, title: str | None, fit: Fit, lines: list[Line]) -> None:
    """Lines for ``node`` (first line after ``prefix``, continuation lines after ``below``), then its
    children with the guides ``├── ``, ``└── `` and ``│   ``."""
    pieces = _head(node, title)
    if node.digest:
        pieces.append(short_digest(str(node.digest)) if fit.shortened else str(node.digest))
    pieces += _tail(node, fit.shortened)
    continuation = below + ("│   " if node.children else "    ")
    style = _STYLES.get(node.kind, "")
    current, lead = prefix, prefix
    for piece in pieces:
        joined = current + ("  " if current != lead else "") + piece
        if fit.width is None or cell_width(joined) <= fit.width:
            current = joined
            continue
        if current != lead:
            lines.append(Line(current, style if lead == prefix else ""))
            current = lead = continuation
        room = None if fit.width is None else fit.width - cell_width(lead)
        parts = fit.wrap(piece, room)
        for part in parts[:-1]:
            lines.append(Line(lead + part, style if lead == prefix else ""))
            lead = current = continuation
        current = lead + parts[-1]
    lines.append(Line(current, style if lead == prefix else ""))
    for number, child in enumerate(node.children):
        last = number == len(node.children) - 1
        _draw(
            child,
            below + ("└── " if last else "├── "),
            below + ("    " if last else "│   "),
            None,
            fit,
            lines,
        )
