"""``make demo``: local registries, sample images of every manifest format, and regpeek reading them.

Starts the Debian ``docker-registry`` (CNCF distribution 2.8.2) on a free loopback port with schema1
pushes enabled, pushes the samples with plain HTTP calls (tests/support, not regpeek), then runs the
installed ``regpeek`` command on each, with a cache directory of its own (never the user's), and the
Python library's example scripts (``scripts/examples/``). A second, empty registry receives a mirror
of the multi-platform sample (``regpeek copy``), and an archive of it is written and read back. A
loopback registry needs no ``--plain-http``: regpeek finds that it does not speak TLS. ``--keep``
leaves the registries running until Ctrl-C (or SIGTERM) and prints the commands to try from another
terminal. Whatever stops it, the registries and their data are removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.images import load_samples  # noqa: E402
from tests.support.push import Pusher  # noqa: E402
from tests.support.registry import start_registry  # noqa: E402

REGPEEK = str(Path(sys.executable).parent / "regpeek")
ENV = dict(os.environ)  # REGPEEK_CACHE_DIR is set to the demo's own cache in main()


def run(*args: str, echo: bool = True) -> str:
    """Run regpeek, echoing the command line; return its stdout (raise on failure)."""
    if echo:
        print(f"\n$ regpeek {shlex.join(args)}", flush=True)
    done = subprocess.run([REGPEEK, *args], capture_output=True, text=True, check=False, env=ENV)
    sys.stderr.write(done.stderr)
    if done.returncode != 0 and not done.stdout:
        raise SystemExit(f"regpeek exited with {done.returncode}")
    return done.stdout


class _Stopped(KeyboardInterrupt):
    """SIGTERM: stop as Ctrl-C does, through the same cleanup."""


def _stop(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _path_hint() -> list[str]:
    venv = Path(sys.executable).parent.parent
    return [
        "regpeek is installed in the demo's virtualenv. To have it on your PATH:",
        f"  source {venv}/bin/activate          # this shell only",
        "  pipx install .                        # or: pip install --user .  (for your user, for good)",
    ]


def _tour(host: str, mirror: str, samples: Mapping[str, object], workdir: Path) -> None:
    """Every format, then the disk commands, a copy to the second registry (``mirror``) and to an
    archive, many images at once, and the library's example scripts."""
    print(f"\n# One line per sample, from: regpeek inspect --json {host}/REPO")
    for repo in sorted(samples):
        result = json.loads(run("inspect", "--json", f"{host}/{repo}", echo=False))
        kind = result["media_type"].rsplit("/", 1)[-1].removeprefix("vnd.")
        platform = f"{result['platform']['os']}/{result['platform']['architecture']}"
        print(f"  {repo:<24}{kind:<42}{platform}")

    print("\n# A multi-platform OCI index, resolved for linux/arm/v7")
    print(run("inspect", "--platform", "linux/arm/v7", f"{host}/samples/index"), end="")
    print("\n# A signed schema1 image: digest of the canonical JWS payload, config from history")
    print(run("inspect", f"{host}/samples/schema1"), end="")
    print(run("digest", f"{host}/samples/schema1"), end="")
    print("\n# The index digest, and the digest of one platform's manifest")
    print(run("digest", f"{host}/samples/list"), end="")
    print(run("digest", "--platform", "linux/arm64", f"{host}/samples/list"), end="")
    print(run("tags", f"{host}/samples/oci"), end="")
    print(run("inspect", "--format", "{platform.architecture} {digest}", f"{host}/samples/oci"), end="")

    print("\n# To disk: an OCI layout, then a root filesystem from it, offline")
    layout, rootfs = workdir / "layout", workdir / "rootfs"
    print(run("pull", "--platform", "linux/arm64", f"{host}/samples/index", str(layout)), end="")
    print(run("unpack", f"oci:{layout}:latest", str(rootfs)), end="")
    for path in sorted(rootfs.rglob("*")):
        kind = "->" + str(path.readlink()) if path.is_symlink() else ("/" if path.is_dir() else "")
        print(f"  {path.relative_to(rootfs)}{kind}")

    print("\n# A Singularity/Apptainer image, without Apptainer: `apptainer run demo.sif` on a cluster")
    sif = workdir / "demo.sif"
    print(run("sif", "--platform", "linux/arm64", f"{host}/samples/index", str(sif)), end="")
    listing = subprocess.run(["siftool", "list", str(sif)], capture_output=True, text=True, check=False)
    print(listing.stdout or listing.stderr, end="")

    print("\n# Mirror the multi-platform image into the second registry: one command, every platform")
    print(run("copy", f"{host}/samples/index", f"{mirror}/mirror/index"), end="")
    print(run("digest", f"{host}/samples/index"), end="")
    print(run("digest", f"{mirror}/mirror/index"), end="")
    print("\n# ...again: everything is there already, so only HEAD requests are sent")
    print(run("copy", f"{host}/samples/index", f"{mirror}/mirror/index"), end="")
    print("\n# ...and into an archive for an offline machine (skopeo's oci-archive: format)")
    archive = workdir / "index.tar"
    print(run("copy", f"{host}/samples/index", f"oci-archive:{archive}"), end="")
    print("\n".join(run("inspect", "--platform", "linux/arm/v7", f"oci-archive:{archive}").splitlines()[:5]))

    print("\n# Many images at once: JSON Lines in input order, errors included")
    lines = run("inspect", *(f"{host}/{repo}" for repo in sorted(samples)), f"{host}/samples/none")
    for line in lines.splitlines():
        item = json.loads(line)
        print(f"  {item['reference']}")
        print(f"    {item.get('digest') or 'error: ' + item['error']['message']}")

    print("\n# The Python library: every layer saved with image.layers[i].download(), then one")
    print("# layer streamed into tarfile.open(fileobj=..., mode='r|*') (scripts/examples/)")
    examples = ROOT / "scripts" / "examples"
    for script, args in (
        ("download_layers.py", [f"{host}/samples/oci-mixed", str(workdir / "layers")]),
        ("list_layer.py", [f"{host}/samples/oci-mixed", "1"]),
    ):
        print(f"\n$ python scripts/examples/{script} {shlex.join(args)}", flush=True)
        done = subprocess.run(
            [sys.executable, str(examples / script), *args],
            capture_output=True,
            text=True,
            check=False,
            env=ENV,
        )
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            raise SystemExit(f"{script} exited with {done.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the registry running until Ctrl-C")
    parser.add_argument(
        "--only-registry",
        action="store_true",
        help="skip the tour: start the registry with the samples and keep it running (implies --keep)",
    )
    options = parser.parse_args()
    keep = options.keep or options.only_registry
    signal.signal(signal.SIGTERM, _stop)
    if sys.stdout.isatty():  # regpeek's output is captured: lay it out for this terminal
        ENV["COLUMNS"] = str(shutil.get_terminal_size().columns)
    with tempfile.TemporaryDirectory(prefix="regpeek-demo-") as workdir:
        ENV["REGPEEK_CACHE_DIR"] = str(Path(workdir) / "cache")
        registry = start_registry(Path(workdir) / "one", schema1=True)
        mirror = start_registry(Path(workdir) / "two")
        try:
            host = registry.host
            print(f"registry: docker-registry on http://{host} (schema1 pushes enabled)")
            print(f"second registry, empty: http://{mirror.host}")
            print(f"regpeek's cache for the demo: {ENV['REGPEEK_CACHE_DIR']}")
            with Pusher(registry.url) as pusher:
                samples = load_samples(pusher, schema1=True)
            print(textwrap.fill("pushed with plain HTTP calls: " + ", ".join(sorted(samples)), width=78))

            if not options.only_registry:
                _tour(host, mirror.host, samples, Path(workdir))
            print()
            print("\n".join(_path_hint()))
            if keep:
                commands = [
                    f"regpeek inspect {host}/samples/list",
                    f"regpeek tree {host}/samples/index",
                    f"regpeek diff --platform-a linux/amd64 --platform-b linux/arm64 {host}/samples/index "
                    f"{host}/samples/index",
                    f"regpeek catalog {host}",
                    f"regpeek export {host}/samples/oci - | tar -tv",
                    f"regpeek copy --dry-run {host}/samples/list {mirror.host}/mirror/list",
                ]
                print(f"\nThe registries keep running at {host} and {mirror.host}. In another terminal, try:")
                print(f"  source {Path(sys.executable).parent}/activate")
                print(f"  export REGPEEK_CACHE_DIR={ENV['REGPEEK_CACHE_DIR']}")
                for command in commands:
                    print(f"  {command}")
                print("Press Ctrl-C here to stop them and remove their data.", flush=True)
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (_Stopped)
            pass
        finally:
            registry.stop()
            mirror.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
