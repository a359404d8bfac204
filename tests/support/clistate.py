"""Fresh process-wide state for each in-process CLI run, and nothing left behind after it.

``regpeek.cli.main.main`` keeps a little state in the process: the secrets the scrubber replaces
(``regpeek.cli.scrub``), the ``--debug`` log handler and level on the ``regpeek`` logger, the
docker-archive index cache, the signal handlers. A real command runs in a process of its own; in a test
the next run would inherit them, so a "no secret printed" check could pass only because an earlier
test taught the scrubber that secret. :func:`fresh_cli_state` starts each run from what a new process
has and puts back what was there before.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def fresh_cli_state() -> Iterator[None]:
    from regpeek.cli import scrub
    from regpeek.disk import archive

    logger = logging.getLogger("regpeek")
    saved_secrets = set(scrub._SECRETS)
    saved_handlers = list(logger.handlers)
    saved_level = logger.level
    saved_archives = dict(archive._DOCKER_IMAGES)
    saved_signals = {number: signal.getsignal(number) for number in _SIGNALS}
    scrub._SECRETS.clear()
    for handler in saved_handlers:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    archive._DOCKER_IMAGES.clear()
    try:
        yield
    finally:
        scrub._SECRETS.clear()
        scrub._SECRETS.update(saved_secrets)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            if handler not in saved_handlers:
                handler.close()
        for handler in saved_handlers:
            logger.addHandler(handler)
        logger.setLevel(saved_level)
        archive._DOCKER_IMAGES.clear()
        archive._DOCKER_IMAGES.update(saved_archives)
        for number, previous in saved_signals.items():
            if previous is not None:
                with contextlib.suppress(ValueError):  # not the main thread
                    signal.signal(number, previous)


__all__ = ["fresh_cli_state"]
