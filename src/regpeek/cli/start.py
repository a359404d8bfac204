"""The ``regpeek`` console script: ``--version`` answered before anything is imported, the rest
handed to :mod:`regpeek.cli.main` (click, the command chosen, and what it needs)."""

from __future__ import annotations

import os
import sys


def run() -> None:
    """Console-script entry point (``python -m regpeek`` too)."""
    if sys.argv[1:] == ["--version"]:
        from regpeek._version import __version__

        sys.stdout.write(f"regpeek {__version__}\n")
        sys.stdout.flush()
        os._exit(0)  # as main.run: no interpreter teardown for a finished command
    from regpeek.cli.main import run as run_command

    run_command()
