"""Session-wide test settings.

Each pytest run gets a temporary directory of its own (``--basetemp``, unless given): pytest's default
``/tmp/pytest-of-<user>/pytest-N`` keeps only the three newest runs and deletes older ones, so runs
started side by side on one machine (several worktrees, a benchmark and the suite) would delete each
other's files mid-test. The directory is removed when the run ends, descriptor by descriptor (some
tests build trees deeper than ``shutil.rmtree`` can recurse), unless ``REGPEEK_KEEP_TMP`` is set.
Every test starts from fresh CLI process state (:mod:`tests.support.clistate`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clistate import fresh_cli_state

_CREATED: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        base = Path(tempfile.mkdtemp(prefix="regpeek-pytest-"))
        config.option.basetemp = str(base)
        _CREATED.append(base)


@pytest.fixture(autouse=True)
def _fresh_cli_state() -> Iterator[None]:
    """Every test starts with the CLI's process-wide state of a new process (``run_cli`` also resets
    it for each run): the scrubber knows no secret, no ``--debug`` handler is installed."""
    with fresh_cli_state():
        yield


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get("REGPEEK_KEEP_TMP"):
        return
    for base in _CREATED:
        _remove(base)


def _remove(base: Path) -> None:
    from regpeek.disk.rootdir import remove_tree

    if not base.exists():
        return
    _open_up(base)
    parent = os.open(base.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree(parent, base.name)
    except OSError:
        shutil.rmtree(base, ignore_errors=True)
    finally:
        os.close(parent)


def _open_up(base: Path) -> None:
    """Make every directory searchable and writable by us (tests leave 0555/0000 trees behind)."""
    try:
        for directory, dirnames, _ in os.walk(base):
            for name in dirnames:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if not os.path.islink(path):
                        os.chmod(path, 0o700)
    except RecursionError:
        pass
