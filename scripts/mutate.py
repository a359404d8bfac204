"""Mutation testing of the verification-critical modules, each against its own fast tests (``make mutate``).

For every module below, a scratch copy of ``src/``, ``tests/`` and ``pyproject.toml`` is made under
``build/mutate/<name>/`` with a ``[tool.mutmut]`` table naming that one module and its tests, and
``mutmut run`` mutates it there (the worktree itself is never touched). The per-module score (killed
over killed + survived; mutants no test reaches count as survivors) is printed as a table and written
to ``build/mutate/scores.json``; ``--show NAME`` prints the surviving mutants' diffs of one module, to
judge which are equivalent (``docs/testing.md`` lists them).

    python scripts/mutate.py                 # every module
    python scripts/mutate.py digest schema1  # some of them
    python scripts/mutate.py --show digest   # survivors of the last digest run, as diffs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutate"
TARGET = 0.85


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    # tests left out: those that run a copy of the package in another interpreter (as nobody), where
    # mutmut's trampolines cannot be imported
    deselect: tuple[str, ...] = ()


_UNPRIVILEGED = "tests/unit/test_unpack.py::test_unprivileged_user_fills_read_only_directories"

# Each module and the tests that must kill its mutants: fast ones (unit tests, or the few integration
# tests that exercise the module against the real registry), so a module's run stays in minutes.
MODULES: dict[str, Module] = {
    "digest": Module("src/regpeek/formats/digest.py", ("tests/unit/test_digest.py",)),
    "reference": Module("src/regpeek/formats/reference.py", ("tests/unit/test_reference.py",)),
    "platform": Module("src/regpeek/formats/platform.py", ("tests/unit/test_platform.py",)),
    "challenge": Module("src/regpeek/formats/challenge.py", ("tests/unit/test_challenge.py",)),
    "manifest": Module(
        "src/regpeek/formats/manifest.py",
        ("tests/unit/test_manifest.py", "tests/unit/test_fuzz_parsers.py"),
    ),
    "schema1": Module(
        "src/regpeek/formats/schema1.py",
        ("tests/unit/test_schema1.py", "tests/unit/test_fuzz_parsers.py"),
    ),
    "unpack": Module(
        "src/regpeek/disk/unpack.py",
        ("tests/unit/test_unpack.py", "tests/unit/test_unpack_hardening.py"),
        deselect=(_UNPRIVILEGED,),
    ),
    "flatten": Module(
        "src/regpeek/disk/flatten.py",
        (
            "tests/unit/test_export_details.py",
            "tests/unit/test_unpack_tarwriter.py",
            "tests/unit/test_unpack.py",
            "tests/integration/test_rootfs.py",
        ),
        deselect=(_UNPRIVILEGED,),
    ),
    "layout": Module(
        "src/regpeek/disk/layout.py",
        (
            "tests/unit/test_copy_parts.py",
            "tests/integration/test_rootfs.py",
            "tests/integration/test_pull.py",
        ),
    ),
    "cache": Module(
        "src/regpeek/disk/cache.py", ("tests/unit/test_cache.py", "tests/unit/test_layer_store.py")
    ),
    "rootfs": Module(
        "src/regpeek/rootfs.py",
        ("tests/integration/test_rootfs.py", "tests/integration/test_foreign_layers.py"),
    ),
}


def _pyproject(module: Module) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    selection = ", ".join(json.dumps(test) for test in module.tests)
    deselect = "".join(f', "--deselect", {json.dumps(test)}' for test in module.deselect)
    return text + (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = [{json.dumps(module.path)}]\n"
        f"pytest_add_cli_args_test_selection = [{selection}]\n"
        f'pytest_add_cli_args = ["-q", "-x", "-p", "no:randomly"{deselect}]\n'
        "use_git_change_detection = false\n"
    )


def _prepare(name: str, module: Module) -> Path:
    where = WORK / name
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".hypothesis")
    shutil.copytree(ROOT / "src", where / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", where / "tests", ignore=ignore)
    (where / "pyproject.toml").write_text(_pyproject(module))
    return where


_RESULT_RE = re.compile(r"^\s*(?P<name>\S+): (?P<status>[a-z ]+?)\s*$")


def _results(where: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=where, capture_output=True, text=True, check=True,
    )  # fmt: skip
    statuses: dict[str, str] = {}
    for line in done.stdout.splitlines():
        match = _RESULT_RE.match(line)
        if match:
            statuses[match["name"]] = match["status"]
    return statuses


def _run(name: str, module: Module, jobs: int) -> dict[str, object]:
    where = _prepare(name, module)
    started = time.monotonic()
    # the fuzz properties at 25 examples each: enough to kill a parser mutant, fast enough to run per mutant
    env = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "FUZZ_EXAMPLES": os.environ.get("MUTATE_FUZZ_EXAMPLES", "25"),
    }
    log = where / "mutmut.log"
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)],
            cwd=where, stdout=out, stderr=subprocess.STDOUT, env=env, check=False,
        )  # fmt: skip
    statuses = _results(where)
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    judged = killed + counts.get("survived", 0) + counts.get("no tests", 0)
    return {
        "module": name,
        "path": module.path,
        "tests": list(module.tests),
        "mutants": len(statuses),
        "counts": counts,
        "killed": killed,
        "score": round(killed / judged, 4) if judged else None,
        "survivors": sorted(k for k, v in statuses.items() if v in ("survived", "no tests")),
        "seconds": round(time.monotonic() - started, 1),
    }


def _show(name: str) -> int:
    where = WORK / name
    if not where.exists():
        print(f"no run of {name} under {where}", file=sys.stderr)
        return 2
    for mutant, status in sorted(_results(where).items()):
        if status in ("survived", "no tests"):
            subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=where, check=False)
    return 0


def _table(scores_file: Path) -> int:
    if not scores_file.exists():
        print(f"no scores yet: {scores_file}", file=sys.stderr)
        return 2
    scores = json.loads(scores_file.read_text())
    print("| module | tests | mutants | killed | survived | no test | score | seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in MODULES:
        if name not in scores:
            continue
        result = scores[name]
        counts = result["counts"]
        score = "n/a" if result["score"] is None else f"{result['score']:.1%}"
        tests = ", ".join(f"`{test.rsplit('/', 1)[-1]}`" for test in result["tests"])
        print(
            f"| `{result['path'].removeprefix('src/regpeek/')}` | {tests} | {result['mutants']} | {result['killed']} "
            f"| {counts.get('survived', 0)} | {counts.get('no tests', 0)} | {score} | {result['seconds']:.0f} |"
        )
    return 0


def main() -> int:
    # started in the background by a shell without job control, SIGINT is ignored, and every child
    # would inherit that: the tests that interrupt a pull with SIGINT would fail in the clean run
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "modules", nargs="*", help=f"modules to mutate (default: all of {', '.join(MODULES)})"
    )
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants run at once")
    parser.add_argument("--show", metavar="MODULE", help="print the survivors of MODULE's last run")
    parser.add_argument("--table", action="store_true", help="print the last scores as a markdown table")
    parser.add_argument("--scores", type=Path, default=WORK / "scores.json", help="where the scores are kept")
    args = parser.parse_args()
    if args.show:
        return _show(args.show)
    if args.table:
        return _table(args.scores)
    unknown = [name for name in args.modules if name not in MODULES]
    if unknown:
        parser.error(f"unknown modules: {', '.join(unknown)}")
    scores_file: Path = args.scores
    failed = False
    for name in args.modules or list(MODULES):
        result = _run(name, MODULES[name], args.jobs)
        # read again: another run may have written other modules' scores meanwhile
        scores = json.loads(scores_file.read_text()) if scores_file.exists() else {}
        scores[name] = result
        scores_file.parent.mkdir(parents=True, exist_ok=True)
        scores_file.write_text(json.dumps(scores, indent=2) + "\n")
        score = result["score"]
        shown = "n/a" if score is None else f"{score:.1%}"
        print(f"{name:10} {result['killed']:>4}/{result['mutants']:<4} killed  {shown:>6}  {result['seconds']}s",
              flush=True)  # fmt: skip
        if score is None or score < TARGET:  # type: ignore[operator]
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
