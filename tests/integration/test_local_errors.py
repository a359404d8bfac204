"""Local file problems are exit 7 with one line naming the user's path and the system's reason: paths
that do not exist, that are not directories, files that cannot be read, and a full disk (a file-size
limit on the process, which makes the kernel refuse writes past it with EFBIG, as a full disk refuses
them with ENOSPC). Nothing is left behind, and nothing is fetched before a path problem is found."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.api import registry_flags, run_cli
from tests.support.images import Pushed
from tests.support.registry import Registry


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def test_export_into_a_missing_directory(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    out = tmp_path / "missing" / "alpine.tar"
    registry.mark()
    done = run_cli("export", *registry_flags(registry), f"{registry.host}/samples/oci", str(out))
    assert done.code == 7
    assert _one_line(done.stderr) == f"regpeek: error: cannot write {out}: No such file or directory"
    assert registry.requests() == []  # found before any traffic


def test_pull_under_a_file(registry: Registry, samples: dict[str, Pushed], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    dest = tmp_path / "file" / "layout"
    done = run_cli("pull", *registry_flags(registry), "--quiet", f"{registry.host}/samples/oci", str(dest))
    assert done.code == 7
    assert _one_line(done.stderr) == f"regpeek: error: cannot write the image into {dest}: Not a directory"


def test_unpack_under_a_file(registry: Registry, samples: dict[str, Pushed], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    rootfs = tmp_path / "file" / "rootfs"
    done = run_cli(
        "unpack", *registry_flags(registry), "--quiet", f"{registry.host}/samples/oci", str(rootfs)
    )
    assert done.code == 7
    assert _one_line(done.stderr) == f"regpeek: error: cannot write {rootfs}: Not a directory"


def test_sif_into_a_missing_directory(registry: Registry, samples: dict[str, Pushed], tmp_path: Path) -> None:
    out = tmp_path / "missing" / "out.sif"
    registry.mark()
    done = run_cli("sif", *registry_flags(registry), "--quiet", f"{registry.host}/samples/oci", str(out))
    assert done.code == 7
    assert _one_line(done.stderr).startswith(f"regpeek: error: cannot write {out}: ")
    assert registry.requests() == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--authfile", "{missing}"], "cannot read auth file {missing}: No such file or directory",
                     id="authfile"),
        pytest.param(["--registries-conf", "{missing}"],
                     "cannot read registries.conf {missing}: No such file or directory", id="registries-conf"),
        pytest.param(["--from-file", "{missing}"], "cannot read {missing}: No such file or directory", id="from-file"),
    ],
)  # fmt: skip
def test_files_to_read_that_do_not_exist(
    argv: list[str], message: str, registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.json")
    registry.mark()
    refs = [] if argv[0] == "--from-file" else [f"{registry.host}/samples/oci"]
    done = run_cli("inspect", *registry_flags(registry), *(a.format(missing=missing) for a in argv), *refs)
    assert done.code == 7, done.stderr
    assert _one_line(done.stderr) == "regpeek: error: " + message.format(missing=missing)
    assert registry.requests() == []


def _limited(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _run_limited(argv: list[str], cwd: Path, limit: int = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "regpeek", *argv], cwd=cwd, capture_output=True, text=True, check=False,
        preexec_fn=lambda: _limited(limit),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("command", "message"),
    [
        pytest.param("pull", "cannot write the image into layout: File too large", id="pull"),
        pytest.param("export", "cannot download the layers into a temporary directory in {tmp}: File too large",
                     id="export-download"),
        pytest.param("unpack", "cannot download the layers into the cache at {cache}: File too large",
                     id="unpack-download"),
    ],
)  # fmt: skip
def test_a_full_disk_while_downloading(
    command: str, message: str, registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """A write the kernel refuses half-way: exit 7 naming the user's path (or where the layers were
    going), never a temporary file's name, and nothing left behind."""
    import tempfile

    work = tmp_path / "work"
    work.mkdir()
    cache = tmp_path / "cache"
    target = {"pull": "layout", "export": "image.tar", "unpack": "rootfs"}[command]
    caching = ["--cache-dir", str(cache)] if command == "unpack" else ["--no-cache"]
    done = _run_limited([command, "--plain-http", *caching, "--quiet", "--retries", "0",
                         f"{registry.host}/samples/oci", target], work)  # fmt: skip
    assert done.returncode == 7, done.stderr
    expected = message.format(tmp=tempfile.gettempdir(), cache=cache)
    assert _one_line(done.stderr) == f"regpeek: error: {expected}"
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("command", ["export", "unpack"])
def test_a_full_disk_while_writing_the_output(
    command: str, registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """From a local layout (nothing to download): the output itself meets the full disk."""
    layout = tmp_path / "layout"
    assert (
        run_cli(
            "pull", *registry_flags(registry), "--quiet", f"{registry.host}/samples/oci", str(layout)
        ).code
        == 0
    )
    work = tmp_path / "work"
    work.mkdir()
    target = {"export": "image.tar", "unpack": "rootfs"}[command]
    done = _run_limited([command, "--quiet", f"oci:{layout}", target], work, limit=4)  # the files hold more
    assert done.returncode == 7, done.stderr
    assert _one_line(done.stderr) == f"regpeek: error: cannot write {target}: File too large"
    assert list(work.iterdir()) == []


def test_a_pull_keeps_the_source_platform_fields(
    registry: Registry, samples: dict[str, Pushed], tmp_path: Path
) -> None:
    """index.json keeps the source index's platform object as it was (variant v8 for arm64), where it
    used to hold regpeek's normalised reading of it (no variant)."""
    done = run_cli("pull", *registry_flags(registry), "--quiet", "--platform", "linux/arm64",
                   f"{registry.host}/samples/index", str(tmp_path / "layout"))  # fmt: skip
    assert done.code == 0, done.stderr
    entry = json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"][0]
    assert entry["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    windows = run_cli("pull", *registry_flags(registry), "--quiet", "--platform", "windows/amd64",
                      "--ref-name", "win", f"{registry.host}/samples/index", str(tmp_path / "layout"))  # fmt: skip
    assert windows.code == 0, windows.stderr
    entries = json.loads((tmp_path / "layout" / "index.json").read_text())["manifests"]
    assert entries[1]["platform"] == {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.4010",
    }
