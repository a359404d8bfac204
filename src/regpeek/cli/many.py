"""``regpeek inspect REF REF ...``: JSON Lines from the async batch runner."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable

from regpeek.batch import inspect_many
from regpeek.cli.options import Settings
from regpeek.cli.output import json_line
from regpeek.cli.scrub import remember_secrets, scrub
from regpeek.network._async.registry import AsyncClient


def inspect_lines(settings: Settings, references: Iterable[str], jobs: int) -> int:
    """Print one JSON line per reference, in input order; return the highest exit code met."""
    return asyncio.run(_run(settings, references, jobs))


async def _run(settings: Settings, references: Iterable[str], jobs: int) -> int:
    arguments = settings.client_arguments()
    platform = arguments.pop("platform")
    worst = 0
    out = sys.stdout
    async with AsyncClient(platform=platform, **arguments) as client:
        remember_secrets(client.credentials.secrets)
        async for outcome in inspect_many(client, references, platform=platform, jobs=jobs):
            worst = max(worst, outcome.exit_code)
            line = json_line(outcome.to_dict(), out)
            out.write((scrub(line) if outcome.error is not None else line) + "\n")
        remember_secrets(client.secrets)
    out.flush()
    return worst
