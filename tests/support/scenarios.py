"""Fault scenarios: the one table of what regpeek must do when a registry misbehaves.

Each :class:`Scenario` puts a :class:`~tests.support.faultproxy.FaultProxy` in front of a real CNCF
distribution registry (anonymous, token auth or htpasswd; see :class:`Env`), lets ``setup`` attach
faults to it (and to a :class:`~tests.support.faultproxy.RecordingServer` on 127.0.0.2 or a proxy in
front of the token service, when it asks for them), runs the regpeek CLI in-process with ``argv`` and
compares what happened with its :class:`Expect`: exit code, what stderr/stdout must and must not say,
time and request bounds, files that must not exist, and the scenario's extra ``checks``.

Every scenario is also held to what is true of any run (see :func:`run_scenario`):

- without ``--debug``: no traceback, and a failure is exactly one ``regpeek: error:`` line;
- after a failure nothing is printed on stdout (nothing shown as if it were valid);
- no password, Basic credentials or Bearer token (as seen in the ``Authorization`` headers that reached
  any of the run's servers) appears in stdout or stderr, ``--debug`` output included;
- the layout (``{layout}``) holds no staging area or partial file, and after a failure no file at all;
  every blob it holds hashes to its name;
- the cache (``{cache}``) holds no temp file, and every entry hashes to its name.

``argv`` is the command without connection flags: :meth:`Scenario.command` inserts after the verb
``--plain-http`` (or ``--ca-file`` for a TLS proxy), ``--retries``, ``--timeout``, ``--cache-dir``, and
``-u alice --password-stdin`` (``login``) and ``--debug`` when asked.  Strings in ``argv``, in the
expectations and in rule paths are templates filled from :attr:`Run.vars` (``{proxy}``, ``{layout}``,
``{cache}``, ``{digest}``, ``{config}``, ... and whatever ``setup`` adds).

The backoff is regpeek's default (``HttpOptions.backoff`` = 0.5 s, doubled per retry, jittered); the CLI
has no flag for it, so scenarios keep ``--retries`` at 1 or 2 to stay fast.

Used by ``tests/integration/test_faults.py`` (one test per row) and ``bench/faults.py`` (a report).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from regpeek.cli import scrub
from tests.integration.api import run_cli

from . import faultproxy as fp
from .faultproxy import FaultProxy, Recorded, RecordingServer
from .fixtures import PASSWORD, USERNAME, USERS
from .images import OCI_INDEX, OCI_MANIFEST, Pushed, PushedImage, PushedIndex, load_samples, push_oci_image
from .push import pusher_for
from .registry import Registry, start_registry
from .tokenserver import TokenServer

__all__ = [
    "SCENARIOS",
    "Cycle",
    "Env",
    "Expect",
    "Observation",
    "Run",
    "Scenario",
    "by_name",
    "fresh_cli_state",
    "rule",
    "run_scenario",
    "steps",
]

Upstream = Literal["anonymous", "token", "htpasswd"]
Setup = Callable[["Run"], None]
Check = Callable[["Run", "Observation"], list[str]]

MANIFESTS = "/manifests/"
BIG_LAYER_SIZE = 1024 * 1024  # the resumable layer of ``faults/big``
HUGE_BLOB_SIZE = 5 * 1024 * 1024  # over the 4 MiB manifest cap
_SECRET_MIN_LENGTH = 8
_ERROR_PREFIXES = ("regpeek: error: ", "regpeek: internal error: ")


# -- where the scenarios run ---------------------------------------------------------------------
class Env:
    """The registries and images scenarios run against; each is started on first use, all stopped by
    :meth:`close`.

    ``registry`` (anonymous), ``token`` (registry and token server; ``alice`` may push, anyone may pull)
    and ``htpasswd`` (Basic, ``alice`` only) each hold the :func:`~tests.support.images.load_samples` set
    (deterministic, so digests agree across them); the anonymous one also holds ``faults/big`` (one
    1 MiB uncompressed layer of random bytes) and a 5 MiB blob.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Env:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    @functools.cached_property
    def registry(self) -> Registry:
        registry: Registry = self._stack.enter_context(start_registry(self.workdir / "anonymous"))
        return registry

    @functools.cached_property
    def samples(self) -> dict[str, Pushed]:
        """The sample set in the anonymous registry (every run asks for it, so it is always there)."""
        with pusher_for(self.registry) as pusher:
            return load_samples(pusher)

    @functools.cached_property
    def big(self) -> PushedImage:
        """``faults/big``: one uncompressed layer of random bytes (for resumed downloads)."""
        with pusher_for(self.registry) as pusher:
            layer = {"data.bin": os.urandom(BIG_LAYER_SIZE)}
            return push_oci_image(pusher, "faults/big", "latest", layers=[layer], compression="none")

    @functools.cached_property
    def huge_blob(self) -> str:
        """Digest of a 5 MiB blob in ``faults/big`` (over every manifest cap)."""
        _ = self.big
        with pusher_for(self.registry) as pusher:
            return pusher.push_blob("faults/big", os.urandom(HUGE_BLOB_SIZE))

    @functools.cached_property
    def token(self) -> tuple[Registry, TokenServer]:
        workdir = self.workdir / "token"
        server = self._stack.enter_context(TokenServer(workdir / "token-server", users=USERS))
        registry = self._stack.enter_context(
            start_registry(workdir / "registry", auth="token", token_server=server)
        )
        with pusher_for(registry) as pusher:
            load_samples(pusher)
        return registry, server

    @functools.cached_property
    def htpasswd(self) -> Registry:
        registry = self._stack.enter_context(
            start_registry(self.workdir / "htpasswd", auth="htpasswd", users=USERS)
        )
        with pusher_for(registry) as pusher:
            load_samples(pusher)
        return registry

    def upstream(self, kind: Upstream) -> Registry:
        if kind == "token":
            return self.token[0]
        if kind == "htpasswd":
            return self.htpasswd
        return self.registry

    def image(self, repo: str = "samples/oci") -> PushedImage:
        found = self.samples[repo]
        assert isinstance(found, PushedImage), f"{repo} is not a single image"
        return found


