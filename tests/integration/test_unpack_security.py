"""Unpack as root against a local user, and against hostile images and layouts, through the CLI.

The local user is ``nobody`` (``setpriv``); CI runs as root, which is what makes these attacks matter:
the scenarios of issue 8 (a setuid binary and a world-writable device node reachable in the unpacked
tree, a directory the image makes world-writable swapped for a symlink while root writes under it),
decompression bombs from a registry, and layout blobs that are not regular files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.api import registry_flags, run_cli
from tests.support.images import Blob, Compression, compact_json
from tests.support.layers import Entry, tar_bytes, write_oci_layout
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.util import sha256_digest

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT or shutil.which("setpriv") is None,
    reason="needs root and setpriv to act as nobody (CI runs as root)",
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.fixture
def shared_top() -> Iterator[Path]:
    """A directory nobody can pass through but not list (pytest's own tmp dirs are 0700, root's)."""
    top = Path(tempfile.mkdtemp(prefix="regpeek-attack-"))
    top.chmod(0o711)
    try:
        yield top
    finally:
        subprocess.run(["chattr", "-R", "-i", str(top)], capture_output=True, check=False)
        shutil.rmtree(top)


def _as_nobody(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOBODY, os.path.realpath(sys.executable), "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _snapshot(top: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every path under ``top``: mode, uid, size and content hash (or link target)."""
    state: dict[str, tuple[int, int, int, str]] = {}
    for path in [top, *top.rglob("*")]:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            detail = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            detail = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            detail = ""
        state[str(path.relative_to(top))] = (info.st_mode, info.st_uid, info.st_size, detail)
    return state


