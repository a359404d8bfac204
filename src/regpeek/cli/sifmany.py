"""``regpeek sif --from-file REFS --out-dir DIR``: JSON Lines from :func:`regpeek.many.build_many`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from regpeek.cli.options import Settings, SizeLimit
from regpeek.cli.output import echo, json_line
from regpeek.cli.scrub import remember_secrets, scrub
from regpeek.disk.squashfs import find_tool
from regpeek.disk.squashfs import jobs as squashfs_jobs
from regpeek.errors import LocalError


def build_lines(
    settings: Settings,
    size_limit: SizeLimit,
    from_file: TextIO,
    out_dir: str,
    *,
    jobs: int,
    dask: str | None,
    worker_cache_dir: str | None,
    compression: str,
    squashfs_tool: str,
    force: bool,
    allow_nondistributable: bool,
    quiet: bool,
) -> int:
    """Print one JSON line per reference, in input order; return the highest exit code met."""
    from regpeek.batch import read_references
    from regpeek.many import SifTask, build_many

    if dask is None:
        find_tool(squashfs_tool)  # exit 2 naming the packages before any work (a Dask worker checks its own)
    directory = Path(out_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LocalError(f"cannot create {directory}: {error.strerror}") from None
    spec = settings.client_spec(cache_dir=worker_cache_dir, worker=dask is not None)
    remember_secrets(tuple(secret for secret in (spec.password,) if secret))
    task = SifTask(
        out_dir=str(directory.resolve()),
        spec=spec,
        compression=compression,
        squashfs_tool=squashfs_tool,
        force=force,
        allow_nondistributable=allow_nondistributable,
        max_size=size_limit.max_size,
        no_size_limit=size_limit.unlimited,
        # local workers share this machine's CPUs; a Dask worker's tool uses what that worker may
        processors=None if dask is not None else max(1, squashfs_jobs() // jobs),
    )
    started = time.monotonic()
    counts = {"built": 0, "skipped": 0, "error": 0}
    worst = 0
    out = sys.stdout
    for outcome in build_many(task, read_references(from_file), jobs=jobs, dask=dask):
        worst = max(worst, outcome.exit_code)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        line = json_line(outcome.to_dict(), out)
        out.write((scrub(line) if outcome.exit_code else line) + "\n")
        out.flush()
    if not quiet:
        echo(
            f"regpeek: {counts['built']} built, {counts['skipped']} skipped, {counts['error']} failed "
            f"in {time.monotonic() - started:.1f}s",
            err=True,
        )
    return worst
