"""How the CLI writes text: every line through :func:`~regpeek.formats.terminal.safe_text`, JSON
through :func:`~regpeek.formats.terminal.safe_json`, onto streams that cannot fail to encode.

Rich output (``render.py``, ``tree.py``, ``diffview.py``, ``progress.py``) gets image data only as
``rich.text.Text`` built from :func:`safe_text`, never as markup.
"""

from __future__ import annotations

import codecs
import contextlib
import sys
from typing import Any, TextIO

import click

from regpeek.formats.terminal import safe_json, safe_text

__all__ = ["configure_streams", "echo", "echo_json", "json_line", "warn"]


def configure_streams() -> None:
    """Make stdout and stderr write what their encoding lacks as ``\\xe9``-style escapes
    (``backslashreplace``) instead of raising ``UnicodeEncodeError`` (an ASCII locale, a lone
    surrogate). The encoding itself is kept."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) != "backslashreplace":
            with contextlib.suppress(ValueError, OSError, TypeError):
                reconfigure(errors="backslashreplace")


def echo(text: str, *, err: bool = False) -> None:
    """One line of text (registry data welcome): controls are shown as escapes, newlines too."""
    click.echo(safe_text(text), err=err)


def warn(text: str) -> None:
    """``regpeek: warning: text`` on stderr."""
    echo(f"regpeek: warning: {text}", err=True)


def _unicode(stream: TextIO) -> bool:
    """Whether ``stream`` encodes every character (UTF-8, -16, -32)."""
    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name.startswith("utf")
    except LookupError:
        return False


def echo_json(value: Any, *, indent: int = 2) -> None:
    """``value`` as indented JSON on stdout: exact, valid, no terminal controls (and all ASCII when
    stdout is not UTF-8, where the stream's ``backslashreplace`` fallback would not be JSON)."""
    _not_text(value)
    click.echo(safe_json(value, indent=indent, ascii_only=not _unicode(sys.stdout)))


def _not_text(value: Any) -> None:
    """JSON text given where a value is expected would be printed as one JSON string: a bug."""
    if isinstance(value, (str, bytes)):
        raise TypeError("expected a JSON value, got text: pass result.to_dict(), not result.to_json()")


def json_line(value: Any, stream: TextIO) -> str:
    """``value`` as one compact JSON line (no newline) fit for ``stream``, as :func:`echo_json`."""
    _not_text(value)
    return safe_json(value, compact=True, ascii_only=not _unicode(stream))
