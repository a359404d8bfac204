"""Draw an :class:`~regpeek.formats.diff.ImageDiff` for people: a headline, then one section per changed field.

Lines start with ``+`` (only in the second image, green), ``-`` (only in the first, red) or ``~`` (in
both, changed: yellow). Digests are whole when they fit the width, else in the short form with a
footnote (:mod:`regpeek.cli.layout`). Everything from the images is printed as plain text, one value
per line (cut to the width), with terminal controls (newlines included) shown as escapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from regpeek.cli.layout import Column, Fit, Line, cell_width, clean, table
from regpeek.cli.render import human_size
from regpeek.formats.config import HistoryEntry, Layer
from regpeek.formats.diff import Change, ImageDiff, MappingDiff, SetDiff

__all__ = ["diff_lines", "render_diff", "signed_size"]

ADDED, REMOVED, CHANGED = "green", "red", "yellow"
_NONE = "(none)"


def signed_size(size: int | None) -> str:
    """``1536`` -> ``+1.5 KiB``; ``-10`` -> ``-10 B``; ``0`` -> ``0 B``; None -> ``unknown``."""
    if size is None:
        return "unknown"
    sign = "+" if size > 0 else "-" if size < 0 else ""
    return sign + human_size(abs(size))


class _View:
    def __init__(self, width: int | None) -> None:
        self.fit = Fit(width)
        self.lines: list[Line] = []

    def line(self, mark: str, style: str, *parts: str) -> None:
        """``  + text``: the text (made safe) cut to the width, continuation lines under it."""
        text = clean("".join(parts))
        width = self.fit.width
        for piece in self.fit.wrap(f"  {mark} {text}", width, indent=4):
            self.lines.append(Line(piece, style))

    def section(self, title: str) -> None:
        self.lines.append(Line(""))
        self.lines.append(Line(title, "bold"))

    def named(self, mark: str, style: str, name: str, digest: str) -> None:
        """``- reference  digest``: the digest after the name when it fits, else on its own line."""
        head = f"{mark} {clean(name)}" if mark else clean(name)
        width = self.fit.width
        if width is None or cell_width(head) + 2 + len(digest) <= width:
            self.lines.append(Line(f"{head}  {digest}", style))
            return
        self.lines += [Line(piece, style) for piece in self.fit.wrap(head, width, indent=2)]
        room = None if width is None else width - 4
        self.lines.append(Line("    " + self.fit.digest(digest, room), style))


def _text(value: str | None) -> str:
    return _NONE if value is None else value


def _words(value: tuple[str, ...] | None) -> str:
    return _NONE if value is None else json.dumps(list(value))


def _headline(diff: ImageDiff, view: _View) -> None:
    before, after = diff.before, diff.after
    if diff.identical:
        view.named("", f"bold {ADDED}", "identical", str(before.digest))
        for reference in dict.fromkeys([before.reference, after.reference]):
            for piece in view.fit.wrap("  " + clean(reference), view.fit.width, indent=4):
                view.lines.append(Line(piece))
        return
    for mark, style, side in (("-", REMOVED, before), ("+", ADDED, after)):
        view.named(mark, f"bold {style}", side.reference, str(side.digest))
    if not diff.has_changes:
        view.line("", "", "no differences in the compared fields (manifests differ in other ways)")
        view.lines[-1] = Line(view.lines[-1].text.lstrip())


def _change_section(view: _View, title: str, change: Change[str] | Change[str | None] | None) -> None:
    if change is not None:
        view.section(title)
        view.line("~", CHANGED, f"{_text(change.before)} -> {_text(change.after)}")


def _words_section(view: _View, title: str, change: Change[tuple[str, ...] | None] | None) -> None:
    if change is not None:
        view.section(title)
        view.line("-", REMOVED, _words(change.before))
        view.line("+", ADDED, _words(change.after))


def _mapping_section(
    view: _View,
    title: str,
    diff: MappingDiff[str] | MappingDiff[str | None],
    show: Callable[[str, str | None], str],
) -> None:
    if not diff:
        return
    view.section(title)
    for key, value in diff.added.items():
        view.line("+", ADDED, show(key, value))
    for key, value in diff.removed.items():
        view.line("-", REMOVED, show(key, value))
    for key, change in diff.changed.items():
        view.line("~", CHANGED, f"{key}: {_text(change.before)} -> {_text(change.after)}")


def _env_item(name: str, value: str | None) -> str:
    return name if value is None else f"{name}={value}"


def _label_item(key: str, value: str | None) -> str:
    return f"{key}={_text(value)}"


def _set_section(view: _View, title: str, diff: SetDiff) -> None:
    if not diff:
        return
    view.section(title)
    for item in diff.added:
        view.line("+", ADDED, item)
    for item in diff.removed:
        view.line("-", REMOVED, item)


def _total(layers: tuple[Layer, ...]) -> int | None:
    sizes = [layer.known_size for layer in layers]
    return None if any(size is None for size in sizes) else sum(size or 0 for size in sizes)


def _layers_section(diff: ImageDiff, view: _View) -> None:
    layers = diff.layers
    if not layers and not diff.size_change:
        return
    view.section("Layers")
    marks, digests, sizes, styles = [], [], [], []
    for mark, style, group in (("-", REMOVED, layers.removed), ("+", ADDED, layers.added)):
        for layer in group:
            marks.append(mark)
            digests.append(str(layer.digest))
            sizes.append(human_size(layer.size))
            styles.append(style)
    if layers.shared:
        count = len(layers.shared)
        marks.append("=")
        digests.append(f"{count} shared layer{'s' if count != 1 else ''}")
        sizes.append(human_size(_total(layers.shared)))
        styles.append("")
    columns = [
        Column("", marks, kind="fixed"),
        Column("digest", digests, kind="digest"),
        Column("size", sizes, kind="fixed", right=True),
    ]
    view.lines += table(columns, view.fit, styles, indent=2)
    before, after = diff.before.size, diff.after.size
    view.line("", "", f"size {human_size(before)} -> {human_size(after)} ({signed_size(diff.size_change)})")
    view.lines[-1] = Line("  " + view.lines[-1].text.strip())


def _step(entry: HistoryEntry) -> str:
    what = (entry.created_by or entry.comment or "").strip() or _NONE
    return what + ("  (empty layer)" if entry.empty_layer else "")


def _history_section(diff: ImageDiff, view: _View) -> None:
    history = diff.history
    if not history:
        return
    view.section(f"History (after {history.common} common step{'s' if history.common != 1 else ''})")
    for entry in history.removed:
        view.line("-", REMOVED, _step(entry))
    for entry in history.added:
        view.line("+", ADDED, _step(entry))


def diff_lines(diff: ImageDiff, width: int | None) -> list[Line]:
    """The headline, then a section for each field that changed, at ``width`` cells (None: no limit)."""
    view = _View(width)
    _headline(diff, view)
    if diff.identical:
        return view.lines + view.fit.note()
    _change_section(view, "Media type", diff.media_type)
    if diff.platform is not None:
        view.section("Platform")
        view.line("~", CHANGED, f"{diff.platform.before.describe()} -> {diff.platform.after.describe()}")
    _change_section(view, "Created", diff.created)
    _mapping_section(view, "Env", diff.env, _env_item)
    _mapping_section(view, "Labels", diff.labels, _label_item)
    _mapping_section(view, "Annotations", diff.annotations, _label_item)
    _words_section(view, "Entrypoint", diff.entrypoint)
    _words_section(view, "Cmd", diff.cmd)
    _change_section(view, "User", diff.user)
    _change_section(view, "Working dir", diff.working_dir)
    _change_section(view, "Stop signal", diff.stop_signal)
    _set_section(view, "Exposed ports", diff.exposed_ports)
    _set_section(view, "Volumes", diff.volumes)
    _layers_section(diff, view)
    _history_section(diff, view)
    return view.lines + view.fit.note()


def render_diff(diff: ImageDiff, width: int | None = None) -> None:
    """Print the view of ``diff`` on stdout at the output's width."""
    from regpeek.cli.layout import output_width, write_lines

    write_lines(diff_lines(diff, width if width is not None else output_width()))
