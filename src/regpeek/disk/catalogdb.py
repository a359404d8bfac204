"""The catalogue's SQLite database: the one writer of what :mod:`regpeek.catalog` walks, its queries,
and its tables as Parquet.

One database holds one registry (the ``meta`` table says which; another is refused, exit 2). Each
repository's scan is written in one transaction; manifests, layers and configs are content-addressed
(``INSERT OR IGNORE``), tags are compared with what the database holds and each difference is a
``tag_events`` row of the run: ``added``, ``changed`` (old and new digest), ``gone``, ``back``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from regpeek.errors import LocalError, UsageError
from regpeek.formats.catalogschema import QUERIES, SCHEMA_VERSION, TABLES, RepositoryScan, schema_sql

if TYPE_CHECKING:
    from regpeek.catalog import CatalogResult

__all__ = ["CatalogDB", "run_query"]


def _placeholders(table: str) -> str:
    return ", ".join("?" for _ in TABLES[table][0])


class CatalogDB:
    """An open catalogue (created if missing). Use as a context manager."""

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UsageError(f"no catalogue database at {self.path}")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():
                for statement in schema_sql():
                    self.db.execute(statement)
                self.db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as error:
            raise LocalError(f"cannot use {self.path} as a catalogue: {error}") from None

    def __enter__(self) -> CatalogDB:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- a run ----------------------------------------------------------------------------------
    def claim_registry(self, registry: str) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'registry'").fetchone()
        if row is None:
            with self._transaction():
                self.db.execute("INSERT INTO meta (key, value) VALUES ('registry', ?)", (registry,))
        elif row[0] != registry:
            raise UsageError(f"{self.path} is the catalogue of {row[0]}, not of {registry}")

    def start_run(self, registry: str, now: str) -> int:
        with self._transaction():
            cursor = self.db.execute("INSERT INTO runs (registry, started_at) VALUES (?, ?)", (registry, now))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(self, run_id: int, now: str, result: CatalogResult) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE runs SET finished_at = ?, repositories = ?, tags = ?, tag_requests = ?, "
                "manifests_fetched = ?, configs_fetched = ?, errors = ? WHERE id = ?",
                (
                    now,
                    result.repositories,
                    result.tags,
                    result.tag_requests,
                    result.manifests_fetched,
                    result.configs_fetched,
                    len(result.errors),
                    run_id,
                ),
            )

    def known_manifests(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT digest FROM manifests")}

    def known_configs(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT digest FROM configs")}

    # -- writing a repository -------------------------------------------------------------------
    def write_scan(self, scan: RepositoryScan, run_id: int, now: str, result: CatalogResult) -> None:
        """Write one repository's rows and compare its tags with the database's (one transaction)."""
        result.tag_requests += scan.tag_requests
        result.manifests_fetched += scan.manifests_fetched
        result.configs_fetched += scan.configs_fetched
        with self._transaction():
            db = self.db
            for table in ("manifests", "layers", "manifest_layers", "index_entries", "configs"):
                rows: Sequence[tuple[Any, ...]] = getattr(scan, table)
                if rows:
                    db.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({_placeholders(table)})", rows)
            if scan.manifests or scan.configs:  # a manifest's platform and time come from its config
                db.execute(
                    "UPDATE manifests SET "
                    "platform_os = COALESCE(platform_os, (SELECT os FROM configs c WHERE c.digest = config_digest)), "
                    "platform_architecture = COALESCE(platform_architecture, "
                    "(SELECT architecture FROM configs c WHERE c.digest = config_digest)), "
                    "platform_variant = COALESCE(platform_variant, "
                    "(SELECT variant FROM configs c WHERE c.digest = config_digest)), "
                    "created = COALESCE(created, (SELECT created FROM configs c WHERE c.digest = config_digest)) "
                    "WHERE config_digest IS NOT NULL AND (created IS NULL OR platform_os IS NULL)"
                )
            for tag, digest, code, kind, message in scan.errors:
                db.execute(
                    "INSERT INTO errors VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, scan.repository, tag, digest, code, kind, message),
                )
                result.errors.append(
                    {
                        "repository": scan.repository,
                        "tag": tag,
                        "digest": digest,
                        "code": code,
                        "kind": kind,
                        "message": message,
                    }
                )
            if "*" in scan.failed_tags:  # the listing itself failed: nothing is known to be gone
                return
            if scan.missing:
                self._repository_gone(scan.repository, run_id, now, result)
                return
            db.execute(
                "INSERT INTO repositories (name, first_seen_at, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET seen_at = excluded.seen_at, gone_at = NULL",
                (scan.repository, now, now),
            )
            self._compare_tags(scan, run_id, now, result)

    def _event(self, run_id: int, repository: str, tag: str, event: str, old: str | None,
               new: str | None, now: str) -> None:  # fmt: skip
        self.db.execute(
            "INSERT INTO tag_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, repository, tag, event, old, new, now),
        )

    def _compare_tags(self, scan: RepositoryScan, run_id: int, now: str, result: CatalogResult) -> None:
        db = self.db
        existing = {
            row[0]: (row[1], row[2])
            for row in db.execute(
                "SELECT tag, digest, gone_at FROM tags WHERE repository = ?", (scan.repository,)
            )
        }
        result.tags += len(scan.tags)
        for tag, digest in scan.tags:
            before = existing.get(tag)
            if before is None:
                db.execute(
                    "INSERT INTO tags (repository, tag, digest, seen_at, first_seen_at) VALUES (?, ?, ?, ?, ?)",
                    (scan.repository, tag, digest, now, now),
                )
                self._event(run_id, scan.repository, tag, "added", None, digest, now)
                result.added += 1
            elif before[0] != digest:
                db.execute(
                    "UPDATE tags SET digest = ?, seen_at = ?, changed_at = ?, gone_at = NULL "
                    "WHERE repository = ? AND tag = ?",
                    (digest, now, now, scan.repository, tag),
                )
                self._event(run_id, scan.repository, tag, "changed", before[0], digest, now)
                result.changed += 1
            else:
                if before[1] is not None:
                    self._event(run_id, scan.repository, tag, "back", None, digest, now)
                db.execute(
                    "UPDATE tags SET seen_at = ?, gone_at = NULL WHERE repository = ? AND tag = ?",
                    (now, scan.repository, tag),
                )
        listed = {tag for tag, _ in scan.tags} | set(scan.failed_tags)
        for tag, (digest, gone_at) in existing.items():
            if tag not in listed and gone_at is None:
                self._tag_gone(scan.repository, tag, digest, run_id, now, result)

    def _tag_gone(self, repository: str, tag: str, digest: str, run_id: int, now: str,
                  result: CatalogResult) -> None:  # fmt: skip
        self.db.execute(
            "UPDATE tags SET gone_at = ? WHERE repository = ? AND tag = ?", (now, repository, tag)
        )
        self._event(run_id, repository, tag, "gone", digest, None, now)
        result.gone += 1

    def _repository_gone(self, repository: str, run_id: int, now: str, result: CatalogResult) -> None:
        self.db.execute(
            "UPDATE repositories SET gone_at = ? WHERE name = ? AND gone_at IS NULL", (now, repository)
        )
        rows = self.db.execute(
            "SELECT tag, digest FROM tags WHERE repository = ? AND gone_at IS NULL", (repository,)
        ).fetchall()
        for tag, digest in rows:
            self._tag_gone(repository, tag, digest, run_id, now, result)

    def mark_missing_repositories(self, listed: set[str], prefix: str, run_id: int, now: str,
                                  result: CatalogResult) -> None:  # fmt: skip
        """Repositories the database holds that the catalogue no longer lists: gone, with their tags."""
        rows = self.db.execute("SELECT name FROM repositories WHERE gone_at IS NULL").fetchall()
        with self._transaction():
            for (name,) in rows:
                if name.startswith(prefix) and name not in listed:
                    self._repository_gone(name, run_id, now, result)

    # -- reading ---------------------------------------------------------------------------------
    def table(self, name: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Every row of a table, in primary-key order (or rowid order without a key)."""
        if name not in TABLES:
            raise UsageError(f"no table {name!r}")
        columns, key = TABLES[name]
        order = ", ".join(key) if key else "rowid"
        rows = self.db.execute(f"SELECT * FROM {name} ORDER BY {order}").fetchall()
        return [column for column, _ in columns], rows

    def export_parquet(self, directory: Path) -> list[Path]:
        """Every table as ``directory/<table>.parquet`` (written beside and renamed), for DuckDB or pandas."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UsageError(
                "--parquet needs the parquet extra (pyarrow): pip install 'regpeek[parquet]'"
            ) from None
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        kinds = {"INTEGER": pa.int64(), "TEXT": pa.string()}
        for name, (columns, _) in TABLES.items():
            names, rows = self.table(name)
            schema = pa.schema([(column, kinds[kind]) for column, kind in columns])
            data = {column: [row[n] for row in rows] for n, column in enumerate(names)}
            table = pa.Table.from_pydict(data, schema=schema)
            target = directory / f"{name}.parquet"
            temporary = directory / f".{name}.parquet.{os.getpid()}.tmp"
            try:
                pq.write_table(table, temporary)
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
            written.append(target)
        return written


def run_query(
    path: Path | str, name: str, parameters: Mapping[str, Any]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run the named query (:data:`regpeek.formats.catalogschema.QUERIES`) on the catalogue at ``path``."""
    query = QUERIES.get(name)
    if query is None:
        raise UsageError(f"no query {name!r}: the queries are {', '.join(QUERIES)}")
    missing = [parameter for parameter in query.parameters if parameters.get(parameter) is None]
    if missing:
        raise UsageError(f"query {name} needs --{missing[0]}")
    with CatalogDB(path, create=False) as db:
        cursor = db.db.execute(query.sql, {key: parameters[key] for key in query.parameters})
        columns = [description[0] for description in cursor.description]
        return columns, cursor.fetchall()


def image_digest(path: Path | str, image: str) -> str:
    """``image`` as an image manifest digest: a digest as it is, or ``REPOSITORY:TAG`` looked up in the
    catalogue (a tag of several platforms is refused, naming them: give one's digest)."""
    if image.startswith(("sha256:", "sha512:")):
        return image
    repository, colon, tag = image.rpartition(":")
    if not colon or not repository or "/" in tag:
        raise UsageError(f"--image takes a digest or REPOSITORY:TAG, not {image!r}")
    with CatalogDB(path, create=False) as db:
        rows = db.db.execute(
            "SELECT image_digest, platform_os, platform_architecture, platform_variant FROM tag_images "
            "WHERE repository = ? AND tag = ?",
            (repository, tag),
        ).fetchall()
    if not rows:
        raise UsageError(f"the catalogue has no image for {image}")
    if len(rows) > 1:
        found = ", ".join(f"{row[0]} ({'/'.join(p for p in row[1:] if p)})" for row in rows)
        raise UsageError(f"{image} has several images, give one's digest: {found}")
    return str(rows[0][0])
