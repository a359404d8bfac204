"""Run the ``regpeek`` command as the unprivileged user ``nobody`` (uid/gid 65534), from a root test run.

``setpriv`` drops to nobody; nobody may not be able to enter the checkout or the virtualenv (a fresh clone
in a 0700 temporary directory, pytest's own 0700 tmp dirs), so :class:`Nobody` copies regpeek and every
package it needs at run time (the closure of its requirements, from the installed metadata) into a
directory nobody can read, and works in a top directory nobody can pass through (0711) whose
subdirectories it hands to nobody.  Only root can do this: :data:`CAN_ACT_AS_NOBODY`.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import regpeek

NOBODY_UID = NOBODY_GID = 65534
SETPRIV = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_GID}", "--clear-groups"]
CAN_ACT_AS_NOBODY = os.geteuid() == 0 and shutil.which("setpriv") is not None
WHY_NOT = "needs root and setpriv to run regpeek as nobody (CI runs as root)"


def _requirement_name(requirement: str) -> str | None:
    """The distribution a ``Requires-Dist`` line needs unconditionally (None for an extra's)."""
    if ";" in requirement and "extra" in requirement.split(";", 1)[1]:
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    return match.group(0) if match else None


def runtime_distributions(root: str = "regpeek") -> set[str]:
    """The installed distributions ``root`` needs at run time (its requirements, transitively)."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement for another Python or platform
        seen.add(key)
        todo += [n for n in map(_requirement_name, distribution.requires or []) if n]
    return seen


def copy_runtime(lib: Path) -> None:
    """Copy regpeek and the top-level modules of its runtime distributions into ``lib``."""
    lib.mkdir(parents=True, exist_ok=True)
    wanted = runtime_distributions() - {"regpeek"}
    for top_level, owners in importlib.metadata.packages_distributions().items():
        if not any(re.sub(r"[-_.]+", "-", owner).lower() in wanted for owner in owners):
            continue
        for directory in map(Path, sys.path):
            package, module = directory / top_level, directory / f"{top_level}.py"
            if package.is_dir():
                shutil.copytree(package, lib / top_level, ignore=shutil.ignore_patterns("__pycache__"))
                break
            if module.is_file():
                shutil.copy2(module, lib / module.name)
                break
    shutil.copytree(
        Path(str(regpeek.__file__)).parent, lib / "regpeek", ignore=shutil.ignore_patterns("__pycache__")
    )
    # nobody cannot write the bytecode caches (pygments's hundreds of lexers are never imported)
    compileall.compile_dir(lib, quiet=1, workers=0, rx=re.compile(r"/pygments/lexers/"))
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


class Nobody:
    """A work area for nobody and a way to run ``python -m regpeek`` as nobody in it.

    ``top`` (0711, root's) holds ``lib`` (the copied packages) and the directories :meth:`directory`
    makes (nobody's own, 0700 unless told).  Remove it all with :meth:`close`.
    """

    def __init__(self) -> None:
        self.top = Path(tempfile.mkdtemp(prefix="regpeek-nobody-"))
        self.top.chmod(0o711)
        self.lib = self.top / "lib"
        copy_runtime(self.lib)
        self.home = self.directory("home")

    def directory(self, name: str, mode: int = 0o700) -> Path:
        """A new directory ``top/name`` owned by nobody."""
        path = self.top / name
        path.mkdir(parents=True)
        os.chown(path, NOBODY_UID, NOBODY_GID)
        path.chmod(mode)
        return path

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(self.lib),
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "REGPEEK_CACHE_DIR": str(self.home / "cache"),
        }
        env.update(extra or {})
        return env

    def command(self, *argv: str) -> list[str]:
        """The argv that runs ``regpeek *argv`` as nobody."""
        return [*SETPRIV, os.path.realpath(sys.executable), "-m", "regpeek", *argv]

    def regpeek(
        self, *argv: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*argv),
            capture_output=True,
            text=True,
            env=self.environment(env),
            cwd=self.home,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)

    def __enter__(self) -> Nobody:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


__all__ = ["CAN_ACT_AS_NOBODY", "NOBODY_GID", "NOBODY_UID", "SETPRIV", "WHY_NOT", "Nobody", "copy_runtime"]
