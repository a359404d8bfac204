"""The README's Conformance section states what the suites hold: their row counts and every intentional
difference with its reason. This keeps the two from drifting apart."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.conformance._rows import INTENTIONAL, count

HERE = Path(__file__).parent
README = (HERE.parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Conformance") : README.index("\n## ", README.index("## Conformance") + 3)]
MODULES = sorted(path.stem for path in HERE.glob("test_*.py") if path.stem != "test_readme")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"tests.conformance.{name}")


@pytest.mark.parametrize("name", MODULES)
def test_every_suite_is_listed_with_its_counts(name: str) -> None:
    rows, intentional = count(_module(name).ROWS)
    assert re.search(rf"\| `{name}\.py` \| {rows} \| {intentional} \|", SECTION), (name, rows, intentional)


def test_total() -> None:
    rows = [row for name in MODULES for row in _module(name).ROWS]
    total, intentional = count(rows)
    assert f"| **total** | | | **{total}** | **{intentional}** |" in SECTION
    assert total >= 700  # the suites hold hundreds of upstream rows


@pytest.mark.parametrize("key", INTENTIONAL)
def test_every_intentional_difference_is_listed_with_its_reason(key: str) -> None:
    used = sum(1 for name in MODULES for row in _module(name).ROWS if row.intentional == key)
    assert used > 0, f"{key} is used by no row"
    assert f"- `{key}` ({used}): {INTENTIONAL[key]}." in SECTION
