"""The readable view of ``regpeek inspect``, laid out for the terminal's width (80 columns first).

The header is :meth:`~regpeek.formats.config.InspectResult.facts` (what a notebook shows too), so it
says which digest is which: ``Digest`` is what the reference resolved to (for a multi-platform image,
the index: it pins every platform, as skopeo's ``Digest`` does), ``Image digest`` the manifest of the
platform shown. Then the platforms, the layers and the history as tables (:mod:`regpeek.cli.layout`:
whole digests when they fit, else short ones with a footnote; columns drop in a set order; no trailing
spaces). Every value from the image is shown through :func:`~regpeek.cli.layout.clean` (terminal
controls as escapes).
"""

from __future__ import annotations

from regpeek.cli.layout import (
    Column,
    Fact,
    Fit,
    Line,
    clean,
    facts,
    is_digest,
    output_width,
    table,
    write_lines,
)
from regpeek.formats.config import InspectResult
from regpeek.formats.units import format_size

__all__ = ["human_size", "inspect_lines", "render_inspect"]

human_size = format_size

#: The header rows whose value is a digest (laid out whole or short, never broken), when it is one.
_DIGEST_ROWS = frozenset({"Digest", "Image digest", "Config"})


def _short_type(media_type: str) -> str:
    """``application/vnd.oci.image.layer.v1.tar+gzip`` -> ``oci.image.layer.v1.tar+gzip``."""
    return media_type.removeprefix("application/vnd.")


def _title(text: str) -> list[Line]:
    return [Line(""), Line(text, "bold")]


def header_rows(result: InspectResult) -> list[Fact]:
    """The rows of the header, from :meth:`InspectResult.facts`: a digest row's value is the digest,
    its second line the note under it; text rows are cleaned of terminal controls."""
    rows: list[Fact] = []
    for label, values in result.facts():
        if label in _DIGEST_ROWS and is_digest(values[0]):
            rows.append((label, values[0], "digest", clean(" ".join(values[1:]))))
        else:
            rows.append((label, [clean(value) for value in values], "text"))
    return rows


def inspect_lines(result: InspectResult, width: int | None) -> list[Line]:
    """The lines of the view of ``result`` at ``width`` cells (None: no limit)."""
    fit = Fit(width)
    lines = [Line(line, "bold") for line in fit.wrap(clean(str(result.reference)), width)]
    lines += facts(header_rows(result), fit)

    if result.platforms:
        chosen = [entry.digest == result.digest for entry in result.platforms]
        names = [
            clean(entry.platform.describe()) + (" *" if mark else "")
            for entry, mark in zip(result.platforms, chosen, strict=True)
        ]
        columns = [
            Column("platform", names, kind="text", min_width=16),
            Column("digest", [str(entry.digest) for entry in result.platforms], kind="digest"),
            Column("size", [human_size(entry.size) for entry in result.platforms], kind="fixed", right=True),
        ]
        lines += _title("Platforms (* the one shown)")
        lines += table(columns, fit, ["bold green" if c else "" for c in chosen])

    if result.layers:
        columns = [
            Column("#", [str(n) for n in range(1, len(result.layers) + 1)], kind="fixed", right=True),
            Column("digest", [str(layer.digest) for layer in result.layers], kind="digest"),
            Column("size", [human_size(layer.known_size) for layer in result.layers], kind="fixed", right=True),
            Column("media type", [clean(_short_type(layer.media_type)) for layer in result.layers],
                   kind="fixed", drop=1),
        ]  # fmt: skip
        lines += _title("Layers (base first)")
        lines += table(columns, fit)

    history = result.config.history
    if history:
        steps = []
        for step in history:
            what = (step.created_by or step.comment or "").strip()
            steps.append(clean(what + ("  (empty layer)" if step.empty_layer else "")))
        columns = [
            Column(
                "created", [clean((step.created_raw or "")[:19]) for step in history], kind="fixed", drop=1
            ),
            Column("step", steps, kind="text", min_width=20),
        ]
        lines += _title("History (oldest first)")
        lines += table(columns, fit)
    return lines + fit.note()


def render_inspect(result: InspectResult, width: int | None = None) -> None:
    """Print the view of ``result`` on stdout, at the output's width (see :func:`output_width`)."""
    write_lines(inspect_lines(result, width if width is not None else output_width()))
