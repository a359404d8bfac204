"""Draw an :class:`~regpeek.formats.diff.ImageDiff` for people: a headline, then one section per changed field.

Lines start with ``+`` (only in the second image, green), ``-`` (only in the first, red) or ``~`` (in
both, changed: yellow). Digests are never shortened. Everything from the images is printed as plain
text (no rich markup is interpreted), one value per line, with terminal controls (newlines included)
shown as escapes by :func:`~regpeek.formats.terminal.safe_text`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from regpeek.cli.render import human_size
from regpeek.formats.config import HistoryEntry, Layer
from regpeek.formats.diff import Change, ImageDiff, MappingDiff, SetDiff
from regpeek.formats.terminal import safe_text

__all__ = ["render_diff", "signed_size"]

ADDED, REMOVED, CHANGED = "green", "red", "yellow"
_NONE = "(none)"
_DIGEST_WIDTH = len("sha256:") + 64


def signed_size(size: int | None) -> str:
    """``1536`` -> ``+1.5 KiB``; ``-10`` -> ``-10 B``; ``0`` -> ``0 B``; None -> ``unknown``."""
    if size is None:
        return "unknown"
    sign = "+" if size > 0 else "-" if size < 0 else ""
    return sign + human_size(abs(size))


def _line(console: Console, mark: str, style: str, *parts: str) -> None:
    console.print(Text("  " + mark + " " + safe_text("".join(parts)), style=style), soft_wrap=True)


def _section(console: Console, title: str) -> None:
    console.print()
    console.print(Text(title, style="bold"))


def _text(value: str | None) -> str:
    return _NONE if value is None else value


def _words(value: tuple[str, ...] | None) -> str:
    return _NONE if value is None else json.dumps(list(value))


def _headline(diff: ImageDiff, console: Console) -> None:
    before, after = diff.before, diff.after
    if diff.identical:
        console.print(Text.assemble(("identical", f"bold {ADDED}"), f"  {before.digest}"), soft_wrap=True)
        for reference in dict.fromkeys([before.reference, after.reference]):
            console.print(Text("  " + safe_text(reference)), soft_wrap=True)
        return
    for mark, style, side in (("-", REMOVED, before), ("+", ADDED, after)):
        console.print(
            Text.assemble((f"{mark} {safe_text(side.reference)}", f"bold {style}"), f"  {side.digest}"),
            soft_wrap=True,
        )
    if not diff.has_changes:
        console.print(Text("no differences in the compared fields (manifests differ in other ways)"))


def _change_section(console: Console, title: str, change: Change[str] | Change[str | None] | None) -> None:
    if change is not None:
        _section(console, title)
        _line(console, "~", CHANGED, f"{_text(change.before)} -> {_text(change.after)}")


def _words_section(console: Console, title: str, change: Change[tuple[str, ...] | None] | None) -> None:
    if change is not None:
        _section(console, title)
        _line(console, "-", REMOVED, _words(change.before))
        _line(console, "+", ADDED, _words(change.after))


def _mapping_section(
    console: Console,
    title: str,
    diff: MappingDiff[str] | MappingDiff[str | None],
    show: Callable[[str, str | None], str],
) -> None:
    if not diff:
        return
    _section(console, title)
    for key, value in diff.added.items():
        _line(console, "+", ADDED, show(key, value))
    for key, value in diff.removed.items():
        _line(console, "-", REMOVED, show(key, value))
    for key, change in diff.changed.items():
        _line(console, "~", CHANGED, f"{key}: {_text(change.before)} -> {_text(change.after)}")


def _env_item(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


def _label_item(key: str, value: str | None) -> str:
    return f"{key}={_text(value)}"


def _set_section(console: Console, title: str, diff: SetDiff) -> None:
    if not diff:
        return
    _section(console, title)
    for item in diff.added:
        _line(console, "+", ADDED, item)
    for item in diff.removed:
        _line(console, "-", REMOVED, item)


def _total(layers: tuple[Layer, ...]) -> int | None:
    sizes = [layer.known_size for layer in layers]
    return None if any(size is None for size in sizes) else sum(size or 0 for size in sizes)


def _layers_section(diff: ImageDiff, console: Console) -> None:
    layers = diff.layers
    if not layers and not diff.size_change:
        return
    _section(console, "Layers")
    table = Table(show_edge=False, pad_edge=False, box=None)
    table.add_column("", no_wrap=True)
    table.add_column("digest", overflow="fold", min_width=_DIGEST_WIDTH)
    table.add_column("size", justify="right", no_wrap=True)
    for mark, style, group in (("-", REMOVED, layers.removed), ("+", ADDED, layers.added)):
        for layer in group:
            table.add_row(mark, str(layer.digest), human_size(layer.size), style=style)
    if layers.shared:
        count = len(layers.shared)
        table.add_row(
            "=", f"{count} shared layer{'s' if count != 1 else ''}", human_size(_total(layers.shared))
        )
    console.print(Padding(table, (0, 0, 0, 2)))
    before, after = diff.before.size, diff.after.size
    console.print(
        Text(f"  size {human_size(before)} -> {human_size(after)} ({signed_size(diff.size_change)})"),
        soft_wrap=True,
    )


def _step(entry: HistoryEntry) -> str:
    what = (entry.created_by or entry.comment or "").strip() or _NONE
    return what + ("  (empty layer)" if entry.empty_layer else "")


def _history_section(diff: ImageDiff, console: Console) -> None:
    history = diff.history
    if not history:
        return
    _section(console, f"History (after {history.common} common step{'s' if history.common != 1 else ''})")
    for entry in history.removed:
        _line(console, "-", REMOVED, _step(entry))
    for entry in history.added:
        _line(console, "+", ADDED, _step(entry))


def render_diff(diff: ImageDiff, console: Console) -> None:
    """Print ``diff``: the headline, then a section for each field that changed."""
    _headline(diff, console)
    if diff.identical:
        return
    _change_section(console, "Media type", diff.media_type)
    if diff.platform is not None:
        _section(console, "Platform")
        _line(console, "~", CHANGED, f"{diff.platform.before.describe()} -> {diff.platform.after.describe()}")
    _change_section(console, "Created", diff.created)
    _mapping_section(console, "Env", diff.env, _env_item)
    _mapping_section(console, "Labels", diff.labels, _label_item)
    _mapping_section(console, "Annotations", diff.annotations, _label_item)
    _words_section(console, "Entrypoint", diff.entrypoint)
    _words_section(console, "Cmd", diff.cmd)
    _change_section(console, "User", diff.user)
    _change_section(console, "Working dir", diff.working_dir)
    _change_section(console, "Stop signal", diff.stop_signal)
    _set_section(console, "Exposed ports", diff.exposed_ports)
    _set_section(console, "Volumes", diff.volumes)
    _layers_section(diff, console)
    _history_section(diff, console)
