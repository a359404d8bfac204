"""SIF files against the reference tools: ``siftool`` (sylabs/sif's CLI, Debian package) reads what regpeek
writes, regpeek reads what ``siftool`` writes, and the squashfs tools read the partition.

- A SIF written by :class:`regpeek.disk.sif.SifWriter` (a definition, a ``oci-config.json`` GenericJSON
  object, a squashfs partition made here with ``mksquashfs``) is listed by ``siftool list``, ``info``
  and ``header`` with the types, names, positions, partition file system/type/architecture, UUID and
  times written; ``siftool dump`` gives back each object byte for byte; ``unsquashfs -lln`` lists
  the partition.
- Apptainer's SIF of an image (regpeek's ``/.singularity.d`` tree appended to the image's tar,
  ``tar2sqfs``, :func:`regpeek.disk.sif.write_apptainer_sif`): the objects in Apptainer's order, the
  tree as ``unsquashfs`` lists it, and, in the extracted tree, the environment script sourced by
  ``sh`` and the runscript run by ``sh`` with a fake entrypoint.
- ``regpeek inspect sif:FILE`` of a SIF made by ``siftool new`` + ``siftool add``.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from regpeek.cli.main import main
from regpeek.disk.apptainer import append_entries
from regpeek.disk.sif import SifWriter, write_apptainer_sif
from regpeek.formats.apptainer import Existing, TreeEntry, held_paths, merge_tree, sif_metadata, watched_paths
from regpeek.formats.sif import DataType, ObjectInput, PartType
from tests.support.fixtures import require_tool

IMAGE_ID = bytes.fromhex("6f1c2d3e4a5b46c7a8d9e0f112233445")
UUID_TEXT = "6f1c2d3e-4a5b-46c7-a8d9-e0f112233445"
CREATED = 1_714_564_800  # 2024-05-01 12:00:00 UTC
DIGEST = "sha256:" + "5e" * 32
TIMEOUT = 120


def tool(*args: str | Path, input: bytes | None = None) -> bytes:
    result = subprocess.run(
        [str(a) for a in args], input=input, capture_output=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stderr.decode(errors='replace')}"
    return result.stdout


@pytest.fixture(autouse=True)
def _tools() -> None:
    for binary in ("siftool", "mksquashfs", "unsquashfs", "tar2sqfs"):
        require_tool(binary)


@pytest.fixture
def squashfs(tmp_path: Path) -> Path:
    """A small squashfs made by mksquashfs: a file, a directory, a symlink."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "greeting").write_text("hello from squashfs\n")
    (tree / "bin").mkdir()
    (tree / "bin" / "tool").write_bytes(os.urandom(70_000))
    (tree / "bin" / "tool").chmod(0o751)
    (tree / "link").symlink_to("etc/greeting")
    out = tmp_path / "rootfs.sqfs"
    tool("mksquashfs", tree, out, "-noappend", "-quiet", "-comp", "gzip", "-all-root")
    return out


def siftool_list(path: Path) -> list[list[str]]:
    """Rows of ``siftool list``: id, group, link, position, type."""
    rows = []
    for line in tool("siftool", "list", path).decode().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) == 5 and cells[0].isdigit():
            rows.append(cells)
    return rows


def siftool_fields(output: bytes) -> dict[str, str]:
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in output.decode().splitlines())
        if value
    }


