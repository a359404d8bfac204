"""Shared pieces of the benchmarks: a local registry with a large image, timing and peak RSS."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.images import push_oci_image  # noqa: E402
from tests.support.push import Pusher  # noqa: E402
from tests.support.registry import Registry, start_registry  # noqa: E402

REGPEEK = str(Path(sys.executable).parent / "regpeek")
_RSS_RE = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_CPU_RE = re.compile(r"(?:User|System) time \(seconds\): ([\d.]+)")


@dataclass
class Run:
    seconds: float
    peak_rss_kib: int
    cpu_seconds: float = 0.0  # user + system, of the command and the children it waited for


def timed(command: list[str], *, env: dict[str, str] | None = None) -> Run:
    """Run ``command`` under ``/usr/bin/time -v``; its wall time, peak RSS and CPU time (raise if it fails)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=False, env=env
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    match = _RSS_RE.search(done.stderr)
    cpu = sum(float(value) for value in _CPU_RE.findall(done.stderr))
    return Run(seconds, int(match.group(1)) if match else 0, cpu)


def median(values: list[float]) -> float:
    return statistics.median(values)


def big_image(registry: Registry, repo: str, layers: int, layer_mib: int) -> str:
    """Push an image of ``layers`` layers of ``layer_mib`` MiB of random (incompressible) data."""
    files = [{f"data/blob{n}.bin": os.urandom(layer_mib * 1024 * 1024)} for n in range(layers)]
    with Pusher(registry.url) as pusher:
        image = push_oci_image(pusher, repo, "latest", layers=files, compression=tuple(["gzip"] * layers))
    return image.digest


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"


__all__ = ["REGPEEK", "ROOT", "Run", "big_image", "machine", "median", "start_registry", "timed"]
