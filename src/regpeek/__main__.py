"""``python -m regpeek``: the same as the ``regpeek`` command."""

from regpeek.cli.main import run

run()
