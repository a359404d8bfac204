"""What a command holds while it runs: a client whose secrets are scrubbed from anything the CLI
prints, and the pull progress display."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from regpeek.cli.options import Settings
from regpeek.cli.scrub import remember_secrets
from regpeek.disk.layout import LayoutReference
from regpeek.network._sync.registry import Client

if TYPE_CHECKING:
    from regpeek.pull import PullProgress  # threads, staging, layouts: only for pull


@contextmanager
def session(settings: Settings) -> Iterator[Client]:
    client = settings.client()
    remember_secrets(client.credentials.secrets)
    try:
        yield client
    finally:
        remember_secrets(client.secrets)
        client.close()


@contextmanager
def pull_progress(source: str, show: bool) -> Iterator[PullProgress | None]:
    """Progress bars on stderr while ``source`` is pulled (none for a local layout, or when not shown)."""
    if not show or LayoutReference.is_local(source):
        yield None
        return
    from regpeek.cli.progress import RichPullProgress  # rich's progress only when it is drawn

    with RichPullProgress(f"pulling {source}") as progress:
        yield progress
