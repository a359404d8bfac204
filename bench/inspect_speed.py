"""Benchmark: inspecting images with regpeek against skopeo through 25 ms of latency (issue 13,
targets 1-3), over TLS and over plain HTTP.

For each transport (``--modes tls plain``) it starts a CNCF distribution registry with token auth and
a token server, puts a TCP proxy that delays each direction by 25 ms in front of *both* (the token
realm the registry names is the delayed one), pushes 20 repositories, and measures, alternating the
tools round by round after one warm-up run of each:

1. the first inspect of a multi-arch tag on a fresh machine (a new process, an empty ``HOME`` and an
   empty cache directory) vs ``skopeo inspect --no-tags`` (also with an empty ``HOME``);
2. the same inspect repeated with the cache of an earlier run (tag unchanged) vs skopeo;
3. 200 distinct references (tags and digests over the 20 repositories: no duplicates, each run with
   an empty cache) in one ``regpeek inspect --from-file`` vs a loop of ``skopeo inspect --no-tags``,
   every output checked;

with ``--dxf`` also 4. the same 200 with the Python API (``regpeek.batch.inspect_many``) vs python-dxf
(TLS only: python-dxf wants an https token realm). Both tools verify TLS the same way: regpeek with
``--ca-file``, skopeo with ``--cert-dir`` holding the same CA (plain HTTP: ``--plain-http`` and
``--tls-verify=false``). Every row is the median of its rounds; the registry's access log and the
token server count each tool's requests. Run: ``.venv/bin/python bench/inspect_speed.py [--rounds 5]
[--loop-rounds 3] [--modes tls plain] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from common import REGPEEK, machine, median, start_registry
from latency import LatencyProxy
from tests.support.faultproxy import FaultProxy
from tests.support.images import push_index, push_oci_image
from tests.support.push import Pusher
from tests.support.registry import Registry
from tests.support.tokenserver import TokenServer

REPOS = 20
SINGLES = 4  # single-platform tags per repository: with the index, its digest and 3 children, 10 refs each


def run(command: list[str], env: dict[str, str]) -> bytes:
    done = subprocess.run(command, capture_output=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode()[-800:]}")
    return done.stdout


def load(registry: Registry, verify: str | bool) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Push the images; return 200 distinct references (relative to the registry host), the digest
    ``inspect`` must print for each (linux/amd64 for an index), and each repository's index digest."""
    expected: dict[str, str] = {}
    indexes: dict[str, str] = {}
    with Pusher(registry.url, verify=verify, username="bench", password="bench") as pusher:
        for n in range(REPOS):
            repo = f"bench/r{n}"
            index = push_index(pusher, repo, "multi", "oci")
            indexes[repo] = index.digest
            amd64 = index.child("linux", "amd64")
            expected[f"{repo}:multi"] = expected[f"{repo}@{index.digest}"] = amd64.digest
            for s in range(SINGLES):
                single = push_oci_image(pusher, repo, f"s{s}", env=[f"N={n}", f"S={s}"])
                expected[f"{repo}:s{s}"] = single.digest
                if s == 0:
                    expected[f"{repo}@{single.digest}"] = single.digest
            for child in index.children[:3]:
                expected[f"{repo}@{child.digest}"] = child.digest
    refs = list(expected)
    assert len(refs) == len(set(refs)) == REPOS * 10, len(refs)
    return refs, expected, indexes


class Counter:
    """Requests at the registry and at the token server during one action."""

    def __init__(self, registry: Registry, tokens: TokenServer) -> None:
        self.registry, self.tokens = registry, tokens

    def measure(self, action: Callable[[], object]) -> tuple[float, int, int, float]:
        """Wall seconds, registry requests, token requests, and the CPU seconds (user + system) of
        the processes the action ran (or of this process, for the in-process API rows)."""
        self.registry.mark()
        self.tokens.clear()
        before = _cpu()
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        return seconds, len(self.registry.requests()), len(self.tokens.requests), _cpu() - before


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime


def dxf_inspect_all(host: str, refs: list[str], ca_file: str) -> None:
    dxf: Any = importlib.import_module("dxf")  # optional: pip install python-dxf
    clients: dict[str, Any] = {}
    for ref in refs:
        repo, _, rest = ref.partition("@") if "@" in ref else ref.partition(":")
        client = clients.get(repo)
        if client is None:
            client = clients[repo] = dxf.DXF(
                host, repo, lambda d, r: d.authenticate(response=r), tlsverify=ca_file
            )
        manifest = json.loads(client.get_manifest_and_response(rest)[0])
        if "manifests" in manifest:
            amd64 = next(
                m for m in manifest["manifests"] if m.get("platform", {}).get("architecture") == "amd64"
            )
            manifest = json.loads(client.get_manifest_and_response(amd64["digest"])[0])
        b"".join(client.pull_blob(manifest["config"]["digest"]))


