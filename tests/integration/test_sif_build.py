"""``regpeek sif`` end to end against the real registry (issue 9, "Tests"), with no Apptainer.

Oracles: ``siftool`` (sylabs/sif's reference tool) for the SIF, ``unsquashfs`` (squashfs-tools) for the
partition, ``regpeek export`` of the same image plus the tree :mod:`regpeek.formats.apptainer` defines
(after its merge policies) for what the partition must hold, ``sh`` for the environment script and the
runscript, the registry's access log for downloads. Images are hand-made layers
(:class:`tests.support.layers.Entry`): whiteouts, opaque directories, hard links, symlinks, setuid and
setgid files, owners other than root, FIFOs, device nodes, hostile names, directories with modes
0555/0700/1777/2750 owned by one uid and holding files of others, an image that already has
``/etc/hosts``, ``/tmp``, ``/singularity``, ``/.singularity.d``; plus a multi-platform index, a signed
schema1 image and zstd layers. Each build runs with every squashfs way (``tar2sqfs``,
``mksquashfs -tar``, ``mksquashfs`` with a pseudo file), as root (in process) and as ``nobody``
(``setpriv``, regpeek as a subprocess). Every build uses ``SOURCE_DATE_EPOCH``, so the expected
mtimes are known.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import regpeek
from regpeek.formats.apptainer import sif_metadata
from regpeek.formats.reference import Reference
from tests.integration.api import registry_flags, run_cli
from tests.support.faultproxy import Answer, Exchange, Fault, FaultProxy, flip_byte
from tests.support.fixtures import require_tool
from tests.support.images import PushedIndex, PushedSchema1, push_index, push_schema1_signed
from tests.support.layers import Entry
from tests.support.nobody import CAN_ACT_AS_NOBODY, NOBODY_UID, WHY_NOT, Nobody
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.sifcheck import (
    Image,
    Tree,
    directory_tree,
    export_tree,
    minute,
    push_layers_image,
    run,
    squashfs_tree,
    unsquashfs_listing,
    with_runtime_tree,
)
from tests.support.util import sha256_digest

BUILD_TIME = 1_700_000_000  # SOURCE_DATE_EPOCH of every build: 2023-11-14 22:13:20 UTC


def _mksquashfs_version() -> tuple[int, int]:
    binary = shutil.which("mksquashfs")
    if binary is None:
        return (0, 0)
    done = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"version (\d+)\.(\d+)", done.stdout + done.stderr)
    return (int(match[1]), int(match[2])) if match else (0, 0)


# mksquashfs -tar sets the root directory's owner and time from squashfs-tools 4.6 (Debian 12 has 4.5.1,
# whose -tar ignores -root-uid/-root-gid/-root-time: regpeek refuses that way there, tested below)
MKSQUASHFS_TAR = _mksquashfs_version() >= (4, 6)
WAYS = ("tar2sqfs", "mksquashfs-pseudo", *(["mksquashfs-tar"] if MKSQUASHFS_TAR else []))
USERS = ("root", "nobody")
IS_ROOT = os.geteuid() == 0

# Names a shell, fnmatch, mksquashfs's pseudo and action files, or a tar reader might trip over.
HOSTILE_NAMES = [
    "a b",
    "trailing space ",
    "it's",
    'say "hi"',
    "back\\slash",
    "double\\\\back",
    "star*",
    "what?",
    "[set]",
    "paren(1)",
    "comma,sep",
    "ünïcødé-日本語-😀",
    "tab\there",
    "-dash",
    "semi;colon",
    "dollar$HOME",
    "back`tick`",
    "brace{a,b}",
    "percent%d",
    "amp&pipe|",
    "hash#",
    "~tilde",
    "bang!",
    "eq=",
    "lt<gt>",
]


def _noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def layers_image_layers() -> list[list[Entry]]:
    """Three layers: the base, then whiteouts, an opaque directory, replacements and an upper hard link."""
    base = [
        Entry("./", "dir", mode=0o755),
        Entry("bin", "dir"),
        Entry("bin/tool", data=b"tool v1\n", mode=0o755),
        Entry("bin/suid", data=b"#!/bin/sh\nid\n", mode=0o4755),
        Entry("bin/sgid", data=b"sgid\n", mode=0o2711, gid=50),
        Entry("etc", "dir"),
        Entry("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"),
        Entry("data", "dir"),
        Entry("data/old.txt", data=b"old"),
        Entry("data/keep.txt", data=b"keep"),
        Entry("data/big.bin", data=_noise(1, 300_000)),  # several squashfs blocks
        Entry("data/empty", data=b""),
        Entry("opaque", "dir", mode=0o750),
        Entry("opaque/a", data=b"a"),
        Entry("opaque/sub", "dir"),
        Entry("opaque/sub/b", data=b"b"),
        Entry("gone", "dir"),
        Entry("gone/x", data=b"x"),
        Entry("swap", "dir"),
        Entry("swap/child", data=b"c"),
        Entry("hl", "dir"),
        Entry("hl/orig", data=b"shared inode\n", mode=0o640, uid=1000, gid=1000),
        Entry("hl/second", "hardlink", linkname="hl/orig"),
        Entry("sym", "dir"),
        Entry("sym/rel", "symlink", linkname="../bin/tool"),
        Entry("sym/abs", "symlink", linkname="/etc/passwd"),
        Entry("sym/dangling", "symlink", linkname="/nowhere/at all"),
        Entry("sym/dir", "symlink", linkname="../srv", uid=1000, gid=1000),
        Entry("run", "dir"),
        Entry("run/fifo", "fifo", mode=0o620, uid=1000, gid=1000),
        Entry("dev", "dir"),
        Entry("dev/null0", "chardev", mode=0o666, major=1, minor=3),
        Entry("dev/loop9", "blockdev", mode=0o660, gid=6, major=7, minor=9),
        Entry("home", "dir"),
        Entry("home/alice", "dir", mode=0o700, uid=1000, gid=1000),
        Entry("home/alice/notes", data=b"notes", mode=0o600, uid=1000, gid=1000),
        Entry("home/alice/from-bob", data=b"bob", mode=0o640, uid=1001, gid=100),
        Entry("home/alice/roots", data=b"root's", mode=0o444),
        Entry("srv", "dir"),
        Entry("srv/ro", "dir", mode=0o555, uid=2000, gid=2000),
        Entry("srv/ro/file", data=b"ro", mode=0o444),
        Entry("srv/ro/inner", "dir", mode=0o700, uid=2001, gid=2001),
        Entry("srv/ro/inner/secret", data=b"secret", mode=0o400, uid=2002, gid=2002),
        Entry("srv/private", "dir", mode=0o700, uid=3000, gid=3000),
        Entry("srv/private/nothing", data=b"mode 0", mode=0o000, uid=3001, gid=3001),
        Entry("srv/shared", "dir", mode=0o1777),
        Entry("srv/shared/f", data=b"anyone", mode=0o666, uid=4000, gid=4000),
        Entry("srv/team", "dir", mode=0o2750, uid=5000, gid=5001),
        Entry("srv/team/f", data=b"team", mode=0o640, uid=5002, gid=5001),
        Entry("odd names", "dir", mode=0o750, uid=6000, gid=6000),
        *[
            Entry(f"odd names/{name}", data=name.encode(), mode=0o644, uid=6001 + n, gid=6000)
            for n, name in enumerate(HOSTILE_NAMES)
        ],
        Entry("odd names/dir (1), [x] *", "dir", mode=0o2755, uid=6100, gid=6101),
        Entry('odd names/dir (1), [x] */it\'s "deep"', data=b"deep", uid=6102, gid=6103, mode=0o4750),
        Entry("odd names/link *?", "symlink", linkname="it's"),
        Entry("odd names/hard, link", "hardlink", linkname="odd names/it's"),
    ]
    middle = [
        Entry("data/old.txt", "whiteout"),
        Entry("opaque", "opaque"),
        Entry("opaque/new", data=b"new"),
        Entry("gone", "whiteout"),
        Entry("swap", data=b"now a file"),
        Entry("bin/tool", data=b"tool v2\n", mode=0o750, gid=10),
        Entry("hl/upper-link", "hardlink", linkname="hl/orig"),
    ]
    top = [
        Entry("srv/ro", "dir", mode=0o555, uid=2000, gid=2000),
        Entry("srv/ro/added", data=b"added later", uid=2003, gid=2003),
        Entry("odd names/star*", "whiteout"),
        Entry("odd names/star*", data=b"star again", uid=7000),
    ]
    return [base, middle, top]


def apptainer_image_layers() -> list[list[Entry]]:
    """An image that already has what Apptainer's conversion writes."""
    return [
        [
            Entry("etc", "dir"),
            Entry("etc/hosts", data=b"127.0.0.1 image\n", mode=0o600, uid=3, gid=4),
            Entry("etc/hosts.link", "hardlink", linkname="etc/hosts"),
            Entry("etc/resolv.conf.orig", data=b"nameserver 192.0.2.1\n"),
            Entry("etc/resolv.conf", "hardlink", linkname="etc/resolv.conf.orig"),
            Entry("tmp", "dir", mode=0o1777),
            Entry("singularity", data=b"not a link\n", mode=0o755),
            Entry(".exec", "symlink", linkname="usr/bin/env"),
            Entry(".run", "dir", mode=0o700),
            Entry("environment", data=b"a file\n"),
            Entry("home", "symlink", linkname="var/home"),
            Entry("var", "dir", mode=0o700, uid=7, gid=7),
            Entry("var/home", "dir"),
            Entry(".singularity.d", "dir", mode=0o700),
            Entry(".singularity.d/env", "dir", mode=0o750),
            Entry(".singularity.d/env/50-custom.sh", data=b"export CUSTOM=1\n", mode=0o644),
            Entry(".singularity.d/labels.json", data=b"{}", mode=0o600, uid=9, gid=9),
            Entry(".singularity.d/runscript", data=b"#!/bin/sh\necho old\n", mode=0o700, uid=8, gid=8),
        ]
    ]


