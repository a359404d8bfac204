"""Results that print as JSON: ``to_dict()`` gives plain values (what ``json.dumps`` takes),
``to_json()`` the JSON text of them."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JsonResult"]


class JsonResult:
    """A mixin for result types: subclasses define :meth:`to_dict`, and get :meth:`to_json`."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready values: dicts, lists, strings, numbers, booleans and None."""
        raise NotImplementedError

    def to_json(self, *, indent: int | None = None) -> str:
        """The JSON text of :meth:`to_dict` (UTF-8 text kept readable, not ``\\u`` escaped)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
