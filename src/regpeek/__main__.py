"""``python -m regpeek``: the same as the ``regpeek`` command."""

from regpeek.cli.start import run

run()