def test_siftool_reads_a_sif_regpeek_writes(tmp_path: Path, squashfs: Path) -> None:
    definition = b"bootstrap: docker\nfrom: example.org/app@" + DIGEST.encode() + b"\n\n"
    config = b'{"Env":["PATH=/bin"],"Cmd":["sh"]}'
    image = tmp_path / "out.sif"
    with image.open("wb") as out, squashfs.open("rb") as partition:
        writer = SifWriter(out, image_id=IMAGE_ID, created_at=CREATED)
        writer.add(ObjectInput(DataType.DEFFILE), definition)
        writer.add(ObjectInput(DataType.GENERIC_JSON, name="oci-config.json"), config)
        writer.add(ObjectInput.partition("arm64"), partition)
        writer.finish()
    part_size = squashfs.stat().st_size
    def_end = 32176 + len(definition)
    json_end = def_end + len(config)
    assert siftool_list(image) == [
        ["1", "1", "NONE", f"32176-{def_end}", "Def.FILE"],
        ["2", "1", "NONE", f"{def_end}-{json_end}", "JSON.Generic"],
        ["3", "1", "NONE", f"32768-{32768 + part_size}", "FS (Squashfs/*System/arm64)"],
    ]
    header = siftool_fields(tool("siftool", "header", image))
    assert header["Launch Script"] == "#!/usr/bin/env run-singularity"
    assert (header["Version"], header["Primary Architecture"], header["ID"]) == ("01", "arm64", UUID_TEXT)
    assert header["Created At"] == header["Modified At"] == "2024-05-01 12:00:00 +0000 UTC"
    assert (header["Descriptors Free"], header["Descriptors Total"], header["Descriptors Offset"]) == (
        "45",
        "48",
        "4096",
    )
    assert header["Data Offset"] == "32176"
    info = siftool_fields(tool("siftool", "info", "2", image))
    assert (info["Data Type"], info["Name"], info["Group ID"], info["Size"]) == (
        "JSON.Generic",
        "oci-config.json",
        "1",
        str(len(config)),
    )
    info = siftool_fields(tool("siftool", "info", "3", image))
    assert (info["Filesystem Type"], info["Partition Type"], info["Architecture"]) == (
        "Squashfs",
        "*System",
        "arm64",
    )
    assert (info["Offset"], info["Size"]) == ("32768", str(part_size))
    assert info["Created At"] == "2024-05-01 12:00:00 +0000 UTC"
    assert tool("siftool", "dump", "1", image) == definition
    assert tool("siftool", "dump", "2", image) == config
    dumped = tool("siftool", "dump", "3", image)
    assert dumped == squashfs.read_bytes()
    (tmp_path / "dumped.sqfs").write_bytes(dumped)
    listing = tool("unsquashfs", "-lln", tmp_path / "dumped.sqfs").decode()
    assert re.search(r"^-rwxr-x--x 0/0 +70000 .* squashfs-root/bin/tool$", listing, re.M), listing
    assert re.search(r"^lrwxrwxrwx 0/0 .* squashfs-root/link -> etc/greeting$", listing, re.M), listing


IMAGE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "SPACES": "a b  c",
    "QUOTES": 'it\'s "quoted"',
    "DOLLAR": "$HOME and ${X} and `id`",
    "BACKSLASH": "C:\\dir\\ \\\\",
    "NEWLINE": "one\ntwo",
}