# -- one run of one scenario ---------------------------------------------------------------------
class Run:
    """The state of one scenario run: its servers, scratch directory and template variables."""

    def __init__(self, env: Env, scenario: Scenario, workdir: Path) -> None:
        self.env = env
        self.scenario = scenario
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.upstream = env.upstream(scenario.upstream)
        self.token_server = env.token[1] if scenario.upstream == "token" else None
        self.servers: dict[str, FaultProxy] = {}
        self.proxy = self._start("proxy", FaultProxy.for_registry(self.upstream, tls=scenario.tls))
        self.layout = self.dir / "layout"
        self.cache = self.dir / "cache"
        image = env.image()
        self.vars: dict[str, str] = {
            "proxy": self.proxy.host,
            "proxy_url": self.proxy.url,
            "layout": str(self.layout),
            "cache": str(self.cache),
            "digest": image.digest,
            "config": image.config.digest,
            "config_size": str(len(image.config.data)),
            "layer": image.layers[0].digest,
        }

    def _start(self, name: str, server: FaultProxy) -> FaultProxy:
        self.servers[name] = server.start()
        return server

    def set(self, **values: object) -> None:
        """Add template variables."""
        self.vars.update({key: str(value) for key, value in values.items()})

    def fmt(self, text: str) -> str:
        return text.format_map(self.vars)

    def server(self, name: str) -> FaultProxy:
        """A server of this run by name: ``proxy``, ``recorder`` or ``token`` (started on first use)."""
        if name == "recorder":
            return self.recorder()
        if name == "token":
            return self.token_proxy()
        return self.servers[name]

    def recorder(self) -> RecordingServer:
        """The recording server on 127.0.0.2, serving blobs from the anonymous registry (same samples)."""
        if "recorder" not in self.servers:
            self._start("recorder", RecordingServer(upstream_url=self.env.registry.url))
            self.set(recorder=self.servers["recorder"].url)
        recorder = self.servers["recorder"]
        assert isinstance(recorder, RecordingServer)
        return recorder

    def token_proxy(self) -> FaultProxy:
        """A proxy in front of the token service; the registry's challenges are rewritten to name it.

        The rewrite is a rule on the main proxy matching every request, so a scenario that uses the
        token proxy adds no other rules to the main proxy.
        """
        if "token" not in self.servers:
            if self.token_server is None:
                raise ValueError("a token proxy needs upstream='token'")
            proxy = self._start("token", FaultProxy(self.token_server.url))
            realm = f"{proxy.url}/token"
            self.proxy.add(fp.challenge(f'Bearer realm="{realm}",service="{{service}}",scope="{{scope}}"'))
        return self.servers["token"]

    def records(self) -> dict[str, list[Recorded]]:
        return {name: server.requests for name, server in self.servers.items()}

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


# -- the table's vocabulary ----------------------------------------------------------------------
@dataclass(frozen=True)
class Expect:
    """What a scenario must produce.  Strings are templates (see the module docstring)."""

    code: int
    stderr: tuple[str, ...] = ()  # substrings stderr must contain
    stdout: tuple[str, ...] = ()  # substrings stdout must contain
    absent: tuple[str, ...] = ()  # substrings neither stream may contain
    max_seconds: float = 8.0
    min_seconds: float = 0.0
    max_requests: int | None = None  # at the proxy, the recording server and the token service
    min_requests: int = 1
    missing: tuple[str, ...] = ()  # paths that must not exist afterwards

    def describe(self) -> str:
        """``exit N`` and the first substring expected on stderr (template names shown as ``<name>``)."""
        text = f"exit {self.code}"
        if self.stderr:
            text += ": " + re.sub(r"\{(\w+)\}", r"<\1>", self.stderr[0])
        return text


@dataclass(frozen=True)
class Scenario:
    """One row of the table: faults, a command, and what must come of it."""

    name: str
    argv: tuple[str, ...]
    expect: Expect
    setup: Setup | None = None
    upstream: Upstream = "anonymous"
    tls: bool = False  # the proxy serves https (its own CA); the CLI gets --ca-file
    login: bool = False  # -u alice --password-stdin
    debug: bool = False
    retries: int = 2
    timeout: float = 5.0
    checks: tuple[Check, ...] = ()
    doc: str = ""

    def command(self, run: Run) -> tuple[list[str], str]:
        """The full argv (connection flags after the verb) and what to send on stdin."""
        words = [run.fmt(word) for word in self.argv]
        flags = ["--ca-file", str(run.proxy.ca_file)] if self.tls else ["--plain-http"]
        flags += [
            "--retries",
            str(self.retries),
            "--timeout",
            f"{self.timeout:g}",
            "--cache-dir",
            str(run.cache),
        ]
        stdin = ""
        if self.login:
            flags += ["--username", USERNAME, "--password-stdin"]
            stdin = PASSWORD + "\n"
        if self.debug:
            flags.append("--debug")
        return [words[0], *flags, *words[1:]], stdin


@dataclass
class Observation:
    """What one run of a scenario did."""

    name: str
    argv: list[str]
    code: int
    stdout: bytes
    stderr: str
    seconds: float
    requests: int
    records: dict[str, list[Recorded]] = field(default_factory=dict)
    token_requests: int = 0  # at the real token server (token upstream only)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def outcome(self) -> str:
        """``exit N`` and the error line (without its ``regpeek: error:`` prefix), for reports."""
        errors = [line for line in self.stderr.splitlines() if line.startswith(_ERROR_PREFIXES)]
        if not errors:
            return f"exit {self.code}"
        message = errors[-1].split(": ", 2)[-1]
        message = re.sub(r"\b127\.0\.0\.[12]:\d+/", "", message)  # the proxy's port changes every run
        message = re.sub(r"\b127\.0\.0\.[12]:\d+", "<host>", message)
        message = re.sub(r"(\w)@sha256:[0-9a-f]{64}\b", r"\1", message)  # "repo@digest": the repo says enough
        message = re.sub(r"\b(sha256:[0-9a-f]{8})[0-9a-f]{56}\b", r"\1…", message)
        return f"exit {self.code}: {message}"

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace") + "\n" + self.stderr

    def report(self) -> str:
        """Everything about the run, for a failing test or ``bench/faults.py -v``."""
        lines = [f"scenario {self.name}: {'passed' if self.passed else 'FAILED'}"]
        lines += [f"  - {failure}" for failure in self.failures]
        lines.append(f"  argv: {' '.join(self.argv)}")
        lines.append(f"  exit {self.code} after {self.seconds:.2f}s, {self.requests} requests")
        for name, records in self.records.items():
            lines += [f"  {name}: {record!r}" for record in records]
        lines.append("  stdout: " + self.stdout[:2000].decode("utf-8", "replace"))
        lines.append("  stderr: " + self.stderr[-4000:])
        return "\n".join(lines)


# -- running -------------------------------------------------------------------------------------
@contextlib.contextmanager
def fresh_cli_state() -> Iterator[None]:
    """Run the CLI as a fresh process would: no remembered secrets, the debug logger as it was."""
    logger = logging.getLogger("regpeek")
    handlers, level = list(logger.handlers), logger.level
    scrub._SECRETS.clear()  # a secret remembered by an earlier run would hide a leak in this one
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        scrub._SECRETS.clear()


