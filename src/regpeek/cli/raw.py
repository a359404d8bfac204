"""``regpeek manifest``, ``config`` and ``digest``: bytes and digests exactly as the registry has them."""

from __future__ import annotations

import sys

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo
from regpeek.cli.session import session


@click.command(
    "manifest",
    epilog=examples(
        "regpeek manifest alpine:3.20 | jq .",
        "regpeek manifest --platform linux/arm64 alpine:3.20 > arm64.json",
    ),
)
@click.argument("ref")
@registry_options()
def manifest_command(settings: Settings, ref: str) -> None:
    """Write the manifest of REF exactly as served.

    That is the index itself for a multi-platform image, unless --platform is given.
    """
    with session(settings) as client:
        manifest = client.manifest(ref, settings.platform)
    sys.stdout.buffer.write(manifest.raw)
    sys.stdout.buffer.flush()


@click.command(
    "config",
    epilog=examples(
        "regpeek config alpine:3.20 | jq .config.Env",
        "regpeek config --platform linux/arm64 ghcr.io/org/app:1.2",
    ),
)
@click.argument("ref")
@registry_options()
def config_command(settings: Settings, ref: str) -> None:
    """Write the image config of REF exactly as served (synthesized JSON for schema1 images)."""
    with session(settings) as client:
        config = client.config(ref, settings.platform)
    sys.stdout.buffer.write(config.raw)
    sys.stdout.buffer.flush()


@click.command(
    "digest",
    epilog=examples("regpeek digest alpine:3.20", "regpeek digest --platform linux/amd64 alpine:3.20"),
)
@click.argument("ref")
@registry_options()
def digest_command(settings: Settings, ref: str) -> None:
    """Print the digest REF resolves to (of the index, unless --platform is given)."""
    with session(settings) as client:
        digest = client.digest(ref, settings.platform)
    echo(str(digest))
