"""Session-wide test settings.

Each pytest run gets a temporary directory of its own (``--basetemp``, unless given): pytest's default
``/tmp/pytest-of-<user>/pytest-N`` keeps only the three newest runs and deletes older ones, so runs
started side by side on one machine (several worktrees, a benchmark and the suite) would delete each
other's files mid-test. The directory is removed when the run ends, descriptor by descriptor (some
tests build trees deeper than ``shutil.rmtree`` can recurse), unless ``REGPEEK_KEEP_TMP`` is set.
Every test starts from fresh CLI process state (:mod:`tests.support.clistate`).

No silent skips. The integration tests need external programs (the registry, the oracles skopeo,
umoci, siftool, unsquashfs, ...): when any is missing the run stops at collection with the list and
the packages to install, unless ``REGPEEK_SKIP_MISSING_TOOLS=1`` (then the tests needing them skip,
listed by ``-ra``). With ``REGPEEK_NO_SKIPS=1`` (set by ``.ci/run``, which runs as root) a run in which
any test skipped fails, naming them: a CI machine lacking a tool, or not root, is red.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.clistate import fresh_cli_state

_CREATED: list[Path] = []


def pytest_configure(config: pytest.Config) -> None:
    # A shell without job control starts background commands with SIGINT ignored, and the programs the
    # tests start inherit that: the tests that interrupt them with SIGINT would fail for no fault of
    # theirs. A run starts from Python's own handler (children then get the default action).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        base = Path(tempfile.mkdtemp(prefix="regpeek-pytest-"))
        config.option.basetemp = str(base)
        _CREATED.append(base)


# the programs the integration tests use, and the Debian package of each
REQUIRED_TOOLS = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "umoci": "umoci",
    "htpasswd": "apache2-utils",
    "siftool": "siftool",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "tar2sqfs": "squashfs-tools-ng",
    "setpriv": "util-linux",
}
_SKIPPED: list[str] = []


def missing_tools() -> dict[str, str]:
    return {tool: package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None}


def pytest_collection_finish(session: pytest.Session) -> None:
    if os.environ.get("REGPEEK_SKIP_MISSING_TOOLS") == "1":
        return
    if not any(item.nodeid.startswith("tests/integration/") for item in session.items):
        return
    missing = missing_tools()
    if missing:
        raise pytest.UsageError(
            f"missing programs the integration tests need: {', '.join(missing)} "
            f"(apt-get install -y {' '.join(sorted(set(missing.values())))}, or `make setup`; "
            "REGPEEK_SKIP_MISSING_TOOLS=1 skips those tests instead)"
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REGPEEK_NO_SKIPS") == "1" and _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(
                f"REGPEEK_NO_SKIPS=1: {len(_SKIPPED)} test(s) skipped (see the skip summary), "
                "which this run does not allow",
                red=True,
            )


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
