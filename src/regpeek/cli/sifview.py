"""The readable view of ``regpeek inspect sif:FILE`` (rich, imported only when drawn).

Everything read from the file (names, the definition, labels, config values, digests) reaches rich
only as :func:`~regpeek.cli.render.plain` text: terminal controls shown as escapes, no markup.
"""

from __future__ import annotations

import datetime
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from regpeek.cli.render import human_size, make_console, plain
from regpeek.formats.sifinspect import SifInspection
from regpeek.formats.terminal import safe_text


def _time(seconds: int) -> str:
    """Unix seconds as ``2024-05-01 12:00:00 UTC`` (the raw number when no calendar date fits)."""
    try:
        moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            seconds=seconds
        )
    except OverflowError:
        return str(seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _words(value: list[str] | None) -> str | None:
    return json.dumps(value) if value is not None else None


def _grid() -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    return grid


def _row(grid: Table, label: str, value: str | list[str] | None) -> None:
    """A row of untrusted text; a list gives one value per line (a newline inside a value is escaped)."""
    if value:
        lines = value if isinstance(value, list) else [value]
        grid.add_row(label, Text("\n".join(safe_text(line) for line in lines)))


def render_sif(inspection: SifInspection, console: Console | None = None) -> None:
    console = console or make_console()
    header = inspection.header
    title = plain(inspection.path, "bold")
    title.append(f"  (SIF {safe_text(header.version_text)}, {human_size(inspection.file_size)})")
    console.print(title)
    facts = _grid()
    _row(facts, "Launch script", header.launch_text.rstrip("\n"))
    _row(facts, "Architecture", header.architecture)
    _row(facts, "ID", header.uuid)
    _row(facts, "Created", _time(header.created_at))
    _row(facts, "Modified", _time(header.modified_at))
    _row(
        facts,
        "Descriptors",
        f"{len(inspection.descriptors)} used of {header.descriptors_total} ({header.descriptors_free} free), "
        f"table of {human_size(header.descriptors_size)} at offset {header.descriptors_offset}",
    )
    _row(facts, "Data", f"{human_size(header.data_size)} at offset {header.data_offset}")
    source = inspection.source
    if source.from_:
        _row(
            facts,
            "Built from",
            source.from_ + (f"  (bootstrap: {source.bootstrap})" if source.bootstrap else ""),
        )
    if source.base_name or source.base_digest:
        _row(facts, "Base image", " @ ".join(part for part in (source.base_name, source.base_digest) if part))
    console.print(facts)

    if inspection.descriptors:
        table = Table(title="Objects", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("id", justify="right")
        table.add_column("group", justify="right")
        table.add_column("link", justify="right")
        table.add_column("position", no_wrap=True)
        table.add_column("size", justify="right", no_wrap=True)
        table.add_column("type")
        table.add_column("name", overflow="fold")
        for descriptor in inspection.descriptors:
            link = descriptor.link
            kind = descriptor.type_name
            partition = descriptor.partition
            if partition is not None:
                kind += f" ({partition.fs_name}/{partition.part_name}/{partition.architecture})"
            signature = descriptor.signature
            if signature is not None:
                kind += f" ({signature[0]}{', ' + signature[1] if signature[1] else ''})"
            if descriptor.oci_digest:
                kind += f" ({descriptor.oci_digest})"
            table.add_row(
                str(descriptor.id),
                str(descriptor.group) if descriptor.group else "NONE",
                (f"{link[0]} (G)" if link[1] else str(link[0])) if link else "NONE",
                f"{descriptor.offset}-{descriptor.offset + descriptor.size}",
                human_size(descriptor.size),
                plain(kind),
                plain(descriptor.name),
            )
        console.print()
        console.print(table)

    if inspection.definition is not None:
        console.print()
        console.print(Text("Definition", style="bold"))
        console.print(plain(inspection.definition.rstrip("\n"), newlines=True))

    if inspection.config is not None:
        config = inspection.config.to_dict()
        console.print()
        console.print(Text(f"OCI config ({inspection.config.kind}, from oci-config.json)", style="bold"))
        grid = _grid()
        _row(grid, "Entrypoint", _words(config["entrypoint"]))
        _row(grid, "Cmd", _words(config["cmd"]))
        _row(grid, "Working dir", config["working_dir"])
        _row(grid, "User", config["user"])
        _row(grid, "Stop signal", config["stop_signal"])
        _row(grid, "Env", config["env"])
        _row(grid, "Labels", [f"{k}={v}" for k, v in sorted(config["labels"].items())])
        _row(grid, "Ports", ", ".join(config["exposed_ports"]))
        _row(grid, "Volumes", ", ".join(config["volumes"]))
        console.print(grid)

    if inspection.labels:
        console.print()
        console.print(Text("Labels (inspect-metadata.json)", style="bold"))
        console.print(Text("\n".join(safe_text(f"{k}={v}") for k, v in sorted(inspection.labels.items()))))

    for warning in inspection.warnings:
        console.print(plain(f"warning: {warning}", "yellow"))