def _unpack(*argv: str) -> subprocess.CompletedProcess[str]:
    """``regpeek`` as a separate process (root), so that a concurrent attacker really races it."""
    return subprocess.run(
        [sys.executable, "-m", "regpeek", *argv, "--no-cache"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


# -- 1. a local user and root's unpacked tree ----------------------------------------------------
@needs_root
def test_setuid_binaries_and_device_nodes_are_out_of_other_users_reach(shared_top: Path) -> None:
    """The image opens its root (``./`` 0777) and ships a setuid-root copy of ``id`` and a 0666 device
    node: nobody can neither run the one nor open the other, nor list the tree (the old unpack made the
    root 0755 and applied the image's modes at once: nobody ran ``id`` with euid 0)."""
    id_binary = Path(shutil.which("id") or "/usr/bin/id").read_bytes()
    layers = [
        [
            Entry("./", "dir", mode=0o777),
            Entry("usr", "dir"),
            Entry("usr/bin", "dir"),
            Entry("usr/bin/suid-id", data=id_binary, mode=0o4755),
            Entry("dev", "dir", mode=0o777),
            Entry("dev/null0", "chardev", mode=0o666, major=1, minor=3),
        ]
    ]
    write_oci_layout(shared_top / "layout", layers)
    rootfs = shared_top / "rootfs"
    done = _unpack("unpack", f"oci:{shared_top / 'layout'}", str(rootfs))
    assert done.returncode == 0, done.stderr
    attempt = textwrap.dedent(
        """
        import os, subprocess, sys
        root = sys.argv[1]
        results = {}
        try:
            results["run"] = subprocess.run([root + "/usr/bin/suid-id", "-u"], capture_output=True,
                                            text=True).stdout.strip()
        except OSError as exc:
            results["run"] = exc.strerror
        for name, call in (("open", lambda: os.open(root + "/dev/null0", os.O_WRONLY)),
                           ("list", lambda: os.listdir(root))):
            try:
                call()
                results[name] = "ok"
            except OSError as exc:
                results[name] = exc.strerror
        print(results)
        """
    )
    seen = _as_nobody(attempt, str(rootfs))
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == str(
        {"run": "Permission denied", "open": "Permission denied", "list": "Permission denied"}
    )
    assert stat.S_IMODE(rootfs.stat().st_mode) == 0o700
    assert stat.S_IMODE((rootfs / "usr/bin/suid-id").stat().st_mode) == 0o4755  # the image as it is
    assert stat.S_ISCHR((rootfs / "dev/null0").stat().st_mode)


ATTACKER = textwrap.dedent(
    """
    import ctypes, os, sys, time
    root, outside, deadline = sys.argv[1], sys.argv[2], time.time() + float(sys.argv[3])
    renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    shared, swap = os.fsencode(root + "/shared"), os.fsencode(root + "/swap")
    planted = swaps = denied = 0
    while time.time() < deadline:
        if not planted:
            try:
                os.symlink(outside, root + "/swap")
                planted = 1
            except FileExistsError:
                planted = 1
            except PermissionError:
                denied += 1
            except OSError:
                pass
            continue
        if renameat2(-100, shared, -100, swap, 2) == 0:
            swaps += 1
        elif ctypes.get_errno() == 13:
            denied += 1
    print(planted, swaps, denied)
    """
)


@needs_root
def test_a_local_user_cannot_swap_a_directory_for_a_symlink_during_a_root_unpack(shared_top: Path) -> None:
    """nobody races root's unpack: once the image has made ``./`` and ``shared`` 0777, it plants
    ``swap -> OUTSIDE`` and exchanges ``shared`` and ``swap`` (renameat2 RENAME_EXCHANGE) in a loop
    while root writes 3000 files into ``shared``.  Nothing outside ROOTFS may change, in any run (the
    old unpack, which re-walked path strings, overwrote OUTSIDE/victim in 3 runs of 3)."""
    outside = shared_top / "outside"
    outside.mkdir(mode=0o755)
    (outside / "victim").write_bytes(b"original\n")
    (outside / "victim").chmod(0o600)
    files = [Entry(f"shared/f{i:04}", data=b"pwned\n") for i in range(3000)]
    layers = [
        [Entry("./", "dir", mode=0o777), Entry("shared", "dir", mode=0o777)],
        [*files[:1500], Entry("shared/victim", data=b"pwned\n"), *files[1500:]],
    ]
    write_oci_layout(shared_top / "layout", layers, compression="none")
    before = _snapshot(outside)
    for run in range(3):
        rootfs = shared_top / f"rootfs{run}"
        attacker = subprocess.Popen(
            [
                *NOBODY,
                os.path.realpath(sys.executable),
                "-c",
                ATTACKER,
                str(rootfs),
                str(outside),
                "60",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            done = _unpack("unpack", f"oci:{shared_top / 'layout'}", str(rootfs))
        finally:
            attacker.terminate()
            attacker.wait(timeout=30)
        assert done.returncode == 0, done.stderr
        assert _snapshot(outside) == before
        assert (rootfs / "shared/victim").read_bytes() == b"pwned\n"
        assert len(list((rootfs / "shared").iterdir())) == 3001


# -- 2. bombs and limits, from a registry ----------------------------------------------------------
def _gzip_zeros_layer(size: int) -> tuple[bytes, str]:
    """A gzip layer of one file of ``size`` zero bytes, and its diff ID."""
    header = Entry("zeros", data=b"").tarinfo()
    header.size = size
    head = header.tobuf()
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)
    digest = hashlib.sha256(head)
    parts = [squeeze.compress(head)]
    chunk = bytes(1 << 20)
    for _ in range(size >> 20):
        parts.append(squeeze.compress(chunk))
        digest.update(chunk)
    tail = bytes(1024 + (-size % 512))
    parts.append(squeeze.compress(tail))
    digest.update(tail)
    parts.append(squeeze.flush())
    return b"".join(parts), "sha256:" + digest.hexdigest()


def _push_layers(registry: Registry, repo: str, tag: str, layers: list[tuple[bytes, str]]) -> str:
    """Push an OCI image of raw gzip layer blobs (with their diff IDs); its manifest digest."""
    config = Blob.of(
        OCI_CONFIG,
        compact_json(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id in layers]},
            }
        ),
    )
    with pusher_for(registry) as pusher:
        for blob, _ in layers:
            pusher.push_blob(repo, blob)
        pusher.push_blob(repo, config.data)
        manifest = compact_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [
                    {"mediaType": OCI_GZIP, "digest": sha256_digest(blob), "size": len(blob)}
                    for blob, _ in layers
                ],
            }
        )
        return pusher.push_manifest(repo, tag, manifest, OCI_MANIFEST)


@pytest.fixture(scope="module")
def bomb(registry: Registry) -> tuple[str, str]:
    """A registry image whose 2 MB gzip layer expands to 2 GiB; (reference, layer digest)."""
    blob, diff_id = _gzip_zeros_layer(2 << 30)
    assert len(blob) < 3 << 20
    _push_layers(registry, "attack/bomb", "v1", [(blob, diff_id)])
    return f"{registry.host}/attack/bomb:v1", sha256_digest(blob)


