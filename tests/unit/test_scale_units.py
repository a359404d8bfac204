"""The pure and local pieces of the scale features: SIF names, the catalogue's schema and queries,
catalogue times, and the ordered worker-process runner (a worker that dies is replaced)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regpeek.catalog import utc_time
from regpeek.cluster import LOCAL_RETRIES, run_ordered
from regpeek.formats.catalogschema import QUERIES, TABLES, schema_sql
from regpeek.formats.reference import Reference
from regpeek.formats.sifname import MAX_NAME, SUFFIX, reference_of_name, sif_file_name
from tests.unit.strategies import references

HEX = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("alpine:3.20", "docker.io_library_alpine+3.20.sif"),
        ("localhost:5000/team/my_app:v1", "localhost+5000_team_my__app+v1.sif"),
        (f"ghcr.io/org/app@sha256:{HEX}", f"ghcr.io_org_app@sha256-{HEX}.sif"),
        (f"ghcr.io/org/app:1.2@sha256:{HEX}", f"ghcr.io_org_app+1.2@sha256-{HEX}.sif"),
        ("[::1]:5000/a/b__c:_x", "[++1]+5000_a_b____c+_x.sif"),
    ],
)
def test_documented_names(reference: str, name: str) -> None:
    assert sif_file_name(reference) == name
    assert reference_of_name(name) == str(Reference.parse(reference))


@given(references())
@settings(max_examples=300)
def test_every_name_gives_back_its_reference(reference: Reference) -> None:
    name = sif_file_name(reference)
    assert "/" not in name and name.endswith(SUFFIX) and len(name.encode()) <= MAX_NAME + 40
    if "~" not in name:
        assert reference_of_name(name) == str(reference)


@given(references(), references())
@settings(max_examples=300)
def test_two_references_never_share_a_name(first: Reference, second: Reference) -> None:
    if str(first) != str(second):
        assert sif_file_name(first) != sif_file_name(second)


def test_the_confusable_pairs_differ() -> None:
    """A "/" and a ":" or an "_" in a path would meet in a lossy scheme; not in this one."""
    pairs = [
        (f"localhost/a/b/3.20@sha256:{HEX}", f"localhost/a/b:3.20@sha256:{HEX}"),
        ("localhost/a/b_c:t", "localhost/a_b/c:t"),
        ("localhost:5000/a:t", "localhost/5000/a:t"),
    ]
    for one, other in pairs:
        assert sif_file_name(one) != sif_file_name(other)


def test_a_very_long_reference_gets_a_short_distinct_name() -> None:
    long_repository = "/".join(["component" * 5] * 5)
    one = sif_file_name(f"example.com/{long_repository}:v1")
    other = sif_file_name(f"example.com/{long_repository}:v2")
    assert one != other and "~" in one and len(one.encode()) < 255
    with pytest.raises(ValueError, match="not a name"):
        reference_of_name(one)


def test_the_schema_creates_every_table_and_every_query_runs() -> None:
    db = sqlite3.connect(":memory:")
    for statement in schema_sql():
        db.execute(statement)
    for statement in schema_sql():  # a second time on an existing catalogue: nothing to do
        db.execute(statement)
    names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == set(TABLES)
    documented = {
        "repositories": ["name"],
        "tags": ["repository", "tag", "digest", "seen_at"],
        "manifests": ["digest", "media_type", "size", "kind", "platform_os", "platform_architecture",
                      "platform_variant", "config_digest", "created"],
        "index_entries": ["index_digest", "manifest_digest", "position"],
        "layers": ["digest", "size", "media_type"],
        "manifest_layers": ["manifest_digest", "layer_digest", "position"],
        "configs": ["digest", "created", "author", "env_json", "labels_json", "entrypoint_json", "cmd_json"],
    }  # fmt: skip
    for table, columns in documented.items():
        have = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        assert have[: len(columns)] == columns, table
    for name, query in QUERIES.items():
        parameters: dict[str, object] = dict.fromkeys(query.parameters, "x")
        if "limit" in parameters:
            parameters["limit"] = 5
        assert db.execute(query.sql, parameters).fetchall() == [], name


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z"),
        ("2024-05-01T14:00:00.123456789+02:00", "2024-05-01T12:00:00Z"),
        ("2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
        ("yesterday", "yesterday"),
        (None, None),
    ],
)
def test_times_are_stored_in_utc(text: str | None, utc: str | None) -> None:
    assert utc_time(text) == utc


# -- the ordered runner (spawned worker processes: module-level functions) --------------------------------
def _square(n: int) -> int:
    return n * n


def _die_once(item: tuple[str, int]) -> int:
    """Kill this worker process the first time an item is seen (a marker file remembers)."""
    directory, n = item
    marker = Path(directory) / f"seen-{n}"
    if n in (3, 8) and not marker.exists():
        marker.write_text("x")
        os._exit(9)
    return n


def _always_die(item: tuple[str, int]) -> int:
    directory, n = item
    if n == 2:
        (Path(directory) / f"attempt-{os.getpid()}").write_text("x")
        os._exit(9)
    return n


def test_results_come_in_input_order() -> None:
    results = list(run_ordered(_square, range(30), jobs=2, lost=lambda item, error: -1, window=3))
    assert results == [n * n for n in range(30)]


def test_a_dead_worker_is_replaced_and_its_items_run_again(tmp_path: Path) -> None:
    items = [(str(tmp_path), n) for n in range(10)]
    assert list(run_ordered(_die_once, items, jobs=2, lost=lambda item, error: -1)) == list(range(10))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seen-3", "seen-8"]


def test_an_item_that_keeps_killing_its_worker_is_given_up(tmp_path: Path) -> None:
    items = [(str(tmp_path), n) for n in range(4)]
    results = list(run_ordered(_always_die, items, jobs=1, lost=lambda item, error: -item[1]))
    assert results == [0, 1, -2, 3]
    assert len(list(tmp_path.iterdir())) == LOCAL_RETRIES + 1


@given(st.integers(1, 3))
@settings(max_examples=3, deadline=None)
def test_jobs_must_be_positive(jobs: int) -> None:
    assert list(run_ordered(_square, [2], jobs=jobs, lost=lambda item, error: -1)) == [4]
    with pytest.raises(ValueError, match="at least 1"):
        list(run_ordered(_square, [2], jobs=0, lost=lambda item, error: -1))


# -- concurrent requests to an anonymous registry ----------------------------------------------------------
def test_requests_to_an_anonymous_registry_run_concurrently(tmp_path: Path) -> None:
    """The async auth flow makes requests wait for a token only while one may be needed: a registry
    that answered without asking for credentials gets the next requests all at once (before, every
    request to it went one at a time, which made a catalogue through latency as slow as a loop)."""
    import asyncio

    import httpx

    import regpeek
    from regpeek.network.credentials import CredentialStore
    from regpeek.network.transport import HttpOptions

    in_flight = most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, headers={"Docker-Content-Digest": f"sha256:{HEX}"})

    async def go() -> None:
        options = HttpOptions(plain_http=True, retries=0, timeout=5, transport=httpx.MockTransport(handler))
        store = CredentialStore(environ={}, home=tmp_path)
        async with regpeek.AsyncClient(options=options, credentials=store) as client:
            await client.digest("127.0.0.1:1/org/app:0")
            await asyncio.gather(*(client.digest(f"127.0.0.1:1/org/app:{n}") for n in range(20)))

    asyncio.run(go())
    assert most == 20


def test_the_readme_shows_each_query_as_it_runs() -> None:
    """The README's catalogue queries are the SQL that ``catalog query`` runs, word for word."""
    from regpeek.formats.catalogschema import VIEWS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, query in QUERIES.items():
        assert f"`regpeek catalog query {name} --db FILE" in readme, name
        assert f"```sql\n{query.sql};\n```" in readme, name
    for name, sql in VIEWS.items():
        assert f"```sql\nCREATE VIEW {name} AS\n{sql};\n```" in readme, name


