"""The same runs on a Dask cluster: a ``distributed.LocalCluster`` of two worker processes on loopback,
started here. Many SIFs give what the local run gives, a worker killed mid-build still yields every
SIF (the task runs again elsewhere) with no partial file, and the catalogue partitioned across the
workers equals the catalogue walked in one process."""

from __future__ import annotations

import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regpeek.formats.sifname import sif_file_name
from tests.integration.api import registry_flags, run_cli
from tests.integration.test_sif_many import REGPEEK, TIMEOUT, assert_valid_sif, blob_gets, only_sifs
from tests.support.catalogimages import push_catalogue
from tests.support.fixtures import require_tool
from tests.support.manyimages import ManyImages, push_many
from tests.support.registry import Registry, start_registry

# the test extra installs it: missing, this module fails (no skip); Any, as distributed is untyped
distributed: Any = importlib.import_module("distributed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    ) as local:
        yield local


@pytest.fixture(scope="module")
def dask_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, ManyImages]]:
    for tool in ("siftool", "tar2sqfs", "docker-registry"):
        require_tool(tool)
    with start_registry(tmp_path_factory.mktemp("dask-registry"), schema1=True) as registry:
        yield registry, push_many(registry, big=2)


def worker_pids(cluster: Any) -> set[int]:
    with distributed.Client(cluster) as client:
        return set(client.run(os.getpid).values())


def sif_command(many_file: Path, out: Path, cluster: Any, cache: Path) -> list[str]:
    return [
        REGPEEK, "sif", "--plain-http", "--retries", "0", "--from-file", str(many_file), "--out-dir", str(out),
        "--dask", cluster.scheduler_address, "--worker-cache-dir", str(cache),
    ]  # fmt: skip


def test_many_sifs_on_dask_as_locally(
    cluster: Any, dask_registry: tuple[Registry, ManyImages], tmp_path: Path
) -> None:
    registry, many = dask_registry
    refs = many.write(tmp_path / "refs.txt", many.references[:10])
    out = tmp_path / "out"
    registry.mark()
    done = subprocess.run(
        sif_command(refs, out, cluster, tmp_path / "worker-cache"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["reference"] for line in lines] == many.references[:10]
    for reference, line in zip(many.references[:10], lines, strict=True):
        if reference == many.missing:
            assert line["error"]["code"] == 3
            continue
        assert line["status"] == "built" and line["source_digest"] == many.digests[reference]
        assert_valid_sif(out / sif_file_name(reference), many.digests[reference])
    assert len(only_sifs(out)) == 9
    # the workers share one layer store here: the base layer came down once for both
    assert sum(path.endswith(many.base_layer) for path in blob_gets(registry)) == 1

    # the environment variable names the scheduler too; a second run skips everything
    environment = {**os.environ, "REGPEEK_DASK_SCHEDULER": cluster.scheduler_address}
    command = [part for part in sif_command(refs, out, cluster, tmp_path / "worker-cache")
               if part not in ("--dask", cluster.scheduler_address)]  # fmt: skip
    again = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, env=environment, check=False
    )
    assert [json.loads(line).get("status") for line in again.stdout.splitlines()] == [
        None if ref == many.missing else "skipped" for ref in many.references[:10]
    ]


def test_a_worker_killed_mid_build_still_yields_every_sif(
    cluster: Any, dask_registry: tuple[Registry, ManyImages], tmp_path: Path
) -> None:
    _, many = dask_registry
    wanted = [*many.references[10:], *many.references[:4]]  # the two big images first
    refs = many.write(tmp_path / "refs.txt", wanted)
    out = tmp_path / "out"
    out.mkdir()
    pids = worker_pids(cluster)
    process = subprocess.Popen(
        sif_command(refs, out, cluster, tmp_path / "worker-cache"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = None
    deadline = time.monotonic() + TIMEOUT
    while killed is None and process.poll() is None and time.monotonic() < deadline:
        for name in os.listdir(
            out
        ):  # a build's temporary file names its process: ".<sif>.<pid>-<hex>.squashfs"
            if name.startswith(".") and name.endswith(".squashfs"):
                pid = int(name.rsplit(".", 2)[-2].split("-")[0])
                if pid in pids:
                    os.kill(pid, signal.SIGKILL)
                    killed = pid
                    break
        time.sleep(0.002)
    stdout, stderr = process.communicate(timeout=TIMEOUT)
    assert killed is not None, "no build was caught in progress"
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [line["reference"] for line in lines] == wanted
    assert all(line["status"] == "built" for line in lines)
    assert sorted(only_sifs(out)) == sorted(sif_file_name(ref) for ref in wanted)  # no partial file
    for reference in wanted:
        assert_valid_sif(out / sif_file_name(reference), many.digests[reference])
    assert killed not in worker_pids(cluster)  # the nanny started another worker


def test_the_catalogue_partitioned_on_dask_equals_the_local_walk(cluster: Any, tmp_path: Path) -> None:
    with start_registry(tmp_path / "registry") as registry:
        push_catalogue(registry, teams=2)
        local, spread = tmp_path / "local.sqlite", tmp_path / "dask.sqlite"
        done = run_cli("catalog", *registry_flags(registry), "--db", str(local), registry.host)
        assert done.code == 0, done.stderr
        done = run_cli(
            "catalog", *registry_flags(registry), "--db", str(spread), "--dask", cluster.scheduler_address,
            "--json", registry.host,
        )  # fmt: skip
        assert done.code == 0, done.stderr
        assert json.loads(done.text)["tags"] > 100
    tables = {
        "tags": "SELECT repository, tag, digest FROM tags",
        "manifests": "SELECT * FROM manifests",
        "index_entries": "SELECT * FROM index_entries",
        "layers": "SELECT * FROM layers",
        "manifest_layers": "SELECT * FROM manifest_layers",
        "configs": "SELECT * FROM configs",
        "repositories": "SELECT name FROM repositories",
    }
    with sqlite3.connect(local) as one, sqlite3.connect(spread) as other:
        for table, sql in tables.items():
            rows = sorted(one.execute(sql).fetchall(), key=repr)
            assert rows, table
            assert rows == sorted(other.execute(sql).fetchall(), key=repr), table


def test_without_the_extra_dask_is_exit_2_naming_it(tmp_path: Path) -> None:
    refs = tmp_path / "refs.txt"
    refs.write_text("localhost:1/x:y\n")
    script = (
        "import sys; sys.modules['distributed'] = None\n"
        "from regpeek.cli.main import main\n"
        f"sys.exit(main(['sif', '--from-file', {str(refs)!r}, '--out-dir', {str(tmp_path / 'out')!r},"
        " '--dask', 'tcp://127.0.0.1:1']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "pip install 'regpeek[dask]'" in done.stderr
