"""README promises that had no test: ``Warning: 299`` shown, a killed pull's staging removed by the next,
two pulls into one DEST serialised by its lock, and tag listing against the real registry.

(The per-registry concurrency limit is measured in tests/unit/test_batch_limits.py; backoff and
``Retry-After`` caps in tests/unit/test_auth.py and tests/integration/test_faults.py; ``cache prune
--max-size`` in tests/integration/test_layer_cache.py; progress and ``--quiet`` in
tests/integration/test_cli_output.py.)
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import regpeek
import regpeek.disk.layout
from regpeek.disk.files import exclusive_lock
from regpeek.pull import pull
from tests.integration.api import Api, client_options, registry_flags, run_cli
from tests.support import faultproxy as fp
from tests.support.faultproxy import FaultProxy
from tests.support.images import Pushed, PushedImage, push_oci_image
from tests.support.push import pusher_for
from tests.support.registry import Registry

WAIT = 30.0


# -- Warning: 299 ----------------------------------------------------------------------------------
def test_a_registry_warning_299_is_shown_once_and_others_are_not(
    registry: Registry, samples: dict[str, Pushed]
) -> None:
    image = samples["samples/oci"]
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(
            fp.set_header(
                "Warning", '299 - "this repository moves to v3 soon"', '199 - "a miscellaneous one"'
            ),
            path="/manifests/",
        )
        done = run_cli("digest", "--plain-http", "--retries", "0", f"{proxy.host}/samples/oci:latest")
        assert proxy.matching("/manifests/")
    assert (done.code, done.text) == (0, image.digest + "\n"), done.stderr
    assert done.stderr.splitlines() == ["regpeek: warning from registry: this repository moves to v3 soon"]


# -- a killed pull's staging area --------------------------------------------------------------------
def _staging(dest: Path) -> list[Path]:
    return sorted(dest.glob(".regpeek-staging-*"))


def test_the_staging_area_of_a_killed_pull_is_removed_by_the_next(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    image = samples["samples/oci-mixed"]
    assert isinstance(image, PushedImage)
    dest = tmp_path / "layout"
    big = max(image.layers, key=lambda layer: layer.size)
    with FaultProxy.for_registry(registry) as proxy:
        proxy.add(
            fp.stall_mid_body(60, after_bytes=big.size // 2), path=f"/blobs/{big.digest}$", method="GET"
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "regpeek", "pull", "--plain-http", "--no-cache", "--quiet",
             f"{proxy.host}/samples/oci-mixed", str(dest)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + WAIT
            while not any(r.stalling for r in proxy.matching(f"/blobs/{big.digest}$")):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "the stalled layer was never requested"
                time.sleep(0.01)
            process.send_signal(signal.SIGKILL)  # no chance to clean up
            process.wait(timeout=WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    [left] = _staging(dest)
    assert left.name.startswith(f".regpeek-staging-{process.pid}-")
    # a staging area of a live process (ours) must survive the next pull
    live = dest / f".regpeek-staging-{os.getpid()}-0000live"
    live.mkdir()
    (live / "partial").write_bytes(b"still being written")
    done = run_cli("pull", *registry_flags(registry), "--no-cache", "--quiet",
                   f"{registry.host}/samples/oci-mixed", str(dest))  # fmt: skip
    assert done.code == 0, done.stderr
    assert _staging(dest) == [live]
    assert (live / "partial").read_bytes() == b"still being written"
    [entry] = json.loads((dest / "index.json").read_text())["manifests"]
    assert entry["digest"] == image.digest


# -- two pulls into one DEST -------------------------------------------------------------------------
def test_two_pulls_into_one_dest_commit_one_after_the_other(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """Both pulls stage their blobs, then wait for the layout's lock (held here) to commit; released,
    both commit in turn and index.json keeps both names (no lost update)."""
    dest = tmp_path / "layout"
    dest.mkdir()
    images = {"a": samples["samples/oci"], "b": samples["samples/docker"]}
    arrived = {name: threading.Event() for name in images}
    original = regpeek.disk.layout.Layout._commit
    by_thread: dict[int, str] = {}

    def commit(self: regpeek.disk.layout.Layout, *args: Any) -> None:
        arrived[by_thread[threading.get_ident()]].set()
        original(self, *args)

    errors: list[BaseException] = []

    def run(name: str) -> None:
        by_thread[threading.get_ident()] = name
        try:
            with regpeek.Client(**client_options(registry)) as client:
                repo = "samples/oci" if name == "a" else "samples/docker"
                pull(client, f"{registry.host}/{repo}", dest, ref_name=name)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in images]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(regpeek.disk.layout.Layout, "_commit", commit)
        with exclusive_lock(dest / ".regpeek.lock"):
            for thread in threads:
                thread.start()
            for name, event in arrived.items():
                assert event.wait(WAIT), f"pull {name} never reached its commit"
            # while the lock is held neither commit can finish (a commit without the lock would)
            for thread in threads:
                thread.join(0.5)
                assert thread.is_alive(), "a pull committed while another process held the lock"
            assert not (dest / "index.json").exists()
        for thread in threads:
            thread.join(WAIT)
    assert not errors, errors
    entries = json.loads((dest / "index.json").read_text())["manifests"]
    assert sorted((e["annotations"]["org.opencontainers.image.ref.name"], e["digest"]) for e in entries) == [
        ("a", images["a"].digest),
        ("b", images["b"].digest),
    ]
    for name, image in images.items():
        done = run_cli("digest", f"oci:{dest}:{name}")
        assert done.text == image.digest + "\n", done.stderr
    assert not _staging(dest)


# -- tag pagination ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def many_tags(registry: Registry) -> list[str]:
    names = sorted([f"v{n:02d}" for n in range(23)] + ["latest"])
    with pusher_for(registry) as pusher:
        image = push_oci_image(pusher, "paged/app", "latest")
        for name in names:
            pusher.push_manifest("paged/app", name, image.manifest, image.media_type)
    return names


@pytest.mark.parametrize("page_size", [None, 5, 100])
def test_tags_against_the_real_registry(
    api: Api, registry: Registry, many_tags: list[str], page_size: int | None
) -> None:
    """distribution 2.8 (Debian's docker-registry) answers a tag list in one page whatever ``n`` asks
    (v3 pages it): regpeek asks with ``n`` when given, takes the one page, every tag once. Following
    ``Link`` pages is tested in tests/unit/test_listings.py (tags) and, against this registry, by the
    catalogue (tests/integration/test_scale.py::test_catalog_pagination), which it does page."""
    registry.mark()
    listing = api.call(registry, "list_tags", f"{registry.host}/paged/app", page_size=page_size)
    assert sorted(listing.names) == many_tags and len(listing.names) == len(many_tags)
    assert listing.pages == 1
    [request] = [r for r in registry.requests() if r.path.startswith("/v2/paged/app/tags/list")]
    assert request.status == 200
    assert parse_qs(urlsplit(request.path).query).get("n") == (
        None if page_size is None else [str(page_size)]
    )


def test_tags_cli_lists_every_page(registry: Registry, many_tags: list[str]) -> None:
    done = run_cli("tags", "--json", *registry_flags(registry), f"{registry.host}/paged/app")
    assert done.code == 0, done.stderr
    document = json.loads(done.stdout)
    assert sorted(document["tags"]) == many_tags and document["pages"] == 1
    done = run_cli("tags", *registry_flags(registry), f"{registry.host}/paged/app")
    assert sorted(done.text.splitlines()) == many_tags


# -- pull progress and --quiet -----------------------------------------------------------------------
def _pull_on_a_terminal(proxy: FaultProxy, dest: Path, *flags: str) -> tuple[int, bytes, bytes]:
    """``regpeek pull`` with stderr a pseudo-terminal (stdout a pipe): exit code, stdout, what the
    terminal received."""
    primary, replica = pty.openpty()
    drawn = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "regpeek", "pull", "--plain-http", "--no-cache", *flags,
             f"{proxy.host}/samples/oci-mixed", str(dest)],
            stdout=subprocess.PIPE, stderr=replica, timeout=WAIT, check=False,
            env={**os.environ, "COLUMNS": "200"},  # wide enough for the whole labels
        )  # fmt: skip
    finally:
        os.close(replica)
        reader.join(WAIT)
        os.close(primary)
    return done.returncode, done.stdout, bytes(drawn)


def test_pull_draws_progress_on_a_terminal_and_not_with_quiet(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    image = samples["samples/oci-mixed"]
    assert isinstance(image, PushedImage)
    big = max(image.layers, key=lambda layer: layer.size)
    with FaultProxy.for_registry(registry) as proxy:
        # a second's pause mid-layer, so the bars are drawn while the layer is in flight
        proxy.add(
            fp.stall_mid_body(1.0, after_bytes=big.size // 2), path=f"/blobs/{big.digest}$", method="GET"
        )
        code, out, drawn = _pull_on_a_terminal(proxy, tmp_path / "a")
        assert code == 0, drawn
        shown = drawn.decode("utf-8", "replace")
        assert f"pulling {proxy.host}/samples/oci-mixed" in shown
        assert big.digest.split(":")[1][:12] in shown  # the layer's own bar
        assert "iB" in shown  # sizes drawn (KiB/MiB)
        assert out.decode().startswith(f"pulled {proxy.host}/samples/oci-mixed:latest into ")
        assert len(out.splitlines()) == 1
        for flags in (["--quiet"], ["-q"], ["--json"]):
            dest = tmp_path / flags[0].strip("-")
            code, out, drawn = _pull_on_a_terminal(proxy, dest, *flags)
            assert code == 0, (flags, drawn)
            assert drawn == b"", (flags, drawn)  # nothing on the terminal
            if flags == ["--json"]:
                assert json.loads(out)["digest"] == image.digest
            else:
                assert out.decode().startswith(f"pulled {proxy.host}/samples/oci-mixed:latest into ")
