"""``--format TEMPLATE``: Python format-string syntax over a command's documented JSON keys.

``{digest}``, ``{platform.architecture}`` (a key of an object, as an attribute), ``{layers[0].size}``
(an item of a list), ``{labels[org.opencontainers.image.version]}`` (a key with dots), format specs
(``{size:>12}``). Objects and lists print as compact JSON, null as nothing, booleans as ``true`` and
``false``. An unknown key is a usage error (exit 2) naming the keys there are; keys at the top are
checked before anything is fetched. What is printed from the data goes through
:func:`~regpeek.cli.layout.clean` (terminal controls as escapes).
"""

from __future__ import annotations

import _string  # type: ignore[import-not-found]
import json
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import click

from regpeek.cli.layout import clean

__all__ = ["Template", "template_option"]

F = TypeVar("F", bound=Callable[..., Any])


class _Unknown(Exception):
    def __init__(self, path: str, name: str, valid: Iterable[str]) -> None:
        super().__init__(path, name)
        self.path = path
        self.name = name
        self.valid = sorted(str(key) for key in valid)


class _Value:
    """A JSON value seen through the format mini-language: attributes and items are its keys."""

    __slots__ = ("_path", "_value")

    def __init__(self, value: Any, path: str) -> None:
        self._value = value
        self._path = path

    def _item(self, key: Any, path: str) -> _Value:
        value = self._value
        if isinstance(value, Mapping):
            if key not in value:
                raise _Unknown(self._path, str(key), value.keys())
            return _Value(value[key], path)
        if isinstance(value, list):
            if isinstance(key, int) and -len(value) <= key < len(value):
                return _Value(value[key], path)
            raise _Unknown(self._path, str(key), [f"0..{len(value) - 1}"] if value else ["(an empty list)"])
        kind = "null" if value is None else type(value).__name__
        raise _Unknown(self._path, str(key), [f"(nothing: it is a {kind})"])

    def __format__(self, spec: str) -> str:
        value = self._value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, spec)
        return format(_text(value), spec)

    def __str__(self) -> str:
        return _text(self._value)

    def __repr__(self) -> str:
        return json.dumps(self._value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


class _Formatter(string.Formatter):
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def get_value(self, key: int | str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, int) or key == "":
            raise click.UsageError("--format: name a key in every {}, e.g. {digest}")
        if key not in self.data:
            raise _Unknown("", key, self.data.keys())
        return _Value(self.data[key], key)

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        first, rest = _string.formatter_field_name_split(field_name)
        value = self.get_value(first, args, kwargs)
        for is_attribute, key in rest:
            value = value._item(key, f"{value._path}.{key}" if is_attribute else f"{value._path}[{key}]")
        return value, first

    def format_field(self, value: Any, format_spec: str) -> str:
        return clean(format(value, format_spec))


class Template:
    """A parsed ``--format`` template, checked against the keys the command's objects have."""

    def __init__(self, text: str, keys: Iterable[str]) -> None:
        self.text = text
        self.keys = sorted(keys)
        try:
            fields = [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]
        except ValueError as error:
            raise click.UsageError(f"--format: {error}") from None
        for field in fields:
            root = field.split(".", 1)[0].split("[", 1)[0]
            if not root or root.isdigit():
                raise click.UsageError("--format: name a key in every {}, e.g. {digest}")
            if root not in self.keys:
                raise click.UsageError(
                    f"--format: unknown key {root!r}; the keys are: {', '.join(self.keys)}"
                )

    def render(self, data: Mapping[str, Any]) -> str:
        """The template filled in from ``data`` (one line: newlines in values are escaped)."""
        try:
            return _Formatter(data).format(self.text)
        except _Unknown as error:
            where = f" in {error.path}" if error.path else ""
            raise click.UsageError(
                f"--format: unknown key {error.name!r}{where}; there: {', '.join(error.valid)}"
            ) from None
        except (ValueError, TypeError, IndexError, KeyError) as error:
            raise click.UsageError(f"--format: {error}") from None


def template_option(help_keys: str) -> Callable[[F], F]:
    """The ``--format TEMPLATE`` option (the command receives ``template: str | None``)."""
    return click.option(
        "--format",
        "template",
        metavar="TEMPLATE",
        help=f"Print TEMPLATE (Python format syntax) for each {help_keys}, e.g. '{{digest}}'; "
        "keys are the --json keys (see the README).",
    )
