"""What ``--help`` ends with: two or three examples (click's epilog, printed after the options)."""

from __future__ import annotations

__all__ = ["examples"]


def examples(*lines: str) -> str:
    """An ``Examples:`` block for a command's ``epilog``, each line kept as written."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