def run_scenario(scenario: Scenario, env: Env, workdir: Path) -> Observation:
    """Set the scenario up in ``workdir``, run its command, check everything; never raises for a
    failed expectation (see :attr:`Observation.failures`)."""
    run = Run(env, scenario, workdir)
    try:
        if scenario.setup is not None:
            scenario.setup(run)
        argv, stdin = scenario.command(run)
        tokens_before = len(run.token_server.requests) if run.token_server else 0
        with fresh_cli_state():
            started = time.monotonic()
            result = run_cli(*argv, stdin=stdin)
            seconds = time.monotonic() - started
        records = run.records()
        token_requests = len(run.token_server.requests) - tokens_before if run.token_server else 0
    finally:
        run.stop()
    counted = sum(len(r) for r in records.values())
    if "token" not in records:  # the token service's requests, when no proxy in front counted them
        counted += token_requests
    observation = Observation(
        name=scenario.name,
        argv=argv,
        code=result.code,
        stdout=result.stdout,
        stderr=result.stderr,
        seconds=seconds,
        requests=counted,
        records=records,
        token_requests=token_requests,
    )
    observation.failures = _evaluate(run, scenario, observation)
    return observation


def _evaluate(run: Run, scenario: Scenario, seen: Observation) -> list[str]:
    expect = scenario.expect
    failures: list[str] = []
    text = seen.text()
    if seen.code != expect.code:
        failures.append(f"exit {seen.code}, expected {expect.code}")
    for wanted in expect.stderr:
        if run.fmt(wanted) not in seen.stderr:
            failures.append(f"stderr lacks {run.fmt(wanted)!r}")
    for wanted in expect.stdout:
        if run.fmt(wanted) not in seen.stdout.decode("utf-8", "replace"):
            failures.append(f"stdout lacks {run.fmt(wanted)!r}")
    for unwanted in expect.absent:
        if run.fmt(unwanted) in text:
            failures.append(f"output contains {run.fmt(unwanted)!r}")
    if seen.seconds > expect.max_seconds:
        failures.append(f"took {seen.seconds:.2f}s, over {expect.max_seconds}s")
    if seen.seconds < expect.min_seconds:
        failures.append(f"took {seen.seconds:.2f}s, under {expect.min_seconds}s")
    if expect.max_requests is not None and seen.requests > expect.max_requests:
        failures.append(f"{seen.requests} requests, over {expect.max_requests}")
    if seen.requests < expect.min_requests:
        failures.append(f"{seen.requests} requests, under {expect.min_requests}")
    failures += [f"{run.fmt(path)} exists" for path in expect.missing if Path(run.fmt(path)).exists()]
    failures += _always(run, scenario, seen)
    for check in scenario.checks:
        failures += check(run, seen)
    for name, server in run.servers.items():
        failures += [f"{name} server error (a test-support bug): {error!r}" for error in server.errors]
    return failures


def _always(run: Run, scenario: Scenario, seen: Observation) -> list[str]:
    """What holds for every run (see the module docstring)."""
    failures: list[str] = []
    if not scenario.debug:
        if "Traceback" in seen.stderr:
            failures.append("a traceback without --debug")
        if seen.code != 0:
            lines = seen.stderr.splitlines()
            errors = [line for line in lines if line.startswith("regpeek: error: ")]
            if len(errors) != 1 or lines[-1] != errors[0]:
                failures.append("a failure must end with exactly one 'regpeek: error:' line")
    if seen.code != 0 and seen.stdout:
        failures.append(f"stdout not empty after a failure: {seen.stdout[:200]!r}")
    text = seen.text()
    for secret in _secrets(seen.records):
        if secret in text:
            failures.append(f"a secret ({secret[:4]}...) appears in the output")
    failures += _layout_problems(run.layout, failed=seen.code != 0)
    failures += _cache_problems(run.cache)
    return failures


def _secrets(records: dict[str, list[Recorded]]) -> set[str]:
    """The password, and every credential or token seen in an ``Authorization`` header."""
    found = {PASSWORD, f"{USERNAME}:{PASSWORD}"}
    for record in (r for rs in records.values() for r in rs):
        value = record.header("Authorization")
        if not value:
            continue
        _, _, credential = value.partition(" ")
        found.add(credential.strip())
        with contextlib.suppress(ValueError):
            found.add(base64.b64decode(credential, validate=True).decode())
    return {secret for secret in found if len(secret) >= _SECRET_MIN_LENGTH}


def _hashes_to_name(path: Path) -> bool:
    algorithm = path.parent.name
    if algorithm not in ("sha256", "sha512"):
        return False
    return hashlib.new(algorithm, path.read_bytes()).hexdigest() == path.name


def _layout_problems(layout: Path, *, failed: bool) -> list[str]:
    if not layout.exists():
        return []
    files = [path for path in layout.rglob("*") if path.is_file()]
    if failed and files:
        return [f"the layout was left with files after a failure: {sorted(str(p) for p in files)[:5]}"]
    problems = [f"staging left behind: {path}" for path in layout.glob(".regpeek-staging-*")]
    problems += [f"partial file: {path}" for path in files if path.suffix in (".part", ".tmp")]
    blobs = layout / "blobs"
    problems += [
        f"layout blob does not hash to its name: {path}"
        for path in (blobs.rglob("*") if blobs.exists() else [])
        if path.is_file() and not _hashes_to_name(path)
    ]
    return problems


def _cache_problems(cache: Path) -> list[str]:
    if not cache.exists():
        return []
    problems = [f"cache temp file left: {path}" for path in cache.rglob("*.tmp")]
    blobs = cache / "blobs"
    problems += [
        f"cache entry does not hash to its name: {path}"
        for path in (blobs.rglob("*") if blobs.exists() else [])
        if path.is_file() and not path.name.startswith(".") and not _hashes_to_name(path)
    ]
    return problems


# -- building blocks for the table ---------------------------------------------------------------
def rule(
    fault: Callable[[Run], fp.Fault | Sequence[fp.Fault]],
    path: str = "",
    *,
    method: str | None = "GET",
    times: int | None = None,
    on: str = "proxy",
) -> Setup:
    """A setup adding one rule (``path`` is a template) to a server of the run (see :meth:`Run.server`)."""

    def setup(run: Run) -> None:
        run.server(on).add(fault(run), path=run.fmt(path), method=method, times=times)

    return setup


def steps(*setups: Setup) -> Setup:
    """Several setups, in order (rules match in the order they were added)."""

    def setup(run: Run) -> None:
        for step in setups:
            step(run)

    return setup


def blob(var: str) -> str:
    """A path regex for the blob whose digest is the template variable ``var``."""
    return "/blobs/{" + var + "}$"