def image_tar(entrypoint_path: str, held: frozenset[str], tree: Sequence[TreeEntry]) -> bytes:
    """The image's flattened tar (a few files, an /etc/hosts Apptainer empties, the fake entrypoint), then ``tree``.

    Image entries at ``held`` paths are left out, as a flattener holds them back for the merge.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, mode: int = 0o644, uid: int = 0) -> None:
            if name in held:
                return
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, 1_600_000_000
            if data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        for directory in ("bin", "etc", "opt", "tmp"):
            add(directory, mode=0o1777 if directory == "tmp" else 0o755)
        add("etc/hosts", b"127.0.0.1 image\n", mode=0o600, uid=3)
        add("opt/data", b"owned by 1000", uid=1000)
        add(entrypoint_path, b'#!/bin/sh\nfor word in "$@"; do printf "%s\\0" "$word"; done\n', mode=0o755)
        append_entries(tar, tree)
    return buffer.getvalue()


def test_apptainer_sif_of_an_image(tmp_path: Path) -> None:
    extracted = tmp_path / "extracted"  # where unsquashfs puts the tree; the entrypoint lives in it
    entrypoint = f"{extracted}/bin/show-argv"
    config = json.dumps({
        "architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Env": [f"{k}={v}" for k, v in IMAGE_ENV.items()], "Entrypoint": [entrypoint, "fixed"],
                   "Cmd": ["default arg"], "Labels": {"org.example": "yes"}},
    }).encode()  # fmt: skip
    meta = sif_metadata(config, source="registry.example/team/app:1.0", digest=DIGEST, architecture="arm64",
                        created=CREATED, tool_version="test")  # fmt: skip
    existing = {"bin": Existing("dir"), "etc": Existing("dir"), "opt": Existing("dir"), "tmp": Existing("dir"),
                "etc/hosts": Existing("file", 0o600, 3, 3), "opt/data": Existing("file"), "bin/show-argv": Existing("file")}  # fmt: skip
    merge = merge_tree(meta.entries, {p: e for p, e in existing.items() if p in watched_paths(meta.entries)})
    assert merge.keep_image == frozenset()  # the image's /etc/hosts is replaced
    squashfs = tmp_path / "rootfs.sqfs"
    stream = image_tar("bin/show-argv", held_paths(meta.entries), merge.write)
    tool("tar2sqfs", "-q", "-f", "-c", "gzip", "-j", "1", squashfs, input=stream)
    image = tmp_path / "app.sif"
    with image.open("wb") as out, squashfs.open("rb") as partition:
        write_apptainer_sif(out, meta, partition, architecture="arm64", image_id=IMAGE_ID, created_at=CREATED)

    rows = siftool_list(image)
    assert [row[4] for row in rows] == [
        "Def.FILE",
        "JSON.Generic",
        "JSON.Generic",
        "FS (Squashfs/*System/arm64)",
    ]
    assert [siftool_fields(tool("siftool", "info", row[0], image)).get("Name") for row in rows[1:3]] == [
        "inspect-metadata.json", "oci-config.json"]  # fmt: skip
    assert tool("siftool", "dump", "1", image) == meta.definition
    assert json.loads(tool("siftool", "dump", "3", image))["Entrypoint"] == [entrypoint, "fixed"]
    (tmp_path / "dumped.sqfs").write_bytes(tool("siftool", "dump", "4", image))

    listing = tool("unsquashfs", "-lln", tmp_path / "dumped.sqfs").decode()
    lines = {
        line.split()[-1] if " -> " not in line else line.split(" -> ")[0].split()[-1]: line
        for line in listing.splitlines()
    }
    assert lines["squashfs-root/.singularity.d/runscript"].startswith("-rwxr-xr-x 0/0")
    assert lines["squashfs-root/.singularity.d/labels.json"].startswith("-rw-r--r-- 0/0")
    assert lines["squashfs-root/singularity"].endswith(
        "squashfs-root/singularity -> .singularity.d/runscript"
    )
    assert lines["squashfs-root/opt/data"].startswith("-rw-r--r-- 1000/1000")
    assert lines["squashfs-root/tmp"].startswith("drwxrwxrwt")  # the image's own /tmp is kept
    assert lines["squashfs-root/etc/hosts"].split()[:3] == ["-rw-r--r--", "3/3", "0"]  # emptied, owner kept
    for path in (
        "proc",
        "sys",
        "dev",
        "home",
        "root",
        "var/tmp",
        ".singularity.d/libs",
        "etc/resolv.conf",
        ".singularity.d/env/10-docker2singularity.sh",
        ".singularity.d/actions/run",
        ".singularity.d/Singularity",
    ):
        assert f"squashfs-root/{path}" in lines, path  # fmt: skip

    tool("unsquashfs", "-q", "-n", "-d", extracted, tmp_path / "dumped.sqfs")
    env_file = extracted / ".singularity.d/env/10-docker2singularity.sh"
    printed = tool("env", "-i", "/bin/sh", "-c", f'. "{env_file}" && /usr/bin/env -0')
    variables = dict(item.split("=", 1) for item in printed.decode().split("\0") if item)
    variables.pop("PWD", None)
    assert variables == IMAGE_ENV
    runscript = extracted / ".singularity.d/runscript"
    assert tool("/bin/sh", runscript).split(b"\0")[:-1] == [b"fixed", b"default arg"]
    assert tool("/bin/sh", runscript, "one arg", "two").split(b"\0")[:-1] == [b"fixed", b"one arg", b"two"]
    assert json.loads((extracted / ".singularity.d/labels.json").read_text())["org.example"] == "yes"

    assert main(["inspect", "--json", f"sif:{image}"]) == 0


def test_inspect_reads_a_sif_siftool_makes(
    tmp_path: Path, squashfs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "made.sif"
    (tmp_path / "def").write_text(
        "Bootstrap: docker\nFrom: example.org/app:1@" + DIGEST + "\n\n%post\n  true\n"
    )
    (tmp_path / "config.json").write_text(
        '{"Env":["A=1"],"Entrypoint":["/bin/app"],"Cmd":["--help"],"WorkingDir":"/w"}'
    )
    tool("siftool", "new", image)
    tool("siftool", "add", image, tmp_path / "def", "--datatype", "1")
    tool(
        "siftool", "add", image, tmp_path / "config.json", "--datatype", "6", "--filename", "oci-config.json"
    )
    tool(
        "siftool",
        "add",
        image,
        squashfs,
        "--datatype",
        "4",
        "--parttype",
        "2",
        "--partfs",
        "1",
        "--partarch",
        "2",
    )
    tool(
        "siftool",
        "add",
        image,
        tmp_path / "def",
        "--datatype",
        "7",
        "--groupid",
        "2",
        "--link",
        "3",
        "--filename",
        "extra.bin",
    )
    header = siftool_fields(tool("siftool", "header", image))

    assert main(["inspect", "--json", f"sif:{image}"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["header"]["id"] == header["ID"] and result["header"]["architecture"] == "amd64"
    assert result["header"]["launch_script"] == ""  # siftool new writes none
    assert (result["header"]["descriptors_total"], result["header"]["descriptors_free"]) == (48, 44)
    rows = siftool_list(image)
    assert [(d["id"], d["type_name"], d["offset"], d["offset"] + d["size"]) for d in result["descriptors"]] == [
        (int(r[0]), r[4].split(" ")[0], *map(int, r[3].split("-"))) for r in rows]  # fmt: skip
    partition = result["descriptors"][2]
    assert partition["partition"] == {"fs": "squashfs", "type": "primary-system", "architecture": "amd64"}
    assert result["primary_partition"] == 3
    extra = result["descriptors"][3]
    assert (extra["name"], extra["group"], extra["link"], extra["link_is_group"], extra["type"]) == (
        "extra.bin",
        2,
        3,
        False,
        "generic",
    )
    assert result["definition"].startswith("Bootstrap: docker\n")
    assert result["source"]["bootstrap"] == "docker"
    assert (result["source"]["reference"], result["source"]["digest"]) == ("example.org/app:1", DIGEST)
    config = result["oci_config"]
    assert (config["kind"], config["entrypoint"], config["cmd"], config["env"], config["working_dir"]) == (
        "container-config", ["/bin/app"], ["--help"], ["A=1"], "/w")  # fmt: skip

    assert main(["inspect", f"sif:{image}"]) == 0
    human = capsys.readouterr().out
    for text in (
        header["ID"],
        "FS (Squashfs/*System/amd64)",
        "extra.bin",
        "From: example.org/app:1@",
        '["/bin/app"]',
        "Working dir  /w",
    ):
        assert text in human, text


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["inspect", "sif:{tmp}/missing.sif"], 3, "no such SIF file"),
        (["inspect", "sif:{tmp}/garbage"], 5, "not a SIF file"),
        (["inspect", "sif:{tmp}"], 2, "is a directory"),
        (["inspect", "sif:{tmp}/garbage", "alpine"], 2, "on its own"),
        (["inspect", "sif:"], 2, "needs a file"),
    ],
)
def test_inspect_errors(
    argv: list[str], code: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "garbage").write_bytes(b"\x7fELF" + bytes(500))
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_data_partition_is_not_primary(tmp_path: Path, squashfs: Path) -> None:
    image = tmp_path / "data.sif"
    with image.open("wb") as out, squashfs.open("rb") as partition:
        writer = SifWriter(out, image_id=IMAGE_ID, created_at=CREATED)
        writer.add(ObjectInput.partition("ppc64le", part_type=PartType.DATA), partition)
        writer.finish()
    assert siftool_list(image)[0][4] == "FS (Squashfs/Data/ppc64le)"
    assert "Primary Architecture" not in siftool_fields(
        tool("siftool", "header", image)
    )  # none without a primary


def test_a_sif_line_in_a_batch_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--from-file`` streams references to the registry client; a ``sif:`` line there is refused on its own line."""
    (tmp_path / "refs.txt").write_text(f"sif:{tmp_path}/x.sif\n")
    assert main(["inspect", "--from-file", str(tmp_path / "refs.txt")]) == 2
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {
        "reference": f"sif:{tmp_path}/x.sif",
        "error": {
            "code": 2,
            "kind": "usage",
            "message": "a sif:FILE is inspected on its own: regpeek inspect sif:FILE",
        },
    }


