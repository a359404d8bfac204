"""In-process CLI runs do not share process-wide state: each starts as a new process would."""

from __future__ import annotations

import logging

from regpeek.cli import scrub
from tests.integration.api import run_cli

UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing listens on loopback


def test_a_secret_learnt_in_one_run_is_not_scrubbed_in_the_next() -> None:
    secret = "hunter2-not-a-path"
    first = run_cli("digest", "--plain-http", "--retries", "0", "-u", "someone", "--password-stdin",
                    f"{UNREACHABLE}/app:v1", stdin=secret + "\n")  # fmt: skip
    assert first.code == 6, first.stderr
    assert set() == scrub._SECRETS  # nothing left behind
    # the same text as a repository name, without credentials: printed as it is, not as ***
    second = run_cli("digest", "--plain-http", "--retries", "0", f"{UNREACHABLE}/{secret}:v1")
    assert second.code == 6, second.stderr
    assert f"{UNREACHABLE}/{secret}:v1" in second.stderr
    assert "***" not in second.stderr


def test_a_secret_is_scrubbed_within_its_own_run() -> None:
    """The counterpart: inside the run that knows it, the secret is replaced (so the test above
    measures the reset, not a scrubber that does nothing)."""
    secret = "hunter2-not-a-path"
    done = run_cli("digest", "--plain-http", "--retries", "0", "-u", "someone", "--password-stdin",
                   f"{UNREACHABLE}/{secret}:v1", stdin=secret + "\n")  # fmt: skip
    assert done.code == 6, done.stderr
    assert secret not in done.stderr and f"{UNREACHABLE}/***:v1" in done.stderr


def test_debug_logging_ends_with_its_run() -> None:
    logger = logging.getLogger("regpeek")
    handlers_before = list(logger.handlers)
    debug = run_cli("digest", "--debug", "--plain-http", "--retries", "0", f"{UNREACHABLE}/app:v1")
    assert debug.code == 6
    assert "regpeek: debug:" in debug.stderr
    assert logger.handlers == handlers_before
    quiet = run_cli("digest", "--plain-http", "--retries", "0", f"{UNREACHABLE}/app:v1")
    assert quiet.code == 6
    assert "regpeek: debug:" not in quiet.stderr
    assert len(quiet.stderr.splitlines()) == 1
