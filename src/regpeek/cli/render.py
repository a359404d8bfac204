"""Human-readable output with rich (imported only when something is drawn).

Image data reaches rich only as :class:`~rich.text.Text` made by :func:`plain` (terminal controls shown
as escapes, no markup, no emoji codes): a plain ``str`` given to a table would be parsed as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from regpeek.formats.config import InspectResult
from regpeek.formats.terminal import safe_text
from regpeek.formats.units import format_size

human_size = format_size


def plain(value: str, style: str = "", *, newlines: bool = False) -> Text:
    """Untrusted ``value`` as rich text: controls escaped (newlines kept only if ``newlines``), no markup."""
    return Text(safe_text(value, newlines=newlines), style=style)


def _short(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def _short_type(media_type: str) -> str:
    """``application/vnd.oci.image.layer.v1.tar+gzip`` -> ``oci.image.layer.v1.tar+gzip``."""
    return media_type.removeprefix("application/vnd.")


def make_console(width: int = 160) -> Console:
    """A console for stdout; when stdout is not a terminal, ``width`` wide, enough never to cut a digest."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=width)
    return console


def render_inspect(result: InspectResult, console: Console | None = None) -> None:
    console = console or make_console()
    console.print(plain(str(result.reference), "bold"))
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="cyan", no_wrap=True)
    facts.add_column(overflow="fold")
    for label, lines in result.facts():  # one value per line (a newline inside a value is escaped)
        facts.add_row(label, Text("\n".join(safe_text(line) for line in lines)))
    console.print(facts)

    if result.platforms:
        table = Table(title="Platforms", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("platform")
        table.add_column("digest", no_wrap=True, min_width=71)
        table.add_column("size", justify="right", no_wrap=True)
        for entry in result.platforms:
            chosen = entry.digest == result.digest
            table.add_row(
                plain(entry.platform.describe() + (" *" if chosen else "")),
                str(entry.digest),
                human_size(entry.size),
                style="bold green" if chosen else None,
            )
        console.print()
        console.print(table)

    if result.layers:
        table = Table(title="Layers (base first)", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("#", justify="right")
        table.add_column("digest", no_wrap=True, min_width=71)
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("media type", overflow="fold")
        for number, layer in enumerate(result.layers, 1):
            table.add_row(
                str(number), str(layer.digest), human_size(layer.size), plain(_short_type(layer.media_type))
            )
        console.print()
        console.print(table)

    history = result.config.history
    if history:
        table = Table(title="History (oldest first)", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("created", no_wrap=True)
        table.add_column("step")
        for step in history:
            what = (step.created_by or step.comment or "").strip()
            empty = "  (empty layer)" if step.empty_layer else ""
            table.add_row(plain((step.created_raw or "")[:19]), plain(what + empty, newlines=True))
        console.print()
        console.print(table)