# Terminal attacks in everything a SIF can carry as text (see test_hostile_text.py for the catalogue).
ATTACK = "\x1b]0;pwned-title\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x9b31m\u202eexe.txt\u2066[link=http://evil.example]x[/link][/]\r\x08\x7f"
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def test_hostile_text_in_a_sif_is_shown_inert(tmp_path: Path) -> None:
    """Names, the definition, config values, labels and an OCI digest from the file are shown as escapes."""
    image = tmp_path / "hostile.sif"
    config = {
        "Env": [f"A={ATTACK}\nB"],
        "Entrypoint": [ATTACK],
        "Labels": {ATTACK: ATTACK},
        "WorkingDir": ATTACK,
    }
    metadata = {"data": {"attributes": {"labels": {"org.opencontainers.image.base.name": ATTACK}}}}
    with image.open("wb") as out:
        writer = SifWriter(out, image_id=IMAGE_ID, created_at=CREATED)
        writer.add(
            ObjectInput(DataType.DEFFILE),
            f"bootstrap: docker\nfrom: x{ATTACK}\n".encode() + b"\xff\n",  # and a byte that is not UTF-8
        )
        writer.add(ObjectInput(DataType.GENERIC_JSON, name="oci-config.json"), json.dumps(config).encode())
        writer.add(
            ObjectInput(DataType.GENERIC_JSON, name="inspect-metadata.json"), json.dumps(metadata).encode()
        )
        writer.add(ObjectInput(DataType.GENERIC, name="\x1b]0;t\x07\x9b31m\u202e[b]x[/b]"), b"")
        writer.add(ObjectInput(DataType.OCI_BLOB, extra=b"sha256:\x1b[2J\x9b\x07"), b"")
        writer.finish()
    run = [sys.executable, "-m", "regpeek", "inspect"]
    human = subprocess.run([*run, f"sif:{image}"], capture_output=True, timeout=TIMEOUT, check=True)
    text = human.stdout.decode() + human.stderr.decode()
    assert not FORBIDDEN.search(text), repr(FORBIDDEN.findall(text))
    for shown in (
        "\\x1b]0;pwned-title\\x07",
        "\\x9b31m",
        "\\u202e",
        "[link=http://evil.example]",
        "\\x1b]0;t\\x07",
        "\\x1b[2J",
    ):
        assert shown in text, shown
    machine = subprocess.run(
        [*run, "--json", f"sif:{image}"], capture_output=True, timeout=TIMEOUT, check=True
    )
    assert not FORBIDDEN.search(machine.stdout.decode())
    result = json.loads(machine.stdout)
    assert result["oci_config"]["entrypoint"] == [ATTACK] and result["oci_config"]["labels"] == {
        ATTACK: ATTACK
    }
    assert result["definition"] == f"bootstrap: docker\nfrom: x{ATTACK}\n\ufffd\n"
    assert result["source"]["base_name"] == ATTACK
    assert result["descriptors"][3]["name"] == "\x1b]0;t\x07\x9b31m\u202e[b]x[/b]"
