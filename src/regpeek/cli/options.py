"""Options every registry command shares, and the client they configure."""

from __future__ import annotations

import dataclasses
import logging
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
    from regpeek.formats.registriesconf import RegistriesConf

log = logging.getLogger("regpeek.cli")

F = TypeVar("F", bound=Callable[..., Any])

#: Printed as a warning (stderr, one line) when a password is given on the command line, as docker does.
PASSWORD_WARNING = (
    "a password given with --password can be read by other users (process list, shell history); "
    "use --password-stdin"
)


@dataclass
class Settings:
    """What the shared options say, gathered by :func:`registry_options`."""

    platform: str | None = None
    username: str | None = None
    password: str | None = None
    password_stdin: bool = False
    creds: str | None = None
    authfile: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    plain_http: bool = False
    proxy: str | None = None
    registries_conf: str | None = None
    no_registries_conf: bool = False
    timeout: float = 30.0
    retries: int = 3
    cache_dir: str | None = None
    no_cache: bool = False
    debug: bool = False

    def login(self) -> tuple[str | None, str | None]:
        """The username and password the options give: ``--creds USER[:PASS]``, or ``--username``
        with ``--password``/``--password-stdin``; a username alone asks for the password on a
        terminal, and is an error elsewhere (never a silent anonymous request)."""
        username, password = self.username, self.password
        if self.creds is not None:
            if username or password is not None or self.password_stdin:
                raise UsageError("give --creds or --username/--password, not both")
            username, sep, rest = self.creds.partition(":")
            password = rest if sep else None
            if not username:
                raise UsageError("--creds needs USER[:PASSWORD]")
        if self.password_stdin:
            if password is not None:
                raise UsageError("give --password or --password-stdin, not both")
            if not username:
                raise UsageError("--password and --password-stdin need --username")
            password = read_password_stdin()
        if password is not None and not username:
            raise UsageError("--password and --password-stdin need --username")
        if self.password is not None:
            warn(PASSWORD_WARNING)
        if username and password is None:
            password = prompt_password(
                username, "--creds USER:PASSWORD" if self.creds else "--password-stdin"
            )
        return username, password

    def http_options(self) -> HttpOptions:
        """Timeouts, TLS, retries and proxies (``--proxy``, else ``HTTPS_PROXY``, ``HTTP_PROXY``,
        ``ALL_PROXY`` and ``NO_PROXY`` from the environment)."""
        import os

        from regpeek.formats.proxy import ProxyConfig, describe_proxy

        proxies = ProxyConfig.from_environ(os.environ, self.proxy)
        if proxies:
            for scheme, url in (("https", proxies.https), ("http", proxies.http)):
                if url:
                    log.debug("proxy for %s requests: %s", scheme, describe_proxy(url))
        return HttpOptions(
            timeout=self.timeout,
            ca_file=self.ca_file,
            insecure=self.insecure,
            plain_http=self.plain_http,
            retries=self.retries,
            proxies=proxies,
            on_warning=_registry_warning,
        )

    def registries(self) -> RegistriesConf | None:
        """The registries.conf files (``--registries-conf FILE`` alone, or the usual ones), or none."""
        if self.no_registries_conf:
            if self.registries_conf:
                raise UsageError("give --registries-conf or --no-registries-conf, not both")
            return None
        from regpeek.network.registriesconf import load

        conf = load(self.registries_conf)
        if conf.files:
            log.debug(
                "registries.conf read from %s (%d [[registry]] tables)",
                ", ".join(conf.files),
                len(conf.tables),
            )
        return conf

    def client_arguments(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~regpeek.Client` or :class:`~regpeek.AsyncClient`."""
        username, password = self.login()
        return {
            "username": username,
            "password": password,
            "authfile": self.authfile,
            "options": self.http_options(),
            "platform": self.platform,
            "cache": self.cache(),
            "registries": self.registries(),
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
            options=dataclasses.replace(options, on_warning=None, transport=None),
            registries=arguments["registries"],
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


def read_password_stdin() -> str:
    """The password on standard input: all of it, less the final newline (as ``docker login``)."""
    return sys.stdin.read().removesuffix("\n").removesuffix("\r")


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def prompt_password(username: str, instead: str) -> str:
    """Ask for ``username``'s password on the terminal, without echo; refused when stdin is not one."""
    if not stdin_is_terminal():
        raise UsageError(
            f"no password for {username}, and standard input is not a terminal to ask for it: use {instead}"
        )
    value: str = click.prompt(f"Password for {username}", hide_input=True, err=True)
    return value


def _registry_warning(text: str) -> None:
    echo(f"regpeek: warning from registry: {text}", err=True)


_PLATFORM = click.option(
    "--platform",
    metavar="OS/ARCH[/VARIANT]",
    help="Platform to choose from an index (default: linux/<host architecture>).",
)
CREDENTIAL_OPTIONS: list[Callable[[F], F]] = [
    click.option("--username", "-u", help="Registry username (the password is asked for on a terminal)."),
    click.option("--password", "-p", help="Registry password (prefer --password-stdin)."),
    click.option("--password-stdin", is_flag=True, help="Read the password from standard input."),
    click.option(
        "--creds", metavar="USER[:PASSWORD]", help="Credentials in one option, as skopeo's --creds."
    ),
    click.option(
        "--authfile",
        type=click.Path(dir_okay=False),
        help="Auth file (docker config.json or containers auth.json) to read credentials from.",
    ),
]
NETWORK_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--ca-file",
        type=click.Path(exists=True, dir_okay=False),
        help="Extra CA certificates (PEM) to trust for TLS.",
    ),
    click.option("--insecure", is_flag=True, help="Do not verify TLS certificates."),
    click.option(
        "--plain-http",
        is_flag=True,
        help="Talk plain HTTP to the registry (loopback registries fall back to it by themselves).",
    ),
    click.option(
        "--proxy",
        metavar="URL",
        help="HTTP(S) proxy for every registry request (default: $HTTPS_PROXY, $HTTP_PROXY, $ALL_PROXY; "
        "$NO_PROXY applies).",
    ),
    click.option(
        "--registries-conf",
        type=click.Path(dir_okay=False),
        help="Read this containers-registries.conf(5) file alone (mirrors, location rewrites, insecure "
        "and blocked registries).",
    ),
    click.option(
        "--no-registries-conf", is_flag=True, help="Ignore registries.conf (the system's and yours)."
    ),
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
]
CACHE_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--cache-dir",
        type=click.Path(file_okay=False),
        help="Cache of manifests, configs and layers by digest (default: $REGPEEK_CACHE_DIR or the user cache "
        "directory).",
    ),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the cache."),
]
_DEBUG = click.option("--debug", is_flag=True, help="Log requests and authentication steps, show tracebacks.")


def registry_options(
    *, platform: bool = True, cache: bool = True, credentials: bool = True
) -> Callable[[F], F]:
    """Add the shared options to a command; it receives them as one ``settings`` argument."""
    chosen: list[Callable[[F], F]] = [_PLATFORM] if platform else []
    chosen += CREDENTIAL_OPTIONS if credentials else []
    chosen += NETWORK_OPTIONS + (CACHE_OPTIONS if cache else []) + [_DEBUG]

    def decorate(command: F) -> F:
        def wrapper(**kwargs: Any) -> Any:
            fields = Settings.__dataclass_fields__
            given = {name: kwargs.pop(name) for name in list(kwargs) if name in fields}
            settings = Settings(**given)
            return command(settings=settings, **kwargs)

        wrapper.__name__ = command.__name__
        wrapper.__doc__ = command.__doc__
        wrapper.__click_params__ = list(getattr(command, "__click_params__", []))  # type: ignore[attr-defined]
        for option in reversed(chosen):
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
