"""The readable view of ``regpeek inspect sif:FILE``, laid out for the output's width.

Everything read from the file (names, the definition, labels, config values, digests) is shown
through :func:`~regpeek.cli.layout.clean`: terminal controls as escapes.
"""

from __future__ import annotations

import datetime

from regpeek.cli.layout import Column, Fact, Fit, Line, clean, facts, output_width, table, write_lines
from regpeek.cli.render import human_size
from regpeek.formats.sifinspect import SifInspection
from regpeek.formats.terminal import safe_text

__all__ = ["render_sif", "sif_lines"]


def _time(seconds: int) -> str:
    """Unix seconds as ``2024-05-01 12:00:00 UTC`` (the raw number when no calendar date fits)."""
    try:
        moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            seconds=seconds
        )
    except OverflowError:
        return str(seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _title(text: str) -> list[Line]:
    return [Line(""), Line(clean(text), "bold")]


def sif_lines(inspection: SifInspection, width: int | None) -> list[Line]:
    """The view of a SIF file at ``width`` cells (None: no limit)."""
    fit = Fit(width)
    header = inspection.header
    title = (
        f"{clean(inspection.path)}  (SIF {clean(header.version_text)}, {human_size(inspection.file_size)})"
    )
    lines = [Line(text, "bold") for text in fit.wrap(title, width, indent=2)]
    rows: list[Fact] = [
        ("Launch script", clean(header.launch_text.rstrip("\n")), "text"),
        ("Architecture", clean(header.architecture), "text"),
        ("ID", clean(header.uuid), "text"),
        ("Created", _time(header.created_at), "text"),
        ("Modified", _time(header.modified_at), "text"),
        (
            "Descriptors",
            f"{len(inspection.descriptors)} used of {header.descriptors_total} ({header.descriptors_free} free), "
            f"table of {human_size(header.descriptors_size)} at offset {header.descriptors_offset}",
            "text",
        ),
        ("Data", f"{human_size(header.data_size)} at offset {header.data_offset}", "text"),
    ]
    source = inspection.source
    if source.from_:
        built = source.from_ + (f"  (bootstrap: {source.bootstrap})" if source.bootstrap else "")
        rows.append(("Built from", clean(built), "text"))
    if source.base_name:
        rows.append(("Base image", clean(source.base_name), "text"))
    if source.base_digest:
        rows.append(("Base digest", clean(source.base_digest), "digest"))
    lines += facts(rows, fit)

    if inspection.descriptors:
        ids, groups, links, positions, sizes, kinds, names = [], [], [], [], [], [], []
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
            ids.append(str(descriptor.id))
            groups.append(str(descriptor.group) if descriptor.group else "NONE")
            links.append((f"{link[0]} (G)" if link[1] else str(link[0])) if link else "NONE")
            positions.append(f"{descriptor.offset}-{descriptor.offset + descriptor.size}")
            sizes.append(human_size(descriptor.size))
            kinds.append(clean(kind))
            names.append(clean(descriptor.name))
        columns = [
            Column("id", ids, kind="fixed", right=True),
            Column("group", groups, kind="fixed", right=True, drop=2),
            Column("link", links, kind="fixed", right=True, drop=3),
            Column("position", positions, kind="fixed", drop=1),
            Column("size", sizes, kind="fixed", right=True),
            Column("type", kinds, kind="text", min_width=16),
            Column("name", names, kind="text", min_width=12),
        ]
        lines += _title("Objects")
        lines += table(columns, fit)

    if inspection.definition is not None:
        lines += _title("Definition")
        for text in safe_text(inspection.definition.rstrip("\n"), newlines=True).split("\n"):
            lines += [Line(piece) for piece in fit.wrap(text.replace("\t", "\\t"), width, indent=4)]

    if inspection.config is not None:
        lines += _title(f"OCI config ({inspection.config.kind}, from oci-config.json)")
        run: list[Fact] = [
            (label, [clean(value) for value in values], "text")
            for label, values in inspection.config.config.facts()
        ]
        lines += facts(run, fit)

    if inspection.labels:
        lines += _title("Labels (inspect-metadata.json)")
        for key, value in sorted(inspection.labels.items()):
            lines += [Line(piece) for piece in fit.wrap(clean(f"{key}={value}"), width, indent=2)]

    for warning in inspection.warnings:
        lines += [Line(piece, "yellow") for piece in fit.wrap(clean(f"warning: {warning}"), width, indent=2)]
    return lines + fit.note()


def render_sif(inspection: SifInspection, width: int | None = None) -> None:
    """Print the view of a SIF file on stdout at the output's width."""
    write_lines(sif_lines(inspection, width if width is not None else output_width()))