def regpeek_inspect_all(host: str, refs: list[str], ca_file: str) -> None:
    import regpeek
    from regpeek.batch import inspect_many

    async def go() -> None:
        async with regpeek.AsyncClient(ca_file=ca_file, platform="linux/amd64") as client:
            async for outcome in inspect_many(client, [f"{host}/{ref}" for ref in refs]):
                if outcome.error is not None:
                    raise SystemExit(f"regpeek failed on {outcome.reference}: {outcome.error}")

    asyncio.run(go())


def check_lines(output: bytes, host: str, refs: list[str], expected: dict[str, str]) -> None:
    """``inspect --from-file`` printed one object per reference, in order, with the right digest."""
    lines = output.decode().splitlines()
    assert len(lines) == len(refs), (len(lines), len(refs))
    for ref, line in zip(refs, lines, strict=True):
        document = json.loads(line)
        assert document.get("digest") == expected[ref], (ref, document)


Samples = dict[str, dict[str, list[tuple[float, int, int, float]]]]


def bench_mode(mode: str, args: argparse.Namespace, workdir: Path, results: Samples) -> None:
    tls = mode == "tls"
    with TokenServer(workdir / "tokens", users={"bench": "bench"}) as tokens:
        front = FaultProxy(tokens.url, tls=True) if tls else None
        if front is not None:
            front.__enter__()
        try:
            upstream_port = front.port if front is not None else tokens.port
            with LatencyProxy(upstream_port, args.delay) as token_proxy:
                realm = SimpleNamespace(
                    realm=f"{'https' if tls else 'http'}://{token_proxy.host}/token",
                    service=tokens.service,
                    issuer=tokens.issuer,
                    cert_path=tokens.cert_path,
                )
                registry = start_registry(
                    workdir / "registry", auth="token", token_server=cast(Any, realm), tls=tls
                )
                try:
                    bench_registry(mode, args, workdir, results, registry, tokens, front)
                finally:
                    registry.stop()
        finally:
            if front is not None:
                front.__exit__(None, None, None)


def bench_registry(mode: str, args: argparse.Namespace, workdir: Path, results: Samples, registry: Registry,
                   tokens: TokenServer, front: FaultProxy | None) -> None:  # fmt: skip
    tls = front is not None
    cert_dir = workdir / "certs"
    cert_dir.mkdir()
    flags: list[str] = ["--plain-http"]
    skopeo_flags = ["--tls-verify=false"]
    verify: str | bool = False
    if tls:
        assert front is not None and registry.ca_file is not None
        bundle = workdir / "ca-bundle.pem"
        bundle.write_bytes(Path(str(registry.ca_file)).read_bytes() + Path(str(front.ca_file)).read_bytes())
        (cert_dir / "ca.crt").write_bytes(bundle.read_bytes())
        flags = ["--ca-file", str(bundle)]
        skopeo_flags = ["--cert-dir", str(cert_dir)]
        verify = str(bundle)
    refs, expected, indexes = load(registry, verify)
    counter = Counter(registry, tokens)
    with LatencyProxy(registry.port, args.delay) as proxy:
        host = proxy.host
        (workdir / "refs.txt").write_text("".join(f"{host}/{ref}\n" for ref in refs))
        multi = f"{host}/bench/r0:multi"
        home = workdir / "home"
        env = {k: v for k, v in os.environ.items() if k not in ("REGPEEK_CACHE_DIR", "REGISTRY_AUTH_FILE")}
        env.update(HOME=str(home), XDG_RUNTIME_DIR=str(home / "run"), XDG_CACHE_HOME=str(home / ".cache"))
        skopeo = ["skopeo", "inspect", "--no-tags", *skopeo_flags]
        inspect = [
            REGPEEK,
            "inspect",
            "--json",
            *flags,
        ]  # the platform: the host's (linux/amd64), as skopeo's
        warm = workdir / "warm-cache"
        fresh = workdir / "fresh"

        def fresh_home() -> None:
            shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(fresh, ignore_errors=True)
            (home / "run").mkdir(parents=True)

        def cold() -> None:
            out = run([*inspect, "--cache-dir", str(fresh), multi], env)
            assert json.loads(out)["digest"] == expected["bench/r0:multi"]

        def repeat() -> None:
            out = run([*inspect, "--cache-dir", str(warm), multi], env)
            assert json.loads(out)["digest"] == expected["bench/r0:multi"]

        def one_skopeo() -> None:
            out = run([*skopeo, f"docker://{multi}"], env)
            assert json.loads(out)["Digest"] == indexes["bench/r0"]  # skopeo names what the tag names

        def many() -> None:
            out = run([*inspect, "--cache-dir", str(fresh), "--from-file", str(workdir / "refs.txt")], env)
            check_lines(out, host, refs, expected)

        def skopeo_loop() -> None:
            for ref in refs:
                run([*skopeo, f"docker://{host}/{ref}"], env)

        singles: dict[str, Callable[[], object]] = {
            "regpeek cold": cold,
            "regpeek repeat": repeat,
            "skopeo": one_skopeo,
        }
        if args.dxf and tls:
            ca = verify if isinstance(verify, str) else ""
            singles["regpeek API"] = lambda: regpeek_inspect_all(host, refs, ca)
            singles["python-dxf"] = lambda: dxf_inspect_all(host, refs, ca)
        loops: dict[str, Callable[[], object]] = {"regpeek 200": many, "skopeo loop": skopeo_loop}
        fresh_home()
        for action in (cold, repeat, one_skopeo):  # warm-up (and the repeat's cache)
            fresh_home()
            action()
        for scenario, tools, rounds in (("one", singles, args.rounds), ("200", loops, args.loop_rounds)):
            for round_number in range(rounds):
                order = list(tools) if round_number % 2 == 0 else list(reversed(tools))
                for tool in order:
                    fresh_home()
                    sample = counter.measure(tools[tool])
                    results.setdefault(f"{mode} {scenario}", {}).setdefault(tool, []).append(sample)


