"""The readable view of ``regpeek inspect sif:FILE`` (rich, imported only when drawn)."""

from __future__ import annotations

import datetime
import json

from rich.console import Console
from rich.table import Table
from rich.text import Text

from regpeek.cli.render import human_size, make_console
from regpeek.formats.sifinspect import SifInspection


def _time(seconds: int) -> str:
    """Unix seconds as ``2024-05-01 12:00:00 UTC`` (the raw number when no calendar date fits)."""
    try:
        moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            seconds=seconds
        )
    except OverflowError:
        return str(seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def render_sif(inspection: SifInspection, console: Console | None = None) -> None:
    console = console or make_console()
    header = inspection.header
    used = len(inspection.descriptors)
    console.print(
        Text(f"{inspection.path}", style="bold"),
        f"(SIF {header.version_text}, {human_size(inspection.file_size)})",
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="cyan", no_wrap=True)
    facts.add_column(overflow="fold")

    def fact(label: str, value: str | None) -> None:
        if value:
            facts.add_row(label, value)

    fact("Launch script", header.launch_text.rstrip("\n"))
    fact("Architecture", header.architecture)
    fact("ID", header.uuid)
    fact("Created", _time(header.created_at))
    fact("Modified", _time(header.modified_at))
    fact(
        "Descriptors",
        f"{used} used of {header.descriptors_total} ({header.descriptors_free} free), "
        f"table of {human_size(header.descriptors_size)} at offset {header.descriptors_offset}",
    )
    fact("Data", f"{human_size(header.data_size)} at offset {header.data_offset}")
    source = inspection.source
    if source.from_:
        fact(
            "Built from",
            f"{source.from_}" + (f"  (bootstrap: {source.bootstrap})" if source.bootstrap else ""),
        )
    if source.base_name or source.base_digest:
        fact("Base image", " @ ".join(part for part in (source.base_name, source.base_digest) if part))
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
                kind,
                descriptor.name,
            )
        console.print()
        console.print(table)

    if inspection.definition is not None:
        console.print()
        console.print(Text("Definition", style="bold"))
        console.print(Text(inspection.definition.rstrip("\n")))

    if inspection.config is not None:
        config = inspection.config.to_json()
        console.print()
        console.print(Text(f"OCI config ({inspection.config.kind}, from oci-config.json)", style="bold"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="cyan", no_wrap=True)
        grid.add_column(overflow="fold")
        rows = [
            ("Entrypoint", _words(config["entrypoint"])),
            ("Cmd", _words(config["cmd"])),
            ("Working dir", config["working_dir"]),
            ("User", config["user"]),
            ("Stop signal", config["stop_signal"]),
            ("Env", "\n".join(config["env"])),
            ("Labels", "\n".join(f"{k}={v}" for k, v in sorted(config["labels"].items()))),
            ("Ports", ", ".join(config["exposed_ports"])),
            ("Volumes", ", ".join(config["volumes"])),
        ]
        for label, value in rows:
            if value:
                grid.add_row(label, Text(value))
        console.print(grid)

    if inspection.labels:
        console.print()
        console.print(Text("Labels (inspect-metadata.json)", style="bold"))
        console.print(Text("\n".join(f"{k}={v}" for k, v in sorted(inspection.labels.items()))))

    for warning in inspection.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


def _words(value: list[str] | None) -> str | None:
    return json.dumps(value) if value is not None else None