SHOW_ARGV = b'#!/bin/sh\nfor word in "$@"; do printf "%s\\0" "$word"; done\n'
IMAGE_ENV = {
    "PATH": "/opt/app/bin:/usr/bin:/bin",
    "SPACES": "a b  c ",
    "QUOTES": "it's \"double\" and 'single'",
    "DOLLAR": "$HOME and ${X:-y} and $(id) and `id`",
    "BACKSLASH": "C:\\dir\\ \\\\ \\n \\",
    "NEWLINES": "one\ntwo\n\nthree\n",
    "EMPTY": "",
    "EQUALS": "a=b=c",
    "UNICODE": "ünï 日本",
}


@dataclass
class Images:
    layers: Image
    apptainer: Image
    env: Image  # zstd layers; Entrypoint + Cmd
    noentry: Image  # the same layers, Cmd only
    related: Image  # layers' layers plus one
    index: PushedIndex
    schema1: PushedSchema1
    registry: Registry
    schema1_registry: Registry
    extract: Path  # where the env image's entrypoint is, once extracted


@pytest.fixture(scope="module", autouse=True)
def _tools_and_epoch() -> Iterator[None]:
    for binary in ("siftool", "unsquashfs", "tar2sqfs", "mksquashfs"):
        require_tool(binary)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", str(BUILD_TIME))
        patch.setenv("TZ", "UTC")
        yield


@pytest.fixture(scope="module")
def images(
    registry: Registry, schema1_registry: Registry, tmp_path_factory: pytest.TempPathFactory
) -> Images:
    extract = tmp_path_factory.mktemp("env-extract") / "root"
    entry = f"{extract}/bin/show-argv"
    env_layers = [
        [Entry("bin", "dir"), Entry("bin/show-argv", data=SHOW_ARGV, mode=0o755)],
        [Entry("opt", "dir"), Entry("opt/app", "dir"), Entry("opt/app/README", data=b"zstd layer\n")],
    ]
    env_config = {
        "Env": [f"{k}={v}" for k, v in IMAGE_ENV.items()] + ["BARE"],
        "Entrypoint": [entry, "fixed"],
        "Cmd": ["default arg", "with $HOME"],
        "WorkingDir": "/opt/app",
        "Labels": {"org.example.label": 'it\'s "labelled"'},
    }
    host = registry.host
    with pusher_for(schema1_registry) as pusher:
        schema1 = push_schema1_signed(pusher, "sif/schema1", "v1")
    with pusher_for(registry) as pusher:
        layers = layers_image_layers()
        return Images(
            layers=push_layers_image(pusher, host, "sif/layers", "v1", layers, config={"Cmd": ["/bin/tool"]}),
            apptainer=push_layers_image(pusher, host, "sif/apptainer", "v1", apptainer_image_layers()),
            env=push_layers_image(
                pusher, host, "sif/env", "v1", env_layers, compression="zstd", config=env_config
            ),
            noentry=push_layers_image(
                pusher,
                host,
                "sif/env",
                "noentry",
                env_layers,
                compression="zstd",
                config={"Cmd": [entry, "from cmd"]},
            ),
            related=push_layers_image(
                pusher,
                host,
                "sif/related",
                "v1",
                [*layers, [Entry("app", "dir"), Entry("app/new", data=_noise(2, 5000))]],
            ),
            index=push_index(pusher, "sif/index", "v1", "oci"),
            schema1=schema1,
            registry=registry,
            schema1_registry=schema1_registry,
            extract=extract,
        )


# -- building ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """An image to build: a reference, the platform to ask for, and what the SIF's metadata needs."""

    name: str
    ref: str
    registry: Registry
    config: bytes
    digest: str  # what the definition pins
    index_digest: str | None
    architecture: str
    variant: str
    arch_code: str  # siftool's architecture name
    platform: str | None = None

    def flags(self) -> list[str]:
        return [*registry_flags(self.registry), *(["--platform", self.platform] if self.platform else [])]


