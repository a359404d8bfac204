"""``regpeek cache info`` and ``regpeek cache prune``: the on-disk cache of manifests and configs."""

from __future__ import annotations

from pathlib import Path

import click

from regpeek.cli.output import echo, echo_json
from regpeek.cli.render import human_size
from regpeek.disk.cache import BlobCache, default_cache_dir
from regpeek.formats.units import parse_size


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group("cache")
def cache_group() -> None:
    """The cache of manifests and configs, kept by digest (content fetched by digest never changes)."""


@cache_group.command("info")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Cache directory (default: $REGPEEK_CACHE_DIR or the user cache directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def info_command(cache_dir: str | None, as_json: bool) -> None:
    """Where the cache is, how many entries it holds and how big it is."""
    info = BlobCache(Path(cache_dir) if cache_dir else default_cache_dir()).info()
    if as_json:
        echo_json(info.to_json())
        return
    echo(
        f"{info.path}: {info.entries} entries, {human_size(info.bytes)} (bound {human_size(info.max_bytes)})"
    )


@cache_group.command("prune")
@click.option(
    "--max-size",
    default="0",
    show_default=True,
    help="Keep the most recently used entries up to this size (0 empties the cache).",
)
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache directory.")
def prune_command(max_size: str, cache_dir: str | None) -> None:
    """Remove least recently used entries until the cache is at most --max-size."""
    result = BlobCache(Path(cache_dir) if cache_dir else default_cache_dir()).prune(_size(max_size))
    echo(f"removed {result.removed} entries, freed {human_size(result.freed_bytes)}")