# -- the layer store's claims: a layer two pulls want at once is downloaded once -------------------------
def test_two_concurrent_pulls_of_one_base_layer_download_it_once(tmp_path: Path) -> None:
    """Two pulls (separate clients, one layer store, as two worker processes have) of images sharing a
    base layer: the blob handler holds the first download for up to a second, long enough for the
    other pull to ask too; with the store's claim the other waits and takes it from the store."""
    import gzip
    import io
    import json
    import tarfile
    import threading

    import httpx

    import regpeek
    from regpeek.disk.cache import BlobCache
    from regpeek.formats import mediatypes as mt
    from regpeek.network.credentials import CredentialStore
    from regpeek.network.transport import HttpOptions
    from regpeek.pull import pull
    from tests.unit.builders import dumps, sha256

    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("base.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"base\n"))
    layer = gzip.compress(tar.getvalue(), mtime=0)
    routes: dict[str, tuple[bytes, str]] = {}
    for n in range(2):
        config = dumps({"architecture": "amd64", "os": "linux", "config": {"Env": [f"N={n}"]},
                        "rootfs": {"type": "layers", "diff_ids": [sha256(tar.getvalue())]}})  # fmt: skip
        manifest = dumps(
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": {"mediaType": mt.OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha256(layer), "size": len(layer)}],
            }
        )
        routes[f"/v2/org/app{n}/manifests/1"] = (manifest, mt.OCI_MANIFEST)
        routes[f"/v2/org/app{n}/manifests/{sha256(manifest)}"] = (manifest, mt.OCI_MANIFEST)
        routes[f"/v2/org/app{n}/blobs/{sha256(config)}"] = (config, "application/octet-stream")
        routes[f"/v2/org/app{n}/blobs/{sha256(layer)}"] = (layer, "application/octet-stream")
    layer_gets: list[str] = []
    second = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path not in routes:
            return httpx.Response(404, content=json.dumps({"errors": []}).encode())
        body, media_type = routes[path]
        if request.method == "GET" and path.endswith(sha256(layer)):
            layer_gets.append(path)
            if len(layer_gets) == 1:
                second.wait(1.0)  # a second download of the same layer, if any, arrives meanwhile
            else:
                second.set()
        headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(body)}
        return httpx.Response(200, content=b"" if request.method == "HEAD" else body, headers=headers)

    errors: list[BaseException] = []

    def one(n: int) -> None:
        options = HttpOptions(plain_http=True, retries=0, timeout=10, transport=httpx.MockTransport(handler))
        cache = BlobCache(tmp_path / "cache")
        store = CredentialStore(environ={}, home=tmp_path)
        try:
            with regpeek.Client(options=options, credentials=store, cache=cache) as client:
                pull(client, f"127.0.0.1:1/org/app{n}:1", tmp_path / f"layout{n}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(layer_gets) == 1
    assert all((tmp_path / f"layout{n}" / "blobs" / "sha256" / sha256(layer)[7:]).is_file() for n in range(2))
