"""``regpeek cache info`` and ``regpeek cache prune``: the on-disk cache of manifests, configs and layers."""

from __future__ import annotations

from pathlib import Path

import click

from regpeek.cli.help import examples
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


@click.group("cache", epilog=examples("regpeek cache info", "regpeek cache prune --older-than 30d"))
def cache_group() -> None:
    """The cache kept by digest: manifests and configs, and layers (content fetched by digest never
    changes). Each kind has its own bound; least recently used entries are evicted first.
    """


@cache_group.command(
    "info",
    epilog=examples("regpeek cache info", "regpeek cache info --json --cache-dir /scratch/regpeek-cache"),
)
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


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _age(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``3600`` (seconds) -> seconds."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _AGE_UNITS else "s"
    number = value[:-1] if value[-1:] in _AGE_UNITS else value
    try:
        seconds = float(number) * _AGE_UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an age such as 30d, 12h or 90m") from None
    if seconds < 0:
        raise click.BadParameter("an age is not negative")
    return seconds


@cache_group.command(
    "prune",
    epilog=examples(
        "regpeek cache prune --max-size 2G",
        "regpeek cache prune --older-than 30d",
        "regpeek cache prune --all",
    ),
)
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Keep the most recently used entries, layers and manifests alike, up to this total size "
    "(0 empties the cache).",
)
@click.option("--older-than", metavar="AGE", help="Remove entries not used for AGE (30d, 12h, 90m).")
@click.option("--all", "everything", is_flag=True, help="Empty the cache (as --max-size 0).")
@click.option("--cache-dir", type=click.Path(file_okay=False), help="Cache directory.")
def prune_command(
    max_size: str | None, older_than: str | None, everything: bool, cache_dir: str | None
) -> None:
    """Remove cache entries: those not used for --older-than AGE, then least recently used ones until
    the whole cache is at most --max-size SIZE; --all empties it. Without any of them nothing is
    removed (the cache keeps itself within its bounds as it is used).
    """
    if everything and max_size is not None:
        raise click.UsageError("give --all or --max-size, not both")
    if not everything and max_size is None and older_than is None:
        raise click.UsageError(
            "nothing removed: give --max-size SIZE (e.g. 2G; 0 empties the cache), --older-than AGE "
            "(e.g. 30d), or --all"
        )
    bound = 0 if everything else (_size(max_size) if max_size is not None else None)
    age = _age(older_than) if older_than is not None else None
    result = _cache(cache_dir).prune(bound, older_than=age)
    echo(f"removed {result.removed} entries, freed {human_size(result.freed_bytes)}")
