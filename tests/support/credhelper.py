"""A fake Docker credential helper (``docker-credential-NAME``) implementing the whole protocol.

:func:`install_helper` writes an executable ``docker-credential-NAME`` into a directory (put it on
``PATH``). It keeps what it is given in ``NAME.store.json`` beside it and appends one line per call
to ``NAME.calls.log`` (the action and the server, never a secret):

- ``store``: reads ``{"ServerURL", "Username", "Secret"}`` on stdin and keeps it;
- ``get``: reads a server URL on stdin, prints ``{"ServerURL", "Username", "Secret"}``, or exits 1
  with ``credentials not found in native keychain`` (docker-credential-helpers' words);
- ``erase``: reads a server URL on stdin and forgets it (exit 1, "not found", when unknown);
- ``list``: prints ``{server: username}``.

Nothing here imports regpeek.
"""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SOURCE = """#!{python}
import json, sys
from pathlib import Path
here = Path(__file__).resolve().parent
store_path = here / "{name}.store.json"
store = json.loads(store_path.read_text()) if store_path.exists() else {{}}
action = sys.argv[1] if len(sys.argv) > 1 else ""
data = sys.stdin.read()
def log(server):
    with open(here / "{name}.calls.log", "a") as out:
        out.write(f"{{action}} {{server}}\\n")
def not_found():
    print("credentials not found in native keychain")
    sys.exit(1)
if action == "store":
    entry = json.loads(data)
    log(entry["ServerURL"])
    store[entry["ServerURL"]] = {{"Username": entry["Username"], "Secret": entry["Secret"]}}
    store_path.write_text(json.dumps(store))
elif action == "get":
    server = data.strip()
    log(server)
    if server not in store:
        not_found()
    print(json.dumps({{"ServerURL": server, **store[server]}}))
elif action == "erase":
    server = data.strip()
    log(server)
    if server not in store:
        not_found()
    del store[server]
    store_path.write_text(json.dumps(store))
elif action == "list":
    log("-")
    print(json.dumps({{server: entry["Username"] for server, entry in store.items()}}))
else:
    print(f"unknown action {{action!r}}", file=sys.stderr)
    sys.exit(2)
"""


@dataclass(frozen=True)
class FakeHelper:
    """An installed fake helper: its name, program, what it holds and what it was asked."""

    name: str
    program: Path

    @property
    def store_path(self) -> Path:
        return self.program.parent / f"{self.name}.store.json"

    def stored(self) -> dict[str, Any]:
        """``{server: {"Username", "Secret"}}`` as kept now."""
        return json.loads(self.store_path.read_text()) if self.store_path.exists() else {}

    def calls(self) -> list[str]:
        """``"store ghcr.io"``, ``"get ghcr.io"``... in order."""
        log = self.program.parent / f"{self.name}.calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def preload(self, server: str, username: str, secret: str) -> None:
        store = self.stored()
        store[server] = {"Username": username, "Secret": secret}
        self.store_path.write_text(json.dumps(store))


def install_helper(directory: Path, name: str = "fake") -> FakeHelper:
    """Write ``directory/docker-credential-NAME`` (run by this Python); ``directory`` must be on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / f"docker-credential-{name}"
    program.write_text(_SOURCE.format(python=sys.executable, name=name))
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return FakeHelper(name, program)
