"""Benchmark: ``regpeek sif`` against what a user without Apptainer scripts today.

The peer pipeline, every step under ``/usr/bin/time -v``, their wall times summed:

1. ``skopeo copy --src-tls-verify=false docker://HOST/REPO:TAG oci:DIR:TAG``
2. ``umoci unpack --image DIR:TAG BUNDLE`` (as root, the default here, so that owners are kept as
   regpeek keeps them; ``--rootless`` when the benchmark runs as an ordinary user, as regpeek then does
   not need privileges either)
3. ``mksquashfs BUNDLE/rootfs OUT.sqfs -noappend -comp gzip -processors N`` (N: the CPUs we may use)
4. ``siftool new OUT.sif`` + ``siftool add --datatype 4 --parttype 2 --partfs 1 --partarch 2 OUT.sif OUT.sqfs``

against ``regpeek sif --plain-http --no-cache --quiet HOST/REPO:TAG OUT.sif`` (gzip; ``--no-cache``: no
layer store, every round downloads every layer as skopeo does), with the default squashfs tool
(``tar2sqfs``) and with ``--squashfs-tool mksquashfs``, the same squashfs builder as the pipeline's
(``mksquashfs -tar`` from the stream with squashfs-tools 4.6 or later; with 4.5, as Debian 12 ships,
the pseudo-file way: the flattened tree extracted to a private directory, then mksquashfs of that
directory, as the pipeline does). Rows are named after the way regpeek took.

Two images in a local CNCF distribution registry, pushed once: 3 layers of 32 MiB of random data (as
``bench/pull.py``), and 20 layers of 2,000 small text-like files each (1-8 KiB, in 40 directories,
with symlinks, and files replaced and whited out by later layers). Each round runs every command once,
the order rotating round by round; a warm-up round is not counted. Medians are reported.

Peak RSS: ``regpeek`` is the Python process itself (``getrusage(RUSAGE_SELF)`` read as it exits),
``tool`` the largest child it started (the squashfs tool, ``RUSAGE_CHILDREN``); for the pipeline the
largest of its steps (each under ``/usr/bin/time -v``). CPU seconds (user + system of every process,
from ``/usr/bin/time``) are printed too: on a shared machine they vary less than wall times, and they
say what each side costs whatever the load. regpeek's modules are byte-compiled first, as an installed
regpeek's are.

Run: ``.venv/bin/python bench/sif.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regpeek
from common import Run, big_image, machine, median, start_registry, timed
from regpeek.disk.squashfs import find_tool, jobs
from tests.support.images import FileSpec, push_oci_image
from tests.support.push import Pusher
from tests.support.registry import Registry

RATIO_TARGET = 0.7
RSS_TARGET_MIB = 150.0

# Runs the regpeek CLI in this interpreter and writes its own and its largest child's peak RSS (KiB)
# and CPU seconds to the file named first: /usr/bin/time reports only the largest of the two.
_PROBE = """\
import os, resource, sys
from regpeek.cli.main import main
code = main(sys.argv[2:])
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as out:
    out.write(f"{me.ru_maxrss} {kids.ru_maxrss} {me.ru_utime + me.ru_stime} {kids.ru_utime + kids.ru_stime}")
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


# -- images ----------------------------------------------------------------------------------------
_TEXT = (
    "the of and to in is for on that with as by at from this be are or an it not which have was all "
    "can will more one has been their if other its when also into may such these than only used two "
    "use first new time some would so each any could over most after out data file path image layer "
    "registry container build root config value error return struct import package function module "
    "static const void int char long unsigned include define endif ifdef license copyright version"
)
_WORDS = _TEXT.split()


_TOKENS = [word + " " for word in _WORDS] * 11 + [word + "\n" for word in _WORDS]


