"""SIF files on disk (``regpeek.disk.sif``): writing streams, reading back, hostile files, inspect."""

from __future__ import annotations

import io
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from regpeek.disk.sif import SifWriter, copy_object, inspect_sif, open_sif, write_apptainer_sif
from regpeek.errors import MalformedError, NotFoundError, UnsupportedError, UsageError
from regpeek.formats import sif
from regpeek.formats.apptainer import sif_metadata
from regpeek.formats.sif import DataType, ObjectInput

IMAGE_ID = bytes.fromhex("0123456789abcdef0123456789abcdef")
DIGEST = "sha256:" + "12" * 32
CONFIG = json.dumps(
    {"architecture": "arm64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Entrypoint": ["/bin/app"]},
     "rootfs": {"type": "layers", "diff_ids": []}}
).encode()  # fmt: skip


def write(
    path: Path, objects: Sequence[tuple[ObjectInput, bytes | BinaryIO]], **options: object
) -> sif.Header:
    with path.open("wb") as out:
        writer = SifWriter(out, image_id=IMAGE_ID, created_at=1_700_000_000, **options)  # type: ignore[arg-type]
        for obj, data in objects:
            writer.add(obj, data)
        return writer.finish()


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    partition = os.urandom(10_000)
    source = tmp_path / "part.bin"
    source.write_bytes(partition)
    image = tmp_path / "out.sif"
    with source.open("rb") as stream:
        header = write(image, [(ObjectInput(DataType.DEFFILE), b"bootstrap: docker\n"),
                               (ObjectInput(DataType.GENERIC_JSON, name="oci-config.json"), b"{}"),
                               (ObjectInput.partition("s390x"), stream)])  # fmt: skip
    assert image.stat().st_size == 32768 + 10_000  # ends with the last object
    with open_sif(image) as opened:
        assert opened.header == header
        assert [(d.id, d.type_name, d.name, d.size) for d in opened.descriptors] == [
            (1, "Def.FILE", "", 18), (2, "JSON.Generic", "oci-config.json", 2), (3, "FS", "", 10_000)]  # fmt: skip
        assert opened.primary_partition is not None and opened.primary_partition.offset == 32768
        assert opened.read(opened.descriptors[0], 100) == b"bootstrap: docker\n"
        out = io.BytesIO()
        assert opened.copy(opened.descriptors[2], out) == 10_000 and out.getvalue() == partition
    assert header.architecture == "s390x" and header.uuid == "01234567-89ab-cdef-0123-456789abcdef"
    out = io.BytesIO()
    copy_object(image, 3, out)
    assert out.getvalue() == partition
    with pytest.raises(MalformedError, match="no object 4"):
        copy_object(image, 4, io.BytesIO())


def test_a_stream_without_a_file_gives_the_same_bytes(tmp_path: Path) -> None:
    """copy_file_range between files and a buffered copy from a pipe-like stream write the same SIF."""
    data = os.urandom(300_000)
    (tmp_path / "data").write_bytes(data)
    with (tmp_path / "data").open("rb") as stream:
        stream.read(7)  # objects are read from the stream's position
        write(
            tmp_path / "a.sif",
            [(ObjectInput(DataType.GENERIC), b"x"), (ObjectInput.partition("amd64"), stream)],
        )
    write(
        tmp_path / "b.sif",
        [(ObjectInput(DataType.GENERIC), b"x"), (ObjectInput.partition("amd64"), io.BytesIO(data[7:]))],
    )
    assert (tmp_path / "a.sif").read_bytes() == (tmp_path / "b.sif").read_bytes()


def test_a_pipe_streams_into_the_partition(tmp_path: Path) -> None:
    """A squashfs tool writing to a pipe: no seek, no copy_file_range, the same bytes."""
    data = os.urandom(2_500_000)
    (tmp_path / "data").write_bytes(data)
    with subprocess.Popen(["cat", str(tmp_path / "data")], stdout=subprocess.PIPE) as cat:
        assert cat.stdout is not None
        write(tmp_path / "piped.sif", [(ObjectInput.partition("amd64"), cast(BinaryIO, cat.stdout))])
    with open_sif(tmp_path / "piped.sif") as opened:
        assert opened.read(opened.descriptors[0], len(data)) == data


def test_a_short_stream_is_an_error(tmp_path: Path) -> None:
    with (tmp_path / "x.sif").open("wb") as out:
        writer = SifWriter(out, image_id=IMAGE_ID, created_at=0)
        with pytest.raises(MalformedError, match="cut short: 3 of 4"):
            writer.add(ObjectInput(DataType.GENERIC), io.BytesIO(b"abc"), size=4)


