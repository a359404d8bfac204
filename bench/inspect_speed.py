"""Benchmark: inspecting images with regpeek against skopeo and python-dxf, through 25 ms of latency.

Starts a CNCF distribution registry with TLS and token auth, pushes 20 repositories (each a multi-platform OCI
index ``:multi`` and a single image ``:single``), and puts a TCP proxy in front of the registry that
delays each direction by 25 ms (token requests go to the token server directly). Then, alternating the
tools round by round, it measures:

1. one cold inspect of a multi-arch tag (new process, empty cache) vs ``skopeo inspect --no-tags``;
2. the same inspect with a warm regpeek cache vs skopeo;
3. 200 references (tags and digests over the 20 repositories) in one ``regpeek inspect --from-file``
   vs a shell-style loop of ``skopeo inspect --no-tags``;
4. the same 200 with the Python API (``regpeek.batch.inspect_many``) in one process vs python-dxf doing
   manifest (+ platform manifest) + config per image.

and counts the requests each tool made from the registry's access log. Run:
``.venv/bin/python bench/inspect_speed.py [--rounds 5]`` (python-dxf: ``.venv/bin/pip install python-dxf``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import json
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


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stderr.decode()[-500:]}")


def timed(registry: Registry, action: Callable[[], object]) -> tuple[float, int]:
    registry.mark()
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return seconds, len(registry.requests())


def load(registry: Registry, ca: str) -> list[str]:
    """Push the images; return the 200 references (relative to the registry host)."""
    refs: list[str] = []
    with Pusher(registry.url, verify=ca, username="bench", password="bench") as pusher:
        for n in range(REPOS):
            repo = f"bench/r{n}"
            index = push_index(pusher, repo, "multi", "oci")
            single = push_oci_image(pusher, repo, "single", env=[f"N={n}"])
            children = [child.digest for child in index.children[:3]]
            refs += [f"{repo}:multi", f"{repo}:single", f"{repo}@{index.digest}", f"{repo}@{single.digest}"]
            refs += [f"{repo}@{digest}" for digest in children]
            refs += [f"{repo}:multi", f"{repo}:single", f"{repo}@{index.digest}"]
    return refs


def loop(skopeo: list[str], host: str, refs: list[str]) -> None:
    """What a shell loop does: one skopeo process per reference."""
    for ref in refs:
        run([*skopeo, f"docker://{host}/{ref}"])


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
        async with regpeek.AsyncClient(ca_file=ca_file) as client:
            async for outcome in inspect_many(client, [f"{host}/{ref}" for ref in refs]):
                if outcome.error is not None:
                    raise SystemExit(f"regpeek failed on {outcome.reference}: {outcome.error}")

    asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description="regpeek inspect vs skopeo and python-dxf")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop-rounds", type=int, default=1, help="rounds of the 200-reference skopeo loop")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds added each way")
    args = parser.parse_args()
    results: dict[str, dict[str, list[tuple[float, int]]]] = {}

    def record(scenario: str, tool: str, sample: tuple[float, int]) -> None:
        results.setdefault(scenario, {}).setdefault(tool, []).append(sample)

    with tempfile.TemporaryDirectory(prefix="regpeek-bench-") as work:
        workdir = Path(work)
        with (
            TokenServer(workdir / "tokens", users={"bench": "bench"}) as tokens,
            FaultProxy(tokens.url, tls=True) as tls_tokens,  # python-dxf insists on an https token realm
        ):
            realm = SimpleNamespace(
                realm=f"{tls_tokens.url}/token",
                service=tokens.service,
                issuer=tokens.issuer,
                cert_path=tokens.cert_path,
            )
            registry = start_registry(
                workdir / "registry", auth="token", token_server=cast(Any, realm), tls=True
            )
            bundle = workdir / "ca-bundle.pem"
            bundle.write_bytes(
                Path(str(registry.ca_file)).read_bytes() + Path(str(tls_tokens.ca_file)).read_bytes()
            )
            ca = str(bundle)
            try:
                refs = load(registry, ca)
                with LatencyProxy(registry.port, args.delay) as proxy:
                    host = proxy.host
                    (workdir / "refs.txt").write_text("\n".join(f"{host}/{ref}" for ref in refs))
                    multi = f"{host}/bench/r0:multi"
                    skopeo = ["skopeo", "inspect", "--no-tags", "--tls-verify=false"]
                    warm = workdir / "warm-cache"
                    run([REGPEEK, "inspect", "--json", "--ca-file", ca, "--cache-dir", str(warm), multi])
                    for round_number in range(args.rounds):
                        cold = workdir / f"cold-{round_number}"
                        tools: dict[str, Callable[[], object]] = {
                            "regpeek cold": functools.partial(run, [REGPEEK, "inspect", "--json", "--ca-file", ca, "--cache-dir", str(cold), multi]),
                            "regpeek warm": lambda: run([REGPEEK, "inspect", "--json", "--ca-file", ca, "--cache-dir", str(warm), multi]),
                            "skopeo": lambda: run([*skopeo, f"docker://{multi}"]),
                            "regpeek API": lambda: regpeek_inspect_all(host, refs, ca),
                            "python-dxf": lambda: dxf_inspect_all(host, refs, ca),
                        }  # fmt: skip
                        order = list(tools) if round_number % 2 == 0 else list(reversed(tools))
                        for tool in order:
                            scenario = "api" if tool in ("regpeek API", "python-dxf") else "one"
                            record(scenario, tool, timed(registry, tools[tool]))
                            shutil.rmtree(cold, ignore_errors=True)
                    for round_number in range(args.loop_rounds):
                        batch_cache = workdir / f"batch-{round_number}"
                        loops: dict[str, Callable[[], object]] = {
                            "regpeek": functools.partial(run, [REGPEEK, "inspect", "--ca-file", ca, "--cache-dir", str(batch_cache), "--from-file", str(workdir / "refs.txt")]),
                            "skopeo loop": lambda: loop(skopeo, host, refs),
                        }  # fmt: skip
                        order = list(loops) if round_number % 2 == 0 else list(reversed(loops))
                        for tool in order:
                            record("200", tool, timed(registry, loops[tool]))
            finally:
                registry.stop()
    report(results, args)


def report(results: dict[str, dict[str, list[tuple[float, int]]]], args: argparse.Namespace) -> None:
    def med(scenario: str, tool: str) -> tuple[float, float]:
        samples = results[scenario][tool]
        return median([s for s, _ in samples]), median([float(r) for _, r in samples])

    print(
        f"{args.delay * 1000:.0f} ms each way, {args.rounds} rounds ({args.loop_rounds} for the loop), {machine()}"
    )
    print(f"{'scenario':<52} {'regpeek s':>10} {'peer s':>9} {'ratio':>7} {'requests':>14}")
    rows = [
        ("1. cold inspect of a multi-arch tag vs skopeo", "one", "regpeek cold", "skopeo"),
        ("2. warm-cache inspect vs skopeo", "one", "regpeek warm", "skopeo"),
        ("3. 200 references, one call vs skopeo loop", "200", "regpeek", "skopeo loop"),
        ("4. 200 references, Python API vs python-dxf", "api", "regpeek API", "python-dxf"),
    ]
    for title, scenario, ours, theirs in rows:
        ours_s, ours_r = med(scenario, ours)
        theirs_s, theirs_r = med(scenario, theirs)
        print(
            f"{title:<52} {ours_s:>10.3f} {theirs_s:>9.3f} {ours_s / theirs_s:>6.2f}x {ours_r:>6.0f} vs {theirs_r:<5.0f}"
        )


if __name__ == "__main__":
    main()