def test_a_gzip_bomb_stops_unpack_with_exit_5_and_leaves_no_rootfs(
    registry: Registry, bomb: tuple[str, str], tmp_path: Path
) -> None:
    reference, layer = bomb
    rootfs = tmp_path / "rootfs"
    done = run_cli("unpack", "--no-cache", *registry_flags(registry), reference, str(rootfs))
    assert done.code == 5, done.stderr
    assert done.stderr.splitlines() == [
        f"regpeek: error: layer 1 ({layer}) expands past the 1.0 GiB limit on what the image may write "
        "(100x the compressed size, at least 1.0 GiB; --max-size SIZE or --no-size-limit to change it)"
    ]
    assert not rootfs.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_gzip_bomb_stops_export_and_leaves_no_output(
    registry: Registry, bomb: tuple[str, str], tmp_path: Path
) -> None:
    reference, layer = bomb
    done = run_cli("export", "--no-cache", *registry_flags(registry), reference, str(tmp_path / "out.tar"))
    assert done.code == 5, done.stderr
    assert f"layer 1 ({layer}) expands past the 1.0 GiB limit" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_max_size_and_no_size_limit(registry: Registry, tmp_path: Path) -> None:
    blob, diff_id = _gzip_zeros_layer(3 << 20)
    _push_layers(registry, "attack/three-mib", "v1", [(blob, diff_id)])
    reference = f"{registry.host}/attack/three-mib:v1"
    flags = ["--no-cache", *registry_flags(registry)]
    done = run_cli("unpack", *flags, "--max-size", "2M", reference, str(tmp_path / "a"))
    assert done.code == 5
    assert "expands past the 2.0 MiB limit on what the image may write (--max-size;" in done.stderr
    assert not (tmp_path / "a").exists()
    done = run_cli("unpack", *flags, "--max-size", "3M", reference, str(tmp_path / "b"))
    assert done.code == 0, done.stderr
    assert (tmp_path / "b/zeros").stat().st_size == 3 << 20
    done = run_cli("export", *flags, "--no-size-limit", reference, str(tmp_path / "c.tar"))
    assert done.code == 0, done.stderr
    done = run_cli("unpack", *flags, "--max-size", "1M", "--no-size-limit", reference, str(tmp_path / "d"))
    assert done.code == 2
    assert "exclude each other" in done.stderr


def test_layer_count_and_entry_limits_name_the_layer(tmp_path: Path) -> None:
    name = "x" * 4200
    write_oci_layout(tmp_path / "layout", [[Entry("ok", data=b"1")], [Entry(name, data=b"2")]])
    done = run_cli("unpack", f"oci:{tmp_path / 'layout'}", str(tmp_path / "rootfs"))
    assert done.code == 5
    assert "regpeek: error: layer 2 (sha256:" in done.stderr
    assert "has an entry name of 4200 bytes (the limit is 4096)" in done.stderr
    assert not (tmp_path / "rootfs").exists()


# -- 3. layout blobs that are not regular files ---------------------------------------------------
def _layout_with_manifest(top: Path, compression: Compression = "gzip") -> tuple[Path, dict[str, str]]:
    layout = top / "layout"
    write_oci_layout(layout, [[Entry("f", data=b"content")]], compression=compression)
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest.split(":")[1]).read_bytes())
    paths = {
        "manifest": manifest_digest,
        "config": manifest["config"]["digest"],
        "layer": manifest["layers"][0]["digest"],
    }
    return layout, paths


