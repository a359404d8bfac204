"""``regpeek catalog``: a registry's repositories, or with ``--db`` its whole catalogue in SQLite, and
``regpeek catalog query NAME --db FILE``."""

from __future__ import annotations

import sys
from typing import Any

import click

from regpeek.cli.help import examples
from regpeek.cli.options import Settings, registry_options
from regpeek.cli.output import echo, echo_json, json_line
from regpeek.cli.scrub import remember_secrets, scrub
from regpeek.cli.template import Template, template_option
from regpeek.formats.catalogschema import QUERIES


class _CatalogCommand(click.Command):
    """``catalog REGISTRY ...`` (this command), or ``catalog query ...``: the query command then runs
    with the rest of the arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] == "query":
            ctx.meta["regpeek.query"] = args[1:]
            return []
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        query = ctx.meta.get("regpeek.query")
        if query is None:
            return super().invoke(ctx)
        with query_command.make_context("catalog query", list(query), parent=ctx.parent) as inner:
            return query_command.invoke(inner)


#: --format keys of the plain listing: the --json keys plus the repository's own name.
CATALOG_KEYS = ("source", "repositories", "count", "pages", "repository")


@click.command(
    "catalog",
    cls=_CatalogCommand,
    epilog=examples(
        "regpeek catalog registry.example:5000",
        "regpeek catalog --format '{source}/{repository}' localhost:5000",
        "regpeek catalog --db site.sqlite registry.example:5000",
    ),
)
@click.argument("registry")
@click.option(
    "--db", "database", type=click.Path(dir_okay=False), help="Walk everything into this SQLite file."
)
@click.option(
    "--repository",
    "repositories",
    multiple=True,
    metavar="NAME",
    help="Walk this repository instead of /v2/_catalog (repeatable).",
)
@click.option("--repository-prefix", metavar="P", help="Only repositories whose name starts with P.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(1, 256),
    default=32,
    show_default=True,
    help="Requests at once (--db).",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="SCHEDULER_ADDRESS",
    envvar="REGPEEK_DASK_SCHEDULER",
    help="Partition the repositories across this Dask cluster's workers (--db; needs regpeek[dask]; "
    "default $REGPEEK_DASK_SCHEDULER).",
)
@click.option(
    "--parquet",
    type=click.Path(file_okay=False),
    help="Also write every table as DIR/<table>.parquet (--db; needs regpeek[parquet]).",
)
@click.option("--page-size", "-n", type=click.IntRange(1, 1000), help="Repositories asked for per page.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON object (the names and pages, or the run)."
)
@template_option("repository of the plain listing (keys: repository, source, count, pages)")
@registry_options(platform=False)
def catalog_command(
    settings: Settings,
    registry: str,
    database: str | None,
    repositories: tuple[str, ...],
    repository_prefix: str | None,
    jobs: int,
    dask_address: str | None,
    parquet: str | None,
    page_size: int | None,
    as_json: bool,
    template: str | None,
) -> None:
    """Print every repository of REGISTRY (/v2/_catalog), following pagination.

    With --db FILE.sqlite, walk every repository, tag, manifest (index children and attestations
    too), layer and config into FILE; a second run only HEADs each tag and reads what is new, and
    records tags that changed or disappeared. Then ask it questions:

    \b
      regpeek catalog query shared-layer --db FILE --layer sha256:...
      regpeek catalog query shared-base --db FILE --image REPOSITORY:TAG
      regpeek catalog query largest --db FILE --limit 20
      regpeek catalog query changed --db FILE       (tags moved in the last run)
      regpeek catalog query gone --db FILE
      regpeek catalog query older-than --db FILE --before 2024-01-01
      regpeek catalog query platforms --db FILE
    """
    if database is None:
        for flag, given in (("--parquet", parquet), ("--repository", repositories)):
            if given:
                raise click.UsageError(f"{flag} goes with --db")
        from regpeek.cli.session import session

        compiled = Template(template, CATALOG_KEYS) if template is not None else None

        with session(settings) as client:
            listing = client.catalog(registry, page_size)
        if repository_prefix:
            listing.names[:] = [name for name in listing.names if name.startswith(repository_prefix)]
        if as_json:
            echo_json(listing.to_dict("repositories"))
            return
        whole = listing.to_dict("repositories")
        for name in listing.names:
            if compiled is not None:
                click.echo(compiled.render({**whole, "repository": name}))
            else:
                echo(name)
        return
    if template is not None:
        raise click.UsageError("--format goes with the plain listing, not --db")
    from regpeek.catalog import catalog_registry

    spec = settings.client_spec(cache_dir=None, worker=True)
    remember_secrets(tuple(secret for secret in (spec.password,) if secret))
    result = catalog_registry(
        spec,
        database,
        registry,
        repositories=list(repositories) or None,
        prefix=repository_prefix,
        jobs=jobs,
        dask=dask_address,
        parquet=parquet,
        page_size=page_size,
    )
    if as_json:
        echo_json(result.to_dict())
    else:
        echo(
            f"{result.registry}: {result.repositories} repositories, {result.tags} tags "
            f"({result.added} added, {result.changed} changed, {result.gone} gone); "
            f"{result.manifests_fetched} manifests and {result.configs_fetched} configs read, "
            f"{result.tag_requests} tags resolved, in {result.seconds:.1f}s -> {result.database}"
        )
        for error in result.errors:
            where = "/".join(
                str(part) for part in (error["repository"], error["tag"] or error["digest"]) if part
            )
            echo(scrub(f"regpeek: warning: {where}: {error['message']}"), err=True)
    if result.exit_code:
        sys.exit(result.exit_code)


@click.command("query")
@click.argument("name", metavar="NAME", type=click.Choice(list(QUERIES)))
@click.option("--db", "database", required=True, type=click.Path(dir_okay=False), help="The catalogue.")
@click.option("--layer", metavar="DIGEST", help="shared-layer: the layer's digest.")
@click.option("--image", metavar="DIGEST|REPOSITORY:TAG", help="shared-base: the base image.")
@click.option("--before", metavar="DATE", help="older-than: a date or time (UTC), e.g. 2024-01-01.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True, help="largest: how many.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines, one object per row.")
def query_command(
    name: str,
    database: str,
    layer: str | None,
    image: str | None,
    before: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Ask the catalogue FILE one of the documented questions (the SQL is in the README).

    \b
    shared-layer  images that contain --layer DIGEST
    shared-base   images built on --image (its layers are their first layers)
    largest       the --limit largest images
    changed       tags whose digest changed in the last run
    gone          tags that disappeared
    older-than    images created before --before DATE
    platforms     the platforms of each repository
    """
    from regpeek.disk.catalogdb import image_digest, run_query

    parameters: dict[str, Any] = {"layer": layer, "before": before, "limit": limit, "image": image}
    if name == "shared-base" and image is not None:
        parameters["image"] = image_digest(database, image)
    columns, rows = run_query(database, name, parameters)
    out = sys.stdout
    if as_json:
        for row in rows:
            out.write(json_line(dict(zip(columns, row, strict=True)), out) + "\n")
        return
    echo("\t".join(columns))
    for row in rows:
        echo("\t".join("" if value is None else str(value) for value in row))
