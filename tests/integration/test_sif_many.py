"""``regpeek sif --from-file REFS --out-dir DIR``: many SIFs in worker processes.

Ten references on the real registry (seven images on one shared base layer, an index, a signed
schema1 image, a missing tag): nine SIFs that siftool reads and one error line, in input order; a
second run that downloads no blob and skips all nine; a run interrupted by SIGINT after its third
line, which leaves only complete SIFs, then resumed to build exactly the rest; the shared base layer
fetched once for all the workers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from regpeek.disk.sif import inspect_sif
from regpeek.formats.sifname import sif_file_name
from tests.support.fixtures import require_tool
from tests.support.manyimages import ManyImages, push_many
from tests.support.registry import Registry

REGPEEK = str(Path(sys.executable).parent / "regpeek")
TIMEOUT = 300


@pytest.fixture(scope="module")
def many(schema1_registry: Registry) -> ManyImages:
    for tool in ("siftool", "tar2sqfs"):
        require_tool(tool)
    return push_many(schema1_registry)


def run_sif(*args: str, cache: Path) -> tuple[int, list[dict[str, Any]], str]:
    done = subprocess.run(
        [REGPEEK, "sif", "--plain-http", "--retries", "0", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "REGPEEK_CACHE_DIR": str(cache)},
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def assert_valid_sif(path: Path, digest: str) -> None:
    listing = subprocess.run(
        ["siftool", "list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    assert "FS (Squashfs/*System/amd64)" in listing and "Def.FILE" in listing
    assert inspect_sif(path).source.digest == digest


def only_sifs(out: Path) -> list[str]:
    """Every name in OUT: SIFs only (no temporary file, no lock left behind)."""
    names = sorted(os.listdir(out))
    assert all(name.endswith(".sif") and not name.startswith(".") for name in names), names
    return names


def blob_gets(registry: Registry) -> list[str]:
    return [r.path for r in registry.requests() if r.method == "GET" and "/blobs/" in r.path]


def test_ten_references_nine_sifs_then_a_second_run_downloads_nothing(
    many: ManyImages, schema1_registry: Registry, tmp_path: Path
) -> None:
    refs = many.write(tmp_path / "refs.txt")
    out, cache = tmp_path / "out", tmp_path / "cache"
    schema1_registry.mark()
    code, lines, stderr = run_sif("--from-file", str(refs), "--out-dir", str(out), "--jobs", "2", cache=cache)
    assert code == 3, stderr  # the worst met: the missing tag's
    assert [line["reference"] for line in lines] == many.references
    gets = blob_gets(schema1_registry)
    assert (
        sum(path.endswith(many.base_layer) for path in gets) == 1
    )  # the shared base: once, for both workers
    for reference, line in zip(many.references, lines, strict=True):
        if reference == many.missing:
            assert line["error"]["code"] == 3 and line["error"]["kind"] == "not_found"
            continue
        assert line["status"] == "built" and line["source_digest"] == many.digests[reference]
        assert line["path"] == str(out.resolve() / sif_file_name(reference))
        assert_valid_sif(Path(line["path"]), many.digests[reference])
    assert len(only_sifs(out)) == 9
    assert "9 built, 0 skipped, 1 failed" in stderr

    schema1_registry.mark()
    code, again, _ = run_sif("--from-file", str(refs), "--out-dir", str(out), "--jobs", "2", cache=cache)
    assert code == 3
    assert blob_gets(schema1_registry) == []  # resolved with HEADs (manifests from the cache), no blob
    assert [line.get("status") for line in again] == [
        None if ref == many.missing else "skipped" for ref in many.references
    ]
    assert [line.get("source_digest") for line in again] == [line.get("source_digest") for line in lines]

    # --force rebuilds (and a SIF of another image under the name is rebuilt too)
    one = many.write(tmp_path / "one.txt", many.references[:1])
    code, forced, _ = run_sif("--from-file", str(one), "--out-dir", str(out), "--force", cache=cache)
    assert code == 0 and forced[0]["status"] == "built"
    victim = out / sif_file_name(many.references[1])
    victim.write_bytes((out / sif_file_name(many.references[0])).read_bytes())  # pins app0's digest
    two = many.write(tmp_path / "two.txt", many.references[1:2])
    code, rebuilt, _ = run_sif("--from-file", str(two), "--out-dir", str(out), cache=cache)
    assert code == 0 and rebuilt[0]["status"] == "built"
    assert_valid_sif(victim, many.digests[many.references[1]])


def test_an_interrupted_run_leaves_complete_sifs_and_resumes_with_the_rest(
    many: ManyImages, tmp_path: Path
) -> None:
    refs = many.write(tmp_path / "refs.txt")
    out, cache = tmp_path / "out", tmp_path / "cache"
    process = subprocess.Popen(
        [REGPEEK, "sif", "--plain-http", "--retries", "0", "--from-file", str(refs), "--out-dir", str(out),
         "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "REGPEEK_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert process.stdout is not None
    first = [json.loads(process.stdout.readline()) for _ in range(3)]
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, stderr
    assert [line["reference"] for line in first] == many.references[:3]
    built = only_sifs(out)  # whatever finished, complete; nothing half-written
    assert 3 <= len(built) < 9
    for name in built:
        reference = next(ref for ref in many.references if sif_file_name(ref) == name)
        assert_valid_sif(out / name, many.digests[reference])

    code, lines, _ = run_sif("--from-file", str(refs), "--out-dir", str(out), "--jobs", "2", cache=cache)
    assert code == 3
    statuses = {line["reference"]: line.get("status") for line in lines}
    done_before = {ref for ref in many.references if sif_file_name(ref) in built}
    assert {ref for ref, status in statuses.items() if status == "skipped"} == done_before
    assert {ref for ref, status in statuses.items() if status == "built"} == (
        set(many.references) - done_before - {many.missing}
    )
    assert len(only_sifs(out)) == 9


def test_usage_errors(tmp_path: Path) -> None:
    refs = tmp_path / "refs.txt"
    refs.write_text("alpine\n")
    for args, message in (
        (["--from-file", str(refs)], "--from-file and --out-dir go together"),
        (["--from-file", str(refs), "--out-dir", str(tmp_path), "alpine", "a.sif"], "not both"),
        (["--from-file", str(refs), "--out-dir", str(tmp_path), "--sandbox"], "--sandbox"),
    ):
        code, _, stderr = run_sif(*args, cache=tmp_path / "cache")
        assert code == 2 and message in stderr
