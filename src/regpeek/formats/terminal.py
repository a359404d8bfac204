"""Text from a registry made safe to show on a terminal, and JSON that is exact and safe to print.

Everything an image or a registry says is untrusted: labels, env, history, annotations, author,
platform strings, media types, tags, error bodies, ``Warning`` headers. Printed as it came, it can
drive the terminal: ESC starts CSI and OSC sequences (set the window title with OSC 0, make
hyperlinks with OSC 8, write the clipboard with OSC 52, clear the screen, move the cursor over lines
already printed, or make the terminal type an answer into the shell with ``ESC [6n``); the C1
controls U+0080-U+009F are the same sequences in their 8-bit form (U+009B is CSI, U+009D is OSC);
carriage return and backspace overprint what was shown; the Unicode bidirectional controls reorder
what is displayed so that it no longer reads as stored (the "Trojan Source" attack, CVE-2021-42574);
and a lone surrogate cannot be encoded at all, so printing one crashes.

:func:`safe_text` is the one function the command line passes such text through before it is shown:
each of those characters becomes a visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``, ``\\ud800``;
newline, carriage return and tab as ``\\n``, ``\\r``, ``\\t``), so the data is still shown, just inert.
Tab is kept (it moves the cursor right and nothing else), and newline only where the caller's layout
allows a value to span lines. A backslash is not doubled: the escapes are for reading, the JSON
output is the exact form.

:func:`safe_json` serialises for printing: valid JSON that decodes to exactly the value given, with
non-ASCII text kept readable except the characters above, which JSON writes as ``\\uXXXX`` escapes
(the control characters below U+0020 JSON escapes anyway); for a stream that is not UTF-8, all of it
is escaped (``ascii_only``), since a stream's own fallback (``\\xe9``) would not be JSON. A lone surrogate becomes ``\\ud800``, which
every JSON parser reads back as that same code point.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["UNSAFE_CHARACTERS", "is_safe", "safe_json", "safe_text"]

# C0 controls but tab (newline is handled apart), DEL and C1, the bidi marks, embeddings, overrides
# and isolates (ALM, LRM, RLM, LRE..RLO, LRI..PDI), the line and paragraph separators, surrogates.
_BIDI_AND_MORE = r"\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
UNSAFE_CHARACTERS = re.compile(rf"[\x00-\x08\x0a-\x1f\x7f-\x9f{_BIDI_AND_MORE}]")
"""Every character :func:`safe_text` escapes (newline included)."""
_UNSAFE_BUT_NEWLINE = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI_AND_MORE}]")
# What JSON leaves raw but a terminal must not see: below U+0020 json.dumps escapes already.
_UNSAFE_IN_JSON = re.compile(rf"[\x7f-\x9f{_BIDI_AND_MORE}]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _visible(match: re.Match[str]) -> str:
    character = match.group()
    named = _NAMED.get(character)
    if named is not None:
        return named
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe_text(text: str, *, newlines: bool = False) -> str:
    """``text`` with every terminal control shown as a visible escape; newlines kept if ``newlines``.

    >>> safe_text("a\\x1b]0;owned\\x07b")
    'a\\\\x1b]0;owned\\\\x07b'
    >>> safe_text("evil\\u202etxt.exe\\x9b2J")
    'evil\\\\u202etxt.exe\\\\x9b2J'
    >>> safe_text("two\\nlines\\tand a tab"), safe_text("two\\nlines", newlines=True)
    ('two\\\\nlines\\tand a tab', 'two\\nlines')
    """
    pattern = _UNSAFE_BUT_NEWLINE if newlines else UNSAFE_CHARACTERS
    return pattern.sub(_visible, text)


def is_safe(text: str, *, newlines: bool = False) -> bool:
    """Whether ``text`` holds nothing :func:`safe_text` would escape."""
    pattern = _UNSAFE_BUT_NEWLINE if newlines else UNSAFE_CHARACTERS
    return pattern.search(text) is None


def safe_json(value: Any, *, indent: int | None = 2, compact: bool = False, ascii_only: bool = False) -> str:
    """``value`` as JSON text that decodes to exactly ``value`` and holds no terminal control.

    ``compact`` gives one line without spaces (JSON Lines); otherwise ``indent`` as for ``json.dumps``.
    ``ascii_only`` escapes all non-ASCII text too, for a stream that cannot encode it.

    >>> safe_json({"label": "caf\\u00e9 \\x1b[2J \\u202e \\ud800"}, compact=True)
    '{"label":"café \\\\u001b[2J \\\\u202e \\\\ud800"}'
    """
    if compact:
        text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":"))
    else:
        text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    # The characters replaced can only stand inside JSON strings (the syntax is ASCII), where
    # ``\\uXXXX`` denotes the very same code point.
    return _UNSAFE_IN_JSON.sub(_json_escape, text)
