"""What changed between two images (or two platforms of one image): :func:`diff_images`.

Pure: it compares two :class:`~regpeek.formats.config.InspectResult` values already fetched and verified.

Two images are ``identical`` when their image manifest digests are equal (whatever the references
say); every change is then empty, all layers are ``shared`` and the whole history is ``common``.

:meth:`ImageDiff.to_json` always has the same keys::

    before, after     {"reference": str, "digest": str, "config_digest": str | null,
                       "media_type": str, "size": int | null}   (size: compressed, null when unknown)
    identical         bool
    media_type        null | {"before": str, "after": str}
    platform          null | {"before": PLATFORM, "after": PLATFORM}
                      (PLATFORM: {"os", "architecture", "variant", "os_version"} as in inspect)
    created           null | {"before": str | null, "after": str | null}
    env               {"added": {NAME: VALUE}, "removed": {NAME: VALUE},
                       "changed": {NAME: {"before": VALUE, "after": VALUE}}}
                      (keyed by the text before the first "="; VALUE is null for an entry without "=")
    labels            {"added": {KEY: str}, "removed": {KEY: str},
                       "changed": {KEY: {"before": str, "after": str}}}
    annotations       as labels (the image manifest's annotations)
    entrypoint, cmd   null | {"before": [str] | null, "after": [str] | null}
    user, working_dir, stop_signal
                      null | {"before": str | null, "after": str | null}
    exposed_ports, volumes
                      {"added": [str], "removed": [str]}   (sorted)
    layers            {"shared": [LAYER], "added": [LAYER], "removed": [LAYER]}
                      (LAYER: {"digest": str, "size": int | null}; matched by digest, counting
                      repeats; shared and added in the after image's order, removed in the before's)
    size_change       int | null   (after's compressed size minus before's; null when either is unknown)
    history           {"common": int, "added": [HISTORY], "removed": [HISTORY]}
                      (HISTORY as in inspect; steps after the longest common prefix of the two
                      histories, steps compared by (created_by, empty_layer))

A field is null (or its lists and maps empty) when it did not change. Mapping keys are sorted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from regpeek.formats.config import HistoryEntry, InspectResult, Layer
from regpeek.formats.digest import Digest
from regpeek.formats.jsonable import JsonResult
from regpeek.formats.platform import Platform

__all__ = [
    "Change",
    "HistoryDiff",
    "ImageDiff",
    "ImageSide",
    "LayerDiff",
    "MappingDiff",
    "SetDiff",
    "diff_images",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Change(Generic[T]):
    """A value that differs: ``before`` (in the first image) and ``after`` (in the second)."""

    before: T
    after: T


def _change(before: T, after: T) -> Change[T] | None:
    return Change(before, after) if before != after else None


def _change_json(
    change: Change[Any] | None, convert: Callable[[Any], Any] | None = None
) -> dict[str, Any] | None:
    if change is None:
        return None
    if convert is None:
        return {"before": change.before, "after": change.after}
    return {"before": convert(change.before), "after": convert(change.after)}


@dataclass(frozen=True)
class MappingDiff(Generic[T]):
    """Keys only in the second image (``added``), only in the first (``removed``), or in both with
    different values (``changed``)."""

    added: Mapping[str, T] = field(default_factory=dict)
    removed: Mapping[str, T] = field(default_factory=dict)
    changed: Mapping[str, Change[T]] = field(default_factory=dict)

    @classmethod
    def of(cls, before: Mapping[str, T], after: Mapping[str, T]) -> MappingDiff[T]:
        return cls(
            added={key: after[key] for key in sorted(after.keys() - before.keys())},
            removed={key: before[key] for key in sorted(before.keys() - after.keys())},
            changed={
                key: Change(before[key], after[key])
                for key in sorted(before.keys() & after.keys())
                if before[key] != after[key]
            },
        )

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": dict(self.added),
            "removed": dict(self.removed),
            "changed": {key: _change_json(change) for key, change in self.changed.items()},
        }


@dataclass(frozen=True)
class SetDiff:
    """Members only in the second image (``added``) or only in the first (``removed``), sorted."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    @classmethod
    def of(cls, before: Iterable[str], after: Iterable[str]) -> SetDiff:
        first, second = set(before), set(after)
        return cls(tuple(sorted(second - first)), tuple(sorted(first - second)))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": list(self.added), "removed": list(self.removed)}


