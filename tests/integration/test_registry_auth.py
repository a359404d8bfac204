"""Authentication against the real registry: token auth (JWTs), htpasswd Basic, credential sources."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import regpeek
from tests.integration.api import Api, registry_flags, run_cli
from tests.support.fixtures import PASSWORD, USERNAME
from tests.support.images import Pushed, PushedIndex, load_samples
from tests.support.push import pusher_for
from tests.support.registry import Registry
from tests.support.tokenserver import TokenServer

pytestmark = pytest.mark.usefixtures("no_user_credentials")  # the developer's auth files stay out


@pytest.fixture(scope="module")
def token_samples(token_registry: tuple[Registry, TokenServer]) -> dict[str, Pushed]:
    registry, _ = token_registry
    with pusher_for(registry) as pusher:
        return load_samples(pusher)


@pytest.fixture(scope="module")
def htpasswd_samples(htpasswd_registry: Registry) -> dict[str, Pushed]:
    with pusher_for(htpasswd_registry) as pusher:
        return load_samples(pusher)


def _paths(registry: Registry) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in registry.requests()]


def test_inspect_index_request_economy(api: Api, token_registry: tuple[Registry, TokenServer],
                                       token_samples: dict[str, Pushed]) -> None:  # fmt: skip
    """A tag pointing at an index: three GETs after auth, one token request, no ping, no tag listing."""
    registry, tokens = token_registry
    index = token_samples["samples/index"]
    assert isinstance(index, PushedIndex)
    child = index.child("linux", "arm", "v7")
    registry.mark()
    tokens.clear()
    result = api.call(registry, "inspect", f"{registry.host}/samples/index:latest", platform="linux/arm/v7")
    assert str(result.digest) == child.digest
    assert _paths(registry) == [
        ("GET", "/v2/samples/index/manifests/latest", 401),
        ("GET", "/v2/samples/index/manifests/latest", 200),
        ("GET", f"/v2/samples/index/manifests/{child.digest}", 200),
        ("GET", f"/v2/samples/index/blobs/{child.config.digest}", 200),
    ]
    assert [t.scopes for t in tokens.requests] == [["repository:samples/index:pull"]]
    assert tokens.requests[0].authorization is False  # anonymous: no credentials configured


def test_token_reused_within_a_client(api: Api, token_registry: tuple[Registry, TokenServer],
                                      token_samples: dict[str, Pushed]) -> None:  # fmt: skip
    registry, tokens = token_registry
    registry.mark()
    tokens.clear()
    ref = f"{registry.host}/samples/docker"
    first, second = api.calls(registry, [("digest", (ref,), {}), ("inspect", (ref,), {})])
    assert str(first) == str(second.digest) == token_samples["samples/docker"].digest
    assert len(tokens.requests) == 1  # one scope, one token, cached for the client's life
    assert [r.status for r in registry.requests()] == [401, 200, 200, 200]  # HEAD 401, HEAD, GET, GET blob
    # another repository is another scope: a new token, fetched up front (no second 401)
    registry.mark()
    api.calls(registry, [("digest", (ref,), {}), ("digest", (f"{registry.host}/samples/oci",), {})])
    assert [r.status for r in registry.requests()] == [401, 200, 200]


def test_token_with_credentials(api: Api, token_registry: tuple[Registry, TokenServer],
                                token_samples: dict[str, Pushed]) -> None:  # fmt: skip
    registry, tokens = token_registry
    tokens.clear()
    digest = api.call(registry, "digest", f"{registry.host}/samples/oci",
                      client={"username": USERNAME, "password": PASSWORD})  # fmt: skip
    assert str(digest) == token_samples["samples/oci"].digest
    assert [(t.authorization, t.username) for t in tokens.requests] == [(True, USERNAME)]


def test_token_refused_for_wrong_password(token_registry: tuple[Registry, TokenServer],
                                          token_samples: dict[str, Pushed]) -> None:  # fmt: skip
    registry, _ = token_registry
    wrong = "not-the-password-42"
    done = run_cli("inspect", *registry_flags(registry), "--username", USERNAME, "--password-stdin",
                   "--debug", f"{registry.host}/samples/oci", stdin=wrong + "\n")  # fmt: skip
    assert done.code == 4
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"regpeek: error: credentials for {registry.host} were refused (from --username)")
    assert f"with credentials of {USERNAME} from --username" in done.stderr  # the --debug auth steps
    assert wrong not in done.stderr and wrong.encode() not in done.stdout


def test_cli_password_stdin(
    token_registry: tuple[Registry, TokenServer], token_samples: dict[str, Pushed]
) -> None:
    registry, tokens = token_registry
    tokens.clear()
    done = run_cli("digest", *registry_flags(registry), "-u", USERNAME, "--password-stdin", "--debug",
                   f"{registry.host}/samples/list", stdin=PASSWORD + "\n")  # fmt: skip
    assert done.code == 0, done.stderr
    assert done.text == token_samples["samples/list"].digest + "\n"
    assert tokens.requests[-1].username == USERNAME
    assert PASSWORD not in done.stderr  # not even in --debug logs


def test_access_token_field(api: Api, tmp_path: Path) -> None:
    """A token server that answers with ``access_token`` only (the OAuth2 shape)."""
    from tests.support.registry import start_registry

    with (
        TokenServer(
            tmp_path / "ts", users={USERNAME: PASSWORD}, field="access_token", expires_in=None
        ) as tokens,
        start_registry(tmp_path / "reg", auth="token", token_server=tokens) as registry,
    ):
        with pusher_for(registry) as pusher:
            pushed = load_samples(pusher)
        result = api.call(registry, "inspect", f"{registry.host}/samples/oci")
        assert str(result.digest) == pushed["samples/oci"].digest


# -- htpasswd Basic auth ------------------------------------------------------------------------


def test_basic_auth_required(
    api: Api, htpasswd_registry: Registry, htpasswd_samples: dict[str, Pushed]
) -> None:
    with pytest.raises(regpeek.AuthError):
        api.call(htpasswd_registry, "inspect", f"{htpasswd_registry.host}/samples/oci")


def test_basic_auth_with_credentials(api: Api, htpasswd_registry: Registry,
                                     htpasswd_samples: dict[str, Pushed]) -> None:  # fmt: skip
    htpasswd_registry.mark()
    result = api.call(htpasswd_registry, "inspect", f"{htpasswd_registry.host}/samples/index",
                      platform="linux/arm64", client={"username": USERNAME, "password": PASSWORD})  # fmt: skip
    assert str(result.index_digest) == htpasswd_samples["samples/index"].digest
    # one 401 teaches the client Basic; every later request carries it up front
    assert [r.status for r in htpasswd_registry.requests()] == [401, 200, 200, 200]


def test_basic_auth_wrong_password_exit_4(
    htpasswd_registry: Registry, htpasswd_samples: dict[str, Pushed]
) -> None:
    done = run_cli("digest", *registry_flags(htpasswd_registry), "-u", USERNAME, "-p", "wrong-password-x",
                   f"{htpasswd_registry.host}/samples/oci")  # fmt: skip
    assert done.code == 4
    assert "401" in done.stderr
    assert "wrong-password-x" not in done.stderr


def _auth_entry(username: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{username}:{password}".encode()).decode()}


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def fake_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``docker-credential-regpeektest`` on PATH that knows alice's password for any server."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-regpeektest"
    log = tmp_path / "helper.log"
    helper.write_text(
        "#!/bin/sh\n"
        f'read server; echo "$1 $server" >> {log}\n'
        f'printf \'{{"ServerURL":"%s","Username":"{USERNAME}","Secret":"{PASSWORD}"}}\' "$server"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield log


@pytest.mark.parametrize("source", ["authfile", "REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_RUNTIME_DIR", "HOME",
                                    "credHelpers", "credsStore"])  # fmt: skip
def test_credential_sources(source: str, htpasswd_registry: Registry, htpasswd_samples: dict[str, Pushed],
                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_helper: Path) -> None:  # fmt: skip
    host = htpasswd_registry.host
    entry = {"auths": {host: _auth_entry(USERNAME, PASSWORD)}}
    flags: list[str] = []
    if source == "authfile":
        flags = ["--authfile", str(_write(tmp_path / "custom.json", entry))]
    elif source == "REGISTRY_AUTH_FILE":
        monkeypatch.setenv(source, str(_write(tmp_path / "auth.json", entry)))
    elif source == "DOCKER_CONFIG":
        monkeypatch.setenv(source, str(_write(tmp_path / "docker" / "config.json", entry).parent))
    elif source == "XDG_RUNTIME_DIR":
        monkeypatch.setenv(
            source, str(_write(tmp_path / "run" / "containers" / "auth.json", entry).parent.parent)
        )
    elif source == "HOME":
        _write(tmp_path / "home" / ".docker" / "config.json", entry)
    elif source == "credHelpers":
        _write(tmp_path / "home" / ".docker" / "config.json", {"credHelpers": {host: "regpeektest"}})
    else:
        _write(tmp_path / "home" / ".docker" / "config.json", {"auths": {}, "credsStore": "regpeektest"})
    done = run_cli("digest", *registry_flags(htpasswd_registry), *flags, f"{host}/samples/docker")
    assert done.code == 0, done.stderr
    assert done.text == htpasswd_samples["samples/docker"].digest + "\n"
    if source.startswith("cred"):
        assert fake_helper.read_text() == f"get {host}\n"


def test_authfile_for_another_host_gives_no_credentials(
    htpasswd_registry: Registry, htpasswd_samples: dict[str, Pushed], tmp_path: Path
) -> None:
    authfile = _write(
        tmp_path / "auth.json", {"auths": {"other.example:5000": _auth_entry(USERNAME, PASSWORD)}}
    )
    done = run_cli("digest", *registry_flags(htpasswd_registry), "--authfile", str(authfile),
                   f"{htpasswd_registry.host}/samples/docker")  # fmt: skip
    assert done.code == 4


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_samples(tls_registry: Registry) -> dict[str, Pushed]:
    with pusher_for(tls_registry) as pusher:
        return load_samples(pusher)


def test_tls_with_ca_file(api: Api, tls_registry: Registry, tls_samples: dict[str, Pushed]) -> None:
    assert tls_registry.tls and tls_registry.url.startswith("https://")
    result = api.call(tls_registry, "inspect", f"{tls_registry.host}/samples/list")
    assert str(result.index_digest) == tls_samples["samples/list"].digest


def test_tls_untrusted_certificate_exit_6(tls_registry: Registry, tls_samples: dict[str, Pushed]) -> None:
    done = run_cli("digest", "--retries", "0", f"{tls_registry.host}/samples/oci")
    assert done.code == 6
    assert "certificate" in done.stderr and "--ca-file" in done.stderr
    assert done.stderr.count("\n") == 1


def test_tls_insecure(tls_registry: Registry, tls_samples: dict[str, Pushed]) -> None:
    done = run_cli("digest", "--insecure", f"{tls_registry.host}/samples/oci")
    assert done.code == 0, done.stderr
    assert done.text == tls_samples["samples/oci"].digest + "\n"


def test_plain_http_to_tls_registry_fails_clearly(
    tls_registry: Registry, tls_samples: dict[str, Pushed]
) -> None:
    done = run_cli("digest", "--plain-http", "--retries", "0", f"{tls_registry.host}/samples/oci")
    assert done.code == 2
    assert "speaks HTTPS: drop --plain-http" in done.stderr
    assert "Traceback" not in done.stderr
