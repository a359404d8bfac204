"""``regpeek login`` / ``logout`` against a token registry and an htpasswd registry, credentials kept in
auth files and by a fake ``docker-credential-fake``; passwords asked for on a real terminal (a pty),
refused elsewhere; and the words of an authentication failure."""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.api import registry_flags, run_cli
from tests.support.credhelper import FakeHelper, install_helper
from tests.support.fixtures import PASSWORD, USERNAME, USERS, require_tool
from tests.support.images import Pushed, load_samples
from tests.support.push import pusher_for
from tests.support.registry import Registry, start_registry
from tests.support.tokenserver import TokenServer

WRONG = "not-the-password-9"


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A token registry that grants nothing to anonymous callers (alice may pull and push)."""
    require_tool("docker-registry")
    workdir = tmp_path_factory.mktemp("private-registry")
    with (
        TokenServer(workdir / "token-server", users=USERS, anonymous_pull=False) as tokens,
        start_registry(workdir / "registry", auth="token", token_server=tokens) as registry,
    ):
        yield registry


@pytest.fixture(scope="module")
def private_samples(private_registry: Registry) -> dict[str, Pushed]:
    with pusher_for(private_registry) as pusher:
        return load_samples(pusher)


@pytest.fixture(scope="module")
def basic_samples(htpasswd_registry: Registry) -> dict[str, Pushed]:
    with pusher_for(htpasswd_registry) as pusher:
        return load_samples(pusher)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of one's own, and no auth file from the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHelper:
    fake = install_helper(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{fake.program.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return fake


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _login(registry: Registry, *args: str, password: str = PASSWORD) -> tuple[int, str, str]:
    done = run_cli("login", *registry_flags(registry), *args, "-u", USERNAME, "--password-stdin", registry.host,
                   stdin=password + "\n")  # fmt: skip
    return done.code, done.text, done.stderr


def test_login_to_a_token_registry_keeps_other_entries(
    private_registry: Registry, private_samples: dict[str, Pushed], isolated: Path, tmp_path: Path
) -> None:
    authfile = tmp_path / "auth.json"
    others: dict[str, dict[str, Any]] = {
        "auths": {"other.example": {"auth": _auth("bob", "bobs")}},
        "credHelpers": {"gcr.io": "gcloud"},
        "HttpHeaders": {"X-Meta": "kept"},
    }
    authfile.write_text(json.dumps(others))
    authfile.chmod(0o644)
    code, out, err = _login(private_registry, "--authfile", str(authfile))
    assert (code, err) == (0, ""), err
    assert out == f"Login succeeded: credentials for {private_registry.host} stored in {authfile}\n"
    document = json.loads(authfile.read_text())
    assert document == {
        **others,
        "auths": {**others["auths"], private_registry.host: {"auth": _auth(USERNAME, PASSWORD)}},
    }
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json", "home"]  # no temporary file left
    ref = f"{private_registry.host}/samples/oci"
    assert run_cli("digest", *registry_flags(private_registry), ref).code == 4  # anonymous: nothing granted
    used = run_cli("digest", *registry_flags(private_registry), "--authfile", str(authfile), ref)
    assert (used.code, used.text) == (0, private_samples["samples/oci"].digest + "\n")
    logout = run_cli("logout", "--authfile", str(authfile), private_registry.host)
    assert (logout.code, logout.text) == (
        0,
        f"Removed the credentials for {private_registry.host} from {authfile}\n",
    )
    assert json.loads(authfile.read_text()) == others
    again = run_cli("logout", "--authfile", str(authfile), private_registry.host)
    assert again.code == 0 and again.text.startswith(f"not logged in to {private_registry.host}")


def test_refused_credentials_change_nothing(private_registry: Registry, tmp_path: Path) -> None:
    authfile = tmp_path / "auth.json"
    code, _, err = _login(private_registry, "--authfile", str(authfile), password=WRONG)
    assert code == 4
    assert err.startswith(
        f"regpeek: error: credentials for {private_registry.host} were refused (from regpeek login "
        f"{private_registry.host}) by the token service at http://"
    )
    assert WRONG not in err and not authfile.exists()


def test_login_to_an_htpasswd_registry_through_a_credential_helper(
    htpasswd_registry: Registry, basic_samples: dict[str, Pushed], helper: FakeHelper, tmp_path: Path
) -> None:
    """The auth file names a credsStore: the helper keeps the secret, the file is not touched; reads
    ask the helper; logout erases there."""
    registry = htpasswd_registry
    authfile = tmp_path / "config.json"
    authfile.write_text(json.dumps({"credsStore": "fake"}))
    before = authfile.read_bytes()
    code, out, err = _login(registry, "--authfile", str(authfile))
    assert code == 0, err
    assert (
        out
        == f"Login succeeded: credentials for {registry.host} stored in docker-credential-fake (named in {authfile})\n"
    )
    assert helper.stored() == {registry.host: {"Username": USERNAME, "Secret": PASSWORD}}
    assert authfile.read_bytes() == before
    ref = f"{registry.host}/samples/oci"
    read = run_cli("digest", *registry_flags(registry), "--authfile", str(authfile), ref)
    assert (read.code, read.text) == (0, basic_samples["samples/oci"].digest + "\n")
    assert helper.calls() == [f"store {registry.host}", f"get {registry.host}"]
    out_done = run_cli("logout", "--authfile", str(authfile), registry.host)
    assert out_done.code == 0 and "docker-credential-fake" in out_done.text
    assert helper.stored() == {}
    refused = run_cli("digest", *registry_flags(registry), "--authfile", str(authfile), ref)
    assert refused.code == 4
    assert refused.stderr == (
        f"regpeek: error: no credentials for {registry.host} (run `regpeek login {registry.host}` or pass "
        f"--username): HTTP 401 for manifest {ref}:latest\n"  # a HEAD (the cache's tag check): no body
    )


def test_a_per_host_credential_helper_wins_over_the_store(
    htpasswd_registry: Registry, basic_samples: dict[str, Pushed], helper: FakeHelper, tmp_path: Path
) -> None:
    other = install_helper(helper.program.parent, "other")
    authfile = tmp_path / "config.json"
    authfile.write_text(json.dumps({"credsStore": "other", "credHelpers": {htpasswd_registry.host: "fake"}}))
    assert _login(htpasswd_registry, "--authfile", str(authfile))[0] == 0
    assert helper.stored() == {htpasswd_registry.host: {"Username": USERNAME, "Secret": PASSWORD}}
    assert other.stored() == {}


def test_refused_basic_credentials_name_their_source(
    htpasswd_registry: Registry, basic_samples: dict[str, Pushed], isolated: Path
) -> None:
    config = isolated / ".docker" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"auths": {htpasswd_registry.host: {"auth": _auth(USERNAME, WRONG)}}}))
    done = run_cli("digest", *registry_flags(htpasswd_registry), f"{htpasswd_registry.host}/samples/oci")
    assert done.code == 4
    assert done.stderr.startswith(
        f"regpeek: error: credentials for {htpasswd_registry.host} were refused (from ~/.docker/config.json): "
        "HTTP 401"
    )


@pytest.mark.parametrize("where", ["REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "home"])
def test_which_auth_file_login_writes(
    where: str, htpasswd_registry: Registry, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = {
        "REGISTRY_AUTH_FILE": tmp_path / "given" / "auth.json",
        "XDG_RUNTIME_DIR": tmp_path / "run" / "containers" / "auth.json",
        "home": isolated / ".docker" / "config.json",
    }[where]
    if where == "REGISTRY_AUTH_FILE":
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(expected))
    if where in ("XDG_RUNTIME_DIR", "home"):
        (tmp_path / "run").mkdir()
        monkeypatch.setenv(
            "XDG_RUNTIME_DIR", str(tmp_path / "run" if where == "XDG_RUNTIME_DIR" else tmp_path / "none")
        )
    code, out, err = _login(htpasswd_registry)
    assert code == 0, err
    shown = "~/.docker/config.json" if where == "home" else str(expected)
    assert out.endswith(f"stored in {shown}\n")
    assert json.loads(expected.read_text())["auths"] == {
        htpasswd_registry.host: {"auth": _auth(USERNAME, PASSWORD)}
    }
    assert stat.S_IMODE(expected.stat().st_mode) == 0o600


def test_a_symlinked_auth_file_stays_a_link(htpasswd_registry: Registry, tmp_path: Path) -> None:
    target = tmp_path / "dotfiles" / "auth.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "auth.json"
    link.symlink_to(target)
    assert _login(htpasswd_registry, "--authfile", str(link))[0] == 0
    assert link.is_symlink()
    assert htpasswd_registry.host in json.loads(target.read_text())["auths"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["login", "-u", USERNAME, "HOST"], f"no password for {USERNAME}, and standard input is not a "
                     "terminal to ask for it: use --password-stdin", id="login"),
        pytest.param(["login", "HOST"], "give --username for HOST (standard input is not a terminal", id="login-no-user"),
        pytest.param(["digest", "-u", USERNAME, "HOST/samples/oci"], f"no password for {USERNAME}", id="dash-u"),
        pytest.param(["digest", "--creds", USERNAME, "HOST/samples/oci"], "use --creds USER:PASSWORD", id="creds"),
    ],
)  # fmt: skip
def test_no_prompt_without_a_terminal(
    argv: list[str], message: str, htpasswd_registry: Registry, tmp_path: Path
) -> None:
    """A username without a password asks on a terminal; elsewhere it is exit 2, never anonymous."""
    htpasswd_registry.mark()
    args = [a.replace("HOST", htpasswd_registry.host) for a in argv]
    done = run_cli(
        *args[:1], *registry_flags(htpasswd_registry), "--authfile", str(tmp_path / "a.json"), *args[1:]
    )
    assert done.code == 2, done.stderr
    assert message.replace("HOST", htpasswd_registry.host) in done.stderr
    assert htpasswd_registry.requests() == []


def test_creds_user_and_password(htpasswd_registry: Registry, basic_samples: dict[str, Pushed]) -> None:
    ref = f"{htpasswd_registry.host}/samples/oci"
    done = run_cli("digest", *registry_flags(htpasswd_registry), "--creds", f"{USERNAME}:{PASSWORD}", ref)
    assert (done.code, done.text) == (0, basic_samples["samples/oci"].digest + "\n")


def _on_a_terminal(argv: list[str], answer: str, env: dict[str, str]) -> tuple[int, str]:
    """Run regpeek with a pty as its terminal; type ``answer`` at the password prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: regpeek on the pty
        os.execve(sys.executable, [sys.executable, "-m", "regpeek", *argv], env)
    output = b""
    typed = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        if not typed and b"Password for" in output:
            os.write(fd, answer.encode() + b"\r")
            typed = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def test_the_password_is_asked_on_a_terminal_without_echo(
    htpasswd_registry: Registry, basic_samples: dict[str, Pushed], tmp_path: Path
) -> None:
    authfile = tmp_path / "auth.json"
    env = {**os.environ, "REGPEEK_CACHE_DIR": str(tmp_path / "cache")}
    code, output = _on_a_terminal(
        ["login", "--plain-http", "-u", USERNAME, "--authfile", str(authfile), htpasswd_registry.host],
        PASSWORD,
        env,
    )
    assert code == 0, output
    assert f"Password for {USERNAME}:" in output and "Login succeeded" in output
    assert PASSWORD not in output  # not echoed
    assert json.loads(authfile.read_text())["auths"][htpasswd_registry.host] == {
        "auth": _auth(USERNAME, PASSWORD)
    }
    code, output = _on_a_terminal(
        ["digest", "--plain-http", "-u", USERNAME, f"{htpasswd_registry.host}/samples/oci"], PASSWORD, env
    )
    assert code == 0, output
    assert basic_samples["samples/oci"].digest in output and PASSWORD not in output


def test_login_refuses_creds_and_names_docker_hub_by_default() -> None:
    done = run_cli("login", "--creds", "a:b")
    assert done.code == 2 and "--creds" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "regpeek", "login", "--help"], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert "default docker.io" in listed.stdout
