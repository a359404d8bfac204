"""Benchmark: 50 SIFs from images that share their bases, with ``regpeek sif --from-file``.

Pushes 50 images to a local registry: 5 bases (a layer of ``--base-mib`` MiB, half random, half
text-like) with 10 applications each (a layer of ``--app-kib`` KiB). Then, each from an empty cache
and an empty output directory, it times:

1. ``regpeek sif --from-file REFS --out-dir DIR --jobs 1``;
2. the same with ``--jobs 2`` (this machine has 2 cores);
3. a shell loop of single ``regpeek sif REF OUT.sif`` runs over the same references (sharing one cache,
   as a loop would);

and, by polling ``/proc`` every 20 ms, the peak resident memory (VmHWM) of the parent process, of each
worker process and of the squashfs tool processes. Run: ``.venv/bin/python bench/sif_many.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import REGPEEK, machine, start_registry
from tests.support.images import FileSpec, push_oci_image
from tests.support.push import Pusher
from tests.support.registry import Registry

BASES = 5
APPS_PER_BASE = 10


def _layer_bytes(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    half = size // 2
    words = b" ".join(
        rng.choice([b"alpha", b"beta", b"gamma", b"delta", b"lib", b"usr", b"bin"]) for _ in range(half // 5)
    )
    return rng.randbytes(half) + words[: size - half]


def push_images(registry: Registry, base_mib: int, app_kib: int) -> list[str]:
    references = []
    with Pusher(registry.url) as pusher:
        for base in range(BASES):
            base_files: dict[str, FileSpec] = {
                "usr/": ("dir",),
                "usr/lib/": ("dir",),
                f"usr/lib/base{base}.so": _layer_bytes(base_mib * 1024 * 1024, base),
                "etc/": ("dir",),
                "etc/os-release": f"ID=base{base}\n".encode(),
            }
            for app in range(APPS_PER_BASE):
                app_files: dict[str, FileSpec] = {
                    "opt/": ("dir",),
                    f"opt/app{app}.bin": _layer_bytes(app_kib * 1024, 1000 * base + app),
                }
                push_oci_image(pusher, f"bench/base{base}-app{app}", "v1", layers=[base_files, app_files])
                references.append(f"{registry.host}/bench/base{base}-app{app}:v1")
    return references


@dataclass
class Peaks:
    """Peak VmHWM (KiB) per process seen under a root process."""

    by_pid: dict[int, tuple[str, int]] = field(default_factory=dict)  # pid -> (kind, peak KiB)

    def parent(self, root: int) -> int:
        return self.by_pid.get(root, ("", 0))[1]

    def largest(self, kind: str) -> int:
        return max((kib for what, kib in self.by_pid.values() if what == kind), default=0)

    def count(self, kind: str) -> int:
        return sum(1 for what, _ in self.by_pid.values() if what == kind)


def _kind(pid: int, root: int) -> str:
    """parent, worker (a spawned worker process), regpeek (a run of the loop), squashfs, or other."""
    if pid == root:
        return "parent"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    text = b" ".join(command)
    if b"spawn_main" in text:
        return "worker"
    if b"resource_tracker" in text:
        return "other"
    name = os.path.basename(command[0].decode(errors="replace")) if command else ""
    if name in ("tar2sqfs", "mksquashfs"):
        return "squashfs"
    return "regpeek" if b"regpeek" in text and b"sif" in command else "other"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _watch(root: int, peaks: Peaks, stop: threading.Event) -> None:
    while not stop.is_set():
        tree = _children()
        todo, seen = [root], []
        while todo:
            pid = todo.pop()
            seen.append(pid)
            todo += tree.get(pid, [])
        for pid in seen:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            hwm = int(fields.get("VmHWM", "0 kB").split()[0] or 0)
            kind, old = peaks.by_pid.get(pid) or (_kind(pid, root), 0)
            peaks.by_pid[pid] = (kind, max(old, hwm))
        stop.wait(0.02)


def watched(command: list[str], env: dict[str, str]) -> tuple[float, Peaks, int]:
    peaks = Peaks()
    stop = threading.Event()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher = threading.Thread(target=_watch, args=(process.pid, peaks, stop), daemon=True)
    watcher.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    stop.set()
    watcher.join()
    if process.returncode != 0:
        raise SystemExit(f"{command[:3]} failed ({process.returncode}): {stderr.decode()[-800:]}")
    return seconds, peaks, process.pid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-mib", type=int, default=8)
    parser.add_argument("--app-kib", type=int, default=512)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regpeek-bench-sif-"))
    try:
        with start_registry(work / "registry") as registry:
            references = push_images(registry, args.base_mib, args.app_kib)
            refs = work / "refs.txt"
            refs.write_text("\n".join(references) + "\n")
            rows = []
            for label, jobs in (("--jobs 1", 1), ("--jobs 2", 2)):
                cache, out = work / f"cache-{jobs}", work / f"out-{jobs}"
                env = {**os.environ, "REGPEEK_CACHE_DIR": str(cache)}
                command = [REGPEEK, "sif", "--plain-http", "-q", "--from-file", str(refs), "--out-dir", str(out),
                           "--jobs", str(jobs)]  # fmt: skip
                seconds, peaks, root = watched(command, env)
                assert len(list(out.glob("*.sif"))) == len(references)
                rows.append((f"regpeek sif --from-file {label}", seconds, peaks.parent(root),
                             peaks.largest("worker"), peaks.count("worker"), peaks.largest("squashfs")))  # fmt: skip
                shutil.rmtree(out)
            cache, out = work / "cache-loop", work / "out-loop"
            out.mkdir()
            loop = "\n".join(
                f'"{REGPEEK}" sif --plain-http -q {ref} "{out}/{n}.sif" || exit 1'
                for n, ref in enumerate(references)
            )
            seconds, peaks, root = watched(
                ["sh", "-c", loop], {**os.environ, "REGPEEK_CACHE_DIR": str(cache)}
            )
            assert len(list(out.glob("*.sif"))) == len(references)
            rows.append(("shell loop of regpeek sif", seconds, 0, peaks.largest("regpeek"), 0,
                         peaks.largest("squashfs")))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loop_seconds = rows[-1][1]
    print(f"{len(references)} SIFs ({BASES} bases of {args.base_mib} MiB, {APPS_PER_BASE} apps of "
          f"{args.app_kib} KiB each), local registry, {machine()}")  # fmt: skip
    print(
        f"{'run':34} {'seconds':>8} {'vs loop':>8} {'parent MiB':>11} {'worker MiB':>11} {'workers':>8} {'squashfs MiB':>13}"
    )
    for label, seconds, parent, worker, count, tool in rows:
        print(f"{label:34} {seconds:8.1f} {loop_seconds / seconds:7.2f}x {parent / 1024:11.1f} {worker / 1024:11.1f} "
              f"{count or '-':>8} {tool / 1024:13.1f}")  # fmt: skip
    print(
        f"--jobs 2 / --jobs 1 wall time: {rows[1][1] / rows[0][1]:.2f}x (scaling {rows[0][1] / rows[1][1]:.2f}x on 2 cores)"
    )


if __name__ == "__main__":
    main()
