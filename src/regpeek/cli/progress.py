"""Pull progress on a terminal: one bar per blob being downloaded and one overall bar (rich).

Labels hold registry data (a layer's media type), so they are plain text through
:func:`~regpeek.formats.terminal.safe_text`, never markup.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TimeRemainingColumn,
)
from rich.text import Text

from regpeek.formats.digest import Digest
from regpeek.formats.terminal import safe_text
from regpeek.formats.units import format_size


class _LabelColumn(ProgressColumn):
    """A task's description as plain text (bold for the overall bar): no markup is parsed."""

    def render(self, task: Task) -> Text:
        return Text(task.description, style="bold" if task.fields.get("overall") else "")


class _SpeedColumn(ProgressColumn):
    """The transfer speed in the sizes' own units (``12.3 MiB/s``, as the ``MiB`` beside it), where
    rich's own column would say ``MB/s``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("?", style="progress.data.speed")
        return Text(f"{format_size(int(speed))}/s", style="progress.data.speed")


class RichPullProgress:
    """Implements :class:`regpeek.pull.PullProgress` with rich bars on stderr."""

    def __init__(self, title: str) -> None:
        self._progress = Progress(
            _LabelColumn(),
            BarColumn(),
            DownloadColumn(binary_units=True),
            _SpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._overall = self._progress.add_task(safe_text(title), total=0, overall=True)
        self._tasks: dict[Digest, TaskID] = {}

    def __enter__(self) -> RichPullProgress:
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()

    def blob_started(self, digest: Digest, size: int, label: str) -> None:
        kind = label.rsplit(".", 1)[-1] if "layer" in label or "rootfs" in label else "blob"
        self._tasks[digest] = self._progress.add_task(f"  {digest.hex[:12]} {safe_text(kind)}", total=size)
        overall = self._progress.tasks[self._overall]
        self._progress.update(self._overall, total=(overall.total or 0) + size)

    def blob_advanced(self, digest: Digest, count: int) -> None:
        self._progress.advance(self._tasks[digest], count)
        self._progress.advance(self._overall, count)

    def blob_finished(self, digest: Digest, downloaded: bool) -> None:
        task = self._tasks.pop(digest, None)
        if task is not None:
            self._progress.remove_task(task)
