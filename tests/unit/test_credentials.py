"""Credential lookup: auth files in order, their formats, and docker-credential helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from regpeek.errors import AuthError, LocalError, UsageError
from regpeek.network.credentials import Credentials, CredentialStore, auth_file_candidates

HUB_KEY = "https://index.docker.io/v1/"

HELPER_SOURCE = """\
#!{python}
import json, pathlib, sys
here = pathlib.Path(__file__).resolve().parent
name = pathlib.Path(__file__).name
server = sys.stdin.read()
with open(here / "calls.log", "a") as log:
    log.write(name + " " + " ".join(sys.argv[1:]) + " " + server + "\\n")
answers = json.loads((here / (name + ".json")).read_text())
answer = answers.get(server)
if answer is None:
    print("credentials not found in native keychain")
    sys.exit(1)
if answer == "garbage":
    print("this is not json")
elif answer == "fail":
    print("the keychain is locked", file=sys.stderr)
    sys.exit(3)
else:
    print(json.dumps(answer))
"""

HelperFactory = Callable[[str, dict[str, Any]], Path]


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write(path: Path, document: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def helper_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


@pytest.fixture
def helper(helper_dir: Path) -> HelperFactory:
    """Install ``docker-credential-NAME`` answering ``answers[server]`` (JSON), else 'not found'."""

    def install(name: str, answers: dict[str, Any]) -> Path:
        program = helper_dir / f"docker-credential-{name}"
        program.write_text(HELPER_SOURCE.format(python=sys.executable))
        program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        (helper_dir / f"docker-credential-{name}.json").write_text(json.dumps(answers))
        return program

    return install


def _calls(helper_dir: Path) -> list[str]:
    log = helper_dir / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def _store(home: Path, environ: dict[str, str] | None = None, **kwargs: Any) -> CredentialStore:
    return CredentialStore(environ=environ or {}, home=home, **kwargs)


# -- files -------------------------------------------------------------------------------------


def test_auth_file_candidates_order(tmp_path: Path) -> None:
    environ = {
        "REGISTRY_AUTH_FILE": str(tmp_path / "explicit.json"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "DOCKER_CONFIG": str(tmp_path / "dockercfg"),
    }
    assert auth_file_candidates(environ, tmp_path / "home") == [
        tmp_path / "explicit.json",
        tmp_path / "run" / "containers" / "auth.json",
        tmp_path / "dockercfg" / "config.json",
    ]
    assert auth_file_candidates({}, tmp_path / "home") == [tmp_path / "home" / ".docker" / "config.json"]
    assert auth_file_candidates({"REGISTRY_AUTH_FILE": ""}, tmp_path) == [
        tmp_path / ".docker" / "config.json"
    ]


ENTRY_FORMATS = [
    pytest.param({"auth": _auth("user", "pa:ss")}, Credentials("user", "pa:ss"), id="auth-base64-colon-in-pw"),
    pytest.param({"username": "user", "password": "pw"}, Credentials("user", "pw"), id="username-password"),
    pytest.param({"identitytoken": "refresh-tok"}, Credentials("", identity_token="refresh-tok"),
                 id="identitytoken"),
    pytest.param({"username": "u", "identitytoken": "refresh-tok", "auth": _auth("u", "x")},
                 Credentials("u", identity_token="refresh-tok"), id="identitytoken-wins-over-auth"),
    pytest.param({"auth": _auth("a", "b"), "username": "c", "password": "d"}, Credentials("a", "b"),
                 id="auth-wins-over-username"),
    pytest.param({"email": "x@example.com"}, Credentials(), id="entry-without-credentials"),
    pytest.param({"auth": ""}, Credentials(), id="empty-auth"),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "expected"), ENTRY_FORMATS)
def test_auths_entry_formats(home: Path, entry: dict[str, str], expected: Credentials) -> None:
    _write(home / ".docker" / "config.json", {"auths": {"registry.example.com": entry}})
    assert _store(home).get("registry.example.com") == expected


@pytest.mark.parametrize(
    ("key", "host"),
    [
        pytest.param(HUB_KEY, "docker.io", id="hub-v1-url"),
        pytest.param("index.docker.io", "docker.io", id="hub-index-host"),
        pytest.param("docker.io", "docker.io", id="hub-docker.io"),
        pytest.param("registry-1.docker.io", "docker.io", id="hub-registry-1"),
        pytest.param("ghcr.io", "ghcr.io", id="plain-host"),
        pytest.param("https://ghcr.io", "ghcr.io", id="https-host"),
        pytest.param("http://localhost:5000", "localhost:5000", id="http-host-port"),
        pytest.param("https://quay.io/v1/", "quay.io", id="v1-url"),
        pytest.param("https://quay.io/v2/", "quay.io", id="v2-url"),
    ],
)
def test_auths_keys(home: Path, key: str, host: str) -> None:
    _write(home / ".docker" / "config.json", {"auths": {key: {"auth": _auth("u", "p")}}})
    assert _store(home).get(host) == Credentials("u", "p")


@pytest.mark.parametrize(
    ("key", "host"),
    [
        pytest.param(HUB_KEY, "ghcr.io", id="hub-key-not-for-ghcr"),
        pytest.param("ghcr.io", "docker.io", id="ghcr-key-not-for-hub"),
        pytest.param("localhost", "localhost:5000", id="port-matters"),
        pytest.param("evil.com/ghcr.io", "ghcr.io", id="no-substring-match"),
    ],
)
def test_auths_keys_do_not_leak_to_other_hosts(home: Path, key: str, host: str) -> None:
    _write(home / ".docker" / "config.json", {"auths": {key: {"auth": _auth("u", "p")}}})
    assert _store(home).get(host) == Credentials()
    assert not _store(home).get(host)


def test_lookup_order_first_file_knowing_the_host_wins(tmp_path: Path, home: Path) -> None:
    explicit = _write(tmp_path / "explicit.json", {"auths": {"a.io": {"auth": _auth("from", "explicit")}}})
    xdg = _write(tmp_path / "run" / "containers" / "auth.json", {"auths": {
        "a.io": {"auth": _auth("from", "xdg")}, "b.io": {"auth": _auth("from", "xdg")}}})  # fmt: skip
    docker = _write(tmp_path / "dockercfg" / "config.json", {"auths": {
        "a.io": {"auth": _auth("from", "docker")}, "b.io": {"auth": _auth("from", "docker")},
        "c.io": {"auth": _auth("from", "docker")}}})  # fmt: skip
    _write(home / ".docker" / "config.json", {"auths": {"d.io": {"auth": _auth("from", "home")}}})
    environ = {
        "REGISTRY_AUTH_FILE": str(explicit),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "DOCKER_CONFIG": str(docker.parent),
    }
    assert xdg.exists()
    store = _store(home, environ)
    assert store.get("a.io").password == "explicit"
    assert store.get("b.io").password == "xdg"
    assert store.get("c.io").password == "docker"
    assert store.get("d.io") == Credentials()  # DOCKER_CONFIG replaces ~/.docker


def test_home_docker_config_used_by_default(home: Path) -> None:
    _write(home / ".docker" / "config.json", {"auths": {"d.io": {"auth": _auth("from", "home")}}})
    assert _store(home).get("d.io") == Credentials("from", "home")


def test_missing_files_are_skipped(tmp_path: Path, home: Path) -> None:
    environ = {"REGISTRY_AUTH_FILE": str(tmp_path / "nope.json"), "XDG_RUNTIME_DIR": str(tmp_path / "nope")}
    assert _store(home, environ).get("a.io") == Credentials()


def test_explicit_authfile_is_the_only_file(tmp_path: Path, home: Path) -> None:
    authfile = _write(tmp_path / "only.json", {"auths": {"a.io": {"auth": _auth("only", "file")}}})
    _write(home / ".docker" / "config.json", {"auths": {"b.io": {"auth": _auth("home", "x")}}})
    store = _store(home, authfile=authfile)
    assert store.get("a.io") == Credentials("only", "file")
    assert store.get("b.io") == Credentials()


def test_explicit_authfile_must_exist(tmp_path: Path, home: Path) -> None:
    """A missing --authfile is a local file problem (exit 7), naming the file and the reason."""
    with pytest.raises(LocalError, match=r"cannot read auth file .*missing\.json: No such file or directory"):
        _store(home, authfile=tmp_path / "missing.json")


def test_explicit_credentials_win(tmp_path: Path, home: Path) -> None:
    _write(home / ".docker" / "config.json", {"auths": {"a.io": {"auth": _auth("file", "pw")}}})
    store = _store(home, username="cli", password="secret")
    assert store.get("a.io") == Credentials("cli", "secret")
    assert store.secrets == ("secret",)


def test_password_needs_username(home: Path) -> None:
    with pytest.raises(UsageError, match="username"):
        _store(home, password="secret")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"auths": {"a.io": {"auth": "!!!!"}}}', "base64", id="auth-not-base64"),
        pytest.param(json.dumps({"auths": {"a.io": {"auth": base64.b64encode(b"nocolon").decode()}}}),
                     "user:password", id="auth-without-colon"),
        pytest.param("{not json", "not valid JSON", id="file-not-json"),
    ],
)  # fmt: skip
def test_broken_auth_files(home: Path, content: str, message: str) -> None:
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text(content)
    with pytest.raises(AuthError, match=message) as info:
        _store(home).get("a.io")
    assert "nocolon" not in str(info.value)


def test_non_object_file_is_ignored(home: Path) -> None:
    _write(home / ".docker" / "config.json", ["not", "an", "object"])
    assert _store(home).get("a.io") == Credentials()


# -- helpers -----------------------------------------------------------------------------------


def test_cred_helper_for_host(home: Path, helper: HelperFactory, helper_dir: Path) -> None:
    helper("test", {"ghcr.io": {"ServerURL": "ghcr.io", "Username": "octo", "Secret": "ghp_secret"}})
    _write(home / ".docker" / "config.json", {"credHelpers": {"ghcr.io": "test"}})
    store = _store(home)
    assert store.get("ghcr.io") == Credentials("octo", "ghp_secret")
    assert store.get("ghcr.io") == Credentials("octo", "ghp_secret")
    assert _calls(helper_dir) == ["docker-credential-test get ghcr.io"]  # asked once: cached


def test_cred_helper_for_docker_hub_gets_the_v1_url(
    home: Path, helper: HelperFactory, helper_dir: Path
) -> None:
    helper("test", {HUB_KEY: {"Username": "hubuser", "Secret": "hubpw"}})
    _write(home / ".docker" / "config.json", {"credHelpers": {"docker.io": "test"}})
    assert _store(home).get("docker.io") == Credentials("hubuser", "hubpw")
    assert _calls(helper_dir) == [f"docker-credential-test get {HUB_KEY}"]


def test_creds_store(home: Path, helper: HelperFactory, helper_dir: Path) -> None:
    helper("test", {"quay.io": {"Username": "robot", "Secret": "robot-pw"}})
    _write(home / ".docker" / "config.json", {"credsStore": "test"})
    store = _store(home)
    assert store.get("quay.io") == Credentials("robot", "robot-pw")
    assert store.get("other.io") == Credentials()  # "credentials not found": nothing, no error
    assert _calls(helper_dir) == ["docker-credential-test get quay.io", "docker-credential-test get other.io"]


def test_token_username_means_identity_token(home: Path, helper: HelperFactory) -> None:
    helper("test", {"acr.example.io": {"Username": "<token>", "Secret": "refresh-me"}})
    _write(home / ".docker" / "config.json", {"credsStore": "test"})
    assert _store(home).get("acr.example.io") == Credentials("", identity_token="refresh-me")


def test_precedence_within_a_file(home: Path, helper: HelperFactory) -> None:
    helper("per-host", {"a.io": {"Username": "helper", "Secret": "h"}})
    helper("store", {"a.io": {"Username": "store", "Secret": "s"}, "b.io": {"Username": "store", "Secret": "s"},
                     "c.io": {"Username": "store", "Secret": "s"}})  # fmt: skip
    _write(home / ".docker" / "config.json", {
        "credHelpers": {"a.io": "per-host"},
        "auths": {"a.io": {"auth": _auth("auths", "x")}, "b.io": {"auth": _auth("auths", "x")}},
        "credsStore": "store",
    })  # fmt: skip
    store = _store(home)
    assert store.get("a.io").username == "helper"
    assert store.get("b.io").username == "auths"
    assert store.get("c.io").username == "store"


def test_helper_not_found_falls_back_to_auths(home: Path, helper: HelperFactory) -> None:
    helper("test", {})
    _write(home / ".docker" / "config.json",
           {"credHelpers": {"a.io": "test"}, "auths": {"a.io": {"auth": _auth("u", "p")}}})  # fmt: skip
    assert _store(home).get("a.io") == Credentials("u", "p")


def test_missing_cred_helper_program_is_an_error(home: Path, helper_dir: Path) -> None:
    _write(home / ".docker" / "config.json", {"credHelpers": {"a.io": "absent-xyz"}})
    with pytest.raises(AuthError, match="docker-credential-absent-xyz"):
        _store(home).get("a.io")


def test_missing_creds_store_program_is_ignored(home: Path, helper_dir: Path) -> None:
    _write(home / ".docker" / "config.json",
           {"credsStore": "absent-xyz", "auths": {"a.io": {"auth": _auth("u", "p")}}})  # fmt: skip
    store = _store(home)
    assert store.get("a.io") == Credentials("u", "p")
    assert store.get("b.io") == Credentials()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param("fail", "exit status 3", id="helper-fails"),
        pytest.param("garbage", "not its JSON answer", id="helper-prints-garbage"),
    ],
)
def test_broken_helper(home: Path, helper: HelperFactory, answer: str, message: str) -> None:
    helper("test", {"a.io": answer})
    _write(home / ".docker" / "config.json", {"credHelpers": {"a.io": "test"}})
    with pytest.raises(AuthError, match=message):
        _store(home).get("a.io")


# -- secrets ------------------------------------------------------------------------------------


def test_secrets_absent_from_repr(home: Path) -> None:
    creds = Credentials("alice", "hunter2-password", "identity-token-value")
    text = repr(creds)
    assert "alice" in text
    assert "hunter2-password" not in text
    assert "identity-token-value" not in text
    assert creds.secrets == ("hunter2-password", "identity-token-value")
    _write(home / ".docker" / "config.json", {"auths": {"a.io": {"auth": _auth("bob", "file-secret")}}})
    store = _store(home)
    assert "file-secret" not in repr(store.get("a.io"))
    assert "file-secret" not in repr(store)


def test_credentials_truthiness() -> None:
    assert not Credentials()
    assert Credentials("u")
    assert Credentials(password="p")
    assert Credentials(identity_token="t")
