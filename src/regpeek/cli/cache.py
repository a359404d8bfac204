"""``regpeek cache info`` and ``regpeek cache prune``: the on-disk cache of manifests, configs and layers."""

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


def _cache(cache_dir: str | None) -> BlobCache:
    return BlobCache(Path(cache_dir) if cache_dir else default_cache_dir())


@click.group("cache")
def cache_group() -> None:
    """The cache kept by digest: manifests and configs, and layers (content fetched by digest never
    changes). Each kind has its own bound; least recently used entries are evicted first."""


@cache_group.command("info")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Cache directory (default: $REGPEEK_CACHE_DIR or the user cache directory).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def info_command(cache_dir: str | None, as_json: bool) -> None:
    """Where the cache is, how many entries it holds and how big it is."""
    info = _cache(cache_dir).info()
    if as_json:
        echo_json(info.to_dict())
        return
    total = info.entries + info.layer_entries
    echo(f"{info.path}: {total} entries, {human_size(info.bytes + info.layer_bytes)}")
    echo(
        f"  manifests and configs: {info.entries} entries, {human_size(info.bytes)} "
        f"(bound {human_size(info.max_bytes)})"
    )
    echo(
        f"  layers: {info.layer_entries} entries, {human_size(info.layer_bytes)} "
        f"(bound {human_size(info.max_layer_bytes)})"
    )


@cache_group.command("prune")
@click.option(
    "--max-size",
    default="0",
    show_default=True,
    help="Keep the most recently used entries, layers and manifests alike, up to this total size "
    "(0 empties the cache).",
)
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache directory.")
def prune_command(max_size: str, cache_dir: str | None) -> None:
    """Remove least recently used entries until the whole cache is at most --max-size."""
    result = _cache(cache_dir).prune(_size(max_size))
    echo(f"removed {result.removed} entries, freed {human_size(result.freed_bytes)}")