def main() -> None:
    parser = argparse.ArgumentParser(description="regpeek inspect vs skopeo through 25 ms of latency")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop-rounds", type=int, default=3, help="rounds of the 200-reference rows")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds added each way")
    parser.add_argument("--modes", nargs="+", default=["tls", "plain"], choices=["tls", "plain"])
    parser.add_argument("--dxf", action="store_true", help="also the Python API against python-dxf (TLS)")
    parser.add_argument("--json", dest="json_out", help="also write the results to this file")
    args = parser.parse_args()
    results: Samples = {}
    for mode in args.modes:
        with tempfile.TemporaryDirectory(prefix=f"regpeek-bench-{mode}-") as work:
            bench_mode(mode, args, Path(work), results)
    report(results, args)


def summarize(results: Samples) -> dict[str, dict[str, dict[str, float]]]:
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for scenario, tools in results.items():
        for tool, samples in tools.items():
            summary.setdefault(scenario, {})[tool] = {
                "seconds": median([s for s, _, _, _ in samples]),
                "requests": median([float(r) for _, r, _, _ in samples]),
                "tokens": median([float(t) for _, _, t, _ in samples]),
                "cpu": median([c for _, _, _, c in samples]),
                "rounds": len(samples),
            }
    return summary


def report(results: Samples, args: argparse.Namespace) -> None:
    summary = summarize(results)
    load_average = os.getloadavg()[0]
    print(f"{args.delay * 1000:.0f} ms each way (registry and token service), {args.rounds} rounds "
          f"({args.loop_rounds} for 200 references), medians, {machine()}, load average {load_average:.1f}")  # fmt: skip
    print(
        f"{'scenario':<46} {'regpeek s':>9} {'skopeo s':>9} {'ratio':>7} {'CPU s':>13}  requests (tokens) regpeek vs skopeo"
    )
    rows = [
        ("1. first inspect, empty HOME and cache", "one", "regpeek cold", "skopeo"),
        ("2. repeated inspect, unchanged tag", "one", "regpeek repeat", "skopeo"),
        ("3. 200 references, one call vs a loop", "200", "regpeek 200", "skopeo loop"),
        ("4. 200 references, Python API vs python-dxf", "one", "regpeek API", "python-dxf"),
    ]
    for mode in args.modes:
        for title, scenario, ours, theirs in rows:
            found = summary.get(f"{mode} {scenario}", {})
            if ours not in found or theirs not in found:
                continue
            a, b = found[ours], found[theirs]
            cpu = f"{a['cpu']:.2f} vs {b['cpu']:.2f}"
            print(f"{mode:<5} {title:<40} {a['seconds']:>9.3f} {b['seconds']:>9.3f} {a['seconds'] / b['seconds']:>6.2f}x"
                  f" {cpu:>13}  {a['requests']:.0f} ({a['tokens']:.0f}) vs {b['requests']:.0f} ({b['tokens']:.0f})")  # fmt: skip
    if args.json_out:
        document = {
            "machine": machine(),
            "load_average": load_average,
            "delay": args.delay,
            "summary": summary,
        }
        Path(args.json_out).write_text(json.dumps(document, indent=1))


if __name__ == "__main__":
    main()
