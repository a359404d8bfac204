"""``regpeek referrers`` and ``regpeek ratelimit``: what refers to an image, and what pulls are left."""

from __future__ import annotations

import click

from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo, echo_json
from regpeek.cli.session import session


@click.command("referrers")
@click.argument("ref")
@click.option("--artifact-type", help="Only referrers of this artifact type.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@registry_options(platform=False)
def referrers_command(settings: Settings, ref: str, artifact_type: str | None, as_json: bool) -> None:
    """List the manifests that refer to REF (signatures, SBOMs, attestations: OCI 1.1 referrers).

    Uses the referrers API, or the sha256-<hex> tag where the registry has no API.
    """
    with session(settings) as client:
        found = client.referrers(ref, artifact_type)
    if as_json:
        echo_json(found.to_dict())
        return
    if not found.manifests:
        echo(f"no referrers for {found.subject}")
        return
    for entry in found.manifests:
        echo(f"{entry.digest}  {entry.artifact_type or '-'}  {entry.media_type}  {entry.size}")


@click.command("ratelimit")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@registry_options(platform=False)
def ratelimit_command(settings: Settings, ref: str, as_json: bool) -> None:
    """Show Docker Hub style pull limits for REF, from a HEAD request (not counted as a pull)."""
    with session(settings) as client:
        limit = client.ratelimit(ref)
    if as_json:
        echo_json(limit.to_dict())
    else:
        echo(limit.describe())
