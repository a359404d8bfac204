"""Plain-text layout for the human views (``inspect``, ``tree``, ``diff``, ``inspect sif:``): 80 columns first.

The rules every view follows, whatever the width:

- no line is wider than the width (a terminal's, ``$COLUMNS``; unlimited when stdout is a pipe or a
  file and ``COLUMNS`` is not set, so that piped output is one stable line per item for ``grep``);
- a digest is never broken across lines: it is shown whole (``sha256:`` and 64 hex digits), or, where
  a whole one cannot fit, in the short form ``sha256:`` + 12 hex digits (:func:`short_digest`), with a
  footnote saying so;
- a table drops columns in a chosen order before it shortens digests or wraps text; a size
  (``3.2 MiB``) is never split;
- no trailing spaces; every piece of image data goes through
  :func:`~regpeek.formats.terminal.safe_text` (terminal controls shown as escapes, tabs as ``\\t``).

Widths are measured in terminal cells (East Asian wide characters count two).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

import click

from regpeek.formats.terminal import safe_text

__all__ = [
    "DIGEST_NOTE",
    "Column",
    "Fit",
    "Line",
    "cell_width",
    "clean",
    "facts",
    "fit_digest",
    "is_digest",
    "output_width",
    "short_digest",
    "shorten_digests",
    "table",
    "wrap",
    "write_lines",
]

#: The footnote printed under a view that shortened digests.
DIGEST_NOTE = "digests shortened to fit (sha256:<12 hex>); --json shows them whole"
SHORT_HEX = 12
GAP = 2
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_DIGEST_IN_TEXT_RE = re.compile(r"\b(?:sha256|sha384|sha512):[a-f0-9]{32,}\b")
_PIECES_RE = re.compile(r"(?<= )|(?<=[@=:/(])(?=(?:sha256|sha384|sha512):[a-f0-9]{32})")


@dataclass(frozen=True)
class Line:
    """One output line and how to colour it on a terminal (``bold``, ``green``, ``red``...)."""

    text: str
    style: str = ""


def clean(text: str) -> str:
    """Untrusted text made safe for a one-line cell: controls, newlines and tabs as visible escapes."""
    return safe_text(text).replace("\t", "\\t")


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: wide (East Asian) characters two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for character in text:
        if unicodedata.combining(character):
            continue
        width += 2 if unicodedata.east_asian_width(character) in ("W", "F") else 1
    return width


def short_digest(digest: str) -> str:
    """``sha256:04c2b0b3e1f7``: the algorithm and the first 12 hex digits (the documented short form)."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:SHORT_HEX]}"


def fit_digest(digest: str, room: int | None) -> str:
    """The whole digest when it fits in ``room`` cells, else its short form."""
    return digest if room is None or len(digest) <= room else short_digest(digest)


def is_digest(text: str) -> bool:
    return bool(_DIGEST_RE.match(text))


def shorten_digests(text: str) -> str:
    """Every whole digest in ``text`` in its short form."""
    return _DIGEST_IN_TEXT_RE.sub(lambda match: short_digest(match.group()), text)


def wrap(text: str, width: int | None, *, indent: int = 0, fit: Fit | None = None) -> list[str]:
    """``text`` in lines of at most ``width`` cells, cut at spaces when possible, else anywhere, but
    never inside a digest: a digest that cannot fit on a line of its own is shortened (and ``fit``
    told). Continuation lines are indented by ``indent`` spaces. ``width`` None: one line."""
    if width is None or cell_width(text) <= width:
        return [text]
    width = max(width, indent + 1)
    lines: list[str] = []
    current = ""
    room = width
    for piece in _PIECES_RE.split(text):  # after each space, and before a digest inside a word
        word = piece
        core = word.rstrip(" ").strip("()[],;.")
        if is_digest(core) and cell_width(word.rstrip(" ")) > width - indent:
            word = word.replace(core, short_digest(core), 1)
            if fit is not None:
                fit.shortened = True
        while word:
            if cell_width(current + word.rstrip(" ")) <= room:
                current += word
                word = ""
            elif current.strip():
                lines.append(current.rstrip())
                current, room = "", width - indent
                word = word.lstrip(" ")
            elif is_digest(word.rstrip(" ").strip("()[],;.")):  # never cut a digest
                lines.append(word.rstrip(" "))
                word = ""
                room = width - indent
            else:  # one word longer than the line: cut it
                cut = _cut(word, room)
                lines.append(word[:cut])
                word = word[cut:]
                room = width - indent
    if current.strip():
        lines.append(current.rstrip())
    return [lines[0], *(" " * indent + line for line in lines[1:])] if lines else [""]


