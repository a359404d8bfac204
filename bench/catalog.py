"""Benchmark: a catalogue of 1,000 tags through 25 ms of latency, against a shell loop of skopeo inspect.

Pushes 20 repositories to a local registry, each with 5 images under 10 tags (1,000 tags, 100 images),
puts the TCP proxy of ``bench/latency.py`` in front of it (25 ms each way), and times:

1. ``regpeek catalog --db FILE REGISTRY`` from an empty database (every tag HEADed, every manifest and
   config read once);
2. the same again (incremental: the listings and one HEAD per tag);
3. a shell loop of ``skopeo inspect --tls-verify=false docker://REGISTRY/REPO:TAG`` over the same tags
   (``--skopeo-sample N`` runs it over N of them, evenly spread, and scales the time to 1,000).

Requests are counted at the registry. Run: ``.venv/bin/python bench/catalog.py``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import REGPEEK, machine, start_registry
from latency import LatencyProxy
from tests.support.images import push_oci_image
from tests.support.push import Pusher
from tests.support.registry import Registry

REPOS = 20
IMAGES = 5
TAGS_PER_IMAGE = 10


def push(registry: Registry) -> list[tuple[str, str]]:
    tags = []
    with Pusher(registry.url) as pusher:
        for repo in range(REPOS):
            name = f"bench/repo{repo:02d}"
            for image in range(IMAGES):
                pushed = push_oci_image(
                    pusher,
                    name,
                    f"{image}.0",
                    layers=[{"base": b"shared base\n"}, {f"app{image}": f"{repo}.{image}\n".encode()}],
                )
                tags.append((name, f"{image}.0"))
                for alias in range(1, TAGS_PER_IMAGE):
                    pusher.push_manifest(name, f"{image}.{alias}", pushed.manifest, pushed.media_type)
                    tags.append((name, f"{image}.{alias}"))
    return tags


def timed(registry: Registry, command: list[str] | str) -> tuple[float, int]:
    registry.mark()
    started = time.perf_counter()
    done = subprocess.run(command, shell=isinstance(command, str), capture_output=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {done.stderr.decode()[-800:]}")
    return seconds, len(registry.requests())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skopeo-sample", type=int, default=1000, help="tags for the skopeo loop (scaled)")
    parser.add_argument("--jobs", type=int, default=32, help="regpeek catalog --jobs (its default)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="regpeek-bench-catalog-"))
    try:
        with start_registry(work / "registry") as registry:
            tags = push(registry)
            with LatencyProxy(registry.port, delay=0.025) as proxy:
                db = work / "catalogue.sqlite"
                command = [REGPEEK, "catalog", "--plain-http", "--json", "--jobs", str(args.jobs), "--db", str(db),
                           proxy.host]  # fmt: skip
                first, first_requests = timed(registry, command)
                second, second_requests = timed(registry, command)
                step = max(1, len(tags) // max(1, args.skopeo_sample))
                sample = tags[::step][: args.skopeo_sample]
                loop = "\n".join(
                    f"skopeo inspect --tls-verify=false --no-tags docker://{proxy.host}/{repo}:{tag} >/dev/null || exit 1"
                    for repo, tag in sample
                )
                skopeo, skopeo_requests = timed(registry, loop)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    scale = len(tags) / len(sample)
    skopeo_all = skopeo * scale
    print(f"{len(tags)} tags ({REPOS} repositories, {REPOS * IMAGES} images), 25 ms each way, {machine()}")
    print(f"{'run':44} {'seconds':>9} {'requests':>9}")
    print(f"{'regpeek catalog --db, first run':44} {first:9.2f} {first_requests:9d}")
    print(f"{'regpeek catalog --db, second run':44} {second:9.2f} {second_requests:9d}")
    label = f"skopeo inspect loop ({len(sample)} tags" + (f", x{scale:.1f})" if scale != 1 else ")")
    print(f"{label:44} {skopeo_all:9.2f} {int(skopeo_requests * scale):9d}")
    print(
        f"first run vs skopeo loop: {skopeo_all / first:.1f}x faster; second run vs first: {first / second:.1f}x faster"
    )


if __name__ == "__main__":
    main()
