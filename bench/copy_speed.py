"""Benchmark: ``regpeek copy`` against ``skopeo copy docker:// docker://``, registry to registry.

Starts a source CNCF distribution registry and pushes two images of random (incompressible) data:
LAYERS layers of LAYER_MIB MiB, and MANY layers of MANY_MIB MiB. Each round copies each image with each
tool, alternating which goes first, into a destination registry started empty for that run (so no
blob is present or mountable, and skopeo's blob-info cache has nothing to reuse), under
``/usr/bin/time -v``. Prints median wall times, their ratio and each tool's peak RSS, and checks that
both destinations serve the source's manifest digest. A third line, "regpeek API", times the same copy
made in this process with the Python API (``regpeek.copy.copy``, a fresh client each time): the copy
itself, without the interpreter's start-up and imports.
Run: ``.venv/bin/python bench/copy_speed.py [--rounds 5]`` (``make bench-copy``). Not ``copy.py``: the
script's directory comes first on ``sys.path``, where a ``copy.py`` would stand in for the standard
library's ``copy`` in every script of bench/ (as ``inspect_speed.py`` is not ``inspect.py``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import REGPEEK, Run, machine, median, start_registry, timed
from tests.support.images import push_oci_image
from tests.support.push import Pusher


def push_random(url: str, repo: str, layers: int, layer_mib: int) -> str:
    files = [{f"data/blob{n}.bin": os.urandom(layer_mib * 1024 * 1024)} for n in range(layers)]
    with Pusher(url) as pusher:
        image = push_oci_image(pusher, repo, "latest", layers=files, compression=tuple(["gzip"] * layers))
    return image.digest


def main() -> None:
    parser = argparse.ArgumentParser(description="regpeek copy vs skopeo copy, registry to registry")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=32)
    parser.add_argument("--many", type=int, default=20)
    parser.add_argument("--many-mib", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regpeek-bench-copy-") as work:
        workdir = Path(work)
        source = start_registry(workdir / "source")
        try:
            images = {
                f"{args.layers} x {args.layer_mib} MiB": (
                    "bench/big",
                    push_random(source.url, "bench/big", args.layers, args.layer_mib),
                ),
                f"{args.many} x {args.many_mib} MiB": (
                    "bench/many",
                    push_random(source.url, "bench/many", args.many, args.many_mib),
                ),
            }
            results = {
                label: run_image(workdir, source.host, repo, digest, args.rounds)
                for label, (repo, digest) in images.items()
            }
        finally:
            source.stop()
    load = os.getloadavg()[0]
    print(f"registry -> registry copy, {args.rounds} rounds alternated, {machine()}, load average {load:.1f}")
    for label, runs in results.items():
        report(label, runs)


def api_copy(source: str, dest: str) -> Run:
    """The same copy through the Python API, in this process (no start-up; RSS not measured)."""
    import time

    import regpeek
    from regpeek.copy import copy

    started = time.perf_counter()
    with regpeek.Client(plain_http=True) as client:
        copy(client, source, dest)
    return Run(time.perf_counter() - started, 0)


def run_image(workdir: Path, source: str, repo: str, digest: str, rounds: int) -> dict[str, list[Run]]:
    ref = f"{source}/{repo}:latest"
    commands: dict[str, Callable[[str], list[str]]] = {
        "regpeek": lambda dest: [REGPEEK, "copy", "--plain-http", "--quiet", "--no-cache", ref, f"{dest}/{repo}:latest"],
        "skopeo": lambda dest: ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
                                f"docker://{ref}", f"docker://{dest}/{repo}:latest"],
    }  # fmt: skip
    names = [*commands, "regpeek API"]
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for round_number in range(rounds):
        order = names if round_number % 2 == 0 else list(reversed(names))
        for name in order:
            dest = start_registry(
                workdir / f"dest-{name.replace(' ', '-')}-{repo.replace('/', '-')}-{round_number}"
            )
            try:
                env = {**os.environ, "HOME": str(workdir / "home"), "XDG_DATA_HOME": str(workdir / "data")}
                if name in commands:
                    runs[name].append(timed(commands[name](dest.host), env=env))
                else:
                    runs[name].append(api_copy(ref, f"{dest.host}/{repo}:latest"))
                check(dest.host, repo, digest)
                mounts = [r for r in dest.requests(since_mark=False) if "mount=" in r.path]
                if mounts:
                    raise SystemExit(f"{name} mounted blobs: the run is not a full copy")
            finally:
                dest.stop()
    return runs


def check(host: str, repo: str, digest: str) -> None:
    """The destination must serve the source's manifest digest."""
    done = subprocess.run([REGPEEK, "digest", "--plain-http", "--no-cache", f"{host}/{repo}:latest"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    if done.stdout.strip() != digest:
        raise SystemExit(f"{host}/{repo}: {done.stdout.strip()} != {digest}")


def report(label: str, runs: dict[str, list[Run]]) -> None:
    print(f"\n{label:<16} {'median s':>9} {'peak RSS MiB':>13}")
    for name, results in runs.items():
        seconds = median([r.seconds for r in results])
        rss = max(r.peak_rss_kib for r in results) / 1024
        print(f"{name:<16} {seconds:>9.3f} {f'{rss:.1f}' if rss else '-':>13}")
    ratio = median([r.seconds for r in runs["regpeek"]]) / median([r.seconds for r in runs["skopeo"]])
    print(f"regpeek / skopeo wall time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
