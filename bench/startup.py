"""Benchmark: start-up of one-shot commands (issue 13, target 5), and where the time goes.

Starts a local plain-HTTP CNCF distribution registry on loopback, pushes one single-platform image,
warms a cache directory with one ``regpeek inspect --json``, then alternates, ROUNDS times each under
``/usr/bin/time``: ``python -c pass`` (the interpreter alone), ``regpeek --version``, the warm-cache
``regpeek inspect --json`` (one HEAD to the registry) and ``skopeo inspect --no-tags`` of the same
tag (for scale). Prints the medians, then ``python -X importtime``'s top ten modules of the inspect
path by their own import time (median over IMPORT_ROUNDS runs) and the import time grouped by
where it comes from (the interpreter's own start, the HTTP stack, click, the standard library,
regpeek), so that a regression shows where it came from.

The package's bytecode is compiled first (``compileall``): an installed regpeek has it, and an
environment with ``PYTHONDONTWRITEBYTECODE`` would otherwise compile every module on every run.

Run: ``.venv/bin/python bench/startup.py [--rounds 15] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import collections
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REGPEEK, ROOT, machine, median, start_registry, timed
from tests.support.images import push_oci_image
from tests.support.push import Pusher

PYTHON = sys.executable
#: Top-level packages of the HTTP stack (httpx and what it imports on its own).
HTTP_STACK = {"httpx", "httpcore", "h11", "h2", "hpack", "hyperframe", "idna", "certifi", "anyio", "sniffio",
              "socksio", "trio", "zstandard", "brotli", "brotlicffi"}  # fmt: skip
#: Standard-library modules httpx imports for itself (its models, cookies, proxies from urllib).
HTTP_STDLIB = {"email", "http", "urllib", "ssl", "_ssl", "mimetypes", "tempfile", "shutil", "bz2", "lzma",
               "_bz2", "_lzma", "socket", "_socket", "selectors", "select", "calendar", "quopri", "uu",
               "unicodedata", "stringprep", "encodings.idna", "zlib", "hmac", "base64", "binascii"}  # fmt: skip


def load(registry_url: str) -> None:
    with Pusher(registry_url) as pusher:
        push_oci_image(pusher, "bench/startup", "v1")


def importtime(command: list[str], env: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """(module, self us, cumulative us, depth) for each import of ``command`` under ``-X importtime``."""
    done = subprocess.run([PYTHON, "-X", "importtime", *command], capture_output=True, text=True, env=env,
                          check=False)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{command} failed: {done.stderr[-500:]}")
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.split(":", 1)[1].split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        rows.append((name.strip(), int(own), int(cumulative), depth))
    return rows


def group_of(module: str) -> str:
    top = module.split(".", maxsplit=1)[0]
    if top == "regpeek":
        return "regpeek"
    if top == "click":
        return "click"
    if top in HTTP_STACK:
        return "httpx and its packages"
    if top in HTTP_STDLIB or module in HTTP_STDLIB:
        return "stdlib for HTTP (email, http, urllib, ssl...)"
    return "other stdlib (json, re, typing, pathlib...)"


def main() -> None:
    parser = argparse.ArgumentParser(description="start-up of regpeek --version and a warm inspect --json")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--import-rounds", type=int, default=5)
    parser.add_argument("--json", dest="json_out", help="also write the results to this file")
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "src" / "regpeek"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="regpeek-bench-") as work:
        workdir = Path(work)
        registry = start_registry(workdir / "registry")
        try:
            load(registry.url)
            ref = f"{registry.host}/bench/startup:v1"
            env = {**os.environ, "REGPEEK_CACHE_DIR": str(workdir / "cache")}
            inspect = ["inspect", "--json", "--plain-http", ref]
            timed([REGPEEK, *inspect], env=env)  # warm the cache
            registry.mark()
            timed([REGPEEK, *inspect], env=env)
            requests = [f"{r.method} {r.status}" for r in registry.requests()]
            commands = {
                "python -c pass": [PYTHON, "-c", "pass"],
                "regpeek --version": [REGPEEK, "--version"],
                "regpeek inspect --json (warm)": [REGPEEK, *inspect],
                "skopeo inspect --no-tags": ["skopeo", "inspect", "--no-tags", "--tls-verify=false", f"docker://{ref}"],
            }  # fmt: skip
            for command in commands.values():  # warm-up round
                timed(command, env=env)
            seconds: dict[str, list[float]] = {name: [] for name in commands}
            for round_number in range(args.rounds):
                order = list(commands) if round_number % 2 == 0 else list(reversed(commands))
                for name in order:
                    seconds[name].append(timed(commands[name], env=env).seconds)
            imports = [importtime(["-m", "regpeek", *inspect], env) for _ in range(args.import_rounds)]
            version_imports = [
                importtime(["-m", "regpeek", "--version"], env) for _ in range(args.import_rounds)
            ]
        finally:
            registry.stop()
    report(seconds, imports, version_imports, requests, args)


def _median_self(runs: list[list[tuple[str, int, int, int]]]) -> dict[str, float]:
    samples: dict[str, list[int]] = collections.defaultdict(list)
    for run in runs:
        for name, own, _, _ in run:
            samples[name].append(own)
    return {name: statistics.median(values) / 1000 for name, values in samples.items()}


def report(seconds: dict[str, list[float]], imports: list[list[tuple[str, int, int, int]]],
           version_imports: list[list[tuple[str, int, int, int]]], requests: list[str],
           args: argparse.Namespace) -> None:  # fmt: skip
    load_average = os.getloadavg()[0]
    print(f"start-up, {args.rounds} rounds alternated, {machine()}, load average {load_average:.1f}")
    medians = {name: median(values) for name, values in seconds.items()}
    for name, value in medians.items():
        print(f"  {name:<34} {value * 1000:7.1f} ms")
    print(f"  warm inspect requests at the registry: {', '.join(requests)}")
    own = _median_self(imports)
    print(f"\n-X importtime, inspect --json path, top ten by own time (median of {args.import_rounds}):")
    for name, value in sorted(own.items(), key=lambda item: -item[1])[:10]:
        print(f"  {value:7.2f} ms  {name}")
    groups: dict[str, float] = collections.defaultdict(float)
    for name, value in own.items():
        groups[group_of(name)] += value
    total = sum(groups.values())
    print(f"\nimport time by origin, inspect --json path (total {total:.1f} ms of imports):")
    for group, value in sorted(groups.items(), key=lambda item: -item[1]):
        print(f"  {value:7.1f} ms  {group}")
    version_total = sum(_median_self(version_imports).values())
    print(f"  ({version_total:.1f} ms of imports for --version)")
    results = {
        "machine": machine(),
        "load_average": load_average,
        "rounds": args.rounds,
        "medians_s": medians,
        "warm_requests": requests,
        "import_groups_ms": dict(groups),
        "imports_total_ms": total,
        "top_imports_ms": dict(sorted(own.items(), key=lambda item: -item[1])[:10]),
    }
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