def flipped(data: bytes, offset: int | None = None, xor: int = 0x01) -> str:
    """The digest of ``data`` after :func:`~tests.support.faultproxy.flip_byte` (default: the middle byte)."""
    edited = bytearray(data)
    edited[len(data) // 2 if offset is None else offset] ^= xor
    return "sha256:" + hashlib.sha256(edited).hexdigest()


def hexpart(digest: str) -> str:
    return digest.split(":", 1)[1]


def with_vars(**make: Callable[[Run], object]) -> Setup:
    """A setup adding template variables computed from the run."""

    def setup(run: Run) -> None:
        run.set(**{name: value(run) for name, value in make.items()})

    return setup


def big_vars(run: Run) -> None:
    """``{big_layer}``, ``{big_half}`` and ``{big_bad}`` (digest after a middle-byte flip)."""
    layer = run.env.big.layers[0]
    run.set(big_layer=layer.digest, big_half=layer.size // 2, big_bad=flipped(layer.data))


def child_of_index(run: Run) -> PushedImage:
    index = run.env.samples["samples/index"]
    assert isinstance(index, PushedIndex)
    return index.child("linux", "amd64")


# -- checks --------------------------------------------------------------------------------------
def resumed_with_range(var: str, offset_var: str) -> Check:
    """The blob ``{var}`` was asked for again with ``Range: bytes={offset}-`` and came back as 206."""

    def check(run: Run, seen: Observation) -> list[str]:
        path = re.compile(run.fmt(blob(var)))
        gets = [r for r in seen.records.get("proxy", []) if r.method == "GET" and path.search(r.path)]
        wanted = f"bytes={run.vars[offset_var]}-"
        if not any(r.header("Range") == wanted and r.status == 206 for r in gets):
            return [f"no 206 answer to Range {wanted}: {gets}"]
        return []

    return check


def in_layout(var: str) -> Check:
    """The layout holds blob ``{var}`` (its hash is checked for every blob anyway)."""

    def check(run: Run, seen: Observation) -> list[str]:
        algorithm, hexdigits = run.vars[var].split(":")
        path = run.layout / "blobs" / algorithm / hexdigits
        return [] if path.is_file() else [f"{path} missing from the layout"]

    return check


def recorder_got_no_authorization(run: Run, seen: Observation) -> list[str]:
    """Blobs were fetched from 127.0.0.2 without credentials, while the registry got some."""
    failures = []
    recorded = seen.records.get("recorder", [])
    if not any("/blobs/" in r.path for r in recorded):
        failures.append("no blob request reached the redirect target")
    leaked = [r for r in recorded if r.header("Authorization") is not None]
    if leaked:
        failures.append(f"Authorization reached the redirect target: {leaked}")
    if not any(r.header("Authorization") for r in seen.records.get("proxy", [])):
        failures.append("the registry never received credentials: the check proves nothing")
    return failures


def recorder_got_nothing(run: Run, seen: Observation) -> list[str]:
    recorded = seen.records.get("recorder", [])
    return [f"the refused redirect target was contacted: {recorded}"] if recorded else []


def token_requests(count: int) -> Check:
    """Exactly ``count`` requests reached the token server."""

    def check(run: Run, seen: Observation) -> list[str]:
        if seen.token_requests != count:
            return [f"{seen.token_requests} token requests, expected {count}"]
        return []

    return check


def proxy_gets(path: str, count: int) -> Check:
    """Exactly ``count`` GETs matching the regex template ``path`` reached the proxy."""

    def check(run: Run, seen: Observation) -> list[str]:
        pattern = re.compile(run.fmt(path))
        gets = [r for r in seen.records.get("proxy", []) if r.method == "GET" and pattern.search(r.path)]
        return [] if len(gets) == count else [f"{len(gets)} GETs of {path}, expected {count}"]

    return check


# -- the table -----------------------------------------------------------------------------------
class Cycle(fp.Fault):
    """Each matching request gets the next of ``faults``, round and round (mixed-failure storms).

    Leave HEAD out of its rule (``method="GET"``): body faults skip HEAD, which would break the turn.
    """

    def __init__(self, *faults: fp.Fault) -> None:
        self.faults = faults
        self.count = 0

    def describe(self) -> str:
        return "cycle(" + ", ".join(fault.describe() for fault in self.faults) + ")"

    def _current(self) -> fp.Fault:
        return self.faults[self.count % len(self.faults)]

    def applies(self, ex: fp.Exchange) -> bool:
        return self._current().applies(ex)

    def respond(self, ex: fp.Exchange) -> fp.Answer | None:
        return self._current().respond(ex)

    def edit(self, ex: fp.Exchange, status: int, headers: fp.HeaderList) -> tuple[int, fp.HeaderList]:
        return self._current().edit(ex, status, headers)

    def plan(self, ex: fp.Exchange) -> fp.BodyPlan | None:
        current = self._current()
        self.count += 1  # plan() is the last hook of every exchange, answered or forwarded
        return current.plan(ex)


INSPECT = ("inspect", "--json", "{proxy}/samples/oci")
CONFIG = ("config", "{proxy}/samples/oci")
PULL_BIG = ("pull", "{proxy}/faults/big", "{layout}")
PULL = ("pull", "{proxy}/samples/oci", "{layout}")
BAD_MANIFEST_DIGEST_ABSENT = ("{cache}/blobs/sha256/{digest_hex}", "{cache}/blobs/sha256/{bad_hex}")


def _corrupt_manifest_vars(run: Run) -> None:
    image = run.env.image()
    bad = flipped(image.manifest)
    run.set(bad=bad, bad_hex=hexpart(bad), digest_hex=hexpart(image.digest))


def _corrupt_config_vars(run: Run) -> None:
    image = run.env.image()
    bad = flipped(image.config.data)
    run.set(bad=bad, bad_hex=hexpart(bad), config_hex=hexpart(image.config.digest))


_TRANSIENT = [
    Scenario(
        "503-twice-then-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',), min_seconds=0.2, max_seconds=4, max_requests=5),
        rule(lambda run: fp.status(503), MANIFESTS, times=2),
        doc="two 503s on the manifest are retried after a backoff, then the inspect succeeds",
    ),
    Scenario(
        "502-504-then-ok",
        CONFIG,
        Expect(0, stdout=('"architecture":"amd64"',), max_seconds=4, max_requests=5),
        steps(
            rule(lambda run: fp.status(502), blob("config"), times=1),
            rule(lambda run: fp.status(504), blob("config"), times=1),
        ),
        doc="a 502 then a 504 on the config blob are retried",
    ),
    Scenario(
        "429-retry-after-then-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',), min_seconds=0.95, max_seconds=4, max_requests=4),
        rule(lambda run: fp.too_many_requests(1), MANIFESTS, times=1),
        doc="a 429 with Retry-After: 1 is waited out (at least 1 s) and retried",
    ),
    Scenario(
        "reset-before-body-then-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',), max_seconds=4, max_requests=4),
        rule(lambda run: fp.reset_after(0), MANIFESTS, times=1),
        doc="a connection reset right after the headers is retried",
    ),
    Scenario(
        "reset-mid-config-then-ok",
        CONFIG,
        Expect(0, stdout=('"architecture":"amd64"',), max_seconds=4, max_requests=4),
        rule(lambda run: fp.reset_after(100), blob("config"), times=1),
        doc="a reset in the middle of the config blob is retried",
    ),
    Scenario(
        "truncated-manifest-then-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',), max_seconds=4, max_requests=4),
        rule(lambda run: fp.truncate(100), MANIFESTS, times=1),
        doc="a body cut short under its original Content-Length is retried",
    ),
    Scenario(
        "stall-once-then-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',), min_seconds=1, max_seconds=4, max_requests=4),
        rule(lambda run: fp.stall_before_headers(30), MANIFESTS, times=1),
        timeout=1,
        doc="an answer that stalls past --timeout is abandoned and retried",
    ),
    Scenario(
        "503-forever",
        INSPECT,
        Expect(6, stderr=("HTTP 503", "after 3 attempts"), max_seconds=4, min_requests=3, max_requests=3),
        rule(lambda run: fp.status(503), MANIFESTS),
        doc="--retries 2: three GETs (a tag never seen: no HEAD first), then exit 6 naming the last status",
    ),
    Scenario(
        "429-forever",
        INSPECT,
        Expect(6, stderr=("HTTP 429", "after 2 attempts"), min_seconds=0.95, max_seconds=4, max_requests=3),
        rule(lambda run: fp.too_many_requests(1), MANIFESTS),
        retries=1,
        doc="Retry-After: 1 is honoured on each retry, then exit 6 naming HTTP 429",
    ),
    Scenario(
        "500-is-final",
        INSPECT,
        Expect(6, stderr=("HTTP 500",), absent=("attempts",), max_seconds=2, max_requests=2),
        rule(lambda run: fp.status(500), MANIFESTS),
        doc="500 is not transient (README: 429, 502, 503, 504 are): no retry",
    ),
    Scenario(
        "reset-forever",
        INSPECT,
        Expect(6, stderr=("connection failed",), max_seconds=4, min_requests=3, max_requests=3),
        rule(lambda run: fp.reset_after(0), MANIFESTS),
        doc="resets on every attempt: exit 6 after --retries (three GETs: a tag never seen has no HEAD first)",
    ),
    Scenario(
        "truncated-forever",
        INSPECT,
        Expect(6, stderr=("connection failed", "received 10 bytes"), max_seconds=4, max_requests=4),
        rule(lambda run: fp.truncate(10), MANIFESTS),
        doc="every body cut short (Content-Length kept): exit 6 after --retries",
    ),
    Scenario(
        "mixed-failures-share-one-budget",
        INSPECT,
        Expect(6, stderr=("manifest",), max_seconds=5, max_requests=4),
        rule(lambda run: Cycle(fp.status(503), fp.truncate(10)), MANIFESTS),
        doc="503 and truncated bodies in turn: at most 4 requests (no retry storm)",
    ),
    Scenario(
        "stall-forever",
        INSPECT,
        Expect(6, stderr=("timed out",), min_seconds=2, max_seconds=4, max_requests=3),
        rule(lambda run: fp.stall_before_headers(30), MANIFESTS),
        retries=1,
        timeout=1,
        doc="a registry that never answers: exit 6 after (retries + 1) x --timeout",
    ),
    Scenario(
        "stall-mid-body-forever",
        CONFIG,
        Expect(6, stderr=("timed out",), min_seconds=2, max_seconds=4),
        rule(lambda run: fp.stall_mid_body(30, 100), blob("config")),
        retries=1,
        timeout=1,
        doc="a body that stops flowing: exit 6 after (retries + 1) x --timeout",
    ),
]

_PULL = [
    Scenario(
        "pull-reset-mid-layer-resumes",
        PULL_BIG,
        Expect(0, stdout=("pulled",), max_seconds=4),
        steps(
            big_vars, rule(lambda run: fp.reset_after(int(run.vars["big_half"])), blob("big_layer"), times=1)
        ),
        checks=(resumed_with_range("big_layer", "big_half"), in_layout("big_layer")),
        doc="a reset half way through a layer: resumed with Range, the blob verifies",
    ),
    Scenario(
        "pull-truncated-layer-resumes",
        PULL_BIG,
        Expect(0, stdout=("pulled",), max_seconds=4),
        steps(big_vars, rule(lambda run: fp.truncate(int(run.vars["big_half"])), blob("big_layer"), times=1)),
        checks=(resumed_with_range("big_layer", "big_half"), in_layout("big_layer")),
        doc="a layer cut short (FIN, Content-Length kept): resumed with Range",
    ),
    Scenario(
        "pull-stalled-layer-resumes",
        PULL_BIG,
        Expect(0, stdout=("pulled",), min_seconds=1, max_seconds=4),
        steps(
            big_vars,
            rule(lambda run: fp.stall_mid_body(30, int(run.vars["big_half"])), blob("big_layer"), times=1),
        ),
        timeout=1,
        checks=(resumed_with_range("big_layer", "big_half"), in_layout("big_layer")),
        doc="a layer that stalls half way past --timeout: resumed with Range",
    ),
    Scenario(
        "pull-stall-forever",
        PULL_BIG,
        Expect(6, stderr=("connection kept failing", "{big_layer}"), min_seconds=2, max_seconds=4),
        steps(big_vars, rule(lambda run: fp.stall_mid_body(30, 1000, ranged=True), blob("big_layer"))),
        retries=1,
        timeout=1,
        checks=(proxy_gets(blob("big_layer"), 2),),
        doc="a layer that stops flowing on every attempt: exit 6 after (retries + 1) x --timeout",
    ),
    Scenario(
        "pull-reset-forever",
        PULL_BIG,
        Expect(6, stderr=("connection kept failing", "{big_layer}"), max_seconds=5, max_requests=8),
        steps(big_vars, rule(lambda run: fp.reset_after(1000, ranged=True), blob("big_layer"))),
        checks=(proxy_gets(blob("big_layer"), 3),),
        doc="every attempt at a layer resets: exit 6 after --retries, nothing written",
    ),
    Scenario(
        "pull-mixed-failures-share-one-budget",
        PULL_BIG,
        Expect(6, stderr=("HTTP 503", "{big_layer}"), max_seconds=5, max_requests=6),
        steps(
            big_vars,
            rule(lambda run: Cycle(fp.status(503), fp.reset_after(1000, ranged=True)), blob("big_layer")),
        ),
        checks=(proxy_gets(blob("big_layer"), 3),),
        doc="503s and resets in turn on a layer: 3 GETs in all with --retries 2",
    ),
    Scenario(
        "pull-corrupt-layer",
        PULL_BIG,
        Expect(5, stderr=("digest mismatch", "expected {big_layer}", "got {big_bad}"), max_seconds=4),
        steps(big_vars, rule(lambda run: fp.flip_byte(), blob("big_layer"))),
        doc="a flipped byte in a layer: exit 5 naming both digests, the layout untouched",
    ),
    Scenario(
        "pull-corrupt-after-resume",
        PULL_BIG,
        Expect(5, stderr=("digest mismatch", "expected {big_layer}", "got {big_bad}"), max_seconds=4),
        steps(
            big_vars,
            rule(lambda run: fp.reset_after(int(run.vars["big_half"])), blob("big_layer"), times=1),
            rule(lambda run: fp.flip_byte(0, ranged=True), blob("big_layer")),
            with_vars(big_bad=lambda run: flipped(run.env.big.layers[0].data, int(run.vars["big_half"]))),
        ),
        checks=(resumed_with_range("big_layer", "big_half"),),
        doc="the resumed part is corrupt: the whole blob fails verification",
    ),
    Scenario(
        "pull-oversized-layer",
        PULL_BIG,
        Expect(5, stderr=("size mismatch", "{big_layer}"), max_seconds=4),
        steps(
            big_vars, rule(lambda run: fp.rewrite_body(lambda data: data + b"\0" * 4096), blob("big_layer"))
        ),
        doc="a layer longer than its descriptor: refused at the first extra byte",
    ),
    Scenario(
        "pull-corrupt-config",
        PULL,
        Expect(
            5,
            stderr=("expected {config}", "got {bad}"),
            max_seconds=4,
            missing=("{cache}/blobs/sha256/{bad_hex}",),
        ),
        steps(_corrupt_config_vars, rule(lambda run: fp.flip_byte(), blob("config"))),
        doc="a flipped byte in the config during pull: exit 5, the layout untouched",
    ),
    Scenario(
        "pull-traversal-digest",
        PULL,
        Expect(5, stderr=("invalid digest",), absent=("Traceback",), max_seconds=4),
        rule(
            lambda run: fp.body(
                json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": OCI_MANIFEST,
                        "config": run.env.image().manifest_json["config"],
                        "layers": [{"mediaType": "x", "digest": "sha256:../../../../tmp/evil", "size": 1}],
                    }
                ).encode(),
                content_type=OCI_MANIFEST,
            ),
            MANIFESTS,
            method=None,
        ),
        doc="a layer digest made to climb out of the layout: refused before any path is built",
    ),
]

