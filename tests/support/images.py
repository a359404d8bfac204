"""Deterministic sample images and helpers that push them with :class:`tests.support.push.Pusher`.

Every byte is under control: tar entries have fixed mtimes/owners, gzip headers carry no name or
time, JSON is compact and key order fixed.  Each push helper returns a frozen dataclass holding the
exact bytes, digests and sizes, so tests can compare what a client read against what was pushed.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import ssl
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import httpx

from .push import Pusher
from .schema1 import SignedSchema1, pretty_json, sign_schema1
from .util import sha256_digest

ZSTD_AVAILABLE = importlib.util.find_spec("zstandard") is not None

# -- media types ---------------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
IN_TOTO = "application/vnd.in-toto+json"

Compression = Literal["gzip", "none", "zstd"]
OCI_LAYER_TYPES: dict[str, str] = {"gzip": OCI_LAYER_GZIP, "none": OCI_LAYER, "zstd": OCI_LAYER_ZSTD}

FIXED_MTIME = 1_600_000_000  # 2020-09-13T12:26:40Z
FIXED_CREATED = "2020-09-13T12:26:40Z"

# The gzipped empty tar Docker uses for "throwaway" schema1 layers (Go's compress/gzip output).
EMPTY_GZIP_TAR = bytes.fromhex("1f8b080000096e8800ff621805a360148c5800080000ffff2eafb5ef00040000")
EMPTY_GZIP_TAR_DIGEST = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
assert sha256_digest(EMPTY_GZIP_TAR) == EMPTY_GZIP_TAR_DIGEST
assert gzip.decompress(EMPTY_GZIP_TAR) == bytes(1024)  # two zero blocks: an empty tar archive

# A file entry: plain bytes (a 0644 file) or a tuple:
#   ("file", data[, mode]) | ("dir"[, mode]) | ("symlink", target) | ("hardlink", target)
#   | ("fifo",) | ("chardev", major, minor)
FileSpec: TypeAlias = bytes | tuple[Any, ...]


# -- layers --------------------------------------------------------------------------------------
def make_tar(files: Mapping[str, FileSpec]) -> bytes:
    """An uncompressed tar with entries in ``files`` order, fixed mtime, uid/gid 0, no user names."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, given in files.items():
            info = tarfile.TarInfo(name)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            data: bytes | None = None
            spec = ("file", given) if isinstance(given, bytes) else given
            kind = spec[0]
            if kind == "file":
                data = spec[1]
                info.mode = spec[2] if len(spec) > 2 else 0o644
                info.size = len(spec[1])
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = spec[1] if len(spec) > 1 else 0o755
            elif kind in ("symlink", "hardlink"):
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = spec[1]
                info.mode = 0o777 if kind == "symlink" else 0o644
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
                info.mode = 0o644
            elif kind == "chardev":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = spec[1], spec[2]
                info.mode = 0o600
            else:
                raise ValueError(f"unknown tar entry kind {kind!r} for {name}")
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


class CompressionUnavailable(RuntimeError):
    """zstd was asked for but the ``zstandard`` module is missing."""


def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - zstandard is a regpeek dependency
        raise CompressionUnavailable("zstandard is not installed") from exc
    return zstandard


def compress(data: bytes, compression: Compression) -> bytes:
    """Compress deterministically (gzip without name/mtime, level 6; zstd level 3)."""
    if compression == "none":
        return data
    if compression == "gzip":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as gz:
            gz.write(data)
        return buffer.getvalue()
    if compression == "zstd":
        compressed: bytes = _zstandard().ZstdCompressor(level=3, write_content_size=True).compress(data)
        return compressed
    raise ValueError(f"unknown compression {compression!r}")


def decompress(data: bytes, compression: Compression) -> bytes:
    """Inverse of :func:`compress`."""
    if compression == "none":
        return data
    if compression == "gzip":
        return gzip.decompress(data)
    result: bytes = _zstandard().ZstdDecompressor().decompress(data)
    return result


def make_layer(files: Mapping[str, FileSpec], compression: Compression = "gzip") -> bytes:
    """A layer blob: :func:`make_tar` of ``files``, compressed."""
    return compress(make_tar(files), compression)


