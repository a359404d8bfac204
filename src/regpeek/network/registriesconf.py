"""Find and read containers-registries.conf(5) files; :mod:`regpeek.formats.registriesconf` interprets them.

Which files, as containers/image reads them:

1. the main file: ``$CONTAINERS_REGISTRIES_CONF`` when set; else ``$HOME/.config/containers/registries.conf``
   when it exists; else ``/etc/containers/registries.conf`` (a missing file is no error);
2. drop-ins, ``*.conf`` in name order: ``/etc/containers/registries.conf.d/`` then
   ``$HOME/.config/containers/registries.conf.d/``; when the per-user main file is the one used, only
   the per-user drop-in directory.

``--registries-conf FILE`` (``load(path=FILE)``) reads that file alone, which must exist.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regpeek.errors import LocalError
from regpeek.formats.registriesconf import RegistriesConf, RegistriesConfError, parse

__all__ = ["SYSTEM_DIR", "SYSTEM_FILE", "config_files", "load"]

SYSTEM_FILE = Path("/etc/containers/registries.conf")
SYSTEM_DIR = Path("/etc/containers/registries.conf.d")
_USER_FILE = Path(".config/containers/registries.conf")
_USER_DIR = Path(".config/containers/registries.conf.d")


def _drop_ins(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.name.endswith(".conf") and p.is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as error:
        raise LocalError(f"cannot read {directory}: {error.strerror}") from None


def config_files(environ: Mapping[str, str] | None = None, home: Path | None = None) -> list[Path]:
    """The files to read, in order (the main file first; it may not exist)."""
    env = os.environ if environ is None else environ
    home_dir = home if home is not None else Path(env.get("HOME") or Path.home())
    user_file = home_dir / _USER_FILE
    if env.get("CONTAINERS_REGISTRIES_CONF"):
        main = Path(env["CONTAINERS_REGISTRIES_CONF"])
        directories = [SYSTEM_DIR, home_dir / _USER_DIR]
    elif user_file.is_file():
        main, directories = user_file, [home_dir / _USER_DIR]
    else:
        main, directories = SYSTEM_FILE, [SYSTEM_DIR, home_dir / _USER_DIR]
    files = [main]
    for directory in directories:
        files += _drop_ins(directory)
    return files


def _toml(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    document: dict[str, Any] = tomllib.loads(text)
    return document


def _read(path: Path, *, required: bool) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise LocalError(f"cannot read registries.conf {path}: No such file or directory") from None
        return None
    except UnicodeDecodeError:
        raise RegistriesConfError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise LocalError(f"cannot read registries.conf {path}: {error.strerror}") from None
    try:
        return _toml(text)
    except ValueError as error:  # tomllib.TOMLDecodeError
        raise RegistriesConfError(f"{path} is not valid TOML: {error}") from None


def load(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None,
         home: Path | None = None) -> RegistriesConf:  # fmt: skip
    """The registries configuration of this user, or of ``path`` alone.

    Raises :class:`~regpeek.formats.registriesconf.RegistriesConfError` (exit 2) for a file that is
    not valid, :class:`~regpeek.errors.LocalError` (exit 7) for one that cannot be read.
    """
    if path is not None:
        files, required = [Path(path)], True
    else:
        env = os.environ if environ is None else environ
        files = config_files(env, home)
        required = bool(env.get("CONTAINERS_REGISTRIES_CONF"))
    documents = []
    for number, file in enumerate(files):
        document = _read(file, required=required and number == 0)
        if document is not None:
            documents.append((str(file), document))
    return parse(documents)