_CORRUPT = [
    Scenario(
        "corrupt-manifest-by-tag",
        INSPECT,
        Expect(
            5,
            stderr=("digest mismatch", "expected {digest}", "got {bad}"),
            missing=BAD_MANIFEST_DIGEST_ABSENT,
        ),
        steps(_corrupt_manifest_vars, rule(lambda run: fp.flip_byte(), MANIFESTS)),
        doc="a flipped byte in the manifest of a tag: caught by its Docker-Content-Digest",
    ),
    Scenario(
        "corrupt-manifest-by-digest",
        ("inspect", "{proxy}/samples/oci@{digest}"),
        Expect(
            5,
            stderr=("digest mismatch", "expected {digest}", "got {bad}"),
            missing=BAD_MANIFEST_DIGEST_ABSENT,
        ),
        steps(_corrupt_manifest_vars, rule(lambda run: fp.flip_byte(), MANIFESTS)),
        doc="a flipped byte in a manifest asked for by digest",
    ),
    Scenario(
        "corrupt-manifest-unparseable",
        ("inspect", "{proxy}/samples/oci@{digest}"),
        Expect(
            5,
            stderr=("digest mismatch", "expected {digest}", "got {bad}"),
            missing=BAD_MANIFEST_DIGEST_ABSENT,
        ),
        steps(
            _corrupt_manifest_vars,
            with_vars(bad=lambda run: flipped(run.env.image().manifest, 0)),
            with_vars(bad_hex=lambda run: hexpart(run.vars["bad"])),
            rule(lambda run: fp.flip_byte(0), MANIFESTS),
        ),
        doc="the corruption breaks the JSON ('{' becomes 'z'): still a digest mismatch, not just 'malformed'",
    ),
    Scenario(
        "corrupt-manifest-no-digest-header",
        ("manifest", "{proxy}/samples/oci@{digest}"),
        Expect(5, stderr=("expected {digest}", "got {bad}"), missing=BAD_MANIFEST_DIGEST_ABSENT),
        steps(
            _corrupt_manifest_vars,
            rule(lambda run: [fp.flip_byte(), fp.drop_header("Docker-Content-Digest")], MANIFESTS),
        ),
        doc="no Docker-Content-Digest: the computed digest is checked and reported",
    ),
    Scenario(
        "no-digest-header-reports-computed",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',)),
        rule(lambda run: fp.drop_header("Docker-Content-Digest"), MANIFESTS, method=None),
        doc="no Docker-Content-Digest anywhere: the digest shown is the computed one",
    ),
    Scenario(
        "no-digest-header-digest-command",
        ("digest", "{proxy}/samples/oci"),
        Expect(0, stdout=("{digest}",), max_requests=3),
        rule(lambda run: fp.drop_header("Docker-Content-Digest"), MANIFESTS, method=None),
        doc="`digest` without the header falls back to GET and hashes",
    ),
    Scenario(
        "wrong-digest-header",
        INSPECT,
        Expect(5, stderr=("Docker-Content-Digest", "expected {other}", "got {digest}")),
        steps(
            with_vars(other=lambda run: run.env.image("samples/docker").digest),
            rule(lambda run: fp.set_header("Docker-Content-Digest", run.vars["other"]), MANIFESTS),
        ),
        doc="a Docker-Content-Digest that does not name the bytes",
    ),
    Scenario(
        "invalid-digest-header",
        INSPECT,
        Expect(5, stderr=("invalid Docker-Content-Digest",)),
        rule(
            lambda run: fp.set_header("Docker-Content-Digest", "sha256:../../etc/passwd"),
            MANIFESTS,
            method=None,
        ),
        doc="a Docker-Content-Digest that is not a digest",
    ),
    Scenario(
        "corrupt-config",
        CONFIG,
        Expect(
            5,
            stderr=("digest mismatch", "expected {config}", "got {bad}"),
            missing=("{cache}/blobs/sha256/{config_hex}", "{cache}/blobs/sha256/{bad_hex}"),
        ),
        steps(_corrupt_config_vars, rule(lambda run: fp.flip_byte(), blob("config"))),
        doc="a flipped byte in the config blob: nothing printed, nothing cached",
    ),
    Scenario(
        "corrupt-config-inspect",
        INSPECT,
        Expect(
            5,
            stderr=("expected {config}", "got {bad}"),
            missing=("{cache}/blobs/sha256/{config_hex}", "{cache}/blobs/sha256/{bad_hex}"),
        ),
        steps(_corrupt_config_vars, rule(lambda run: fp.flip_byte(), blob("config"))),
    ),
    Scenario(
        "corrupt-index-child",
        ("inspect", "--platform", "linux/amd64", "{proxy}/samples/index"),
        Expect(5, stderr=("expected {child}", "got {bad}"), missing=("{cache}/blobs/sha256/{child_hex}",)),
        steps(
            with_vars(
                child=lambda run: child_of_index(run).digest,
                child_hex=lambda run: hexpart(child_of_index(run).digest),
                bad=lambda run: flipped(child_of_index(run).manifest),
            ),
            rule(lambda run: fp.flip_byte(), "/manifests/{child}$"),
        ),
        doc="the platform manifest chosen from an index is corrupt",
    ),
]


