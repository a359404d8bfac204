"""``regpeek diff``: what changed between two images, or two platforms of one."""

from __future__ import annotations

import sys

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo_json
from regpeek.cli.session import session
from regpeek.cli.template import Template, template_option

#: The keys of ``diff --json`` (ImageDiff.to_dict), which --format may name.
DIFF_KEYS = (
    "before", "after", "identical", "media_type", "platform", "created", "env", "labels", "annotations",
    "entrypoint", "cmd", "user", "working_dir", "stop_signal", "exposed_ports", "volumes", "layers",
    "size_change", "history",
)  # fmt: skip


@click.command(
    "diff",
    epilog=examples(
        "regpeek diff app:1.0 app:1.1",
        "regpeek diff --platform-a linux/amd64 --platform-b linux/arm64 alpine alpine",
        "regpeek diff --format '{identical} {size_change}' app:1.0 app:1.1",
    ),
)
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--platform-a", help="Platform for REF_A (default: --platform).")
@click.option("--platform-b", help="Platform for REF_B (default: --platform).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@template_option("comparison")
@registry_options()
def diff_command(
    settings: Settings,
    ref_a: str,
    ref_b: str,
    platform_a: str | None,
    platform_b: str | None,
    as_json: bool,
    template: str | None,
) -> None:
    """Compare two images: exit 0 when they are the same image, 1 when they differ (like diff(1))."""
    from regpeek.formats.diff import diff_images

    compiled = Template(template, DIFF_KEYS) if template is not None else None
    with session(settings) as client:
        before = client.inspect(ref_a, platform_a or settings.platform)
        after = client.inspect(ref_b, platform_b or settings.platform)
    difference = diff_images(before, after)
    if compiled is not None:
        click.echo(compiled.render(difference.to_dict()))
    elif as_json:
        echo_json(difference.to_dict())
    else:
        from regpeek.cli.diffview import render_diff

        render_diff(difference)
    if not difference.identical:
        sys.stdout.flush()
        sys.exit(1)
