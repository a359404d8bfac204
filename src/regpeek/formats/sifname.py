"""The file name of a reference's SIF in ``regpeek sif --out-dir``: readable, and one name per reference.

The name is the normalised reference with the characters a file name (or a shell, scp, rsync) dislikes
replaced, in a way that can be undone, so two references never share a file::

    docker.io/library/alpine:3.20                  -> docker.io_library_alpine+3.20.sif
    localhost:5000/team/my_app:v1                  -> localhost+5000_team_my__app+v1.sif
    ghcr.io/org/app@sha256:<hex>                   -> ghcr.io_org_app@sha256-<hex>.sif
    ghcr.io/org/app:1.2@sha256:<hex>               -> ghcr.io_org_app+1.2@sha256-<hex>.sif

- the registry comes first, its port's ``:`` written ``+`` (a registry never holds ``_``);
- ``_`` then separates the registry from the repository and the repository's components, and an ``_``
  of the repository itself is doubled (a component never starts or ends with ``_``, so a single
  ``_`` is always a ``/``);
- ``+`` introduces the tag (neither registry nor repository holds a ``+``), ``@`` the digest, whose
  ``:`` is written ``-``, in full.

So :func:`reference_of_name` gives back the reference of any name :func:`sif_file_name` made: the
mapping is one-to-one. A name longer than :data:`MAX_NAME` bytes (a repository path may be 255
characters, a tag 128) keeps its first 180 bytes and ends with ``~`` and 32 hex digits of the
sha256 of the whole name; ``~`` is in no reference, so such a name never equals a readable one.
"""

from __future__ import annotations

import hashlib

from regpeek.formats.reference import Reference

__all__ = ["MAX_NAME", "SUFFIX", "reference_of_name", "sif_file_name"]

SUFFIX = ".sif"
#: The longest name written in full (most file systems allow 255 bytes; temp files add a prefix).
MAX_NAME = 200


def _readable(reference: Reference) -> str:
    registry = reference.registry.replace(":", "+")
    repository = "_".join(part.replace("_", "__") for part in reference.repository.split("/"))
    name = f"{registry}_{repository}"
    if reference.tag is not None:
        name += f"+{reference.tag}"
    if reference.digest is not None:
        name += f"@{reference.digest.algorithm}-{reference.digest.hex}"
    return name


def sif_file_name(reference: Reference | str) -> str:
    """The SIF file name for ``reference`` (a :class:`Reference` or its text, normalised first)."""
    parsed = reference if isinstance(reference, Reference) else Reference.parse(reference)
    name = _readable(parsed) + SUFFIX
    if len(name.encode()) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:32]
    return f"{name.encode()[:180].decode('ascii', 'ignore')}~{digest}{SUFFIX}"


def reference_of_name(name: str) -> str:
    """The normalised reference a readable name stands for (``ValueError`` for another name, or a
    shortened one, which cannot be undone)."""
    if not name.endswith(SUFFIX) or "~" in name:
        raise ValueError(f"{name!r} is not a name sif_file_name writes in full")
    body = name[: -len(SUFFIX)]
    registry, sep, rest = body.partition("_")
    if not sep:
        raise ValueError(f"{name!r} has no repository")
    rest, at, digest = rest.partition("@")
    repository, plus, tag = rest.partition("+")
    path = _undo_repository(repository)
    text = f"{registry.replace('+', ':')}/{path}"
    if plus:
        text += f":{tag}"
    if at:
        algorithm, dash, hex_part = digest.partition("-")
        if not dash:
            raise ValueError(f"{name!r} has a malformed digest")
        text += f"@{algorithm}:{hex_part}"
    return text


def _undo_repository(encoded: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(encoded):
        if encoded[index] != "_":
            out.append(encoded[index])
            index += 1
            continue
        run = len(encoded) - index - len(encoded[index:].lstrip("_"))
        if run == 1:
            out.append("/")
        elif run % 2 == 0:
            out.append("_" * (run // 2))
        else:
            raise ValueError(f"{encoded!r}: a run of {run} underscores is not a name this module writes")
        index += run
    return "".join(out)