@pytest.mark.parametrize("blob", ["manifest", "config", "layer"])
@pytest.mark.parametrize("kind", ["symlink-to-dev-zero", "fifo", "device", "symlink-to-good-copy"])
def test_a_layout_blob_that_is_not_a_regular_file_is_refused_at_once(
    tmp_path: Path, blob: str, kind: str
) -> None:
    if kind == "device" and not IS_ROOT:
        pytest.skip("mknod needs root (CI runs as root)")
    layout, digests = _layout_with_manifest(tmp_path)
    path = layout / "blobs/sha256" / digests[blob].split(":")[1]
    good = path.read_bytes()
    path.unlink()
    if kind == "symlink-to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero
    else:
        (tmp_path / "elsewhere").write_bytes(good)
        path.symlink_to(tmp_path / "elsewhere")
    commands = [
        ["inspect", f"oci:{layout}"],
        ["unpack", f"oci:{layout}", str(tmp_path / "rootfs")],
        ["export", f"oci:{layout}", str(tmp_path / "out.tar")],
    ]
    for argv in commands:
        done = subprocess.run(  # never blocks on the FIFO or reads /dev/zero forever: else TimeoutExpired
            [sys.executable, "-m", "regpeek", *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if (blob, argv[0]) in (("layer", "inspect"), ("config", "unpack"), ("config", "export")):
            assert done.returncode == 0, done.stderr  # a blob the command does not read
            (tmp_path / "out.tar").unlink(missing_ok=True)
            if (tmp_path / "rootfs").exists():
                shutil.rmtree(tmp_path / "rootfs")
            continue
        assert done.returncode == 5, done.stderr
        assert "not a regular file" in done.stderr
        assert len(done.stderr.splitlines()) == 1
        assert not (tmp_path / "rootfs").exists()
        assert not (tmp_path / "out.tar").exists()


def test_a_layout_blob_of_the_wrong_size_is_refused_before_reading(tmp_path: Path) -> None:
    layout, digests = _layout_with_manifest(tmp_path)
    path = layout / "blobs/sha256" / digests["config"].split(":")[1]
    path.write_bytes(path.read_bytes() + b" " * (8 << 20))
    done = run_cli("inspect", f"oci:{layout}")
    assert done.code == 5
    assert "size mismatch for blob" in done.stderr


def test_a_layer_changed_after_its_check_is_caught_and_removed(tmp_path: Path) -> None:
    """The layout's layer matches when hashed first; it is checked again while it is applied."""
    layout, digests = _layout_with_manifest(tmp_path, compression="none")
    path = layout / "blobs/sha256" / digests["layer"].split(":")[1]
    evil = tar_bytes([Entry("f", data=b"evil!!!")])
    assert len(evil) == path.stat().st_size and evil != path.read_bytes()
    from regpeek.disk import layout as layout_module

    original = layout_module.Layout.open_verified
    calls = []

    def swap_then_open(self: layout_module.Layout, descriptor: object) -> object:
        calls.append(descriptor)
        path.write_bytes(evil)
        return original(self, descriptor)  # type: ignore[arg-type]

    layout_module.Layout.open_verified = swap_then_open  # type: ignore[assignment,method-assign]
    try:
        done = run_cli("unpack", f"oci:{layout}", str(tmp_path / "rootfs"))
    finally:
        layout_module.Layout.open_verified = original  # type: ignore[method-assign]
    assert calls
    assert done.code == 5, done.stderr
    assert "digest mismatch for blob" in done.stderr
    assert not (tmp_path / "rootfs").exists()


# -- 4. owners out of range ----------------------------------------------------------------------
@needs_root
def test_an_owner_out_of_range_is_counted_not_an_internal_error(tmp_path: Path) -> None:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("huge-owner")
        info.size = 1
        info.pax_headers = {"uid": str(2**40), "gid": str(2**33)}
        tar.addfile(info, io.BytesIO(b"h"))
        tar.addfile(tarfile.TarInfo("after"), io.BytesIO(b""))
    layout = tmp_path / "layout"
    write_oci_layout(layout, [[Entry("base", data=b"b")]], compression="none")
    # replace the layer with the hand-made one (and its digest everywhere)
    index = json.loads((layout / "index.json").read_text())
    manifest_path = layout / "blobs/sha256" / index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads(manifest_path.read_bytes())
    raw = buffer.getvalue()
    (layout / "blobs/sha256" / hashlib.sha256(raw).hexdigest()).write_bytes(raw)
    manifest["layers"][0].update(digest=sha256_digest(raw), size=len(raw))
    new_manifest = json.dumps(manifest).encode()
    (layout / "blobs/sha256" / hashlib.sha256(new_manifest).hexdigest()).write_bytes(new_manifest)
    index["manifests"][0].update(digest=sha256_digest(new_manifest), size=len(new_manifest))
    (layout / "index.json").write_text(json.dumps(index))
    done = run_cli("unpack", f"oci:{layout}", str(tmp_path / "rootfs"))
    assert done.code == 0, done.stderr
    assert "regpeek: warning: skipped: 1 ownership (uid/gid out of range)" in done.stderr
    assert (tmp_path / "rootfs/huge-owner").read_bytes() == b"h"
    assert (tmp_path / "rootfs/after").exists()


@pytest.mark.parametrize("command", ["unpack", "export"])
def test_unpack_and_export_take_the_size_and_every_registry_option(command: str) -> None:
    done = run_cli(command, "--help")
    for option in ("--max-size", "--no-size-limit", "--platform", "--no-cache", "--cache-dir", "--username"):
        assert option in done.text, option