# -- configs -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Platform:
    """An image platform (OCI ``platform`` object)."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    @property
    def label(self) -> str:
        """``os/arch[/variant]``, e.g. ``linux/arm64/v8``."""
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def as_dict(self) -> dict[str, str]:
        result = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            result["os.version"] = self.os_version
        if self.variant:
            result["variant"] = self.variant
        return result


LINUX_AMD64 = Platform("linux", "amd64")
INDEX_PLATFORMS: tuple[Platform, ...] = (
    LINUX_AMD64,
    Platform("linux", "arm64", "v8"),
    Platform("linux", "arm", "v7"),
    Platform("linux", "arm", "v6"),
    Platform("windows", "amd64", os_version="10.0.17763.4010"),
)


def make_config(
    os: str = "linux",
    arch: str = "amd64",
    variant: str | None = None,
    os_version: str | None = None,
    *,
    env: Sequence[str] | None = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
    labels: Mapping[str, str] | None = None,
    workdir: str | None = None,
    user: str | None = None,
    exposed_ports: Sequence[str] | None = None,
    volumes: Sequence[str] | None = None,
    stop_signal: str | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    diff_ids: Sequence[str] = (),
    created: str | None = FIXED_CREATED,
    author: str | None = None,
) -> bytes:
    """An image config JSON document (OCI image-spec / Docker image v1), compact, fixed key order."""
    config: dict[str, Any] = {}
    if user is not None:
        config["User"] = user
    if exposed_ports:
        config["ExposedPorts"] = {port: {} for port in exposed_ports}
    if env is not None:
        config["Env"] = list(env)
    if entrypoint is not None:
        config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        config["Cmd"] = list(cmd)
    if volumes:
        config["Volumes"] = {volume: {} for volume in volumes}
    if workdir is not None:
        config["WorkingDir"] = workdir
    if labels is not None:
        config["Labels"] = dict(labels)
    if stop_signal is not None:
        config["StopSignal"] = stop_signal
    document: dict[str, Any] = {}
    if created is not None:
        document["created"] = created
    if author is not None:
        document["author"] = author
    document["architecture"] = arch
    if variant is not None:
        document["variant"] = variant
    document["os"] = os
    if os_version is not None:
        document["os.version"] = os_version
    document["config"] = config
    document["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    if history is not None:
        document["history"] = [dict(entry) for entry in history]
    return compact_json(document)


def compact_json(document: Any) -> bytes:
    """Compact JSON, insertion-ordered keys, UTF-8."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# -- pushed results ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blob:
    """Exact bytes of a blob with its descriptor values."""

    media_type: str
    data: bytes
    digest: str
    size: int

    @classmethod
    def of(cls, media_type: str, data: bytes) -> Blob:
        return cls(media_type, data, sha256_digest(data), len(data))

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class PushedImage:
    """A single-platform image (OCI or Docker schema2) as pushed."""

    repo: str
    tag: str | None
    digest: str
    manifest: bytes
    media_type: str  # Content-Type used for the PUT; the registry serves this type back
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]
    platform: Platform
    layer_files: tuple[Mapping[str, FileSpec], ...] = ()

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def config_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.config.data)
        return result

    @property
    def manifest_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.manifest)
        return result

    def summary(self) -> dict[str, Any]:
        return {
            "kind": "image",
            "reference": f"{self.repo}:{self.tag}" if self.tag else f"{self.repo}@{self.digest}",
            "digest": self.digest,
            "media_type": self.media_type,
            "platform": self.platform.label,
            "config": self.config.digest,
            "layers": [layer.digest for layer in self.layers],
        }


@dataclass(frozen=True)
class PushedIndex:
    """An OCI image index or Docker manifest list and its children, as pushed."""

    repo: str
    tag: str
    digest: str
    manifest: bytes
    media_type: str
    children: tuple[PushedImage, ...]  # platform images, in index order
    attestation: PushedImage | None = None

    @property
    def size(self) -> int:
        return len(self.manifest)

    @property
    def manifest_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.manifest)
        return result

    def child(self, os: str, architecture: str, variant: str | None = None) -> PushedImage:
        """The child image for a platform (exact match on os/architecture/variant)."""
        for image in self.children:
            p = image.platform
            if (p.os, p.architecture, p.variant) == (os, architecture, variant):
                return image
        raise KeyError(f"no child for {os}/{architecture}/{variant}")

    def summary(self) -> dict[str, Any]:
        return {
            "kind": "index",
            "reference": f"{self.repo}:{self.tag}",
            "digest": self.digest,
            "media_type": self.media_type,
            "children": {c.platform.label: c.digest for c in self.children},
            "attestation": self.attestation.digest if self.attestation else None,
        }


