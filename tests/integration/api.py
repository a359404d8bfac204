"""Drive the sync and the async client through one interface, so each test covers both."""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Sequence
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from typing import Any

import regpeek
from regpeek.cli.main import main
from tests.support.clistate import fresh_cli_state
from tests.support.registry import Registry


def client_options(registry: Registry, **extra: Any) -> dict[str, Any]:
    """Client keyword arguments to talk to a test registry (scheme and CA)."""
    options: dict[str, Any] = {"plain_http": not registry.tls, "retries": 0, "timeout": 10.0}
    if registry.tls:
        options["ca_file"] = str(registry.ca_file)
    options.update(extra)
    return options


@dataclass
class Api:
    """``api.call(registry, "inspect", ref, platform=...)`` with a fresh client of the chosen flavour."""

    flavour: str
    last_client: Any = field(default=None, repr=False)

    def call(self, registry: Registry, method: str, *args: Any, client: dict[str, Any] | None = None,
             **kwargs: Any) -> Any:  # fmt: skip
        options = client_options(registry, **(client or {}))
        if self.flavour == "sync":
            with regpeek.Client(**options) as sync_client:
                self.last_client = sync_client
                return getattr(sync_client, method)(*args, **kwargs)

        async def run() -> Any:
            async with regpeek.AsyncClient(**options) as async_client:
                self.last_client = async_client
                return await getattr(async_client, method)(*args, **kwargs)

        return asyncio.run(run())

    def calls(self, registry: Registry, steps: Sequence[tuple[str, tuple[Any, ...], dict[str, Any]]],
              client: dict[str, Any] | None = None) -> list[Any]:  # fmt: skip
        """Several calls on one client (to observe caching between them)."""
        options = client_options(registry, **(client or {}))
        if self.flavour == "sync":
            with regpeek.Client(**options) as sync_client:
                self.last_client = sync_client
                return [getattr(sync_client, name)(*a, **k) for name, a, k in steps]

        async def run() -> list[Any]:
            async with regpeek.AsyncClient(**options) as async_client:
                self.last_client = async_client
                return [await getattr(async_client, name)(*a, **k) for name, a, k in steps]

        return asyncio.run(run())


@dataclass
class CliResult:
    code: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode()


def run_cli(*argv: str, stdin: str = "") -> CliResult:
    """Run ``regpeek`` in-process with ``argv``; capture exit code, stdout bytes and stderr text.

    Each run starts from a new process's global state (no secrets known to the scrubber, no debug log
    handler: :func:`tests.support.clistate.fresh_cli_state`) and leaves none behind.
    """
    out = io.BytesIO()
    err = io.StringIO()
    text_out = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    saved = sys.stdout, sys.stdin
    sys.stdout, sys.stdin = text_out, io.StringIO(stdin)
    try:
        with fresh_cli_state(), redirect_stderr(err):
            code = main(list(argv))
        text_out.flush()
    finally:
        sys.stdout, sys.stdin = saved
    return CliResult(code, out.getvalue(), err.getvalue())


def registry_flags(registry: Registry) -> list[str]:
    """CLI flags to reach a test registry."""
    if registry.tls:
        return ["--ca-file", str(registry.ca_file), "--retries", "0"]
    return ["--plain-http", "--retries", "0"]


__all__ = ["Api", "CliResult", "client_options", "registry_flags", "run_cli"]
