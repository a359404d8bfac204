"""``make bench``: issue 13's targets 1-5 in one table, from one command.

Runs ``bench/startup.py`` (target 5), ``bench/inspect_speed.py`` over TLS and plain HTTP (targets 1-3)
and ``bench/pull.py`` twice (target 4: 3 x 32 MiB on loopback, 3 x 128 MiB through the latency
proxy), each writing its results as JSON, then prints one table: what was measured, the goal, whether
it is met, and the requests (token requests) each tool made, with the machine line. Each script's own
output is printed first (its details: import breakdown, peak RSS, every row's median).

Run: ``.venv/bin/python bench/all.py [--quick]`` (``--quick``: fewer rounds, for a first look).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import machine

HERE = Path(__file__).resolve().parent


def script(name: str, *args: str, out: Path) -> dict[str, Any]:
    command = [sys.executable, str(HERE / name), *args, "--json", str(out)]
    print(f"\n$ {' '.join(['.venv/bin/python', f'bench/{name}', *args])}", flush=True)
    subprocess.run(command, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="issue 13's targets in one table")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    quick = args.quick
    with tempfile.TemporaryDirectory(prefix="regpeek-bench-all-") as work:
        out = Path(work)
        startup = script("startup.py", "--rounds", "7" if quick else "15", out=out / "startup.json")
        inspect = script("inspect_speed.py", "--rounds", "3" if quick else "5", "--loop-rounds",
                         "1" if quick else "3", out=out / "inspect.json")  # fmt: skip
        pull = script("pull.py", "--rounds", "3" if quick else "5", "--no-unpack", out=out / "pull.json")
        far = script("pull.py", "--rounds", "1" if quick else "3", "--layer-mib", "128", "--delay", "0.025",
                     "--no-unpack", out=out / "pull-far.json")  # fmt: skip
    table(startup, inspect, pull, far)


def table(
    startup: dict[str, Any], inspect: dict[str, Any], pull: dict[str, Any], far: dict[str, Any]
) -> None:
    rows: list[tuple[str, str, str, str, str]] = []
    summary = inspect["summary"]

    def ratio_row(
        label: str, mode: str, scenario: str, ours: str, theirs: str, goal: float, faster: bool
    ) -> None:
        found = summary.get(f"{mode} {scenario}")
        if not found:
            return
        a, b = found[ours], found[theirs]
        if faster:  # "at least N x faster": skopeo's time over regpeek's
            value = b["seconds"] / a["seconds"]
            measured = (
                f"{a['seconds']:.2f} s (CPU {a['cpu']:.2f} s) vs {b['seconds']:.2f} s = {value:.1f}x faster"
            )
            met = value >= goal
            goal_text = f">= {goal:.0f}x faster"
        else:
            value = a["seconds"] / b["seconds"]
            measured = f"{a['seconds']:.3f} s vs {b['seconds']:.3f} s = {value:.2f}x"
            met = value <= goal
            goal_text = f"<= {goal}x"
        counts = f"{a['requests']:.0f} ({a['tokens']:.0f}) vs {b['requests']:.0f} ({b['tokens']:.0f})"
        rows.append((f"{label} [{mode}]", measured, goal_text, "yes" if met else "NO", counts))

    for mode in ("tls", "plain"):
        ratio_row("1. first inspect vs skopeo", mode, "one", "regpeek cold", "skopeo", 1.1, False)
        ratio_row("2. repeated inspect vs skopeo", mode, "one", "regpeek repeat", "skopeo", 0.5, False)
        ratio_row("3. 200 refs, one call vs skopeo loop", mode, "200", "regpeek 200", "skopeo loop", 30, True)
    for label, result, goal in (("4. pull 3x32 MiB, loopback", pull, 1.0),
                                ("4. pull 3x128 MiB, 25 ms latency", far, 0.9)):  # fmt: skip
        ours, theirs = result["summary"]["pull"]["regpeek"], result["summary"]["pull"]["skopeo"]
        value = ours["seconds"] / theirs["seconds"]
        rows.append((label, f"{ours['seconds']:.2f} s vs {theirs['seconds']:.2f} s = {value:.2f}x", f"<= {goal}x",
                     "yes" if value <= goal else "NO", "-"))  # fmt: skip
        rss = ours["peak_rss_mib"]
        rows.append((f"{label}: peak RSS", f"{rss:.1f} MiB", "< 100 MiB", "yes" if rss < 100 else "NO", "-"))
    medians = startup["medians_s"]
    version, warm = medians["regpeek --version"], medians["regpeek inspect --json (warm)"]
    python_ms = medians["python -c pass"] * 1000
    rows.append(("5. regpeek --version", f"{version * 1000:.0f} ms (python -c pass {python_ms:.0f} ms)", "< 40 ms",
                 "yes" if version < 0.040 else "NO", "-"))  # fmt: skip
    skopeo_ms = medians["skopeo inspect --no-tags"] * 1000
    measured = (
        f"{warm * 1000:.0f} ms (imports {startup['imports_total_ms']:.0f} ms; skopeo {skopeo_ms:.0f} ms)"
    )
    requests = ", ".join(startup["warm_requests"])
    rows.append(
        ("5. warm inspect --json, loopback", measured, "< 60 ms", "yes" if warm < 0.060 else "NO", requests)
    )
    print(f"\nissue 13 targets, {machine()}, load average {os.getloadavg()[0]:.1f} "
          f"(during the runs: {inspect['load_average']:.1f}-{startup['load_average']:.1f})")  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    head = ("target", "measured (regpeek vs peer)", "goal", "met", "requests (tokens) regpeek vs skopeo")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    for row in (head, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
