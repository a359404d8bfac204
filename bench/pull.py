"""Benchmark: ``regpeek pull`` against ``skopeo copy``, and ``regpeek unpack`` against ``umoci`` (issue 13,
target 4).

Starts a local CNCF distribution registry, pushes one image of LAYERS layers of LAYER_MIB MiB of random
(incompressible) data, then pulls it ROUNDS times with each tool into a fresh directory, alternating
which goes first, under ``/usr/bin/time -v`` (after one warm-up run of each). regpeek runs as a user
would, with its cache on, but with a fresh, empty cache directory each run (a cold pull pays for
adding the layers to the cache); ``--cache`` adds rows for ``--no-cache`` and for a warm cache (the
same layers pulled again into a new destination, from the cache); ``--delay 0.025`` puts the 25 ms-each-way latency proxy in front of
the registry. Then it unpacks the pulled layout ROUNDS times with ``regpeek unpack oci:...`` against
``umoci raw unpack --rootless`` (only the unpacking) and ``umoci unpack --rootless`` (which also writes
an mtree manifest of the tree and a runtime ``config.json``), alternating the same way. Prints median
wall times, their ratios and each tool's peak RSS.

Run: ``.venv/bin/python bench/pull.py [--rounds 5] [--layer-mib 32] [--delay 0] [--no-unpack]
[--json FILE]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from common import REGPEEK, Run, big_image, machine, median, start_registry, timed
from latency import LatencyProxy


@contextlib.contextmanager
def maybe_latency(port: int, delay: float) -> Iterator[str]:
    if delay <= 0:
        yield f"127.0.0.1:{port}"
        return
    with LatencyProxy(port, delay) as proxy:
        yield proxy.host


def main() -> None:
    parser = argparse.ArgumentParser(description="regpeek pull vs skopeo copy, regpeek unpack vs umoci")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--layer-mib", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds added each way (a latency proxy)")
    parser.add_argument("--no-unpack", action="store_true", help="only the pulls")
    parser.add_argument("--cache", action="store_true",
                        help="also regpeek with --no-cache and with a warm cache (a second pull of the same layers)")  # fmt: skip
    parser.add_argument("--json", dest="json_out", help="also write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regpeek-bench-") as work:
        workdir = Path(work)
        registry = start_registry(workdir / "registry")
        try:
            big_image(registry, "bench/big", args.layers, args.layer_mib)
            with maybe_latency(registry.port, args.delay) as host:
                ref = f"{host}/bench/big:latest"
                cache = workdir / "cache"
                commands = {
                    "regpeek": lambda dest: [REGPEEK, "pull", "--plain-http", "--quiet", "--cache-dir", str(cache), ref, str(dest)],
                    "skopeo": lambda dest: [
                        "skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"oci:{dest}:latest"
                    ],
                }  # fmt: skip
                fresh = [cache]
                if args.cache:
                    warm = workdir / "warm-cache"
                    commands["regpeek --no-cache"] = lambda dest: [REGPEEK, "pull", "--plain-http", "--quiet", "--no-cache", ref, str(dest)]  # fmt: skip
                    commands["regpeek warm cache"] = lambda dest: [REGPEEK, "pull", "--plain-http", "--quiet", "--cache-dir", str(warm), ref, str(dest)]  # fmt: skip
                pulls = alternate(
                    commands, args.rounds, lambda name: workdir / f"out-{name.replace(' ', '-')}", fresh=fresh
                )
            unpacks: dict[str, list[Run]] = {}
            if not args.no_unpack:
                layout = workdir / "out-regpeek"  # the last cold pull's layout
                umoci = ["umoci", "--log", "error"]
                unpackers = {
                    "regpeek": lambda dest: [REGPEEK, "unpack", "--quiet", f"oci:{layout}:latest", str(dest)],
                    "umoci raw unpack": lambda dest: [*umoci, "raw", "unpack", "--rootless", "--image", f"{layout}:latest", str(dest)],
                    "umoci unpack": lambda dest: [*umoci, "unpack", "--rootless", "--image", f"{layout}:latest", str(dest)],
                }  # fmt: skip
                unpacks = alternate(
                    unpackers, args.rounds, lambda name: workdir / f"rootfs-{name.replace(' ', '-')}"
                )
        finally:
            registry.stop()
    latency = f", {args.delay * 1000:.0f} ms each way" if args.delay > 0 else ", loopback"
    print(f"{args.layers} x {args.layer_mib} MiB random layers{latency}, {args.rounds} rounds alternated, "
          f"{machine()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    summary = {"pull": report("pull", pulls, "skopeo")}
    if unpacks:
        summary["unpack"] = report("unpack", unpacks, "umoci raw unpack")
        print("(umoci unpack also writes an mtree manifest of the tree and a runtime config.json)")
    if args.json_out:
        document = {"machine": machine(), "load_average": os.getloadavg()[0], "layers": args.layers,
                    "layer_mib": args.layer_mib, "delay": args.delay, "summary": summary}  # fmt: skip
        Path(args.json_out).write_text(json.dumps(document, indent=1))


def alternate(
    commands: dict[str, Callable[[Path], list[str]]],
    rounds: int,
    target: Callable[[str], Path],
    fresh: list[Path] | None = None,
) -> dict[str, list[Run]]:
    """Run each command once to warm up, then ``rounds`` times into a fresh target (and with the
    ``fresh`` directories removed first), alternating which goes first."""
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for round_number in range(-1, rounds):
        order = list(commands) if round_number % 2 == 0 else list(reversed(commands))
        for name in order:
            for path in [target(name), *(fresh or [])]:
                shutil.rmtree(path, ignore_errors=True)
            run = timed(commands[name](target(name)))
            if round_number >= 0:
                runs[name].append(run)
    return runs


def report(what: str, runs: dict[str, list[Run]], peer: str) -> dict[str, dict[str, float]]:
    print(f"\n{what:<19} {'median s':>9} {'peak RSS MiB':>13}")
    summary = {}
    for name, results in runs.items():
        seconds = median([r.seconds for r in results])
        rss = max(r.peak_rss_kib for r in results) / 1024
        summary[name] = {"seconds": seconds, "peak_rss_mib": rss}
        print(f"{name:<19} {seconds:>9.3f} {rss:>13.1f}")
    ratio = summary["regpeek"]["seconds"] / summary[peer]["seconds"]
    print(f"regpeek / {peer} wall time: {ratio:.2f}x")
    return summary


if __name__ == "__main__":
    main()