@dataclass(frozen=True)
class PushedSchema1:
    """A Docker schema1 manifest as pushed (signed or not)."""

    repo: str
    tag: str
    digest: str  # canonical digest (what the registry reports)
    manifest: bytes  # exact bytes sent
    canonical: bytes  # signed payload (== manifest when unsigned)
    media_type: str
    fs_layers: tuple[Blob, ...]  # top layer first, like fsLayers
    history: tuple[dict[str, Any], ...]  # parsed v1Compatibility, top first
    jwk: dict[str, str] | None = None

    @property
    def manifest_json(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.manifest)
        return result

    def summary(self) -> dict[str, Any]:
        return {
            "kind": "schema1",
            "reference": f"{self.repo}:{self.tag}",
            "digest": self.digest,
            "media_type": self.media_type,
            "fs_layers": [layer.digest for layer in self.fs_layers],
        }


Pushed: TypeAlias = PushedImage | PushedIndex | PushedSchema1


# -- single-platform images ----------------------------------------------------------------------
def default_layers(platform: Platform) -> list[dict[str, FileSpec]]:
    """Two small layers; the second differs per platform so every platform has distinct digests."""
    return [
        {
            "etc/": ("dir",),
            "etc/os-release": b'NAME="regpeek test"\nID=regpeek\n',
            "bin/": ("dir",),
            "bin/sh": ("file", b"#!/not/really/a/shell\n", 0o755),
        },
        {
            "app/": ("dir",),
            "app/platform.txt": f"{platform.label}\n".encode(),
            "app/current": ("symlink", "platform.txt"),
        },
    ]


def _build_layers(
    layer_files: Sequence[Mapping[str, FileSpec]],
    compression: Compression | Sequence[Compression],
    types: str,
) -> tuple[list[Blob], list[str]]:
    compressions = [compression] * len(layer_files) if isinstance(compression, str) else list(compression)
    if len(compressions) != len(layer_files):
        raise ValueError("one compression per layer")
    blobs, diff_ids = [], []
    for files, method in zip(layer_files, compressions, strict=True):
        tar = make_tar(files)
        media_type = OCI_LAYER_TYPES[method] if types == "oci" else DOCKER_LAYER
        if types == "docker" and method != "gzip":
            raise ValueError("Docker schema2 layers are gzip")
        blobs.append(Blob.of(media_type, compress(tar, method)))
        diff_ids.append(sha256_digest(tar))
    return blobs, diff_ids


def _platform_config(platform: Platform, diff_ids: Sequence[str], overrides: Mapping[str, Any]) -> bytes:
    kwargs: dict[str, Any] = {
        "env": ["PATH=/usr/local/bin:/usr/bin:/bin", f"REGPEEK_PLATFORM={platform.label}"],
        "labels": {"org.regpeek.formats.platform": platform.label, "org.regpeek.sample": "yes"},
        "entrypoint": ["/bin/sh", "-c"],
        "cmd": ["cat /app/platform.txt"],
        "workdir": "/app",
        "history": [
            {"created": FIXED_CREATED, "created_by": "ADD rootfs /"},
            {"created": FIXED_CREATED, "created_by": "ENV REGPEEK_PLATFORM", "empty_layer": True},
            {"created": FIXED_CREATED, "created_by": "COPY app /app"},
        ],
    }
    kwargs.update(overrides)
    return make_config(
        platform.os, platform.architecture, platform.variant, platform.os_version, diff_ids=diff_ids, **kwargs
    )


