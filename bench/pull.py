"""Benchmark: ``regpeek pull`` against ``skopeo copy``, and ``regpeek unpack`` against ``umoci unpack``.

Starts a local CNCF distribution registry, pushes one image of LAYERS layers of LAYER_MIB MiB of random
(incompressible) data, then pulls it ROUNDS times with each tool into a fresh directory, alternating
which goes first, under ``/usr/bin/time -v``; then unpacks the pulled layout ROUNDS times with
``regpeek unpack oci:...`` and ``umoci unpack --rootless``, alternating the same way. Prints median wall
times, their ratios and each tool's peak RSS. Run: ``.venv/bin/python bench/pull.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from common import REGPEEK, Run, big_image, machine, median, start_registry, timed


def main() -> None:
    parser = argparse.ArgumentParser(description="regpeek pull vs skopeo copy")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regpeek-bench-") as work:
        workdir = Path(work)
        registry = start_registry(workdir / "registry")
        try:
            big_image(registry, "bench/big", args.layers, args.layer_mib)
            ref = f"{registry.host}/bench/big:latest"
            commands = {
                "regpeek": lambda dest: [REGPEEK, "pull", "--plain-http", "--quiet", "--no-cache", ref, str(dest)],
                "skopeo": lambda dest: [
                    "skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}:latest"
                ],
            }  # fmt: skip
            pulls = alternate(commands, args.rounds, lambda name: workdir / f"out-{name}")
            layout = workdir / "out-regpeek"
            unpackers = {
                "regpeek": lambda dest: [REGPEEK, "unpack", "--quiet", f"oci:{layout}:latest", str(dest)],
                "umoci": lambda dest: ["umoci", "--log", "error", "unpack", "--rootless", "--image", f"{layout}:latest", str(dest)],
            }  # fmt: skip
            unpacks = alternate(unpackers, args.rounds, lambda name: workdir / f"rootfs-{name}")
        finally:
            registry.stop()
    print(f"{args.layers} x {args.layer_mib} MiB random layers, {args.rounds} rounds, {machine()}")
    report("pull", pulls, "skopeo")
    report("unpack", unpacks, "umoci")


def alternate(
    commands: dict[str, Callable[[Path], list[str]]], rounds: int, target: Callable[[str], Path]
) -> dict[str, list[Run]]:
    """Run each command ``rounds`` times into a fresh target, alternating which goes first."""
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for round_number in range(rounds):
        order = list(commands) if round_number % 2 == 0 else list(reversed(commands))
        for name in order:
            dest = target(name)
            shutil.rmtree(dest, ignore_errors=True)
            runs[name].append(timed(commands[name](dest)))
    return runs


def report(what: str, runs: dict[str, list[Run]], peer: str) -> None:
    print(f"\n{what:<8} {'median s':>9} {'peak RSS MiB':>13}")
    for name, results in runs.items():
        seconds = median([r.seconds for r in results])
        rss = max(r.peak_rss_kib for r in results) / 1024
        print(f"{name:<8} {seconds:>9.3f} {rss:>13.1f}")
    ratio = median([r.seconds for r in runs["regpeek"]]) / median([r.seconds for r in runs[peer]])
    print(f"regpeek / {peer} wall time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
