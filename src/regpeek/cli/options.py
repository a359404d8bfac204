"""Options every registry command shares, and the client they configure."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from regpeek.cli.output import echo, warn
from regpeek.disk.cache import Cache
from regpeek.errors import UsageError
from regpeek.network._sync.registry import Client
from regpeek.network.transport import HttpOptions

if TYPE_CHECKING:
    from regpeek.cluster import ClientSpec

F = TypeVar("F", bound=Callable[..., Any])

#: Printed as a warning (stderr, one line) when a password is given on the command line, as docker does.
PASSWORD_WARNING = (
    "a password given with --password can be read by other users (process list, shell history); "
    "use --password-stdin"
)


@dataclass
class Settings:
    """What the shared options say, gathered by :func:`registry_options`."""

    platform: str | None
    username: str | None
    password: str | None
    password_stdin: bool
    authfile: str | None
    ca_file: str | None
    insecure: bool
    plain_http: bool
    timeout: float
    retries: int
    cache_dir: str | None
    no_cache: bool
    debug: bool

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~regpeek.Client` or :class:`~regpeek.AsyncClient`."""
        password = self.password
        if self.password_stdin:
            if password is not None:
                raise UsageError("give --password or --password-stdin, not both")
            password = sys.stdin.readline().rstrip("\r\n")
        if password is not None and not self.username:
            raise UsageError("--password and --password-stdin need --username")
        if self.password is not None:
            warn(PASSWORD_WARNING)
        options = HttpOptions(
            timeout=self.timeout,
            ca_file=self.ca_file,
            insecure=self.insecure,
            plain_http=self.plain_http,
            retries=self.retries,
            on_warning=_registry_warning,
        )
        return {
            "username": self.username,
            "password": password,
            "authfile": self.authfile,
            "options": options,
            "platform": self.platform,
            "cache": self.cache(),
        }

    def client_spec(self, *, cache_dir: str | None, worker: bool = False) -> ClientSpec:
        """The client settings as plain data for worker processes or Dask workers
        (:class:`regpeek.cluster.ClientSpec`): ``cache_dir`` is the workers' cache, None for their
        own default when ``worker`` (a Dask worker), else this process's ``--cache-dir`` or default."""
        from regpeek.cluster import ClientSpec
        from regpeek.disk.cache import default_cache_dir

        arguments = self.client_arguments()  # reads --password-stdin once, checks the cache directory
        options: HttpOptions = arguments["options"]
        if cache_dir is None and not worker and not self.no_cache:
            cache_dir = self.cache_dir or str(default_cache_dir())
        return ClientSpec(
            username=arguments["username"],
            password=arguments["password"],
            authfile=arguments["authfile"],
            platform=self.platform,
            timeout=options.timeout,
            ca_file=options.ca_file,
            insecure=options.insecure,
            plain_http=options.plain_http,
            retries=options.retries,
            cache_dir=cache_dir,
            no_cache=self.no_cache,
        )

    def cache(self) -> Cache:
        """The on-disk cache of manifests, configs and layers (``--cache-dir``, ``$REGPEEK_CACHE_DIR``,
        or the user cache directory), or none with ``--no-cache``. A cache directory that is not the
        user's own is refused here, before any traffic (exit 2)."""
        from regpeek.disk.cache import BlobCache, NullCache, default_cache_dir

        if self.no_cache:
            return NullCache()
        cache = BlobCache(Path(self.cache_dir) if self.cache_dir else default_cache_dir())
        cache.check()
        return cache

    def client(self) -> Client:
        return Client(**self.client_arguments())


def _registry_warning(text: str) -> None:
    echo(f"regpeek: warning from registry: {text}", err=True)


_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--platform",
        metavar="OS/ARCH[/VARIANT]",
        help="Platform to choose from an index (default: linux/<host architecture>).",
    ),
    click.option("--username", "-u", help="Registry username."),
    click.option("--password", "-p", help="Registry password (prefer --password-stdin)."),
    click.option("--password-stdin", is_flag=True, help="Read the password from standard input."),
    click.option(
        "--authfile",
        type=click.Path(dir_okay=False),
        help="Auth file (docker config.json or containers auth.json) to read credentials from.",
    ),
    click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False),
        help="Extra CA certificates (PEM) to trust for TLS.",
    ),
    click.option("--insecure", is_flag=True, help="Do not verify TLS certificates."),
    click.option("--plain-http", is_flag=True, help="Talk plain HTTP to the registry."),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0.1),
        default=30.0,
        show_default=True,
        help="Seconds to wait for each network operation.",
    ),
    click.option(
        "--retries",
        type=click.IntRange(min=0, max=20),
        default=3,
        show_default=True,
        help="Retries for transient failures (connection errors, 429, 502, 503, 504).",
    ),
    click.option(
        "--cache-dir",
        type=click.Path(file_okay=False),
        help="Cache of manifests, configs and layers by digest (default: $REGPEEK_CACHE_DIR or the user cache "
        "directory).",
    ),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
    click.option("--debug", is_flag=True, help="Log requests and show tracebacks."),
]


def registry_options(*, platform: bool = True) -> Callable[[F], F]:
    """Add the shared options to a command; it receives them as one ``settings`` argument."""

    def decorate(command: F) -> F:
        def wrapper(**kwargs: Any) -> Any:
            fields = Settings.__dataclass_fields__
            settings = Settings(**{name: kwargs.pop(name, None) for name in fields})
            return command(settings=settings, **kwargs)

        wrapper.__name__ = command.__name__
        wrapper.__doc__ = command.__doc__
        for option in reversed(_OPTIONS):
            if not platform and option is _OPTIONS[0]:
                continue
            wrapper = option(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


@dataclass(frozen=True)
class SizeLimit:
    """``--max-size`` / ``--no-size-limit``, as the keyword arguments of unpack_image/export_image."""

    max_size: int | None
    unlimited: bool

    def arguments(self) -> dict[str, Any]:
        from regpeek.disk.layerentry import Limits

        return {"max_size": self.max_size, "limits": Limits.none() if self.unlimited else None}


def _parse_size(context: click.Context, parameter: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    from regpeek.formats.units import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def size_limit_options(command: F) -> F:
    """Add ``--max-size SIZE`` and ``--no-size-limit``; the command receives ``size_limit: SizeLimit``."""

    def wrapper(**kwargs: Any) -> Any:
        max_size = kwargs.pop("max_size")
        unlimited = kwargs.pop("no_size_limit")
        if unlimited and max_size is not None:
            raise click.UsageError("--max-size and --no-size-limit exclude each other")
        return command(size_limit=SizeLimit(max_size, unlimited), **kwargs)

    wrapper.__name__ = command.__name__
    wrapper.__doc__ = command.__doc__
    wrapper.__click_params__ = list(getattr(command, "__click_params__", []))  # type: ignore[attr-defined]
    decorated: Callable[..., Any] = click.option(
        "--no-size-limit", is_flag=True, help="Write whatever the layers expand to (no bomb protection)."
    )(wrapper)
    return click.option(  # type: ignore[return-value]
        "--max-size",
        metavar="SIZE",
        callback=_parse_size,
        help="Most bytes the layers may expand to (e.g. 20G; default 100x their compressed size, "
        "at least 1 GiB, within the free space).",
    )(decorated)