def _huge_manifest(run: Run) -> bytes:
    padding = " " * (HUGE_BLOB_SIZE - 100)
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"x": padding}}).encode()


_CONTENT = [
    Scenario(
        "oversized-manifest",
        INSPECT,
        Expect(5, stderr=("over the 4194304-byte limit",)),
        rule(lambda run: fp.body(_huge_manifest(run), content_type=OCI_MANIFEST), MANIFESTS),
        doc="a 5 MiB manifest with its Content-Length: refused before reading",
    ),
    Scenario(
        "oversized-manifest-chunked",
        ("manifest", "{proxy}/faults/big"),
        Expect(5, stderr=("over the 4194304-byte limit",), max_requests=4),
        steps(
            with_vars(huge=lambda run: run.env.huge_blob),
            rule(
                lambda run: fp.redirect(f"{run.proxy.url}/v2/faults/big/blobs/{run.vars['huge']}"), MANIFESTS
            ),
            rule(lambda run: fp.drop_header("Content-Length"), blob("huge")),
        ),
        doc="5 MiB chunked, no Content-Length: reading stops at the cap",
    ),
    Scenario(
        "oversized-config",
        CONFIG,
        Expect(5, stderr=("over the {config_size}-byte limit", "{config}")),
        rule(lambda run: fp.rewrite_body(lambda data: data + b" " * 4096), blob("config")),
        doc="a config longer than its descriptor: refused at the descriptor's size",
    ),
    Scenario(
        "ambiguous-manifest",
        INSPECT,
        Expect(5, stderr=("ambiguous",)),
        rule(
            lambda run: fp.body(
                json.dumps({"schemaVersion": 2, "manifests": [], "layers": [], "config": {}}).encode(),
                content_type=OCI_MANIFEST,
            ),
            MANIFESTS,
            method=None,
        ),
        doc="both manifests and layers/config (CVE-2021-41190)",
    ),
    Scenario(
        "malformed-manifest",
        INSPECT,
        Expect(5, stderr=("not valid JSON",)),
        rule(
            lambda run: fp.body(b'{"schemaVersion": 2, "layers": [', content_type=OCI_MANIFEST),
            MANIFESTS,
            method=None,
        ),
    ),
    Scenario(
        "deeply-nested-manifest",
        INSPECT,
        Expect(5, stderr=("not valid JSON",)),
        rule(lambda run: fp.body(b"[" * 100_000, content_type=OCI_MANIFEST), MANIFESTS, method=None),
        doc="100 000 nested arrays: no RecursionError traceback",
    ),
    Scenario(
        "manifest-not-an-object",
        INSPECT,
        Expect(5, stderr=("not a JSON object",)),
        rule(lambda run: fp.body(b"[]", content_type="application/json"), MANIFESTS, method=None),
    ),
    Scenario(
        "manifest-not-utf8",
        INSPECT,
        Expect(5, stderr=("not valid JSON",)),
        rule(lambda run: fp.body(b"\xff\xfe{\x00}", content_type=OCI_MANIFEST), MANIFESTS, method=None),
    ),
    Scenario(
        "manifest-wrong-field-types",
        INSPECT,
        Expect(5, stderr=("layers must be a list",)),
        rule(
            lambda run: fp.body(
                json.dumps(
                    {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": [], "layers": {}}
                ).encode(),
                content_type=OCI_MANIFEST,
            ),
            MANIFESTS,
            method=None,
        ),
    ),
    Scenario(
        "mistyped-manifest",
        INSPECT,
        Expect(5, stderr=("declares", "served as"), missing=("{cache}/blobs/sha256/{digest_hex}",)),
        steps(
            with_vars(digest_hex=lambda run: hexpart(run.vars["digest"])),
            rule(lambda run: fp.content_type(OCI_INDEX), MANIFESTS, method=None),
        ),
        doc="an image manifest served as an index",
    ),
    Scenario(
        "content-type-text-html-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',)),
        rule(lambda run: fp.content_type("text/html"), "", method=None),
        doc="a wrong but harmless Content-Type: classified by the body's mediaType",
    ),
    Scenario(
        "content-type-octet-stream-no-media-type-ok",
        ("inspect", "--json", "{proxy}/samples/oci-nomediatype"),
        Expect(0, stdout=('"media_type": "application/vnd.oci.image.manifest.v1+json"',)),
        rule(lambda run: fp.content_type("application/octet-stream"), "", method=None),
        doc="no mediaType and a useless Content-Type: classified by shape",
    ),
    Scenario(
        "tags-malformed",
        ("tags", "{proxy}/samples/oci"),
        Expect(5, stderr=("not a list of strings",)),
        rule(lambda run: fp.body(b'{"tags": "latest"}'), "/tags/list"),
    ),
]


def _challenge(template: str | list[str], name: str, doc: str) -> Scenario:
    return Scenario(
        f"challenge-{name}",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',)),
        rule(lambda run: fp.challenge(template), "", method=None),
        upstream="token",
        login=True,
        doc=doc,
    )


_REDIRECTED: tuple[tuple[Upstream, str], ...] = (("token", "Bearer"), ("htpasswd", "Basic"))

_AUTH = [
    Scenario(
        f"redirect-blob-{kind}-{verb}",
        argv,
        Expect(0),
        rule(lambda run: fp.redirect(run.recorder().url, append_path=True), "/blobs/"),
        upstream=kind,
        login=True,
        checks=(recorder_got_no_authorization,),
        doc=f"blobs redirected to 127.0.0.2: no {header} header goes there",
    )
    for kind, header in _REDIRECTED
    for verb, argv in (("pull", PULL), ("config", CONFIG))
] + [
    Scenario(
        "redirect-https-to-http",
        INSPECT,
        Expect(6, stderr=("refused a redirect from https to http",), max_requests=2),
        rule(lambda run: fp.redirect(run.recorder().url, append_path=True), MANIFESTS, method=None),
        tls=True,
        checks=(recorder_got_nothing,),
    ),
    Scenario(
        "redirect-to-file-url",
        INSPECT,
        Expect(6, stderr=("refused a redirect",), max_requests=2),
        rule(lambda run: fp.redirect("file:///etc/passwd"), MANIFESTS, method=None),
    ),
    Scenario(
        "redirect-loop",
        INSPECT,
        Expect(6, stderr=("too many redirects",), min_requests=11, max_requests=11),
        rule(lambda run: fp.redirect_loop(), MANIFESTS, method=None),
        doc="endless redirects: 10 followed, the 11th refused, nothing retried",
    ),
    Scenario(
        "ten-redirects-ok",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',)),
        rule(lambda run: fp.redirect_loop(10), blob("config"), method=None),
        doc="exactly 10 redirects are followed",
    ),
    Scenario(
        "endless-401-token",
        INSPECT,
        Expect(4, stderr=("HTTP 401",), max_requests=3),
        rule(lambda run: fp.unauthorized_forever(), MANIFESTS, method=None),
        upstream="token",
        login=True,
        checks=(token_requests(1),),
        doc="401 even with a fresh token: one token request, exit 4",
    ),
    Scenario(
        "endless-401-after-cached-token",
        CONFIG,
        Expect(4, stderr=("HTTP 401",), max_requests=8),
        rule(lambda run: fp.unauthorized_forever(), blob("config"), method=None),
        upstream="token",
        login=True,
        checks=(token_requests(2), proxy_gets(blob("config"), 2)),
        doc="a cached token refused: refreshed once, then exit 4",
    ),
    Scenario(
        "endless-401-anonymous",
        INSPECT,
        Expect(4, stderr=("HTTP 401",), max_requests=3),
        rule(lambda run: fp.unauthorized_forever(), MANIFESTS, method=None),
        doc="an anonymous registry turned hostile: the proxy's own token realm, then exit 4",
    ),
    Scenario(
        "endless-401-basic",
        INSPECT,
        Expect(4, stderr=("HTTP 401",), max_requests=2),
        rule(lambda run: fp.unauthorized_forever(), MANIFESTS, method=None),
        upstream="htpasswd",
        login=True,
        doc="Basic credentials refused although right: one resend, exit 4",
    ),
    Scenario(
        "token-service-503-once",
        INSPECT,
        Expect(0, stdout=('"digest": "{digest}"',), max_seconds=4),
        rule(lambda run: fp.status(503), "/token", times=1, on="token"),
        upstream="token",
        login=True,
        doc="the token service fails once with 503: retried like any transient failure",
    ),
    Scenario(
        "token-service-503-forever",
        INSPECT,
        Expect(6, stderr=("token service", "HTTP 503", "after 3 attempts"), max_seconds=4, max_requests=7),
        rule(lambda run: fp.status(503), "/token", on="token"),
        upstream="token",
        login=True,
        checks=(
            proxy_gets(MANIFESTS, 1),
        ),  # the tag's one GET, answered 401; retries go to the token service
        doc="a token service that stays busy: exit 6 after --retries, naming the status",
    ),
    Scenario(
        "token-service-oversized",
        INSPECT,
        Expect(5, stderr=("token response over",)),
        rule(lambda run: fp.body(b'{"token": "' + b"a" * (2 << 20) + b'"}'), "/token", on="token"),
        upstream="token",
        login=True,
    ),
    Scenario(
        "token-service-not-json",
        INSPECT,
        Expect(4, stderr=("not JSON",)),
        rule(lambda run: fp.body(b"<html>busy</html>", content_type="text/html"), "/token", on="token"),
        upstream="token",
        login=True,
        doc="a token answer that is not JSON: an auth failure (exit 4), no traceback",
    ),
    Scenario(
        "debug-no-secrets-token",
        CONFIG,
        Expect(5, stderr=("expected {config}", "Traceback", "regpeek: debug: GET")),
        rule(lambda run: fp.flip_byte(), blob("config")),
        upstream="token",
        login=True,
        debug=True,
        doc="--debug logs and traceback: no password, no Bearer token",
    ),
    Scenario(
        "debug-no-secrets-basic",
        CONFIG,
        Expect(5, stderr=("expected {config}", "Traceback", "regpeek: debug: GET")),
        rule(lambda run: fp.flip_byte(), blob("config")),
        upstream="htpasswd",
        login=True,
        debug=True,
        doc="--debug logs and traceback: no password, no Basic credentials",
    ),
    Scenario(
        "debug-no-secrets-pull",
        PULL,
        Expect(0, stderr=("regpeek: debug: GET",), stdout=("pulled",)),
        upstream="token",
        login=True,
        debug=True,
    ),
    _challenge(
        'Bearer scope="{scope}",service="{service}",realm="{realm}"',
        "reordered",
        "parameters in another order",
    ),
    _challenge(
        'BEARER  realm = "{realm}" , service="{service}",scope="{scope}"',
        "spaces-uppercase",
        "upper-case scheme, spaces around '=' and ','",
    ),
    _challenge("Bearer realm={realm},service={service},scope={scope}", "unquoted", "unquoted values"),
    _challenge(
        'Bearer realm="{realm}",service="{service}",scope="{scope}",error="insufficient_scope",'
        'note="a, \\"quoted\\" \\\\ value"',
        "error-and-escapes",
        "error= and a quoted string with commas and escapes",
    ),
    _challenge(
        'Basic realm="fallback", Bearer realm="{realm}",service="{service}",scope="repository:samples/other:pull {scope}"',
        "basic-then-bearer-two-scopes",
        "Basic before Bearer in one header, two scopes",
    ),
    _challenge(
        ["Negotiate abc==", 'Bearer realm="{realm}",service="{service}",scope="{scope}"'],
        "two-headers",
        "two WWW-Authenticate headers",
    ),
    _challenge(
        'Bearer realm="{realm}?x=1",service="{service}"',
        "realm-query-no-scope",
        "a realm with a query string, and no scope",
    ),
]

SCENARIOS: list[Scenario] = [*_TRANSIENT, *_PULL, *_CORRUPT, *_CONTENT, *_AUTH]


def by_name(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(name)


def _unique_names() -> None:
    seen: set[str] = set()
    for scenario in SCENARIOS:
        if scenario.name in seen:
            raise ValueError(f"two scenarios named {scenario.name}")
        seen.add(scenario.name)


_unique_names()
