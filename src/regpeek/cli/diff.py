"""``regpeek diff``: what changed between two images, or two platforms of one."""

from __future__ import annotations

import sys

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo_json
from regpeek.cli.session import session


@click.command("diff")
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--platform-a", help="Platform for REF_A (default: --platform).")
@click.option("--platform-b", help="Platform for REF_B (default: --platform).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@registry_options()
def diff_command(
    settings: Settings, ref_a: str, ref_b: str, platform_a: str | None, platform_b: str | None, as_json: bool
) -> None:
    """Compare two images: exit 0 when they are the same image, 1 when they differ (like diff(1))."""
    from regpeek.formats.diff import diff_images

    with session(settings) as client:
        before = client.inspect(ref_a, platform_a or settings.platform)
        after = client.inspect(ref_b, platform_b or settings.platform)
    difference = diff_images(before, after)
    if as_json:
        echo_json(difference.to_dict())
    else:
        from regpeek.cli.diffview import render_diff
        from regpeek.cli.render import make_console

        render_diff(difference, make_console())
    if not difference.identical:
        sys.stdout.flush()
        sys.exit(1)