def _cut(text: str, room: int) -> int:
    """How many characters of ``text`` fit in ``room`` cells (at least one)."""
    used = 0
    for index, character in enumerate(text):
        used += cell_width(character)
        if used > room:
            return max(index, 1)
    return len(text)


class Fit:
    """Lays text out for one view at ``width`` and remembers whether a digest had to be shortened."""

    def __init__(self, width: int | None) -> None:
        self.width = width
        self.shortened = False

    def digest(self, digest: str, room: int | None) -> str:
        fitted = fit_digest(digest, room)
        if fitted != digest:
            self.shortened = True
        return fitted

    def wrap(self, text: str, width: int | None, *, indent: int = 0) -> list[str]:
        return wrap(text, width, indent=indent, fit=self)

    def note(self) -> list[Line]:
        """The footnote for a view that shortened digests (none otherwise)."""
        if not self.shortened:
            return []
        return [Line(""), *(Line(text, "dim") for text in wrap(DIGEST_NOTE, self.width))]


@dataclass
class Column:
    """A table column. ``kind``: ``text`` (cut into lines when the table is too wide), ``digest``
    (whole, or all short when whole ones do not fit), ``fixed`` (never split: sizes, platforms,
    media types). ``drop`` orders the columns that may go when shortening digests is not enough
    (1 goes first; 0 never goes); ``min_width`` is what a text column keeps at least."""

    header: str
    cells: list[str] = field(default_factory=list)
    kind: str = "text"
    right: bool = False
    drop: int = 0
    min_width: int = 12

    def natural(self, short: bool) -> int:
        values = [self.header, *(self.value(cell, short) for cell in self.cells)]
        return max(cell_width(value) for value in values)

    def needed(self, short: bool) -> int:
        natural = self.natural(short)
        return min(natural, max(self.min_width, cell_width(self.header))) if self.kind == "text" else natural

    def value(self, cell: str, short: bool) -> str:
        return short_digest(cell) if short and self.kind == "digest" and is_digest(cell) else cell


def table(
    columns: Sequence[Column], fit: Fit, styles: Sequence[str] | None = None, *, indent: int = 0
) -> list[Line]:
    """Lay ``columns`` (the same number of cells each) out in ``fit.width`` cells per line.

    While the table is too wide: digests are shortened (all of them), then the columns marked
    ``drop`` go in their order, then text columns are cut into several lines. Returns a header line,
    then one or more lines per row; no trailing spaces.
    """
    width = None if fit.width is None else fit.width - indent
    shown = list(columns)
    short = False
    has_digests = any(column.kind == "digest" for column in columns)
    droppable = sorted((c for c in columns if c.drop), key=lambda c: c.drop)

    def needed() -> int:
        return sum(column.needed(short) for column in shown) + GAP * (len(shown) - 1)

    if width is not None:
        while needed() > width:
            if has_digests and not short:
                short = True
            elif droppable:
                shown.remove(droppable.pop(0))
            else:
                break
    if short and any(column.kind == "digest" and column.cells for column in shown):
        fit.shortened = True
    widths = [column.natural(short) for column in shown]
    total = sum(widths) + GAP * (len(shown) - 1)
    if width is not None and total > width:
        excess = total - width
        for index in sorted(range(len(shown)), key=lambda i: -widths[i]):
            if shown[index].kind == "text" and excess > 0:
                give = min(excess, widths[index] - shown[index].needed(short))
                widths[index] -= give
                excess -= give
    pad = " " * indent
    lines = [Line(pad + _join([c.header for c in shown], widths, shown), "bold")]
    rows = len(columns[0].cells) if columns else 0
    for row in range(rows):
        cells = [
            fit.wrap(column.value(column.cells[row], short), widths[i]) if column.kind == "text" else
            [column.value(column.cells[row], short)]
            for i, column in enumerate(shown)
        ]  # fmt: skip
        style = styles[row] if styles else ""
        for part in range(max(len(c) for c in cells)):
            texts = [c[part] if part < len(c) else "" for c in cells]
            lines.append(Line(pad + _join(texts, widths, shown), style))
    return lines


