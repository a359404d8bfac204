"""``regpeek login`` and ``regpeek logout``: check credentials with a registry, keep or forget them."""

from __future__ import annotations

import click

from regpeek.cli.help import examples
from regpeek.cli.options import (
    PASSWORD_WARNING,
    Settings,
    prompt_password,
    read_password_stdin,
    registry_options,
    stdin_is_terminal,
)
from regpeek.cli.output import echo, warn
from regpeek.cli.scrub import remember_secrets
from regpeek.errors import UsageError
from regpeek.formats.reference import DOCKER_HUB, Repository


def _registry(text: str) -> str:
    """``ghcr.io``, ``https://ghcr.io/v2/``, ``index.docker.io`` -> the registry name (``docker.io``)."""
    name = text.strip()
    if "://" in name:
        name = name.split("://", 1)[1]
    name = name.split("/", 1)[0]
    if not name:
        raise UsageError(f"not a registry: {text!r}")
    return Repository.parse(f"{name}/x").registry


def _username(settings: Settings, registry: str) -> str:
    if settings.username:
        return settings.username
    if not stdin_is_terminal():
        raise UsageError(f"give --username for {registry} (standard input is not a terminal to ask for it)")
    value: str = click.prompt("Username", err=True)
    if not value.strip():
        raise UsageError("no username given")
    return value.strip()


def _password(settings: Settings, username: str) -> str:
    if settings.password_stdin:
        if settings.password is not None:
            raise UsageError("give --password or --password-stdin, not both")
        password = read_password_stdin()
    elif settings.password is not None:
        warn(PASSWORD_WARNING)
        password = settings.password
    else:
        password = prompt_password(username, "--password-stdin")
    if not password:
        raise UsageError("the password is empty")
    return password


@click.command(
    "login",
    epilog=examples(
        "regpeek login ghcr.io -u octocat              # asks for the password",
        'echo "$TOKEN" | regpeek login -u robot --password-stdin registry.example:5000',
        "regpeek login --authfile ./auth.json -u me quay.io",
    ),
)
@click.argument("registry", default=DOCKER_HUB)
@registry_options(platform=False, cache=False)
def login_command(settings: Settings, registry: str) -> None:
    """Log in to REGISTRY (default docker.io): check the credentials with it, then keep them.

    They are checked the way the registry asks (a token from its token service, or Basic
    credentials) and kept as docker and podman keep them: by the credential helper the auth file
    names (credHelpers, credsStore), else in the auth file: --authfile, $REGISTRY_AUTH_FILE,
    $XDG_RUNTIME_DIR/containers/auth.json (when $XDG_RUNTIME_DIR exists), else ~/.docker/config.json.
    The password is asked for on a terminal; elsewhere give --password-stdin.
    """
    from regpeek.network._sync.registry import Client
    from regpeek.network.credentials import CredentialStore, store_credentials

    if settings.creds is not None:
        raise UsageError("regpeek login takes --username and --password-stdin, not --creds")
    name = _registry(registry)
    username = _username(settings, name)
    password = _password(settings, username)
    remember_secrets([password])
    credentials = CredentialStore(username=username, password=password, source=f"regpeek login {name}")
    with Client(
        credentials=credentials, options=settings.http_options(), registries=settings.registries()
    ) as client:
        client.check_login(name)
        remember_secrets(client.secrets)
    stored = store_credentials(name, username, password, authfile=settings.authfile)
    echo(f"Login succeeded: credentials for {name} stored in {stored.describe()}")


@click.command(
    "logout", epilog=examples("regpeek logout ghcr.io", "regpeek logout --authfile ./auth.json quay.io")
)
@click.argument("registry", default=DOCKER_HUB)
@click.option(
    "--authfile",
    type=click.Path(dir_okay=False),
    help="Auth file to remove the credentials from (default: where regpeek login keeps them).",
)
def logout_command(registry: str, authfile: str | None) -> None:
    """Forget the credentials kept for REGISTRY (default docker.io), from the credential helper the
    auth file names and from the auth file itself.
    """
    from regpeek.network.credentials import erase_credentials, login_file

    name = _registry(registry)
    erased = erase_credentials(name, authfile=authfile)
    if erased is None:
        where = authfile or login_file()
        echo(f"not logged in to {name} (nothing kept for it in {where})")
        return
    echo(f"Removed the credentials for {name} from {erased.describe()}")
