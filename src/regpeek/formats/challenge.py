"""Parse ``WWW-Authenticate`` headers into challenges (RFC 7235 grammar, leniently).

A header may hold several challenges, each a scheme followed by ``name=value`` parameters in any
order; values are tokens or quoted strings with backslash escapes, and commas inside quotes do not
separate anything. Schemes and parameter names are case-insensitive (stored lowercased).

>>> [c.scheme for c in parse('Bearer realm="https://a/token",service="a",scope="x:y:pull", Basic realm="b"')]
['bearer', 'basic']
>>> parse('Bearer scope="repository:a:pull repository:b:pull",realm="r"')[0].scopes
('repository:a:pull', 'repository:b:pull')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Challenge", "answerable", "parse", "parse_all"]

_TCHAR = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_TOKEN68 = _TCHAR | set("/=")
_SPACE = " \t"


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a lowercased scheme and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        return self.params.get("error")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def token(self, allowed: set[str] = _TCHAR) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start : self.pos]

    def bare(self) -> str:
        """An unquoted value: strictly a token, leniently anything up to a comma or space."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPACE + ",":
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """Read a quoted string (the opening quote is current); an unterminated one runs to the end."""
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                break
            else:
                out.append(char)
        return "".join(out)

    def param_ahead(self) -> bool:
        """Is the scanner at ``name =`` (a parameter) rather than at a new scheme?"""
        save = self.pos
        name = self.token()
        self.skip(_SPACE)
        result = bool(name) and self.peek() == "="
        if result:  # "abc==" or "abc=" at the end is a token68, not a parameter
            self.pos += 1
            self.skip(_SPACE)
            result = self.peek() not in ("=", ",", "")
        self.pos = save
        return result


def parse(header: str) -> list[Challenge]:
    """Parse one header value into its challenges; unparseable parts are skipped, never raised."""
    scanner = _Scanner(header)
    challenges: list[Challenge] = []
    while True:
        scanner.skip(_SPACE + ",")
        if not scanner.peek():
            return challenges
        scheme = scanner.token()
        if not scheme:
            scanner.pos += 1  # not a token character: skip it and resynchronise
            continue
        params: dict[str, str] = {}
        scanner.skip(_SPACE)
        if scanner.peek() and not scanner.param_ahead() and scanner.peek() != ",":
            token68 = scanner.token(_TOKEN68)  # e.g. "Negotiate abc==": kept as a parameter-less value
            if token68:
                params[""] = token68
        while True:
            scanner.skip(_SPACE + ",")
            if not scanner.param_ahead():
                break
            name = scanner.token().lower()
            scanner.skip(_SPACE)
            scanner.pos += 1  # the "="
            scanner.skip(_SPACE)
            value = scanner.quoted() if scanner.peek() == '"' else scanner.bare()
            params.setdefault(name, value)
        challenges.append(Challenge(scheme.lower(), params))


def parse_all(headers: Iterable[str]) -> list[Challenge]:
    """Challenges from every ``WWW-Authenticate`` header of a response, in order."""
    return [challenge for header in headers for challenge in parse(header)]


def answerable(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge regpeek answers: the first Bearer with a realm, else the first Basic, else None.

    Other schemes (Negotiate, Digest...) are never answered: the 401 stands.
    """
    challenges = list(challenges)
    bearer = next((c for c in challenges if c.scheme == "bearer" and c.realm), None)
    return bearer or next((c for c in challenges if c.scheme == "basic"), None)