def _join(texts: Sequence[str], widths: Sequence[int], columns: Sequence[Column]) -> str:
    parts = []
    for text, width, column in zip(texts, widths, columns, strict=True):
        pad = " " * max(width - cell_width(text), 0)
        parts.append(pad + text if column.right else text + pad)
    return (" " * GAP).join(parts).rstrip()


Fact = tuple[str, "str | list[str] | None", str] | tuple[str, "str | list[str] | None", str, str]


def facts(rows: Sequence[Fact], fit: Fit) -> list[Line]:
    """A label / value block: ``(label, value, kind[, note])`` rows, ``kind`` ``digest`` or ``text``;
    a list value gives one item per line; rows without a value are left out.

    A digest stays on its label's line when it fits (its note on the next line), else goes whole on
    a line of its own after the label and the note, else is shortened. Text is cut to the width,
    continuation lines under the value.
    """
    shown = [row for row in rows if row[1]]
    if not shown:
        return []
    label_width = max(cell_width(row[0]) for row in shown)
    column = label_width + GAP
    room = None if fit.width is None else fit.width - column
    lines: list[Line] = []

    def text_lines(head: str, items: list[str]) -> None:
        for number, item in enumerate(items):
            for part, text in enumerate(fit.wrap(item, room)):
                prefix = head if number == 0 and part == 0 else " " * column
                lines.append(Line(prefix + text))

    for row in shown:
        label, value, kind = row[0], row[1], row[2]
        note = row[3] if len(row) > 3 else ""
        head = label + " " * (column - cell_width(label))
        if kind != "digest":
            text_lines(head, value if isinstance(value, list) else [str(value)])
            continue
        assert isinstance(value, str)
        if room is None or len(value) <= room:
            lines.append(Line(head + value))
            if note:
                text_lines(" " * column, [note])
        elif fit.width is not None and len(value) + 2 <= fit.width:
            if note:
                text_lines(head, [note])
            else:
                lines.append(Line(label))
            lines.append(Line("  " + value))
        else:
            lines.append(Line(head + fit.digest(value, 0)))
            if note:
                text_lines(" " * column, [note])
    return lines


# -- where the lines go -------------------------------------------------------------------------


def output_width(stream: TextIO | None = None) -> int | None:
    """The width views are laid out for: the terminal's (``$COLUMNS`` first), ``$COLUMNS`` for a
    pipe or file when set, else None (no limit: one stable line per item)."""
    out = stream or sys.stdout
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return max(int(columns), 20)
    try:
        tty = out.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        return max(shutil.get_terminal_size((80, 24)).columns, 20)
    return None


def _color(stream: TextIO) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


_STYLES = {
    "bold": {"bold": True},
    "green": {"fg": "green"},
    "bold green": {"fg": "green", "bold": True},
    "red": {"fg": "red"},
    "bold red": {"fg": "red", "bold": True},
    "yellow": {"fg": "yellow"},
    "cyan": {"fg": "cyan"},
    "dim": {"dim": True},
}


def write_lines(lines: Sequence[Line], stream: TextIO | None = None) -> None:
    """Print ``lines`` (already safe text), coloured only on a terminal without ``NO_COLOR``."""
    out = stream or sys.stdout
    color = _color(out)
    for line in lines:
        text = line.text.rstrip()
        if color and line.style and text:
            text = click.style(text, **_STYLES.get(line.style, {}))  # type: ignore[arg-type]
        out.write(text + "\n")
    out.flush()