def _push_image(
    pusher: Pusher,
    repo: str,
    tag: str | None,
    *,
    kind: Literal["oci", "docker"],
    include_media_type: bool,
    platform: Platform,
    layers: Sequence[Mapping[str, FileSpec]] | None,
    compression: Compression | Sequence[Compression],
    annotations: Mapping[str, str] | None,
    config_overrides: Mapping[str, Any],
) -> PushedImage:
    layer_files = list(layers) if layers is not None else default_layers(platform)
    blobs, diff_ids = _build_layers(layer_files, compression, kind)
    config = Blob.of(
        OCI_CONFIG if kind == "oci" else DOCKER_CONFIG, _platform_config(platform, diff_ids, config_overrides)
    )
    for blob in (*blobs, config):
        pusher.push_blob(repo, blob.data)
    media_type = OCI_MANIFEST if kind == "oci" else DOCKER_MANIFEST
    document: dict[str, Any] = {"schemaVersion": 2}
    if include_media_type or kind == "docker":
        document["mediaType"] = media_type
    document["config"] = config.descriptor()
    document["layers"] = [blob.descriptor() for blob in blobs]
    if annotations:
        document["annotations"] = dict(annotations)
    manifest = compact_json(document)
    digest = pusher.push_manifest(repo, tag or sha256_digest(manifest), manifest, media_type)
    return PushedImage(
        repo=repo,
        tag=tag,
        digest=digest,
        manifest=manifest,
        media_type=media_type,
        config=config,
        layers=tuple(blobs),
        diff_ids=tuple(diff_ids),
        platform=platform,
        layer_files=tuple(layer_files),
    )


def push_oci_image(
    pusher: Pusher,
    repo: str,
    tag: str | None,
    *,
    include_media_type: bool = True,
    platform: Platform = LINUX_AMD64,
    layers: Sequence[Mapping[str, FileSpec]] | None = None,
    compression: Compression | Sequence[Compression] = "gzip",
    annotations: Mapping[str, str] | None = None,
    **config: Any,
) -> PushedImage:
    """Push an OCI image manifest (tagged, or by digest when ``tag`` is None).

    ``config`` keywords override :func:`make_config` arguments (``env``, ``labels``, ``cmd``...).
    ``include_media_type=False`` omits the optional ``mediaType`` member, as umoci does.
    """
    return _push_image(
        pusher,
        repo,
        tag,
        kind="oci",
        include_media_type=include_media_type,
        platform=platform,
        layers=layers,
        compression=compression,
        annotations=annotations,
        config_overrides=config,
    )


def push_docker_schema2(
    pusher: Pusher,
    repo: str,
    tag: str | None,
    *,
    platform: Platform = LINUX_AMD64,
    layers: Sequence[Mapping[str, FileSpec]] | None = None,
    **config: Any,
) -> PushedImage:
    """Push a Docker image manifest v2 schema 2 with a Docker config and gzip layers."""
    return _push_image(
        pusher,
        repo,
        tag,
        kind="docker",
        include_media_type=True,
        platform=platform,
        layers=layers,
        compression="gzip",
        annotations=None,
        config_overrides=config,
    )


def push_attestation(pusher: Pusher, repo: str, subject: PushedImage) -> PushedImage:
    """A BuildKit-style attestation manifest (unknown/unknown, one in-toto layer), pushed by digest."""
    statement = compact_json(
        {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [
                {"name": f"pkg:docker/{repo}", "digest": {"sha256": subject.digest.split(":", 1)[1]}}
            ],
            "predicate": {"builder": {"id": "regpeek-tests"}},
        }
    )
    layer = Blob.of(IN_TOTO, statement)
    unknown = Platform("unknown", "unknown")
    config = Blob.of(
        OCI_CONFIG,
        compact_json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
            }
        ),
    )
    pusher.push_blob(repo, layer.data)
    pusher.push_blob(repo, config.data)
    manifest = compact_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [
                layer.descriptor(
                    annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}
                )
            ],
        }
    )
    digest = pusher.push_manifest(repo, sha256_digest(manifest), manifest, OCI_MANIFEST)
    return PushedImage(repo, None, digest, manifest, OCI_MANIFEST, config, (layer,), (layer.digest,), unknown)