def _text(rng: random.Random, size: int) -> bytes:
    """``size`` bytes of word salad in lines of about 12 words: compresses about as well as source or
    docs (gzip: about 3.5:1)."""
    return "".join(rng.choices(_TOKENS, k=size // 4 + 8)).encode()[:size]


def small_files_layers(layers: int, files: int, seed: int = 9) -> list[dict[str, FileSpec]]:
    """``layers`` layers of ``files`` files of 1-8 KiB each, in directories of 50, with symlinks; each
    layer after the first replaces 20 files of the one below and whites out 5 others."""
    rng = random.Random(seed)
    result: list[dict[str, FileSpec]] = []
    for n in range(layers):
        layer: dict[str, FileSpec] = {f"usr/share/l{n:02d}": ("dir", 0o755)}
        for d in range(files // 50):
            layer[f"usr/share/l{n:02d}/d{d:02d}"] = ("dir", 0o755)
            for f in range(50):
                layer[f"usr/share/l{n:02d}/d{d:02d}/f{f:02d}.txt"] = _text(rng, rng.randint(1024, 8192))
            layer[f"usr/share/l{n:02d}/d{d:02d}/latest"] = ("symlink", "f49.txt")
        if n:
            below = f"usr/share/l{n - 1:02d}"
            for f in range(20):
                layer[f"{below}/d00/f{f:02d}.txt"] = _text(rng, rng.randint(1024, 8192))
            for f in range(20, 25):
                layer[f"{below}/d01/.wh.f{f:02d}.txt"] = b""
        result.append(layer)
    return result


def small_files_image(registry: Registry, repo: str, layers: int, files: int) -> None:
    with Pusher(registry.url) as pusher:
        push_oci_image(pusher, repo, "latest", layers=small_files_layers(layers, files))


# -- one command, measured -------------------------------------------------------------------------
@dataclass
class Measure:
    seconds: float
    rss_mib: float  # regpeek's own process, or the pipeline's largest step
    cpu: float  # user + system seconds of every process (regpeek and its squashfs tool; every step)
    tool_rss_mib: float = 0.0  # the squashfs tool regpeek started
    own_cpu: float = 0.0  # regpeek's own CPU seconds
    tool_cpu: float = 0.0  # the squashfs tool's
    steps: dict[str, Run] = field(default_factory=dict)  # the pipeline's steps


def regpeek_sif(ref: str, out: Path, tool: str, work: Path) -> Measure:
    probe = work / "probe"
    command = [sys.executable, "-c", _PROBE, str(probe), "sif", "--plain-http", "--no-cache", "--quiet"]
    command += ["--force", "--squashfs-tool", tool, "--compression", "gzip", ref, str(out)]
    run = timed(command)
    own_kib, child_kib, own_cpu, child_cpu = probe.read_text().split()
    return Measure(
        run.seconds,
        int(own_kib) / 1024,
        run.cpu_seconds,
        tool_rss_mib=int(child_kib) / 1024,
        own_cpu=float(own_cpu),
        tool_cpu=float(child_cpu),
    )


def pipeline(ref: str, out: Path, work: Path) -> Measure:
    layout, bundle, squashfs = work / "oci", work / "bundle", work / "rootfs.sqfs"
    for path in (layout, bundle):
        shutil.rmtree(path, ignore_errors=True)
    for path in (squashfs, out):
        path.unlink(missing_ok=True)
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    steps: list[tuple[str, list[str]]] = [
        ("skopeo", ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:latest"]),
        ("umoci", ["umoci", "--log", "error", "unpack", *rootless, "--image", f"{layout}:latest", str(bundle)]),
        ("mksquashfs", [
            "mksquashfs", str(bundle / "rootfs"), str(squashfs), "-noappend", "-comp", "gzip",
            "-processors", str(jobs()), "-quiet", "-no-progress",
        ]),
        ("siftool new", ["siftool", "new", str(out)]),
        ("siftool add", [
            "siftool", "add", "--datatype", "4", "--parttype", "2", "--partfs", "1", "--partarch", "2",
            str(out), str(squashfs),
        ]),
    ]  # fmt: skip
    runs: dict[str, Run] = {name: timed(command) for name, command in steps}
    shutil.rmtree(bundle, ignore_errors=True)
    return Measure(
        sum(r.seconds for r in runs.values()),
        max(r.peak_rss_kib for r in runs.values()) / 1024,
        sum(r.cpu_seconds for r in runs.values()),
        steps=runs,
    )


def sif_objects(path: Path) -> int:
    """How many data objects ``siftool list`` shows (a sanity check that both wrote a SIF)."""
    listing = subprocess.run(
        ["siftool", "list", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return sum(1 for line in listing.splitlines() if line.split() and line.split()[0].isdigit())


# -- the rounds ------------------------------------------------------------------------------------
def measure_image(
    label: str, ref: str, rounds: int, work: Path, tools: list[str]
) -> dict[str, list[Measure]]:
    commands: dict[str, Callable[[], Measure]] = {
        **{f"regpeek {tool}": (lambda tool=tool: regpeek_sif(ref, work / f"{tool}.sif", tool, work)) for tool in tools},  # type: ignore[misc]
        "pipeline": lambda: pipeline(ref, work / "pipeline.sif", work / "peer"),
    }  # fmt: skip
    (work / "peer").mkdir(parents=True, exist_ok=True)
    results: dict[str, list[Measure]] = {name: [] for name in commands}
    names = list(commands)
    for round_number in range(rounds + 1):  # round 0 warms up and is not counted
        shift = round_number % len(names)
        order = names[shift:] + names[:shift]
        if round_number % 2:
            order.reverse()
        for name in order:
            measure = commands[name]()
            if round_number:
                results[name].append(measure)
        print(
            f"  {label}: round {round_number}{' (warm-up)' if not round_number else ''} done", file=sys.stderr
        )
    for tool in tools:
        objects = sif_objects(work / f"{tool}.sif")
        size = (work / f"{tool}.sif").stat().st_size
        print(f"  {label}: regpeek {tool}: {objects} objects, {size / 2**20:.1f} MiB", file=sys.stderr)
    peer = work / "pipeline.sif"
    print(
        f"  {label}: pipeline: {sif_objects(peer)} object, {peer.stat().st_size / 2**20:.1f} MiB",
        file=sys.stderr,
    )
    return results


def _rows(scenarios: dict[str, dict[str, list[Measure]]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, results in scenarios.items():
        peer = results["pipeline"]
        for name, measures in results.items():
            if name == "pipeline":
                continue
            seconds, peer_seconds = median([m.seconds for m in measures]), median([m.seconds for m in peer])
            cpu, peer_cpu = median([m.cpu for m in measures]), median([m.cpu for m in peer])
            rows.append({
                "scenario": f"{label}, {find_tool(name.split()[1]).method}",
                "regpeek_s": seconds, "pipeline_s": peer_seconds, "ratio": seconds / peer_seconds,
                "rss_mib": max(m.rss_mib for m in measures),
                "tool_rss_mib": max(m.tool_rss_mib for m in measures),
                "pipeline_rss_mib": max(m.rss_mib for m in peer),
                "cpu_s": cpu, "pipeline_cpu_s": peer_cpu, "cpu_ratio": cpu / peer_cpu,
                "regpeek_cpu_s": median([m.own_cpu for m in measures]),
                "tool_cpu_s": median([m.tool_cpu for m in measures]),
                "pipeline_steps": {
                    step: {
                        "s": median([m.steps[step].seconds for m in peer]),
                        "cpu_s": median([m.steps[step].cpu_seconds for m in peer]),
                    }
                    for step in peer[0].steps
                },
            })  # fmt: skip
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    width = max(len(row["scenario"]) for row in rows)
    print(
        f"\n{'scenario':<{width}}  {'regpeek s':>9}  {'pipeline s':>10}  {'ratio':>6}  "
        f"{'regpeek RSS MiB':>15}  {'tool RSS':>8}  {'pipeline RSS':>12}"
    )
    for row in rows:
        print(
            f"{row['scenario']:<{width}}  {row['regpeek_s']:>9.2f}  {row['pipeline_s']:>10.2f}  "
            f"{row['ratio']:>5.2f}x  {row['rss_mib']:>15.1f}  {row['tool_rss_mib']:>8.1f}  "
            f"{row['pipeline_rss_mib']:>12.1f}"
        )
    print(
        f"\n{'CPU s (user + system, all processes)':<{width}}  {'regpeek':>9}  {'pipeline':>10}  {'ratio':>6}"
    )
    for row in rows:
        print(
            f"{row['scenario']:<{width}}  {row['cpu_s']:>9.2f}  {row['pipeline_cpu_s']:>10.2f}  {row['cpu_ratio']:>5.2f}x"
        )
    print("\nwhere the time goes (medians; wall s / CPU s)")
    shown: set[str] = set()
    for row in rows:
        label = row["scenario"].rsplit(", ", 1)[0]
        if label not in shown:
            shown.add(label)
            parts = ", ".join(
                f"{step} {v['s']:.2f} / {v['cpu_s']:.2f}" for step, v in row["pipeline_steps"].items()
            )
            print(f"  {label}, pipeline: {parts}")
        print(
            f"  {row['scenario']}: regpeek process {row['regpeek_cpu_s']:.2f} CPU s, "
            f"squashfs tool {row['tool_cpu_s']:.2f} CPU s"
        )
    print()
    for row in rows:
        ratio_met = "met" if row["ratio"] <= RATIO_TARGET else "not met"
        rss_met = "met" if row["rss_mib"] < RSS_TARGET_MIB else "not met"
        print(
            f"target {row['scenario']}: time {row['ratio']:.2f}x <= {RATIO_TARGET}x {ratio_met}; "
            f"regpeek RSS {row['rss_mib']:.1f} < {RSS_TARGET_MIB:.0f} MiB {rss_met}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="regpeek sif vs skopeo + umoci + mksquashfs + siftool")
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds (a warm-up round is added)")
    parser.add_argument("--layers", type=int, default=3, help="layers of the random-data image")
    parser.add_argument("--layer-mib", type=int, default=32)
    parser.add_argument("--small-layers", type=int, default=20, help="layers of the small-files image")
    parser.add_argument("--small-files", type=int, default=2000, help="files per layer of that image")
    parser.add_argument(
        "--tools",
        default="tar2sqfs,mksquashfs",
        help="regpeek's squashfs tools to measure (comma-separated)",
    )
    parser.add_argument("--only", choices=("big", "small"), help="measure one image only")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    tools = [tool for tool in args.tools.split(",") if tool]
    # as an installed regpeek runs: its modules compiled once (pip does it for a wheel, the first run
    # for an editable install; not when PYTHONDONTWRITEBYTECODE is set, which would add the compile
    # of every module to each run)
    compileall.compile_dir(Path(regpeek.__file__).parent, quiet=1)
    load_before = os.getloadavg()[0]
    scenarios: dict[str, dict[str, list[Measure]]] = {}
    with tempfile.TemporaryDirectory(prefix="regpeek-bench-") as temporary:
        work = Path(temporary)
        registry = start_registry(work / "registry")
        try:
            started = time.perf_counter()
            big = f"{args.layers} x {args.layer_mib} MiB random"
            small = f"{args.small_layers} x {args.small_files} small files"
            if args.only != "small":
                big_image(registry, "bench/big", args.layers, args.layer_mib)
            if args.only != "big":
                small_files_image(registry, "bench/small", args.small_layers, args.small_files)
            print(f"  images pushed in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            if args.only != "small":
                scenarios[big] = measure_image(
                    big, f"{registry.host}/bench/big:latest", args.rounds, work / "big", tools
                )
            if args.only != "big":
                scenarios[small] = measure_image(
                    small, f"{registry.host}/bench/small:latest", args.rounds, work / "small", tools
                )
        finally:
            registry.stop()
    user = "root" if os.geteuid() == 0 else "an ordinary user (umoci --rootless)"
    print(
        f"regpeek sif vs skopeo + umoci + mksquashfs + siftool: {args.rounds} rounds (+1 warm-up), as {user}, "
        f"gzip, {jobs()} squashfs jobs"
    )
    print(
        f"{tool_versions()}; {machine()}; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
    )
    rows = _rows(scenarios)
    report(rows)
    print(
        "\nBoth write a SIF whose primary partition is the image's root file system (gzip squashfs). "
        "regpeek also writes the definition, inspect-metadata.json and oci-config.json objects, the "
        "/.singularity.d tree, mount points and /singularity link, verifies each layer's digest again as "
        "it reads it, and fsyncs the SIF before renaming it into place; the pipeline writes one partition "
        "object, no metadata, no fsync, and leaves the OCI layout and umoci's bundle behind "
        "(config.json, umoci.json, the mtree manifest umoci writes and hashes every file for)."
    )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def tool_versions() -> str:
    def first_line(command: list[str]) -> str:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        return (
            (done.stdout or done.stderr).strip().splitlines()[0]
            if (done.stdout or done.stderr).strip()
            else "?"
        )

    return ", ".join([
        first_line(["skopeo", "--version"]),
        first_line(["umoci", "--version"]),
        " ".join(first_line(["mksquashfs", "-version"]).split()[:3]),
        "tar2sqfs " + first_line(["tar2sqfs", "--version"]).split()[-1],
        "siftool " + first_line(["dpkg-query", "-W", "-f", "${Version}", "siftool"]),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