def _match(layers: Sequence[Layer], others: Sequence[Layer]) -> tuple[list[Layer], list[Layer]]:
    """Split ``layers`` into those whose digest ``others`` also has (each match used once) and the rest."""
    available = Counter(layer.digest for layer in others)
    found: list[Layer] = []
    missing: list[Layer] = []
    for layer in layers:
        if available[layer.digest] > 0:
            available[layer.digest] -= 1
            found.append(layer)
        else:
            missing.append(layer)
    return found, missing


def _layer_json(layer: Layer) -> dict[str, Any]:
    return {"digest": str(layer.digest), "size": layer.known_size}


@dataclass(frozen=True)
class LayerDiff:
    """Layers matched by digest; a digest that appears twice in one image counts twice."""

    shared: tuple[Layer, ...] = ()
    added: tuple[Layer, ...] = ()
    removed: tuple[Layer, ...] = ()

    @classmethod
    def of(cls, before: Sequence[Layer], after: Sequence[Layer]) -> LayerDiff:
        shared, added = _match(after, before)
        _, removed = _match(before, after)
        return cls(tuple(shared), tuple(added), tuple(removed))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shared": [_layer_json(layer) for layer in self.shared],
            "added": [_layer_json(layer) for layer in self.added],
            "removed": [_layer_json(layer) for layer in self.removed],
        }


def _step_key(entry: HistoryEntry) -> tuple[str | None, bool]:
    return entry.created_by, entry.empty_layer


@dataclass(frozen=True)
class HistoryDiff:
    """The steps after the longest common prefix: ``added`` from the second history, ``removed`` from
    the first; ``common`` is the length of the prefix."""

    common: int = 0
    added: tuple[HistoryEntry, ...] = ()
    removed: tuple[HistoryEntry, ...] = ()

    @classmethod
    def of(cls, before: Sequence[HistoryEntry], after: Sequence[HistoryEntry]) -> HistoryDiff:
        common = 0
        for first, second in zip(before, after, strict=False):  # the prefix: stop at the shorter
            if _step_key(first) != _step_key(second):
                break
            common += 1
        return cls(common, tuple(after[common:]), tuple(before[common:]))

    def __bool__(self) -> bool:
        return bool(self.added or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "common": self.common,
            "added": [entry.to_dict() for entry in self.added],
            "removed": [entry.to_dict() for entry in self.removed],
        }


@dataclass(frozen=True)
class ImageSide:
    """One of the two images compared."""

    reference: str
    digest: Digest
    config_digest: Digest | None
    media_type: str
    size: int | None

    @classmethod
    def of(cls, result: InspectResult) -> ImageSide:
        return cls(str(result.reference), result.digest, result.config_digest, result.media_type, result.size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": str(self.digest),
            "config_digest": str(self.config_digest) if self.config_digest else None,
            "media_type": self.media_type,
            "size": self.size,
        }


Words = tuple[str, ...] | None


def _words(value: list[str] | None) -> Words:
    return tuple(value) if value is not None else None


def _words_json(value: Words) -> list[str] | None:
    return list(value) if value is not None else None


def _platform_json(platform: Platform) -> dict[str, str | None]:
    return platform.to_dict()