def push_index(
    pusher: Pusher,
    repo: str,
    tag: str,
    kind: Literal["oci", "docker"] = "oci",
    *,
    platforms: Sequence[Platform] = INDEX_PLATFORMS,
    attestation: bool = True,
    include_media_type: bool = True,
) -> PushedIndex:
    """Push one child per platform (by digest), then the index / manifest list that names them.

    For ``kind="oci"`` an attestation manifest for the first child is appended when ``attestation``.
    """
    children = []
    for platform in platforms:
        if kind == "oci":
            children.append(push_oci_image(pusher, repo, None, platform=platform))
        else:
            children.append(push_docker_schema2(pusher, repo, None, platform=platform))
    entries = [
        {"mediaType": c.media_type, "digest": c.digest, "size": c.size, "platform": c.platform.as_dict()}
        for c in children
    ]
    attest = None
    if kind == "oci" and attestation and children:
        attest = push_attestation(pusher, repo, children[0])
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": attest.digest,
                "size": attest.size,
                "annotations": {
                    "vnd.docker.reference.digest": children[0].digest,
                    "vnd.docker.reference.type": "attestation-manifest",
                },
                "platform": {"architecture": "unknown", "os": "unknown"},
            }
        )
    media_type = OCI_INDEX if kind == "oci" else DOCKER_LIST
    document: dict[str, Any] = {"schemaVersion": 2}
    if include_media_type or kind == "docker":
        document["mediaType"] = media_type
    document["manifests"] = entries
    manifest = compact_json(document)
    digest = pusher.push_manifest(repo, tag, manifest, media_type)
    return PushedIndex(repo, tag, digest, manifest, media_type, tuple(children), attest)


# -- schema1 -------------------------------------------------------------------------------------
def _fake_v1_id(seed: str) -> str:
    return sha256_digest(seed.encode()).split(":", 1)[1]


def build_schema1(
    repo: str,
    tag: str,
    *,
    architecture: str = "amd64",
    layers: Sequence[Mapping[str, FileSpec]] | None = None,
    env: Sequence[str] = ("PATH=/usr/local/bin:/usr/bin:/bin", "REGPEEK_SCHEMA=1"),
    entrypoint: Sequence[str] | None = ("/bin/sh", "-c"),
    cmd: Sequence[str] | None = ("cat /app/platform.txt",),
    labels: Mapping[str, str] | None = None,
    workdir: str = "/app",
    user: str = "1000:1000",
    exposed_ports: Sequence[str] = ("8080/tcp",),
    volumes: Sequence[str] = ("/data",),
) -> tuple[bytes, list[Blob], list[dict[str, Any]]]:
    """Unsigned pretty schema1 JSON plus its fsLayers blobs and history (both top first).

    History, oldest first: the layers, then a throwaway ``CMD`` entry (empty gzip tar) that sits on
    top and carries the image config.
    """
    layer_files = list(layers) if layers is not None else default_layers(Platform("linux", architecture))
    base_first = [Blob.of(DOCKER_LAYER, make_layer(files)) for files in layer_files]
    base_first.append(Blob.of(DOCKER_LAYER, EMPTY_GZIP_TAR))
    ids = [_fake_v1_id(f"{repo}:{tag}:{i}:{blob.digest}") for i, blob in enumerate(base_first)]
    history_base_first: list[dict[str, Any]] = []
    for i, blob in enumerate(base_first):
        entry: dict[str, Any] = {"id": ids[i]}
        if i > 0:
            entry["parent"] = ids[i - 1]
        entry["created"] = FIXED_CREATED
        is_top = i == len(base_first) - 1
        if is_top:
            entry.update(
                {
                    "author": "regpeek tests",
                    "container_config": {"Cmd": ["/bin/sh", "-c", '#(nop) CMD ["cat /app/platform.txt"]']},
                    "docker_version": "20.10.7",
                    "config": {
                        "User": user,
                        "ExposedPorts": {port: {} for port in exposed_ports},
                        "Env": list(env),
                        "Entrypoint": list(entrypoint) if entrypoint is not None else None,
                        "Cmd": list(cmd) if cmd is not None else None,
                        "Volumes": {volume: {} for volume in volumes},
                        "WorkingDir": workdir,
                        "Labels": dict(labels or {"org.regpeek.sample": "schema1"}),
                    },
                    "architecture": architecture,
                    "os": "linux",
                }
            )
        else:
            entry["container_config"] = {"Cmd": ["/bin/sh", "-c", f"#(nop) ADD layer{i}.tar /"]}
        if blob.digest == EMPTY_GZIP_TAR_DIGEST:
            entry["throwaway"] = True
        history_base_first.append(entry)
    fs_layers = list(reversed(base_first))
    history = list(reversed(history_base_first))
    document = {
        "schemaVersion": 1,
        "name": repo,
        "tag": tag,
        "architecture": architecture,
        "fsLayers": [{"blobSum": blob.digest} for blob in fs_layers],
        "history": [{"v1Compatibility": compact_json(entry).decode()} for entry in history],
    }
    return pretty_json(document), fs_layers, history