def cases(images: Images) -> dict[str, Case]:
    registry = images.registry
    found = {
        name: Case(name, image.ref, registry, image.config, image.digest, None, "amd64", "", "amd64")
        for name, image in (("layers", images.layers), ("apptainer", images.apptainer), ("env", images.env))
    }
    index_ref = f"{registry.host}/{images.index.repo}:{images.index.tag}"
    arm64 = images.index.child("linux", "arm64", "v8")
    found["arm64"] = Case(
        "arm64", index_ref, registry, arm64.config.data, arm64.digest, images.index.digest,
        architecture="arm64", variant="",  # v8, arm64's default, is normalised away
        arch_code="arm64", platform="linux/arm64",
    )  # fmt: skip
    armv7 = images.index.child("linux", "arm", "v7")
    found["armv7"] = Case(
        "armv7", index_ref, registry, armv7.config.data, armv7.digest, images.index.digest,
        architecture="arm", variant="v7", arch_code="arm", platform="linux/arm/v7",
    )  # fmt: skip
    s1 = images.schema1
    found["schema1"] = Case(
        "schema1", f"{images.schema1_registry.host}/{s1.repo}:{s1.tag}", images.schema1_registry,
        config=b"",  # the converted config: from a pull (Builder.config)
        digest=s1.digest, index_digest=None, architecture="amd64", variant="", arch_code="amd64",
    )  # fmt: skip
    return found


@dataclass
class Built:
    sif: Path
    partition: Path
    summary: dict[str, Any]
    tree: Tree


class Builder:
    """Builds each (case, way, user) once for the module; root builds run in process."""

    def __init__(self, images: Images, top: Path, nobody: Nobody | None) -> None:
        self.images = images
        self.cases = cases(images)
        self.top = top
        self.nobody = nobody
        self.cache = top / "root-cache"
        self._built: dict[tuple[str, str, str], Built] = {}
        self._expected: dict[str, Tree] = {}
        self._configs: dict[str, bytes] = {}

    def sif(self, name: str, way: str = "tar2sqfs", user: str = "root") -> Built:
        key = (name, way, user)
        if key not in self._built:
            case = self.cases[name]
            argv = ["sif", "--json", "--squashfs-tool", way, *case.flags()]
            if user == "root":
                out = self.top / f"{name}-{way}-root" / "out.sif"
                out.parent.mkdir()
                done = run_cli(*argv, "--cache-dir", str(self.cache), case.ref, str(out))
                assert done.code == 0, done.stderr
                summary = json.loads(done.stdout)
            else:
                if self.nobody is None:
                    pytest.skip(WHY_NOT)
                out = self.nobody.directory(f"{name}-{way}") / "out.sif"
                finished = self.nobody.regpeek(
                    *argv, case.ref, str(out), env={"SOURCE_DATE_EPOCH": str(BUILD_TIME)}
                )
                assert finished.returncode == 0, finished.stderr
                assert out.stat().st_uid == NOBODY_UID
                summary = json.loads(finished.stdout)
            partition = out.parent / "partition.sqfs"
            partition.write_bytes(run("siftool", "dump", "4", out))
            self._built[key] = Built(out, partition, summary, squashfs_tree(partition, out.parent))
        return self._built[key]

    def config(self, name: str) -> bytes:
        """The image config the SIF is made from (a schema1 image's as regpeek converts it)."""
        case = self.cases[name]
        if case.config:
            return case.config
        if name not in self._configs:
            layout = self.top / f"{name}-layout"
            done = run_cli("pull", "--cache-dir", str(self.cache), *case.flags(), case.ref, str(layout))
            assert done.code == 0, done.stderr
            index = json.loads((layout / "index.json").read_text())
            manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
            self._configs[name] = _blob(layout, manifest["config"]["digest"])
        return self._configs[name]

    def expected(self, name: str) -> Tree:
        """``regpeek export`` of the image, joined by the runtime tree after Apptainer's policies."""
        if name not in self._expected:
            case = self.cases[name]
            exported = self.top / f"{name}-export.tar"
            done = run_cli("export", "--cache-dir", str(self.cache), *case.flags(), case.ref, str(exported))
            assert done.code == 0, done.stderr
            metadata = sif_metadata(
                self.config(name),
                source=str(Reference.parse(case.ref)),
                digest=case.digest,
                resolved_digest=case.index_digest,
                architecture=case.architecture,
                variant=case.variant,
                created=BUILD_TIME,
                tool_version=regpeek.__version__,
            )
            self._expected[name] = with_runtime_tree(
                export_tree(exported.read_bytes()), metadata.entries, BUILD_TIME
            )
        return self._expected[name]


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, hexpart = digest.split(":")
    return (layout / "blobs" / algorithm / hexpart).read_bytes()


@pytest.fixture(scope="module")
def nobody() -> Iterator[Nobody | None]:
    if not CAN_ACT_AS_NOBODY:
        yield None
        return
    with Nobody() as made:
        yield made


@pytest.fixture(scope="module")
def builder(images: Images, tmp_path_factory: pytest.TempPathFactory, nobody: Nobody | None) -> Builder:
    return Builder(images, tmp_path_factory.mktemp("sif-builds"), nobody)


# -- 1. siftool describes regpeek's SIF as Apptainer's ------------------------------------------------
def _siftool_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in run("siftool", "list", path).decode().splitlines():
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) == 5 and cells[0].isdigit():
            rows.append(cells)
    return rows


def _siftool_fields(output: bytes) -> dict[str, str]:
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in output.decode().splitlines())
        if value
    }


SIFTOOL_TIME = "2023-11-14 22:13:20 +0000 UTC"