@dataclass(frozen=True)
class ImageDiff(JsonResult):
    """The differences between two images; see the module docstring for :meth:`to_json`."""

    before: ImageSide
    after: ImageSide
    identical: bool
    media_type: Change[str] | None = None
    platform: Change[Platform] | None = None
    created: Change[str | None] | None = None
    env: MappingDiff[str | None] = field(default_factory=MappingDiff)
    labels: MappingDiff[str] = field(default_factory=MappingDiff)
    annotations: MappingDiff[str] = field(default_factory=MappingDiff)
    entrypoint: Change[Words] | None = None
    cmd: Change[Words] | None = None
    user: Change[str | None] | None = None
    working_dir: Change[str | None] | None = None
    stop_signal: Change[str | None] | None = None
    exposed_ports: SetDiff = field(default_factory=SetDiff)
    volumes: SetDiff = field(default_factory=SetDiff)
    layers: LayerDiff = field(default_factory=LayerDiff)
    size_change: int | None = None
    history: HistoryDiff = field(default_factory=HistoryDiff)

    @property
    def has_changes(self) -> bool:
        """True when any compared field differs (digests can differ with no compared field changed)."""
        values = [self.media_type, self.platform, self.created, self.entrypoint, self.cmd]
        values += [self.user, self.working_dir, self.stop_signal]
        groups = [self.env, self.labels, self.annotations, self.exposed_ports, self.volumes]
        return any(value is not None for value in values) or any(groups) or bool(self.layers or self.history)

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "identical": self.identical,
            "media_type": _change_json(self.media_type),
            "platform": _change_json(self.platform, _platform_json),
            "created": _change_json(self.created),
            "env": self.env.to_dict(),
            "labels": self.labels.to_dict(),
            "annotations": self.annotations.to_dict(),
            "entrypoint": _change_json(self.entrypoint, _words_json),
            "cmd": _change_json(self.cmd, _words_json),
            "user": _change_json(self.user),
            "working_dir": _change_json(self.working_dir),
            "stop_signal": _change_json(self.stop_signal),
            "exposed_ports": self.exposed_ports.to_dict(),
            "volumes": self.volumes.to_dict(),
            "layers": self.layers.to_dict(),
            "size_change": self.size_change,
            "history": self.history.to_dict(),
        }


def env_map(env: Iterable[str]) -> dict[str, str | None]:
    """``["A=1", "B=x=y", "C"]`` -> ``{"A": "1", "B": "x=y", "C": None}`` (a later entry wins).

    >>> env_map(["A=1", "B=x=y", "C"])
    {'A': '1', 'B': 'x=y', 'C': None}
    """
    out: dict[str, str | None] = {}
    for item in env:
        name, sep, value = item.partition("=")
        out[name] = value if sep else None
    return out


def _platform_change(before: Platform, after: Platform) -> Change[Platform] | None:
    """Compared as reported (os, architecture, variant, os version)."""
    return Change(before, after) if before.to_dict() != after.to_dict() else None


def _size_change(before: int | None, after: int | None) -> int | None:
    return after - before if before is not None and after is not None else None


def _identical(first: ImageSide, second: ImageSide, a: InspectResult) -> ImageDiff:
    return ImageDiff(
        before=first,
        after=second,
        identical=True,
        layers=LayerDiff(shared=tuple(a.layers)),
        size_change=_size_change(a.size, a.size),
        history=HistoryDiff(common=len(a.config.history)),
    )


def diff_images(a: InspectResult, b: InspectResult) -> ImageDiff:
    """What changed from ``a`` (before) to ``b`` (after)."""
    first, second = ImageSide.of(a), ImageSide.of(b)
    if a.digest == b.digest:
        return _identical(first, second, a)
    before, after = a.config, b.config
    return ImageDiff(
        before=first,
        after=second,
        identical=False,
        media_type=_change(a.media_type, b.media_type),
        platform=_platform_change(a.platform, b.platform),
        created=_change(before.created_raw, after.created_raw),
        env=MappingDiff.of(env_map(before.env), env_map(after.env)),
        labels=MappingDiff.of(before.labels, after.labels),
        annotations=MappingDiff.of(a.annotations, b.annotations),
        entrypoint=_change(_words(before.entrypoint), _words(after.entrypoint)),
        cmd=_change(_words(before.cmd), _words(after.cmd)),
        user=_change(before.user, after.user),
        working_dir=_change(before.working_dir, after.working_dir),
        stop_signal=_change(before.stop_signal, after.stop_signal),
        exposed_ports=SetDiff.of(before.exposed_ports, after.exposed_ports),
        volumes=SetDiff.of(before.volumes, after.volumes),
        layers=LayerDiff.of(a.layers, b.layers),
        size_change=_size_change(a.size, b.size),
        history=HistoryDiff.of(before.history, after.history),
    )
