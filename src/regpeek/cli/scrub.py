"""Keep secrets out of what the CLI prints: a scrubber for messages and a filter for debug logs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from regpeek.formats.terminal import safe_text

_SECRETS: set[str] = set()


def remember_secrets(secrets: Sequence[str]) -> None:
    """Strings (passwords, tokens) to scrub from every message and log line."""
    _SECRETS.update(secret for secret in secrets if len(secret) >= 4)


def scrub(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


class _ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = safe_text(scrub(record.getMessage()))
        record.args = ()
        return True


def enable_debug_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("regpeek: debug: %(message)s"))
    handler.addFilter(_ScrubFilter())
    logger = logging.getLogger("regpeek")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
