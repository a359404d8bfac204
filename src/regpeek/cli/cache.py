"""``regpeek cache info`` and ``regpeek cache prune``: the on-disk cache of manifests and configs."""

from __future__ import annotations

import re
from pathlib import Path

import click

from regpeek.cli.output import echo, echo_json
from regpeek.cli.render import human_size
from regpeek.disk.cache import BlobCache, default_cache_dir

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([kmg]?)i?b?\s*", text.lower())
    if not match:
        raise click.BadParameter(f"{text!r} is not a size such as 500M or 2G")
    return int(match.group(1)) * _UNITS[match.group(2)]


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
