"""``regpeek catalog --db``: a real registry with a few hundred tags walked into SQLite, queried,
walked again (HEADs only), after a tag was deleted and another moved, and written as Parquet."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regpeek.catalog import utc_time
from regpeek.formats.catalogschema import TABLES
from tests.integration.api import registry_flags, run_cli
from tests.support.catalogimages import Catalogue, move_and_delete, push_catalogue, served_tags
from tests.support.images import FIXED_CREATED
from tests.support.registry import Registry, start_registry


@pytest.fixture(scope="module")
def catalogued(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Catalogue]]:
    with start_registry(tmp_path_factory.mktemp("catalog-registry"), schema1=True) as registry:
        yield registry, push_catalogue(registry, schema1=True)


def walk(registry: Registry, db: Path, *extra: str) -> dict[str, Any]:
    done = run_cli("catalog", *registry_flags(registry), "--db", str(db), "--json", *extra, registry.host)
    assert done.code == 0, done.stderr
    result: dict[str, Any] = json.loads(done.text)
    return result


def query(db: Path, name: str, *extra: str) -> list[dict[str, Any]]:
    done = run_cli("catalog", "query", name, "--db", str(db), "--json", *extra)
    assert done.code == 0, done.stderr
    return [json.loads(line) for line in done.text.splitlines()]


def requests(registry: Registry) -> Counter[tuple[str, str]]:
    """(method, what) of every request since the mark: manifests, blobs, tags, catalog."""
    counts: Counter[tuple[str, str]] = Counter()
    for request in registry.requests():
        path = request.path.split("?")[0]
        what = next((part for part in ("manifests", "blobs", "tags", "_catalog") if f"/{part}" in path), path)
        counts[(request.method, what)] += 1
    return counts


def test_a_registry_catalogued_queried_and_walked_again(
    catalogued: tuple[Registry, Catalogue], tmp_path: Path
) -> None:
    registry, catalogue = catalogued
    db = tmp_path / "catalogue.sqlite"
    served = served_tags(registry)
    total = sum(len(tags) for tags in served.values())
    assert total >= 240

    registry.mark()
    first = walk(registry, db, "--parquet", str(tmp_path / "parquet"))
    assert first["repositories"] == len(served) and first["tags"] == total and first["added"] == total
    assert first["errors"] == []
    counts = requests(registry)
    assert counts[("HEAD", "manifests")] == total  # one HEAD per tag

    with sqlite3.connect(db) as con:
        for repo, tags in served.items():
            rows = con.execute("SELECT tag FROM tags WHERE repository = ? ORDER BY tag", (repo,)).fetchall()
            assert sorted(row[0] for row in rows) == tags, repo
        assert catalogue.index is not None
        entries = con.execute(
            "SELECT platform_os, platform_architecture, platform_variant, attestation FROM index_entries "
            "WHERE index_digest = ? ORDER BY position",
            (catalogue.index.digest,),
        ).fetchall()
        document = json.loads(catalogue.index.manifest)["manifests"]
        assert len(entries) == len(document)
        assert [row[3] for row in entries] == [0] * (len(document) - 1) + [1]  # the attestation, marked
        kinds = dict(con.execute("SELECT kind, COUNT(*) FROM manifests GROUP BY kind").fetchall())
        assert kinds == {"index": 1, "image": 1 + 5 * 8 + 5 + 1 + 2, "attestation": 1, "schema1": 1}
        assert counts[("GET", "manifests")] == sum(kinds.values())  # each manifest read once
        configs = con.execute("SELECT COUNT(*) FROM configs").fetchone()[0]
        assert counts[("GET", "blobs")] == configs  # configs only, never a layer
        created = con.execute(
            "SELECT created FROM manifests WHERE digest = ?", (catalogue.base.digest,)
        ).fetchone()
        assert created == (utc_time(FIXED_CREATED),)
        dated = con.execute("SELECT COUNT(*) FROM tag_images WHERE created IS NOT NULL").fetchone()[0]

    # the images built on base/os:1, and those holding its layer: every team tag, not other/solo
    wanted = {(repo, tag) for (repo, tag) in catalogue.on_base}
    on_base = query(db, "shared-base", "--image", "base/os:1")
    assert {(row["repository"], row["tag"]) for row in on_base} == wanted
    with_layer = query(db, "shared-layer", "--layer", catalogue.base_layer)
    assert {(row["repository"], row["tag"]) for row in with_layer} == wanted
    platforms = query(db, "platforms")
    multi = [row for row in platforms if row["repository"] == "multi/index"]
    assert len(multi) == 5 and all(row["tags"] == 3 for row in multi)
    largest = query(db, "largest", "--limit", "3")
    assert len(largest) == 3 and largest[0]["size"] >= largest[-1]["size"]
    assert query(db, "older-than", "--before", "1970-01-01") == []
    assert len(query(db, "older-than", "--before", "2100-01-01")) == dated > total

    # Parquet: the same tables, read back by pyarrow
    import pyarrow.parquet as pq

    with sqlite3.connect(db) as con:
        for table, (columns, key) in TABLES.items():
            order = ", ".join(key) if key else "rowid"
            rows = [list(row) for row in con.execute(f"SELECT * FROM {table} ORDER BY {order}")]
            read = pq.read_table(tmp_path / "parquet" / f"{table}.parquet")
            assert read.column_names == [column for column, _ in columns]
            assert [list(row.values()) for row in read.to_pylist()] == rows, table

    # a second run: the listings and one HEAD per tag; no manifest or config is read again
    registry.mark()
    second = walk(registry, db)
    assert (second["added"], second["changed"], second["gone"]) == (0, 0, 0)
    counts = requests(registry)
    assert counts[("GET", "manifests")] == 0 and counts[("GET", "blobs")] == 0
    assert counts[("HEAD", "manifests")] == total
    assert second["manifests_fetched"] == 0 and second["configs_fetched"] == 0

    # a tag deleted, another moved: recorded; only the new manifest and config are read
    assert catalogue.moving is not None and catalogue.victim is not None
    moved = move_and_delete(registry, catalogue)
    registry.mark()
    third = walk(registry, db)
    assert (third["added"], third["changed"], third["gone"]) == (0, 1, 1)
    counts = requests(registry)
    assert counts[("GET", "manifests")] == 1 and counts[("GET", "blobs")] == 1
    assert query(db, "gone") == [
        {"repository": "gone/victim", "tag": "only", "digest": catalogue.victim.digest,
         "gone_at": query(db, "gone")[0]["gone_at"]}
    ]  # fmt: skip
    changed = query(db, "changed")
    assert [(row["repository"], row["tag"], row["old_digest"], row["new_digest"]) for row in changed] == [
        ("moving/tag", "latest", catalogue.moving.digest, moved.digest)
    ]


def test_given_repositories_and_a_prefix(catalogued: tuple[Registry, Catalogue], tmp_path: Path) -> None:
    registry, _ = catalogued
    db = tmp_path / "some.sqlite"
    result = walk(registry, db, "--repository", "base/os", "--repository", "other/solo")
    assert result["repositories"] == 2 and result["tags"] == 2
    result = walk(registry, tmp_path / "teams.sqlite", "--repository-prefix", "team")
    assert result["repositories"] == 5 and result["tags"] == 5 * 8 * 6
    listing = run_cli("catalog", *registry_flags(registry), "--repository-prefix", "team", registry.host)
    assert listing.code == 0 and listing.text.split() == [f"team{n}/app" for n in range(5)]
    other = run_cli("catalog", *registry_flags(registry), "--db", str(db), "elsewhere.example:5000")
    assert other.code == 2 and "is the catalogue of" in other.stderr
    missing = run_cli("catalog", "query", "largest", "--db", str(tmp_path / "none.sqlite"))
    assert missing.code == 2
