"""``regpeek referrers`` and ``regpeek ratelimit``: what refers to an image, and what pulls are left."""

from __future__ import annotations

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo, echo_json
from regpeek.cli.session import session
from regpeek.cli.template import Template, template_option

#: --format keys: each referrer's --json keys, with the subject and how it was found.
REFERRER_KEYS = ("digest", "media_type", "artifact_type", "size", "annotations", "subject", "via")


@click.command(
    "referrers",
    epilog=examples(
        "regpeek referrers ghcr.io/org/app@sha256:...",
        "regpeek referrers --artifact-type application/vnd.dev.cosign.artifact.sig.v1+json app:1.2",
        "regpeek referrers --format '{digest} {artifact_type}' app:1.2",
    ),
)
@click.argument("ref")
@click.option("--artifact-type", help="Only referrers of this artifact type.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@template_option("referrer (keys: digest, media_type, artifact_type, size, annotations, subject, via)")
@registry_options(platform=False)
def referrers_command(
    settings: Settings, ref: str, artifact_type: str | None, as_json: bool, template: str | None
) -> None:
    """List the manifests that refer to REF (signatures, SBOMs, attestations: OCI 1.1 referrers).

    Uses the referrers API, or the sha256-<hex> tag where the registry has no API.
    """
    compiled = Template(template, REFERRER_KEYS) if template is not None else None
    with session(settings) as client:
        found = client.referrers(ref, artifact_type)
    if as_json:
        echo_json(found.to_dict())
        return
    whole = found.to_dict()
    if compiled is not None:
        for entry in whole["referrers"]:
            click.echo(compiled.render({**entry, "subject": whole["subject"], "via": whole["via"]}))
        return
    if not found.manifests:
        echo(f"no referrers for {found.subject}")
        return
    for entry in found.manifests:
        echo(f"{entry.digest}  {entry.artifact_type or '-'}  {entry.media_type}  {entry.size}")


@click.command(
    "ratelimit",
    epilog=examples("regpeek ratelimit alpine", "regpeek ratelimit --json -u me docker.io/library/ubuntu"),
)
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
