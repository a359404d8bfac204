"""``make demo``: local registries, sample images of every manifest format, and regpeek reading them.

Starts the Debian ``docker-registry`` (CNCF distribution 2.8.2) on a free loopback port with schema1
pushes enabled, pushes the samples with plain HTTP calls (tests/support, not regpeek), then runs the
installed ``regpeek`` command on each. A second, empty registry receives a mirror of the multi-platform
sample (``regpeek copy``), and an archive of it is written and read back. ``--keep`` leaves the
registries running until Ctrl-C so you can try commands yourself.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.images import load_samples  # noqa: E402
from tests.support.push import Pusher  # noqa: E402
from tests.support.registry import start_registry  # noqa: E402

REGPEEK = str(Path(sys.executable).parent / "regpeek")


def run(*args: str, echo: bool = True) -> str:
    """Run regpeek, echoing the command line; return its stdout (raise on failure)."""
    if echo:
        print(f"\n$ regpeek {shlex.join(args)}", flush=True)
    done = subprocess.run([REGPEEK, *args], capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode != 0 and not done.stdout:
        raise SystemExit(f"regpeek exited with {done.returncode}")
    return done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the registry running until Ctrl-C")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regpeek-demo-") as workdir:
        registry = start_registry(Path(workdir) / "one", schema1=True)
        mirror = start_registry(Path(workdir) / "two")
        try:
            host = registry.host
            print(f"registry: docker-registry serve on http://{host} (schema1 pushes enabled)")
            print(f"second registry, empty: http://{mirror.host}")
            with Pusher(registry.url) as pusher:
                samples = load_samples(pusher, schema1=True)
            print("pushed with plain HTTP calls: " + ", ".join(sorted(samples)))

            print(f"\n# One line per sample, from: regpeek inspect --plain-http --json {host}/REPO")
            for repo in sorted(samples):
                result = json.loads(run("inspect", "--plain-http", "--json", f"{host}/{repo}", echo=False))
                print(
                    f"  {repo:<26} {result['media_type'].rsplit('/', 1)[-1]:<48} "
                    f"{result['platform']['os']}/{result['platform']['architecture']:<6} "
                    f"{len(result['layers'])} layers  {result['digest'][:19]}"
                )

            print("\n# A multi-platform OCI index, resolved for linux/arm/v7")
            print(
                run("inspect", "--plain-http", "--platform", "linux/arm/v7", f"{host}/samples/index"), end=""
            )
            print("\n# A signed schema1 image: digest of the canonical JWS payload, config from history")
            print(run("inspect", "--plain-http", f"{host}/samples/schema1"), end="")
            print(run("digest", "--plain-http", f"{host}/samples/schema1"), end="")
            print("\n# The index digest, and the digest of one platform's manifest")
            print(run("digest", "--plain-http", f"{host}/samples/list"), end="")
            print(run("digest", "--plain-http", "--platform", "linux/arm64", f"{host}/samples/list"), end="")
            print(run("tags", "--plain-http", f"{host}/samples/oci"), end="")

            print("\n# To disk: an OCI layout, then a root filesystem from it, offline")
            layout, rootfs = Path(workdir) / "layout", Path(workdir) / "rootfs"
            print(
                run(
                    "pull", "--plain-http", "--platform", "linux/arm64", f"{host}/samples/index", str(layout)
                ),
                end="",
            )
            print(run("unpack", f"oci:{layout}:latest", str(rootfs)), end="")
            for path in sorted(rootfs.rglob("*")):
                kind = "->" + str(path.readlink()) if path.is_symlink() else ("/" if path.is_dir() else "")
                print(f"  {path.relative_to(rootfs)}{kind}")

            print(
                "\n# A Singularity/Apptainer image, without Apptainer: `apptainer run demo.sif` on a cluster"
            )
            sif = Path(workdir) / "demo.sif"
            print(
                run("sif", "--plain-http", "--platform", "linux/arm64", f"{host}/samples/index", str(sif)),
                end="",
            )
            listing = subprocess.run(
                ["siftool", "list", str(sif)], capture_output=True, text=True, check=False
            )
            print(listing.stdout or listing.stderr, end="")

            print("\n# Mirror the multi-platform image into the second registry: one command, every platform")
            print(run("copy", "--plain-http", f"{host}/samples/index", f"{mirror.host}/mirror/index"), end="")
            print(run("digest", "--plain-http", f"{host}/samples/index"), end="")
            print(run("digest", "--plain-http", f"{mirror.host}/mirror/index"), end="")
            print("\n# ...again: everything is there already, so only HEAD requests are sent")
            print(run("copy", "--plain-http", f"{host}/samples/index", f"{mirror.host}/mirror/index"), end="")
            print("\n# ...and into an archive for an offline machine (skopeo's oci-archive: format)")
            archive = Path(workdir) / "index.tar"
            print(run("copy", "--plain-http", f"{host}/samples/index", f"oci-archive:{archive}"), end="")
            print(
                "\n".join(
                    run("inspect", "--platform", "linux/arm/v7", f"oci-archive:{archive}").splitlines()[:3]
                )
            )

            print("\n# Many images at once: JSON Lines in input order, errors included")
            lines = run(
                "inspect",
                "--plain-http",
                *(f"{host}/{repo}" for repo in sorted(samples)),
                f"{host}/samples/none",
            )
            for line in lines.splitlines():
                item = json.loads(line)
                print(f"  {item['reference']:<48} {item.get('digest') or item['error']['message'][:60]}")
            print("\n# The Python library: every layer saved with image.layers[i].download(), then one")
            print("# layer streamed into tarfile.open(fileobj=..., mode='r|*') (scripts/examples/)")
            examples = ROOT / "scripts" / "examples"
            for script, args in (
                ("download_layers.py", [f"{host}/samples/oci-mixed", str(Path(workdir) / "layers")]),
                ("list_layer.py", [f"{host}/samples/oci-mixed", "1"]),
            ):
                print(f"\n$ python scripts/examples/{script} --plain-http {shlex.join(args)}", flush=True)
                done = subprocess.run(
                    [sys.executable, str(examples / script), "--plain-http", *args],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                sys.stdout.write(done.stdout)
                sys.stderr.write(done.stderr)
                if done.returncode != 0:
                    raise SystemExit(f"{script} exited with {done.returncode}")
            if options.keep:
                print(f"\nregistries still running at {host} and {mirror.host}; try:")
                print(f"  regpeek inspect --plain-http {host}/samples/list")
                print(f"  regpeek copy --plain-http --dry-run {host}/samples/list {mirror.host}/mirror/list")
                print("press Ctrl-C to stop")
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            registry.stop()
            mirror.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