@pytest.mark.parametrize("name", ["env", "arm64", "armv7", "schema1"])
def test_siftool_lists_the_sif_as_apptainers(builder: Builder, name: str) -> None:
    case = builder.cases[name]
    built = builder.sif(name)
    rows = _siftool_rows(built.sif)
    assert [(row[0], row[1], row[2], row[4]) for row in rows] == [
        ("1", "1", "NONE", "Def.FILE"),
        ("2", "1", "NONE", "JSON.Generic"),
        ("3", "1", "NONE", "JSON.Generic"),
        ("4", "1", "NONE", f"FS (Squashfs/*System/{case.arch_code})"),
    ]
    header = _siftool_fields(run("siftool", "header", built.sif))
    assert header["Launch Script"] == "#!/usr/bin/env run-singularity"
    assert (header["Version"], header["Primary Architecture"]) == ("01", case.arch_code)
    assert header["ID"] == built.summary["sif_id"]
    assert header["Created At"] == header["Modified At"] == SIFTOOL_TIME
    assert (header["Descriptors Free"], header["Descriptors Total"], header["Data Offset"]) == (
        "44",
        "48",
        "32176",
    )
    infos = [_siftool_fields(run("siftool", "info", row[0], built.sif)) for row in rows]
    assert [info.get("Name") for info in infos] == [None, "inspect-metadata.json", "oci-config.json", None]
    assert all(info["Group ID"] == "1" and info["Created At"] == SIFTOOL_TIME for info in infos)
    partition = infos[3]
    assert (partition["Filesystem Type"], partition["Partition Type"], partition["Architecture"]) == (
        "Squashfs", "*System", case.arch_code)  # fmt: skip
    assert int(partition["Offset"]) % 4096 == 0
    assert int(partition["Size"]) == built.summary["partition_size"] == built.partition.stat().st_size
    assert (
        int(partition["Offset"]) + int(partition["Size"]) == built.sif.stat().st_size == built.summary["size"]
    )

    repository = str(Reference.parse(case.ref)).rsplit(":", 1)[0]
    assert (
        run("siftool", "dump", "1", built.sif)
        == f"bootstrap: docker\nfrom: {repository}@{case.digest}\n\n".encode()
    )
    served = json.loads(builder.config(name))
    stored = json.loads(run("siftool", "dump", "3", built.sif))
    assert stored == {
        key: value for key, value in served["config"].items() if value not in (None, [], {}, "")
    }
    inspected = json.loads(run("siftool", "dump", "2", built.sif))["data"]["attributes"]
    labels = inspected["labels"]
    assert labels["org.opencontainers.image.base.name"] == str(Reference.parse(case.ref))
    assert labels["org.opencontainers.image.base.digest"] == (case.index_digest or case.digest)
    assert (
        labels["org.opencontainers.image.architecture"]
        == labels["org.label-schema.build-arch"]
        == case.architecture
    )
    assert labels.get("org.opencontainers.image.variant", "") == case.variant
    assert labels["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert inspected["deffile"] == f"bootstrap: docker\nfrom: {repository}@{case.digest}"
    assert set(inspected["environment"]) == {
        "/.singularity.d/env/10-docker2singularity.sh",
        "/.singularity.d/env/90-environment.sh",
    }
    assert {"runscript", "startscript"} <= set(inspected)


# -- 2 and 3. the partition holds the export and the runtime tree, whichever way, whoever builds --------
LISTED = ["layers", "apptainer", "env", "arm64", "schema1"]


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", LISTED)
def test_the_partition_lists_the_export_and_the_runtime_tree(
    builder: Builder, name: str, way: str, user: str
) -> None:
    built = builder.sif(name, way, user)
    expected = builder.expected(name)
    assert built.summary["squashfs_tool"] == way
    assert _diff(built.tree.nodes, expected.nodes) == []
    assert built.tree.contents == expected.contents
    if IS_ROOT:  # unsquashfs -d keeps hard links only when it can extract everything
        assert built.tree.groups() == expected.groups()


def _diff(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """The paths whose description differs, readably."""
    lines = []
    for name in sorted(set(got) | set(want)):
        if got.get(name) != want.get(name):
            lines.append(f"{name!r}: got {got.get(name)}, want {want.get(name)}")
    return lines


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("name", ["layers", "apptainer"])
def test_the_three_ways_give_the_same_listing(builder: Builder, name: str, user: str) -> None:
    listings = {way: unsquashfs_listing(builder.sif(name, way, user).partition) for way in WAYS}
    for way in WAYS:
        assert listings[way] == listings["tar2sqfs"], way


def test_what_the_layers_image_holds(builder: Builder) -> None:
    """A few facts spelled out, beside the comparison with ``export``: whiteouts, the opaque directory,
    replacements, owners and modes, links and special files as the layers say."""
    tree = builder.sif("layers").tree
    nodes = tree.nodes
    assert not {"data/old.txt", "gone", "gone/x", "opaque/a", "opaque/sub", "swap/child"} & set(nodes)
    assert {"data/keep.txt", "opaque/new", "srv/ro/added", "srv/ro/file"} <= set(nodes)
    assert nodes["opaque"].mode == "drwxr-x---"  # the opaque directory keeps its own entry
    assert (nodes["swap"].mode, nodes["swap"].size) == ("-rw-r--r--", "10")
    assert (nodes["bin/tool"].mode, nodes["bin/tool"].owner, nodes["bin/tool"].size) == (
        "-rwxr-x---",
        "0/10",
        "8",
    )
    assert nodes["bin/suid"].mode == "-rwsr-xr-x" and nodes["bin/sgid"].mode == "-rwx--s--x"
    assert (nodes["srv/ro"].mode, nodes["srv/ro"].owner) == ("dr-xr-xr-x", "2000/2000")
    assert (nodes["srv/ro/inner/secret"].mode, nodes["srv/ro/inner/secret"].owner) == (
        "-r--------",
        "2002/2002",
    )
    assert (nodes["srv/private/nothing"].mode, nodes["srv/private/nothing"].owner) == (
        "----------",
        "3001/3001",
    )
    assert nodes["srv/shared"].mode == "drwxrwxrwt" and nodes["srv/team"].mode == "drwxr-s---"
    assert nodes["home/alice"].owner == "1000/1000" and nodes["home/alice/from-bob"].owner == "1001/100"
    assert (nodes["run/fifo"].mode, nodes["run/fifo"].owner) == ("prw--w----", "1000/1000")
    assert (nodes["dev/null0"].mode, nodes["dev/null0"].size) == ("crw-rw-rw-", "1,3")
    assert (nodes["dev/loop9"].mode, nodes["dev/loop9"].owner, nodes["dev/loop9"].size) == (
        "brw-rw----",
        "0/6",
        "7,9",
    )
    assert nodes["sym/dangling"].target == "/nowhere/at all" and nodes["sym/dir"].owner == "1000/1000"
    assert nodes["odd names/link *?"].target == "it's"
    assert nodes["odd names/star*"].owner == "7000/0"
    assert {f"odd names/{name}" for name in HOSTILE_NAMES} <= set(nodes)
    assert nodes['odd names/dir (1), [x] */it\'s "deep"'].mode == "-rwsr-x---"
    assert nodes["data/big.bin"].size == "300000" and nodes["data/big.bin"].mtime == "2020-09-13 12:26"
    if IS_ROOT:
        assert {"hl/orig", "hl/second", "hl/upper-link"} in tree.groups()
        assert {"odd names/it's", "odd names/hard, link"} in tree.groups()


def test_what_apptainer_adds_to_an_image_that_has_it(builder: Builder) -> None:
    """Directories the image has stay as they are (``/tmp`` 1777, a 0700 ``/.singularity.d``, ``/home``
    as a symlink); ``/etc/hosts`` is emptied with its owner kept, and its hard link follows it;
    ``/singularity`` and ``/environment`` as regular files stay; ``/.exec`` is Apptainer's link;
    existing scripts are replaced (``labels.json`` keeps its mode and owner, ``runscript`` its owner)."""
    tree = builder.sif("apptainer").tree
    nodes = tree.nodes
    build = minute(BUILD_TIME)
    assert nodes["tmp"].mode == "drwxrwxrwt" and nodes["tmp"].mtime == "2020-09-13 12:26"
    assert nodes[".singularity.d"].mode == "drwx------" and nodes[".singularity.d/env"].mode == "drwxr-x---"
    assert nodes[".singularity.d/env/50-custom.sh"].size == "16"
    assert nodes["home"].target == "var/home" and (nodes["var"].mode, nodes["var"].owner) == (
        "drwx------",
        "7/7",
    )
    assert (nodes["var/tmp"].mode, nodes["var/tmp"].owner, nodes["var/tmp"].mtime) == (
        "drwxr-xr-x",
        "0/0",
        build,
    )
    assert (nodes["etc/hosts"].mode, nodes["etc/hosts"].owner, nodes["etc/hosts"].size) == (
        "-rw-r--r--",
        "3/4",
        "0",
    )
    assert nodes["etc/hosts.link"] == nodes["etc/hosts"]
    assert nodes["singularity"].size == "11" and nodes["singularity"].mode == "-rwxr-xr-x"
    assert nodes["environment"].kind == "-" and nodes[".run"].kind == "d"
    assert nodes[".exec"].target == ".singularity.d/actions/exec"
    assert (nodes[".singularity.d/labels.json"].mode, nodes[".singularity.d/labels.json"].owner) == (
        "-rw-------",
        "9/9",
    )
    assert (nodes[".singularity.d/runscript"].mode, nodes[".singularity.d/runscript"].owner) == (
        "-rwxr-xr-x",
        "8/8",
    )
    # /etc/resolv.conf was a hard link to /etc/resolv.conf.orig: it becomes its own empty file, and the
    # other name keeps the image's content (Apptainer, writing through the link, would empty both)
    assert nodes["etc/resolv.conf"].size == "0" and nodes["etc/resolv.conf.orig"].size == "21"
    if IS_ROOT:
        assert tree.groups() == {frozenset({"etc/hosts", "etc/hosts.link"})}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("way", WAYS)
def test_the_root_directory_is_roots_with_the_build_time(
    images: Images,
    tmp_path: Path,
    nobody: Nobody | None,
    way: str,
    user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without SOURCE_DATE_EPOCH the build time is now: the squashfs root has it, to the second,
    whichever way builds it and whoever runs regpeek."""
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    argv = ["sif", "--squashfs-tool", way, *registry_flags(images.registry), images.env.ref]
    if user == "root":
        out = tmp_path / "out.sif"
        done = run_cli(*argv, str(out))
        assert done.code == 0, done.stderr
    else:
        if nobody is None:
            pytest.skip(WHY_NOT)
        out = nobody.directory(f"root-time-{way}") / "out.sif"
        finished = nobody.regpeek(*argv, str(out))
        assert finished.returncode == 0, finished.stderr
    created = _siftool_fields(run("siftool", "info", "4", out))["Created At"]
    partition = tmp_path / "partition.sqfs"
    partition.write_bytes(run("siftool", "dump", "4", out))
    run("unsquashfs", "-q", "-n", "-d", tmp_path / "x", partition)
    root = (tmp_path / "x").stat()
    assert stat.filemode(root.st_mode) == "drwxr-xr-x"
    assert time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(root.st_mtime)) == created
    assert unsquashfs_listing(partition)[""].owner == "0/0"


def test_which_squashfs_tool(images: Images, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``auto`` takes tar2sqfs, then mksquashfs (``-tar`` when it sets the root's owner and time,
    else the pseudo file); none installed, or an unusable choice, is exit 2 naming what to install."""
    only = tmp_path / "only-mksquashfs"
    only.mkdir()
    (only / "mksquashfs").symlink_to(shutil.which("mksquashfs") or "/usr/bin/mksquashfs")
    flags = registry_flags(images.registry)
    monkeypatch.setenv("PATH", str(only))
    done = run_cli("sif", "--json", *flags, images.env.ref, str(tmp_path / "auto.sif"))
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["squashfs_tool"] == (
        "mksquashfs-tar" if MKSQUASHFS_TAR else "mksquashfs-pseudo"
    )
    done = run_cli(
        "sif", "--squashfs-tool", "mksquashfs-tar", *flags, images.env.ref, str(tmp_path / "tar.sif")
    )
    if MKSQUASHFS_TAR:
        assert done.code == 0, done.stderr
    else:
        assert done.code == 2
        assert done.stderr == (
            f"regpeek: error: {only / 'mksquashfs'} cannot build from a tar stream with the root directory's "
            "owner and time (squashfs-tools 4.6 or later can): use tar2sqfs or mksquashfs-pseudo\n"
        )
    done = run_cli("sif", "--squashfs-tool", "tar2sqfs", *flags, images.env.ref, str(tmp_path / "t.sif"))
    assert done.code == 2 and "tar2sqfs is not installed: install squashfs-tools-ng" in done.stderr
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    done = run_cli("sif", *flags, images.env.ref, str(tmp_path / "none.sif"))
    assert done.code == 2
    assert done.stderr == (
        "regpeek: error: no squashfs tool found: install squashfs-tools-ng (tar2sqfs) or squashfs-tools (mksquashfs)\n"
    )
    assert sorted(os.listdir(tmp_path)) == [
        "auto.sif",
        "only-mksquashfs",
        *(["tar.sif"] if MKSQUASHFS_TAR else []),
    ]


# -- 4. the environment and the runscript, run by sh in the extracted tree -----------------------------
def _words(output: bytes) -> list[str]:
    assert output.endswith(b"\0") or output == b""
    return [word.decode() for word in output.split(b"\0")[:-1]]


def test_the_environment_and_the_runscript_behave_as_apptainers(
    builder: Builder, images: Images, tmp_path: Path
) -> None:
    root = images.extract
    run("unsquashfs", "-q", "-n", "-d", root, builder.sif("env").partition)
    env_file = root / ".singularity.d/env/10-docker2singularity.sh"
    printed = run("env", "-i", "/bin/sh", "-c", f'. "{env_file}" && exec /usr/bin/env -0')
    variables = dict(item.split("=", 1) for item in printed.decode().split("\0") if item)
    variables.pop("PWD", None)
    assert variables == {**IMAGE_ENV, "BARE": ""}
    # a value the environment already has wins, except PATH: the image's always does
    printed = run(
        "env",
        "-i",
        "SPACES=from host",
        "PATH=/host/bin",
        "/bin/sh",
        "-c",
        f'. "{env_file}" && exec /usr/bin/env -0',
    )
    variables = dict(item.split("=", 1) for item in printed.decode().split("\0") if item)
    assert (variables["SPACES"], variables["PATH"]) == ("from host", IMAGE_ENV["PATH"])

    runscript = root / ".singularity.d/runscript"
    clean = {"PATH": "/usr/bin:/bin", "HOME": "/home/someone"}

    def run_script(script: Path, *args: str, **env: str) -> list[str]:
        done = subprocess.run(
            ["/bin/sh", str(script), *args],
            capture_output=True,
            env={**clean, **env},
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return _words(done.stdout)

    assert run_script(runscript) == ["fixed", "default arg", "with $HOME"]  # CMD words as they are
    assert run_script(runscript, "one arg", "two  spaces", "") == ["fixed", "one arg", "two  spaces", ""]
    assert run_script(runscript, "$HOME", "it's") == ["fixed", "/home/someone", "it's"]  # expanded once more
    assert run_script(runscript, "$HOME", "a b", SINGULARITY_NO_EVAL="1") == ["fixed", "$HOME", "a b"]
    assert run_script(runscript, SINGULARITY_NO_EVAL="1") == ["fixed", "default arg", "with $HOME"]

    # no entrypoint: CMD runs; arguments replace it, the first one being the program
    other = tmp_path / "noentry"
    partition = tmp_path / "noentry.sqfs"
    out = tmp_path / "noentry.sif"
    done = run_cli("sif", *registry_flags(images.registry), images.noentry.ref, str(out))
    assert done.code == 0, done.stderr
    partition.write_bytes(run("siftool", "dump", "4", out))
    run("unsquashfs", "-q", "-n", "-d", other, partition)
    plain = other / ".singularity.d/runscript"
    show_argv = str(root / "bin/show-argv")
    assert run_script(plain) == ["from cmd"]
    assert run_script(plain, show_argv, "x y", "$HOME") == ["x y", "/home/someone"]
    assert run_script(plain, show_argv, "$HOME", SINGULARITY_NO_EVAL="1") == ["$HOME"]
    labels = json.loads((root / ".singularity.d/labels.json").read_text())
    assert labels["org.example.label"] == 'it\'s "labelled"'
    assert labels["org.opencontainers.image.base.digest"] == images.env.digest


# -- 5. inspect sif:OUT --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["arm64", "schema1"])
def test_inspect_shows_what_the_sif_was_built_from(builder: Builder, name: str) -> None:
    case = builder.cases[name]
    built = builder.sif(name)
    done = run_cli("inspect", "--json", f"sif:{built.sif}")
    assert done.code == 0, done.stderr
    shown = json.loads(done.stdout)
    summary = built.summary
    assert shown["header"]["id"] == summary["sif_id"]
    assert shown["header"]["architecture"] == case.arch_code
    assert shown["source"]["digest"] == summary["source_digest"] == case.digest
    assert shown["source"]["base_digest"] == (summary["index_digest"] or summary["source_digest"])
    assert shown["source"]["base_name"] == summary["reference"] == str(Reference.parse(case.ref))
    assert summary["platform"] == f"linux/{case.architecture}"
    assert shown["labels"]["org.opencontainers.image.architecture"] == case.architecture
    partition = shown["descriptors"][shown["primary_partition"] - 1]
    assert partition["partition"] == {
        "fs": "squashfs",
        "type": "primary-system",
        "architecture": case.arch_code,
    }
    assert partition["size"] == summary["partition_size"] and shown["size"] == summary["size"]
    human = run_cli("inspect", f"sif:{built.sif}")
    assert human.code == 0 and case.digest in human.text and summary["sif_id"] in human.text


def test_sif_json_summary(builder: Builder, images: Images) -> None:
    summary = builder.sif("arm64").summary
    arm64 = images.index.child("linux", "arm64", "v8")
    assert set(summary) == {
        "reference", "path", "digest", "index_digest", "source_digest", "platform", "sif_id",
        "partition_size", "size", "squashfs_tool", "compression", "seconds", "skipped",
    }  # fmt: skip
    assert summary["reference"] == f"{images.registry.host}/sif/index:v1"
    assert (summary["digest"], summary["source_digest"], summary["index_digest"]) == (
        arm64.digest, arm64.digest, images.index.digest)  # fmt: skip
    assert (summary["platform"], summary["squashfs_tool"], summary["compression"]) == (
        "linux/arm64",
        "tar2sqfs",
        "gzip",
    )
    assert summary["path"] == str(builder.sif("arm64").sif) and summary["skipped"] == {}
    assert isinstance(summary["seconds"], float) and summary["seconds"] >= 0
    schema1 = builder.sif("schema1").summary
    assert schema1["source_digest"] == images.schema1.digest != schema1["digest"]  # converted manifest
    assert schema1["index_digest"] is None


# -- 6. failures leave nothing behind ------------------------------------------------------------------
def _leftovers(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def _cache_work_is_empty() -> None:
    """The pull's work area in the layer store (this test's own cache) is gone."""
    work = Path(os.environ["REGPEEK_CACHE_DIR"]) / "layers" / "work"
    assert work.is_dir() and _leftovers(work) == []


def test_a_corrupt_layer_leaves_no_sif(images: Images, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with FaultProxy.for_registry(images.registry) as proxy:
        proxy.add(flip_byte(), path=images.layers.layers[2].split(":")[1], method="GET")
        done = run_cli(
            "sif", "--plain-http", "--retries", "0", f"{proxy.host}/sif/layers:v1", str(out_dir / "out.sif")
        )
    assert done.code == 5, done.stderr
    assert "digest mismatch" in done.stderr and len(done.stderr.splitlines()) == 1
    assert _leftovers(out_dir) == []
    _cache_work_is_empty()


# where the output goes: tar2sqfs ... OUTPUT, mksquashfs SOURCE OUTPUT ...
OUTPUT = {"tar2sqfs": "for out; do :; done", "mksquashfs": 'out="$2"'}

FAILING_TOOL = """#!/bin/sh
# a squashfs tool that reads some of its input, writes part of its output, complains and fails
head -c 65536 > /dev/null
{output}
printf 'partial' > "$out"
echo "{tool}: no space left on the imaginary device" >&2
exit 1
"""


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("way", ["tar2sqfs", "mksquashfs-pseudo"])
def test_a_failing_squashfs_tool_is_exit_7_and_leaves_nothing(
    images: Images, tmp_path: Path, nobody: Nobody | None, way: str, user: str
) -> None:
    tool = "tar2sqfs" if way == "tar2sqfs" else "mksquashfs"
    argv = ["sif", "--squashfs-tool", way, *registry_flags(images.registry), images.layers.ref]
    if user == "root":
        fake = tmp_path / "bin"
        out_dir = tmp_path / "out"
        out_dir.mkdir()
    else:
        if nobody is None:
            pytest.skip(WHY_NOT)
        fake = nobody.directory(f"fake-{way}", 0o755)
        out_dir = nobody.directory(f"failing-{way}")
    fake.mkdir(exist_ok=True)
    (fake / tool).write_text(FAILING_TOOL.format(tool=tool, output=OUTPUT[tool]))
    (fake / tool).chmod(0o755)
    path = f"{fake}:{os.environ['PATH']}"
    if user == "root":
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", path)
            done = run_cli(*argv, str(out_dir / "out.sif"))
        code, stderr = done.code, done.stderr
    else:
        finished = nobody.regpeek(*argv, str(out_dir / "out.sif"), env={"PATH": path})  # type: ignore[union-attr]
        code, stderr = finished.returncode, finished.stderr
    assert code == 7, stderr
    assert (
        stderr == f"regpeek: error: {tool} failed (exit 1): {tool}: no space left on the imaginary device\n"
    )
    assert _leftovers(out_dir) == []


BLOCKING_TOOL = """#!/bin/sh
# a squashfs tool that reads some input, writes part of its output, says where it is, then waits forever
head -c 65536 > /dev/null
{output}
printf 'partial' > "$out"
echo $$ > "{ready}.pid"
echo ready > "{ready}"
exec sleep 3600
"""


def _wait_ready(fifo: Path, process: subprocess.Popen[bytes]) -> int:
    """Block until the fake tool opens the FIFO (an explicit handshake, no polling); its pid."""
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(fifo.read_bytes()), daemon=True)
    reader.start()
    reader.join(timeout=60)
    if not result:
        process.kill()
        _out, err = process.communicate()
        pytest.fail(f"the tool never became ready: {err.decode(errors='replace')}")
    return int((fifo.parent / (fifo.name + ".pid")).read_text())


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("way", ["tar2sqfs", "mksquashfs-pseudo"])
def test_ctrl_c_while_the_squashfs_is_built_leaves_nothing(images: Images, tmp_path: Path, way: str) -> None:
    tool = "tar2sqfs" if way == "tar2sqfs" else "mksquashfs"
    fake = tmp_path / "bin"
    fake.mkdir()
    ready = tmp_path / "ready"
    os.mkfifo(ready)
    (fake / tool).write_text(BLOCKING_TOOL.format(tool=tool, ready=ready, output=OUTPUT[tool]))
    (fake / tool).chmod(0o755)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "regpeek", "sif", "--squashfs-tool", way, *registry_flags(images.registry),
         images.layers.ref, str(out_dir / "out.sif")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"},
    )  # fmt: skip
    tool_pid = _wait_ready(ready, process)
    assert _leftovers(out_dir) != []  # the build is under way: its temporary files are there
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err.decode().split() == ["regpeek:", "interrupted"]  # (after click's newline) and no traceback
    assert _leftovers(out_dir) == []
    assert _gone(tool_pid)  # the tool was stopped, not left running
    _cache_work_is_empty()


class _Hold(Fault):
    """Holds a request (no answer) until the proxy stops; says when one arrived."""

    def __init__(self) -> None:
        self.arrived = threading.Event()

    def respond(self, ex: Exchange) -> Answer | None:
        self.arrived.set()
        ex.stall(120)
        return None


def test_ctrl_c_while_a_layer_downloads_leaves_nothing(images: Images, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    hold = _Hold()
    with FaultProxy.for_registry(images.registry) as proxy:
        proxy.add(hold, path=images.layers.layers[1].split(":")[1], method="GET")
        process = subprocess.Popen(
            [sys.executable, "-m", "regpeek", "sif", "--plain-http", "--retries", "0", f"{proxy.host}/sif/layers:v1",
             str(out_dir / "out.sif")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert hold.arrived.wait(60), "the layer was never requested"
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 130, err
    assert err.decode().split() == ["regpeek:", "interrupted"]  # (after click's newline) and no traceback
    assert _leftovers(out_dir) == []
    _cache_work_is_empty()


def test_max_size_exceeded_is_exit_5_and_leaves_nothing(images: Images, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = run_cli(
        "sif",
        "--max-size",
        "200K",
        *registry_flags(images.registry),
        images.layers.ref,
        str(out_dir / "x.sif"),
    )
    assert done.code == 5, done.stderr
    assert "expands past the 200.0 KiB limit on what the image may write" in done.stderr
    assert _leftovers(out_dir) == []


def test_an_existing_out_needs_force_and_is_replaced_atomically(images: Images, tmp_path: Path) -> None:
    out = tmp_path / "app.sif"
    out.write_bytes(b"an older SIF")
    os.link(out, tmp_path / "old-name")  # the old file, by another name: replaced, never written into
    images.registry.mark()
    done = run_cli("sif", *registry_flags(images.registry), images.env.ref, str(out))
    assert done.code == 2
    assert done.stderr == f"regpeek: error: {out} exists (--force replaces it)\n"
    assert images.registry.requests() == []  # nothing asked of the registry
    assert out.read_bytes() == b"an older SIF"
    done = run_cli("sif", "--force", *registry_flags(images.registry), images.env.ref, str(out))
    assert done.code == 0, done.stderr
    assert (tmp_path / "old-name").read_bytes() == b"an older SIF"  # a new inode was renamed over OUT
    assert out.read_bytes()[:32].rstrip(b"\0") == b"#!/usr/bin/env run-singularity\n"
    assert sorted(os.listdir(tmp_path)) == ["app.sif", "old-name"]


# -- 7. the layer store: a related image downloads only what the store lacks -----------------------------
def _blob_gets(registry: Registry) -> list[str]:
    return sorted(
        r.path.rsplit("/", 1)[1] for r in registry.requests() if r.method == "GET" and "/blobs/" in r.path
    )


def test_a_related_image_downloads_only_its_new_layers(images: Images, tmp_path: Path) -> None:
    registry, flags = images.registry, registry_flags(images.registry)
    registry.mark()
    assert run_cli("sif", *flags, images.layers.ref, str(tmp_path / "a.sif")).code == 0
    assert _blob_gets(registry) == images.layers.blobs
    registry.mark()
    assert run_cli("sif", *flags, images.related.ref, str(tmp_path / "b.sif")).code == 0
    new = sorted([sha256_digest(images.related.config), images.related.layers[-1]])
    assert _blob_gets(registry) == new
    registry.mark()
    assert run_cli("sif", "--no-cache", *flags, images.related.ref, str(tmp_path / "c.sif")).code == 0
    assert _blob_gets(registry) == images.related.blobs
    # the same partition whichever way the layers came
    assert run("siftool", "dump", "4", tmp_path / "b.sif") == run("siftool", "dump", "4", tmp_path / "c.sif")


# -- 8. the sandbox ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("user", USERS)
def test_the_sandbox_is_the_squashfs_tree(
    builder: Builder, images: Images, tmp_path: Path, nobody: Nobody | None, user: str
) -> None:
    squashfs = builder.sif("layers").tree
    argv = ["sif", "--sandbox", "--json", *registry_flags(images.registry), images.layers.ref]
    if user == "root":
        if not IS_ROOT:
            pytest.skip("the image's owners and device nodes need root (CI runs as root)")
        sandbox = tmp_path / "sandbox"
        done = run_cli(*argv, str(sandbox))
        assert done.code == 0, done.stderr
        summary = json.loads(done.stdout)
    else:
        if nobody is None:
            pytest.skip(WHY_NOT)
        sandbox = nobody.directory("sandbox-parent") / "sandbox"
        finished = nobody.regpeek(*argv, str(sandbox), env={"SOURCE_DATE_EPOCH": str(BUILD_TIME)})
        assert finished.returncode == 0, finished.stderr
        summary = json.loads(finished.stdout)
    assert set(summary) == {
        "reference",
        "path",
        "digest",
        "index_digest",
        "source_digest",
        "platform",
        "seconds",
        "skipped",
    }
    assert summary["digest"] == images.layers.digest
    tree = directory_tree(sandbox)
    assert stat.S_IMODE(sandbox.stat().st_mode) == 0o700
    del tree.nodes[""]
    want = dict(squashfs.nodes)
    del want[""]
    if user == "root":
        assert summary["skipped"] == {}
        assert _diff(tree.nodes, want) == []
        assert tree.groups() == squashfs.groups()
    else:  # nobody owns everything and cannot make device nodes
        devices = {name for name, node in want.items() if node.kind in "cb"}
        owned = [
            entry for layer in layers_image_layers() for entry in layer
            if (entry.uid or entry.gid) and entry.kind not in ("whiteout", "opaque", "hardlink", "chardev", "blockdev")
        ]  # fmt: skip
        assert summary["skipped"] == {
            "ownership (not root)": len(owned),
            "device node (not root)": len(devices) == 2 and 2,
        }
        got = dict(tree.without("owner").items())
        assert (
            _diff(got, {n: node for n, node in Tree(want).without("owner").items() if n not in devices}) == []
        )
    assert dict(tree.contents.items()) == squashfs.contents


def test_a_failed_sandbox_leaves_nothing(images: Images, tmp_path: Path) -> None:
    with FaultProxy.for_registry(images.registry) as proxy:
        proxy.add(flip_byte(), path=images.layers.layers[0].split(":")[1], method="GET")
        done = run_cli(
            "sif",
            "--sandbox",
            "--plain-http",
            "--retries",
            "0",
            f"{proxy.host}/sif/layers:v1",
            str(tmp_path / "box"),
        )
    assert done.code == 5, done.stderr
    assert _leftovers(tmp_path) == []
    (tmp_path / "box").mkdir()
    (tmp_path / "box" / "mine").write_text("keep")
    done = run_cli(
        "sif", "--sandbox", *registry_flags(images.registry), images.layers.ref, str(tmp_path / "box")
    )
    assert done.code == 2 and "exists and is not an empty directory" in done.stderr
    assert _leftovers(tmp_path / "box") == ["mine"]


# -- 9. reproducible builds ------------------------------------------------------------------------------
@pytest.mark.parametrize("way", WAYS)
def test_source_date_epoch_makes_builds_reproducible(
    builder: Builder, images: Images, tmp_path: Path, way: str
) -> None:
    first = builder.sif("layers", way).sif
    again = tmp_path / "again.sif"
    done = run_cli(
        "sif", "--squashfs-tool", way, *registry_flags(images.registry), images.layers.ref, str(again)
    )
    assert done.code == 0, done.stderr
    one, two = first.read_bytes(), again.read_bytes()
    assert run("siftool", "dump", "4", first) == run("siftool", "dump", "4", again)
    assert len(one) == len(two) and one[48:64] != two[48:64]  # the UUID differs...
    assert one[:48] + one[64:] == two[:48] + two[64:]  # ...and nothing else


@pytest.mark.parametrize("way", WAYS)
def test_source_date_epoch_is_the_build_time_not_a_clamp(
    images: Images, tmp_path: Path, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An epoch before the image's own times dates what regpeek adds; the image's files keep theirs
    (mksquashfs, given SOURCE_DATE_EPOCH, would clamp every time to it)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    out = tmp_path / "old.sif"
    done = run_cli("sif", "--squashfs-tool", way, *registry_flags(images.registry), images.env.ref, str(out))
    assert done.code == 0, done.stderr
    (tmp_path / "p.sqfs").write_bytes(run("siftool", "dump", "4", out))
    nodes = unsquashfs_listing(tmp_path / "p.sqfs")
    assert nodes["opt/app/README"].mtime == nodes["bin/show-argv"].mtime == "2020-09-13 12:26"
    assert nodes[""].mtime == nodes[".singularity.d/runscript"].mtime == "2001-09-09 01:46"
    assert _siftool_fields(run("siftool", "header", out))["Created At"] == "2001-09-09 01:46:40 +0000 UTC"


@pytest.mark.parametrize("compression", ["gzip", "zstd", "xz"])
@pytest.mark.parametrize("way", WAYS)
def test_compression(images: Images, tmp_path: Path, way: str, compression: str) -> None:
    out = tmp_path / "c.sif"
    done = run_cli("sif", "--json", "--compression", compression, "--squashfs-tool", way,
                   *registry_flags(images.registry), images.env.ref, str(out))  # fmt: skip
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["compression"] == compression
    (tmp_path / "p.sqfs").write_bytes(run("siftool", "dump", "4", out))
    assert re.search(
        rf"^Compression {compression}$", run("unsquashfs", "-s", tmp_path / "p.sqfs").decode(), re.M
    )
    assert run("unsquashfs", "-cat", tmp_path / "p.sqfs", "opt/app/README") == b"zstd layer\n"


LONGEST = "é" * 127 + "x"  # 255 bytes in UTF-8: the longest name a Linux file system (and the SIF) holds
TOO_LONG = "é" * 128  # 256 bytes


@pytest.mark.parametrize("way", WAYS)
def test_names_a_squashfs_cannot_hold_are_left_out_and_counted(
    images: Images, tmp_path: Path, way: str
) -> None:
    """tar2sqfs would write a 256-byte name into a squashfs that unsquashfs calls corrupt ("filename
    too long"), and the pseudo way's extraction cannot create it: it is left out (with the hard links
    to it and what is below it), counted, and warned about, whichever way builds the squashfs."""
    layers = [
        [
            Entry("d", "dir"),
            Entry(f"d/{LONGEST}", data=b"kept"),
            Entry(f"d/{TOO_LONG}", data=b"left out"),
            Entry("d/link-to-long", "hardlink", linkname=f"d/{TOO_LONG}"),
            Entry(f"d/{TOO_LONG}-dir", "dir"),
            Entry(f"d/{TOO_LONG}-dir/inside", data=b"left out too"),
            Entry("d/after", data=b"after"),
        ]
    ]
    with pusher_for(images.registry) as pusher:
        image = push_layers_image(pusher, images.registry.host, "sif/long-names", "v1", layers)
    out = tmp_path / "long.sif"
    done = run_cli(
        "sif", "--json", "--squashfs-tool", way, *registry_flags(images.registry), image.ref, str(out)
    )
    assert done.code == 0, done.stderr
    assert done.stderr == "regpeek: warning: skipped: 4 name too long (a path component over 255 bytes)\n"
    assert json.loads(done.stdout)["skipped"] == {"name too long (a path component over 255 bytes)": 4}
    (tmp_path / "p.sqfs").write_bytes(run("siftool", "dump", "4", out))
    nodes = unsquashfs_listing(tmp_path / "p.sqfs")  # (unsquashfs fails on a corrupt one)
    assert {name for name in nodes if name.startswith("d/")} == {f"d/{LONGEST}", "d/after"}
    assert run("unsquashfs", "-cat", tmp_path / "p.sqfs", f"d/{LONGEST}") == b"kept"
