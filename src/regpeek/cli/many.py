"""``regpeek inspect REF REF ...``: JSON Lines (or ``--format`` lines) from the async batch runner."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable

from regpeek.batch import PER_REGISTRY, inspect_many
from regpeek.cli.options import Settings
from regpeek.cli.output import json_line
from regpeek.cli.scrub import remember_secrets, scrub
from regpeek.cli.template import Template
from regpeek.formats.terminal import safe_text
from regpeek.network._async.registry import AsyncClient


def inspect_lines(
    settings: Settings,
    references: Iterable[str],
    jobs: int,
    template: Template | None = None,
    per_registry: int = PER_REGISTRY,
) -> int:
    """Print one line per reference, in input order; return the highest exit code met.

    A JSON object per reference, or with ``template`` the template filled in (a failure is then one
    ``regpeek: error: REF: message`` line on stderr).
    """
    return asyncio.run(_run(settings, references, jobs, template, per_registry))


async def _run(
    settings: Settings, references: Iterable[str], jobs: int, template: Template | None, per_registry: int
) -> int:
    arguments = settings.client_arguments()
    platform = arguments.pop("platform")
    worst = 0
    out = sys.stdout
    async with AsyncClient(platform=platform, **arguments) as client:
        remember_secrets(client.credentials.secrets)
        async for outcome in inspect_many(
            client, references, platform=platform, jobs=jobs, per_registry=per_registry
        ):
            worst = max(worst, outcome.exit_code)
            if template is not None:
                if outcome.result is not None:
                    out.write(template.render(outcome.result.to_dict()) + "\n")
                else:
                    message = scrub(f"regpeek: error: {outcome.reference}: {outcome.error}")
                    sys.stderr.write(safe_text(message) + "\n")
                continue
            line = json_line(outcome.to_dict(), out)
            out.write((scrub(line) if outcome.error is not None else line) + "\n")
        remember_secrets(client.secrets)
    out.flush()
    return worst
