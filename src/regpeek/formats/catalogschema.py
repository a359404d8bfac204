"""The registry catalogue's tables, views and named queries, and the rows one repository's walk gives.

Pure: SQL text and plain data. :mod:`regpeek.disk.catalogdb` runs the SQL against SQLite (and writes
Parquet), :mod:`regpeek.catalog` walks a registry into :class:`RepositoryScan` values.

Times are ISO 8601 text in UTC (``2024-05-01T12:00:00Z``), so they sort and compare as text; a
manifest's ``created`` is its config's, normalised that way. Digests are ``algorithm:hex`` text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "QUERIES",
    "SCHEMA_VERSION",
    "TABLES",
    "VIEWS",
    "Query",
    "RepositoryScan",
    "schema_sql",
]

SCHEMA_VERSION = 1

#: Every table: its columns (name, SQLite type) and its primary key. The names the catalogue documents
#: come first; the columns after them are additions (kept in this order in Parquet too).
TABLES: Mapping[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "meta": ((("key", "TEXT"), ("value", "TEXT")), ("key",)),
    "runs": (
        (
            ("id", "INTEGER"),
            ("registry", "TEXT"),
            ("started_at", "TEXT"),
            ("finished_at", "TEXT"),
            ("repositories", "INTEGER"),
            ("tags", "INTEGER"),
            ("tag_requests", "INTEGER"),
            ("manifests_fetched", "INTEGER"),
            ("configs_fetched", "INTEGER"),
            ("errors", "INTEGER"),
        ),
        ("id",),
    ),
    "repositories": (
        (("name", "TEXT"), ("first_seen_at", "TEXT"), ("seen_at", "TEXT"), ("gone_at", "TEXT")),
        ("name",),
    ),
    "tags": (
        (
            ("repository", "TEXT"),
            ("tag", "TEXT"),
            ("digest", "TEXT"),
            ("seen_at", "TEXT"),
            ("first_seen_at", "TEXT"),
            ("changed_at", "TEXT"),
            ("gone_at", "TEXT"),
        ),
        ("repository", "tag"),
    ),
    "tag_events": (
        (
            ("run_id", "INTEGER"),
            ("repository", "TEXT"),
            ("tag", "TEXT"),
            ("event", "TEXT"),  # added, changed, gone, back
            ("old_digest", "TEXT"),
            ("new_digest", "TEXT"),
            ("at", "TEXT"),
        ),
        (),
    ),
    "manifests": (
        (
            ("digest", "TEXT"),
            ("media_type", "TEXT"),
            ("size", "INTEGER"),
            ("kind", "TEXT"),  # index, image, attestation, schema1
            ("platform_os", "TEXT"),
            ("platform_architecture", "TEXT"),
            ("platform_variant", "TEXT"),
            ("config_digest", "TEXT"),
            ("created", "TEXT"),
            ("repository", "TEXT"),  # where it was first read
            ("artifact_type", "TEXT"),
            ("subject_digest", "TEXT"),
        ),
        ("digest",),
    ),
    "index_entries": (
        (
            ("index_digest", "TEXT"),
            ("manifest_digest", "TEXT"),
            ("position", "INTEGER"),
            ("media_type", "TEXT"),
            ("size", "INTEGER"),
            ("platform_os", "TEXT"),
            ("platform_architecture", "TEXT"),
            ("platform_variant", "TEXT"),
            ("attestation", "INTEGER"),
        ),
        ("index_digest", "position"),
    ),
    "layers": ((("digest", "TEXT"), ("size", "INTEGER"), ("media_type", "TEXT")), ("digest",)),
    "manifest_layers": (
        (("manifest_digest", "TEXT"), ("layer_digest", "TEXT"), ("position", "INTEGER")),
        ("manifest_digest", "position"),
    ),
    "configs": (
        (
            ("digest", "TEXT"),
            ("created", "TEXT"),
            ("author", "TEXT"),
            ("env_json", "TEXT"),
            ("labels_json", "TEXT"),
            ("entrypoint_json", "TEXT"),
            ("cmd_json", "TEXT"),
            ("os", "TEXT"),
            ("architecture", "TEXT"),
            ("variant", "TEXT"),
            ("size", "INTEGER"),
            ("created_raw", "TEXT"),
        ),
        ("digest",),
    ),
    "errors": (
        (
            ("run_id", "INTEGER"),
            ("repository", "TEXT"),
            ("tag", "TEXT"),
            ("digest", "TEXT"),
            ("code", "INTEGER"),
            ("kind", "TEXT"),
            ("message", "TEXT"),
        ),
        (),
    ),
}

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (digest)",
    "CREATE INDEX IF NOT EXISTS index_entries_by_manifest ON index_entries (manifest_digest)",
    "CREATE INDEX IF NOT EXISTS manifest_layers_by_layer ON manifest_layers (layer_digest)",
    "CREATE INDEX IF NOT EXISTS tag_events_by_run ON tag_events (run_id, event)",
)

#: Views the queries build on. ``tag_images``: every image a present tag stands for, directly or
#: through an index (attestations left out), with its platform and creation time. ``image_sizes``:
#: each image manifest's compressed size, the sum of its layers.
VIEWS: Mapping[str, str] = {
    "tag_images": """SELECT t.repository, t.tag, t.digest AS tag_digest, m.digest AS image_digest,
       m.platform_os, m.platform_architecture, m.platform_variant, m.created, m.config_digest
FROM tags t JOIN manifests m ON m.digest = t.digest
WHERE t.gone_at IS NULL AND m.kind IN ('image', 'schema1')
UNION ALL
SELECT t.repository, t.tag, t.digest, m.digest,
       m.platform_os, m.platform_architecture, m.platform_variant, m.created, m.config_digest
