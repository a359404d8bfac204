"""Run every fault scenario against local registries and print what happened, one row per scenario.

    .venv/bin/python bench/faults.py            # the whole table (about half a minute)
    .venv/bin/python bench/faults.py -k 401     # scenarios whose name contains "401"
    .venv/bin/python bench/faults.py -v         # plus every request and output of failing rows

The scenarios (faults, command, expected outcome) live in tests/support/scenarios.py, shared with
tests/integration/test_faults.py.  Exit status 1 when any scenario fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scenarios import SCENARIOS, Env, Observation, Scenario, run_scenario  # noqa: E402

_WIDTHS = {"expected": 40, "observed": 96}


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(cells: list[str], widths: list[int], right: set[int]) -> str:
    return "  ".join(
        cell.rjust(width) if index in right else cell.ljust(width)
        for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


def table(results: list[tuple[Scenario, Observation]]) -> str:
    header = ["scenario", "expected", "observed", "requests", "seconds", "result"]
    rows = [
        [
            scenario.name,
            _clip(scenario.expect.describe(), _WIDTHS["expected"]),
            _clip(seen.outcome, _WIDTHS["observed"]),
            str(seen.requests),
            f"{seen.seconds:.2f}",
            "PASS" if seen.passed else "FAIL",
        ]
        for scenario, seen in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {3, 4}
    lines = [_row(header, widths, right), _row(["-" * w for w in widths], widths, set())]
    lines += [_row(row, widths, right) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-k", dest="pattern", default="", help="only scenarios whose name contains this")
    parser.add_argument("-v", "--verbose", action="store_true", help="show requests and output of failures")
    args = parser.parse_args(argv)
    chosen = [scenario for scenario in SCENARIOS if args.pattern in scenario.name]
    if not chosen:
        print(f"no scenario name contains {args.pattern!r}", file=sys.stderr)
        return 2
    started = time.monotonic()
    results: list[tuple[Scenario, Observation]] = []
    with tempfile.TemporaryDirectory(prefix="regpeek-faults-") as scratch, Env(Path(scratch) / "env") as env:
        for number, scenario in enumerate(chosen):
            seen = run_scenario(scenario, env, Path(scratch) / f"run-{number}")
            results.append((scenario, seen))
            print(f"{'.' if seen.passed else 'F'}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(table(results))
    failed = [seen for _, seen in results if not seen.passed]
    print(
        f"\n{len(results) - len(failed)} of {len(results)} scenarios passed"
        f" in {time.monotonic() - started:.1f}s (registry start-up and image pushes included)"
    )
    for seen in failed:
        print()
        print(seen.report() if args.verbose else f"{seen.name}: " + "; ".join(seen.failures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
