"""``docs/api.md`` lists every public name: the package's, the public modules', and the members of the
classes a program holds (clients, images, layers, blob streams)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import regpeek

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
MODULES = [
    "regpeek",
    "regpeek.aio",
    "regpeek.batch",
    "regpeek.copy",
    "regpeek.disk.cache",
    "regpeek.disk.sif",
    "regpeek.errors",
    "regpeek.pull",
    "regpeek.rootfs",
    "regpeek.sif",
]
CLASSES = [
    "AsyncBlobStream", "AsyncClient", "AsyncImage", "AsyncImageLayer", "BlobStream", "Client",
    "DownloadedBlob", "Image", "ImageLayer", "InspectResult", "Index", "Layer",
]  # fmt: skip


def _documented() -> set[str]:
    """Every name written in backticks, and the leading name of a backticked call or attribute."""
    names = set()
    for code in re.findall(r"`([^`]+)`", DOC.read_text()):
        names.add(code)
        names.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code.split("(")[0]))
    return names


def _members(cls: type) -> set[str]:
    """Public attributes defined by regpeek's classes in ``cls``'s hierarchy (not io's or object's)."""
    found = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("regpeek"):
            found |= {name for name in vars(klass) if not name.startswith("_")}
            found |= {name for name in getattr(klass, "__dataclass_fields__", {}) if not name.startswith("_")}
    return found


@pytest.mark.parametrize("module", MODULES)
def test_every_name_of_a_public_module_is_documented(module: str) -> None:
    missing = sorted(set(importlib.import_module(module).__all__) - _documented())
    assert missing == []


@pytest.mark.parametrize("name", CLASSES)
def test_every_member_of_the_classes_a_program_holds_is_documented(name: str) -> None:
    missing = sorted(_members(getattr(regpeek, name)) - _documented())
    assert missing == []


def test_the_checker_sees_a_missing_name() -> None:
    assert "image" in _documented() and "no_such_method" not in _documented()