FROM tags t JOIN index_entries e ON e.index_digest = t.digest
            JOIN manifests m ON m.digest = e.manifest_digest
WHERE t.gone_at IS NULL AND m.kind IN ('image', 'schema1')""",
    "image_sizes": """SELECT ml.manifest_digest AS image_digest, SUM(l.size) AS size, COUNT(*) AS layers
FROM manifest_layers ml JOIN layers l ON l.digest = ml.layer_digest
GROUP BY ml.manifest_digest""",
}


def schema_sql() -> list[str]:
    """The statements that create the catalogue in an empty database (and leave an existing one be)."""
    statements = []
    for name, (columns, key) in TABLES.items():
        body = ", ".join(f"{column} {kind}" for column, kind in columns)
        if key:
            body += f", PRIMARY KEY ({', '.join(key)})"
        statements.append(f"CREATE TABLE IF NOT EXISTS {name} ({body})")
    statements += _INDEXES
    statements += [f"CREATE VIEW IF NOT EXISTS {name} AS\n{sql}" for name, sql in VIEWS.items()]
    return statements


@dataclass(frozen=True)
class Query:
    """A question people ask of a catalogue: ``regpeek catalog query NAME``."""

    description: str
    sql: str
    parameters: tuple[str, ...] = ()


QUERIES: Mapping[str, Query] = {
    "shared-layer": Query(
        "images (tag and platform) that contain the layer :layer",
        """SELECT ti.repository, ti.tag, ti.image_digest,
       ti.platform_os, ti.platform_architecture, ti.platform_variant, ml.position
FROM tag_images ti JOIN manifest_layers ml ON ml.manifest_digest = ti.image_digest
WHERE ml.layer_digest = :layer
ORDER BY ti.repository, ti.tag, ti.image_digest""",
        ("layer",),
    ),
    "shared-base": Query(
        "images built on the base image :image: their first layers are all of its layers",
        """WITH base AS (SELECT layer_digest, position FROM manifest_layers WHERE manifest_digest = :image)
SELECT ti.repository, ti.tag, ti.image_digest,
       ti.platform_os, ti.platform_architecture, ti.platform_variant
FROM tag_images ti
WHERE (SELECT COUNT(*) FROM base) > 0
  AND (SELECT COUNT(*) FROM manifest_layers ml JOIN base b
         ON b.position = ml.position AND b.layer_digest = ml.layer_digest
       WHERE ml.manifest_digest = ti.image_digest) = (SELECT COUNT(*) FROM base)
ORDER BY ti.repository, ti.tag, ti.image_digest""",
        ("image",),
    ),
    "largest": Query(
        "the :limit largest images (compressed size of their layers)",
        """SELECT ti.repository, ti.tag, ti.image_digest,
       ti.platform_os, ti.platform_architecture, ti.platform_variant, s.size, s.layers
FROM tag_images ti JOIN image_sizes s ON s.image_digest = ti.image_digest
ORDER BY s.size DESC, ti.repository, ti.tag
LIMIT :limit""",
        ("limit",),
    ),
    "changed": Query(
        "tags whose digest changed in the last run",
        """SELECT e.repository, e.tag, e.old_digest, e.new_digest, e.at
FROM tag_events e
WHERE e.event = 'changed' AND e.run_id = (SELECT MAX(id) FROM runs)
ORDER BY e.repository, e.tag""",
    ),
    "gone": Query(
        "tags that have disappeared, and when they were first missed",
        """SELECT repository, tag, digest, gone_at
FROM tags
WHERE gone_at IS NOT NULL
ORDER BY gone_at DESC, repository, tag""",
    ),
    "older-than": Query(
        "images created before :before (a date or time, UTC: 2024-01-01 or 2024-01-01T12:00:00Z)",
        """SELECT ti.repository, ti.tag, ti.image_digest,
       ti.platform_os, ti.platform_architecture, ti.platform_variant, ti.created
FROM tag_images ti
WHERE ti.created IS NOT NULL AND ti.created < :before
ORDER BY ti.created, ti.repository, ti.tag""",
        ("before",),
    ),
    "platforms": Query(
        "the platforms of each repository, with how many tags have each",
        """SELECT repository, platform_os, platform_architecture, platform_variant,
       COUNT(DISTINCT tag) AS tags
FROM tag_images
GROUP BY repository, platform_os, platform_architecture, platform_variant
ORDER BY repository, platform_os, platform_architecture, platform_variant""",
    ),
}


@dataclass
class RepositoryScan:
    """What walking one repository found: rows for the tables, as plain data (it travels from Dask
    workers to the client, which alone writes the database).

    ``tags`` is the listing resolved: (tag, digest) for each tag the registry still serves.
    ``failed_tags`` could not be resolved this time (not "gone": the error is in ``errors``).
    ``missing`` is True when the repository itself is no longer there (404 on its tag list).
    """

    repository: str
    tags: list[tuple[str, str]] = field(default_factory=list)
    manifests: list[tuple[Any, ...]] = field(default_factory=list)
    index_entries: list[tuple[Any, ...]] = field(default_factory=list)
    layers: list[tuple[Any, ...]] = field(default_factory=list)
    manifest_layers: list[tuple[Any, ...]] = field(default_factory=list)
    configs: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)  # (tag, digest, code, kind, message)
    failed_tags: list[str] = field(default_factory=list)
    missing: bool = False
    tag_requests: int = 0
    manifests_fetched: int = 0
    configs_fetched: int = 0