def test_apptainer_sif_objects_and_order(tmp_path: Path) -> None:
    meta = sif_metadata(
        CONFIG, source="example.org/app:2", digest=DIGEST, architecture="arm64", created=5, tool_version="t"
    )
    squashfs = os.urandom(5000)
    with (tmp_path / "app.sif").open("wb") as out:
        header = write_apptainer_sif(
            out, meta, io.BytesIO(squashfs), architecture="arm64", image_id=IMAGE_ID, created_at=5
        )
    with open_sif(tmp_path / "app.sif") as opened:
        kinds = [(d.type_name, d.name, d.group, d.created_at) for d in opened.descriptors]
        assert kinds == [("Def.FILE", "", 1, 5), ("JSON.Generic", "inspect-metadata.json", 1, 5),
                         ("JSON.Generic", "oci-config.json", 1, 5), ("FS", "", 1, 5)]  # fmt: skip
        partition = opened.descriptors[3]
        assert partition.offset % 4096 == 0 and partition.partition is not None
        assert (
            partition.partition.fs_name,
            partition.partition.part_name,
            partition.partition.architecture,
        ) == ("Squashfs", "*System", "arm64")
        assert opened.read(opened.descriptors[0], 1000) == meta.definition
        assert opened.read(partition, 10_000) == squashfs
    assert header.architecture == "arm64"
    with (tmp_path / "bad.sif").open("wb") as out, pytest.raises(UnsupportedError, match="wasm"):
        write_apptainer_sif(out, meta, io.BytesIO(b""), architecture="wasm")


def test_inspect_reads_source_config_and_labels(tmp_path: Path) -> None:
    meta = sif_metadata(CONFIG, source="example.org/app:2", digest=DIGEST, resolved_digest="sha256:" + "34" * 32,
                        architecture="arm64", created=5, tool_version="t")  # fmt: skip
    with (tmp_path / "app.sif").open("wb") as out:
        write_apptainer_sif(
            out, meta, io.BytesIO(b"hsqs"), architecture="arm64", image_id=IMAGE_ID, created_at=5
        )
    result = inspect_sif(tmp_path / "app.sif").to_dict()
    assert result["source"] == {
        "bootstrap": "docker", "from": f"example.org/app@{DIGEST}", "reference": "example.org/app", "digest": DIGEST,
        "base_name": "example.org/app:2", "base_digest": "sha256:" + "34" * 32,
    }  # fmt: skip
    assert result["oci_config"]["kind"] == "container-config"
    assert (result["oci_config"]["entrypoint"], result["oci_config"]["env"]) == (["/bin/app"], ["PATH=/bin"])
    assert result["labels"]["org.opencontainers.image.base.name"] == "example.org/app:2"
    assert result["primary_partition"] == 4 and result["warnings"] == []
    assert result["header"]["id"] == "01234567-89ab-cdef-0123-456789abcdef"
    assert [d["type"] for d in result["descriptors"]] == [
        "deffile",
        "generic-json",
        "generic-json",
        "partition",
    ]
    assert result["descriptors"][3]["partition"] == {
        "fs": "squashfs",
        "type": "primary-system",
        "architecture": "arm64",
    }


def test_inspect_of_a_full_image_config_and_of_broken_metadata(tmp_path: Path) -> None:
    write(tmp_path / "a.sif", [(ObjectInput(DataType.GENERIC_JSON, name="oci-config.json"), CONFIG),
                               (ObjectInput(DataType.GENERIC_JSON, name="inspect-metadata.json"), b"{nope")])  # fmt: skip
    result = inspect_sif(tmp_path / "a.sif").to_dict()
    assert result["oci_config"]["kind"] == "image-config" and result["oci_config"]["entrypoint"] == [
        "/bin/app"
    ]
    assert result["definition"] is None and result["labels"] is None and result["primary_partition"] is None
    assert result["source"]["digest"] is None
    assert len(result["warnings"]) == 1 and "not valid JSON" in result["warnings"][0]


def test_inspect_leaves_oversized_metadata_unread(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b" " * (4 * 1024 * 1024 + 1))
    with big.open("rb") as stream:
        write(tmp_path / "a.sif", [(ObjectInput(DataType.DEFFILE), stream)])
    result = inspect_sif(tmp_path / "a.sif").to_dict()
    assert result["definition"] is None
    assert result["warnings"] == ["SIF object 1 is 4194305 bytes (over 4194304); not read"]


def test_opening_what_is_not_a_sif(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such SIF file"):
        inspect_sif(tmp_path / "missing.sif")
    with pytest.raises(UsageError, match="is a directory"):
        inspect_sif(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a regular file"):
        inspect_sif(tmp_path / "fifo")  # and does not block waiting for a writer
    (tmp_path / "text").write_text("hello")
    with pytest.raises(MalformedError, match="the header alone"):
        inspect_sif(tmp_path / "text")


def test_a_truncated_sif_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "a.sif", [(ObjectInput.partition("amd64"), b"x" * 100)])
    raw = (tmp_path / "a.sif").read_bytes()
    (tmp_path / "cut.sif").write_bytes(raw[:-1])
    with pytest.raises(MalformedError, match="lies outside the file"):
        inspect_sif(tmp_path / "cut.sif")
