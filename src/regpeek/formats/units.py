"""Sizes as people write and read them: ``500M``, ``2GiB``, ``1.5 KiB``."""

from __future__ import annotations

import re

__all__ = ["format_size", "parse_size"]

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*")


def parse_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional binary unit (``K``, ``M``, ``G``, ``T``; ``MiB``, ``MB``).

    Units are powers of 1024 whatever the spelling, as in ``du`` and ``docker``.  Raises ValueError.

    >>> parse_size("500M"), parse_size("2GiB"), parse_size("1.5k"), parse_size("4096")
    (524288000, 2147483648, 1536, 4096)
    """
    match = _SIZE.fullmatch(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a size such as 500M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_size(size: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None (or -1, a size a schema1 manifest does not give) -> ``unknown``."""
    if size is None or size < 0:
        return "unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
