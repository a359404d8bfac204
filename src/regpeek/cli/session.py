"""A client for one command, whose secrets are scrubbed from anything the CLI prints."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from regpeek._sync.registry import Client
from regpeek.cli.options import Settings
from regpeek.cli.scrub import remember_secrets


@contextmanager
def session(settings: Settings) -> Iterator[Client]:
    client = settings.client()
    remember_secrets(client.credentials.secrets)
    try:
        yield client
    finally:
        remember_secrets(client.secrets)
        client.close()
