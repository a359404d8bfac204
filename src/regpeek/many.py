"""Many SIFs at once: one per reference into a directory, in worker processes or on a Dask cluster.

``regpeek sif --from-file REFS --out-dir DIR`` runs :func:`build_into` once per reference, in
``--jobs`` local worker processes (squashfs compression is CPU-bound, so threads would not do) or as
one Dask task per reference (``--dask``). Each reference:

1. is parsed and named: ``DIR/<name>`` with :func:`regpeek.formats.sifname.sif_file_name`, one name
   per reference, never shared;
2. is resolved to its image manifest for the platform: a HEAD of the tag and the manifests, which
   the cache usually holds (never a blob);
3. takes the name's claim, ``DIR/.<name>.lock`` (a ``flock``: one builder per name, whatever the
   number of runs, workers or machines sharing DIR); a builder that died holding it (a killed
   worker) left temporary files, which are removed now;
4. is **skipped** when ``DIR/<name>`` is a SIF whose definition pins that same image manifest digest
   (read back from the SIF's definition object, :func:`regpeek.disk.sif.inspect_sif`; the squashfs
   is never read), unless ``force``;
5. else is built by :func:`regpeek.sif.build_sif` (a temporary file beside the SIF, renamed when
   complete), its layers through the shared layer store, where a layer is fetched under a claim
   on its digest so that a base shared by many images is downloaded once for all workers.

Results are :class:`SifOutcome` values, plain data that pickles, given back in input order.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regpeek.cluster import ClientSpec, interrupted, run_ordered, run_ordered_dask
from regpeek.disk.files import held_claim
from regpeek.errors import LocalError, RegpeekError, exit_code_for
from regpeek.formats.digest import Digest
from regpeek.formats.reference import Reference
from regpeek.formats.schema1 import Schema1Manifest
from regpeek.formats.sifname import sif_file_name

__all__ = ["SifOutcome", "SifTask", "build_into", "build_many", "built_from"]

#: A temporary file of :func:`regpeek.sif.build_sif` for the SIF ``name``: ``.<name>.<pid>-<hex>.<ext>``.
_TEMP = r"\.{name}\.\d+-[0-9a-f]{{8}}\.(?:squashfs|sif)"


@dataclass(frozen=True)
class SifTask:
    """What every reference of a run shares (plain data: it travels to worker processes)."""

    out_dir: str
    spec: ClientSpec = field(default_factory=ClientSpec)
    compression: str = "gzip"
    squashfs_tool: str = "auto"
    force: bool = False
    allow_nondistributable: bool = False
    max_size: int | None = None
    no_size_limit: bool = False
    processors: int | None = None  # CPUs each squashfs tool may use (None: all the worker may use)


@dataclass(frozen=True)
class SifOutcome:
    """One reference's result: ``data`` (the JSON Lines object) and its exit code (0, or the error's)."""

    reference: str
    data: dict[str, Any]
    exit_code: int = 0

    @property
    def status(self) -> str:
        return str(self.data.get("status", "error"))

    def to_dict(self) -> dict[str, Any]:
        return self.data

    def to_json(self) -> str:
        return json.dumps(self.data)


def _error(reference: str, error: BaseException) -> SifOutcome:
    kind = error.kind if isinstance(error, RegpeekError) else "internal"
    code = exit_code_for(error)
    message = str(error) or type(error).__name__
    return SifOutcome(
        reference, {"reference": reference, "error": {"code": code, "kind": kind, "message": message}}, code
    )


def lost(reference: str, error: BaseException) -> SifOutcome:
    """The outcome of a reference whose worker kept dying (exit 7)."""
    return _error(
        reference, LocalError(f"the worker building {reference} was lost: {error or type(error).__name__}")
    )


def built_from(path: Path) -> tuple[Digest, dict[str, Any]] | None:
    """The image manifest digest the SIF at ``path`` pins (its definition's ``from:``), with what the
    outcome reports of it; None when there is no readable SIF there, or it pins nothing."""
    from regpeek.disk.sif import inspect_sif

    try:
        if not path.is_file() or path.is_symlink():
            return None
        inspection = inspect_sif(path)
    except (RegpeekError, OSError):
        return None
    source = inspection.source
    if source is None or not source.digest or source.bootstrap != "docker":
        return None
    try:
        digest = Digest.parse(source.digest)
    except RegpeekError:
        return None
    return digest, {
        "digest": str(digest),
        "source_digest": str(digest),
        "index_digest": source.base_digest if source.base_digest != str(digest) else None,
        "size": inspection.file_size,
    }


@contextlib.contextmanager
def _name_claim(out_dir: Path, name: str) -> Iterator[None]:
    """One builder of ``out_dir/name`` at a time; files a dead builder of it left are removed."""
    with held_claim(out_dir / f".{name}.lock", mode=0o644):
        pattern = re.compile(_TEMP.format(name=re.escape(name)))
        with os.scandir(out_dir) as entries:
            for entry in entries:
                if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        yield


def build_into(task: SifTask, reference: str) -> SifOutcome:
    """Build (or skip) the SIF of ``reference`` in ``task.out_dir``; errors become an error outcome.

    Runs in a worker process or a Dask worker. Never raises: an error becomes the reference's error
    outcome (an unexpected one exit 1, "internal"); ``KeyboardInterrupt`` (a local worker sent SIGINT)
    goes through, after the build's cleanup.
    """
    if interrupted():
        raise KeyboardInterrupt
    from regpeek.disk import squashfs

    squashfs.PROCESSORS = task.processors
    started = time.monotonic()
    try:
        parsed = Reference.parse(reference)
        out_dir = Path(task.out_dir)
        name = sif_file_name(parsed)
        path = out_dir / name
        with task.spec.client() as client:
            resolved = client.resolve(parsed, task.spec.platform)
            wanted = resolved.manifest.digest
            with _name_claim(out_dir, name):
                existing = None if task.force else built_from(path)
                if existing is not None and existing[0] == wanted:
                    # a schema1 image's SIF holds a converted manifest whose digest the SIF does not record
                    converted = isinstance(resolved.manifest, Schema1Manifest)
                    return SifOutcome(
                        reference,
                        {
                            "reference": str(parsed),
                            "path": str(path),
                            **existing[1],
                            "digest": None if converted else str(wanted),
                            "seconds": round(time.monotonic() - started, 3),
                            "status": "skipped",
                        },
                    )
                result = _build(client, task, parsed, path)
    except Exception as error:  # a bug on one image (exit 1 for it) must not end a run of thousands
        return _error(reference, error)
    data = result.to_dict()
    data["seconds"] = round(time.monotonic() - started, 3)
    data["status"] = "built"
    return SifOutcome(reference, data)


def _build(client: Any, task: SifTask, reference: Reference, path: Path) -> Any:
    from regpeek.disk.layerentry import Limits
    from regpeek.sif import build_sif

    return build_sif(
        client,
        str(reference),
        path,
        platform=task.spec.platform,
        compression=task.compression,
        squashfs_tool=task.squashfs_tool,
        force=True,  # an existing SIF here is from another image (or --force): replaced when complete
        allow_nondistributable=task.allow_nondistributable,
        max_size=task.max_size,
        limits=Limits.none() if task.no_size_limit else None,
    )


def build_many(
    task: SifTask,
    references: Iterable[str],
    *,
    jobs: int = 2,
    dask: str | None = None,
) -> Iterator[SifOutcome]:
    """One :class:`SifOutcome` per reference, in input order: ``jobs`` local worker processes, or
    one task per reference on the Dask scheduler at ``dask``."""
    function = functools.partial(build_into, task)
    if dask is None:
        yield from run_ordered(function, references, jobs=jobs, lost=lost)
        return
    from regpeek.cluster import dask_client

    with dask_client(dask) as client:
        yield from run_ordered_dask(client, function, references, lost=lost, name="regpeek-sif")