def _push_schema1_blobs(pusher: Pusher, repo: str, fs_layers: Sequence[Blob]) -> None:
    seen = set()
    for blob in fs_layers:
        if blob.digest not in seen:
            seen.add(blob.digest)
            pusher.push_blob(repo, blob.data)


def push_schema1_signed(pusher: Pusher, repo: str, tag: str, **options: Any) -> PushedSchema1:
    """Build, sign (ES256, libtrust layout) and push a schema1 manifest plus its blobs.

    Needs a registry with schema1 enabled.  The returned digest is the canonical one and equals the
    registry's ``Docker-Content-Digest``.
    """
    unsigned, fs_layers, history = build_schema1(repo, tag, **options)
    _push_schema1_blobs(pusher, repo, fs_layers)
    signed: SignedSchema1 = sign_schema1(unsigned)
    digest = pusher.push_manifest(repo, tag, signed.signed, SCHEMA1_SIGNED, expected_digest=signed.digest)
    return PushedSchema1(
        repo,
        tag,
        digest,
        signed.signed,
        signed.canonical,
        SCHEMA1_SIGNED,
        tuple(fs_layers),
        tuple(history),
        signed.jwk,
    )


def push_schema1_unsigned(pusher: Pusher, repo: str, tag: str, **options: Any) -> PushedSchema1:
    """Try to push an unsigned ``v1+json`` schema1 manifest (distribution 2.8.2 refuses it)."""
    unsigned, fs_layers, history = build_schema1(repo, tag, **options)
    _push_schema1_blobs(pusher, repo, fs_layers)
    digest = pusher.push_manifest(repo, tag, unsigned, SCHEMA1)
    return PushedSchema1(repo, tag, digest, unsigned, unsigned, SCHEMA1, tuple(fs_layers), tuple(history))


def fetch_converted_schema1(
    registry_url: str,
    repo: str,
    tag: str,
    *,
    verify: ssl.SSLContext | bool = True,
    pusher: Pusher | None = None,
) -> tuple[bytes, str]:
    """GET ``repo:tag`` accepting only signed schema1; return (body, Docker-Content-Digest).

    A schema1-enabled distribution converts a schema2 tag on the fly and signs it with its own key.
    Pass ``pusher`` to authenticate through it.
    """
    headers = {"Accept": SCHEMA1_SIGNED}
    path = f"/v2/{repo}/manifests/{tag}"
    if pusher is not None:
        response = pusher.get_raw(path, headers, repo=repo)
    else:
        response = httpx.get(registry_url.rstrip("/") + path, headers=headers, verify=verify)
    response.raise_for_status()
    return response.content, response.headers.get("Docker-Content-Digest", "")


# -- sample set ----------------------------------------------------------------------------------
def load_samples(pusher: Pusher, *, schema1: bool = False, tag: str = "latest") -> dict[str, Pushed]:
    """Push one image of each kind and return them keyed by repository.

    ``samples/oci``, ``samples/oci-nomediatype``, ``samples/oci-mixed`` (gzip, plain and zstd layers,
    when zstandard is available), ``samples/docker``, ``samples/index`` (OCI index with attestation),
    ``samples/list`` (Docker manifest list) and, with ``schema1=True``, ``samples/schema1``.
    """
    result: dict[str, Pushed] = {
        "samples/oci": push_oci_image(pusher, "samples/oci", tag),
        "samples/oci-nomediatype": push_oci_image(
            pusher, "samples/oci-nomediatype", tag, include_media_type=False
        ),
        "samples/docker": push_docker_schema2(pusher, "samples/docker", tag),
        "samples/index": push_index(pusher, "samples/index", tag, "oci"),
        "samples/list": push_index(pusher, "samples/list", tag, "docker"),
    }
    if ZSTD_AVAILABLE:
        mixed_layers: list[dict[str, FileSpec]] = [
            *default_layers(LINUX_AMD64),
            {"extra/zstd.txt": b"zstd layer\n"},
        ]
        result["samples/oci-mixed"] = push_oci_image(
            pusher, "samples/oci-mixed", tag, layers=mixed_layers, compression=("gzip", "none", "zstd")
        )
    if schema1:
        result["samples/schema1"] = push_schema1_signed(pusher, "samples/schema1", tag)
    return result
