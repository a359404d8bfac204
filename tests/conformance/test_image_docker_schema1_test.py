"""containers/image ``manifest/docker_schema1_test.go``, translated to :mod:`regpeek.formats.schema1`.

``Schema1FromManifest(blob)`` is ``parse(blob, "...v1+prettyjws")``; ``Schema1FromComponents`` is
parsing an unsigned schema1 document built from the same ``fsLayers`` and ``history``;
``ExtractedV1Compatibility`` (top first) is :attr:`Schema1Manifest.layers` (base first) read back
to front; ``LayerInfos`` is the layers' ``blob_sum`` and ``throwaway``. The fixture
``schema2-to-schema1-by-docker.json`` carries a stale signature (see the ``stale-signature`` reason).
Not ported: ``TestSchema1Clone``, ``TestSchema1UpdateLayerInfos`` (regpeek never edits manifests).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, NamedTuple

import pytest

from regpeek.errors import MalformedError
from regpeek.formats import mediatypes as mt
from regpeek.formats.schema1 import EMPTY_LAYER, Schema1Manifest, config_bytes
from tests.conformance._containers_image import (
    SCHEMA1_BY_DOCKER,
    STALE,
    fixture,
    parsed,
    refused,
    with_extra_field,
    without_signature,
)
from tests.conformance._rows import CONTAINERS_IMAGE, Suite, params

SUITE = Suite.of(CONTAINERS_IMAGE, "manifest/docker_schema1_test.go")

# schema1FixtureLayerDiffIDs (docker_schema1_test.go:18)
FIXTURE_DIFF_IDS = [
    "sha256:142a601d97936307e75220c35dde0348971a9584c21e7cb42e1f7004005432ab",
    "sha256:90fcc66ad3be9f1757f954b750deb37032f208428aa12599fcb02182b9065a9c",
    "sha256:5a8624bb7e76d1e6829f9c64c43185e02bc07f97a2189eb048609a8914e72c56",
    "sha256:d349ff6b3afc6a2800054768c82bfbf4289c9aa5da55c1290f802943dcd4d1e9",
    "sha256:8c064bb1f60e84fa8cc6079b6d2e76e0423389fd6aeb7e497dfdae5e05b2b25b",
]


def schema1_by_docker() -> Schema1Manifest:
    """The fixture without its stale signature (what every valid-fixture row reads)."""
    manifest = parsed(without_signature(fixture(SCHEMA1_BY_DOCKER)), mt.SCHEMA1)
    assert isinstance(manifest, Schema1Manifest)
    return manifest


# -- TestSchema1FromManifest (docker_schema1_test.go:55) -------------------------------------------------------
class FromManifest(NamedTuple):
    line: int
    case: str  # "valid", "version", "fixture", "field"
    value: str = ""  # the fixture or the extra field
    intentional: str | None = None


SCHEMA1_FROM_MANIFEST = [
    FromManifest(60, "valid", intentional=STALE),
    FromManifest(65, "version"),
    FromManifest(74, "fixture", "v2s2.manifest.json"),
    FromManifest(74, "fixture", "v2list.manifest.json"),
    FromManifest(75, "fixture", "ociv1.manifest.json"),
    FromManifest(75, "fixture", "ociv1.image.index.json"),
    FromManifest(78, "field", "config"),
    FromManifest(78, "field", "layers"),
    FromManifest(78, "field", "manifests"),
]


@pytest.mark.parametrize("row", params(SUITE, SCHEMA1_FROM_MANIFEST, "TestSchema1FromManifest"))
def test_schema1_from_manifest(row: FromManifest) -> None:
    valid = fixture(SCHEMA1_BY_DOCKER)
    if row.case == "valid":
        error = refused(valid, mt.SCHEMA1_SIGNED)
        assert error is not None and "signed payload" in str(error)
        assert isinstance(schema1_by_docker(), Schema1Manifest)
    elif row.case == "version":  # m.SchemaVersion = 2; m.Serialize()
        document = json.loads(valid)
        document["schemaVersion"] = 2
        assert refused(json.dumps(document, indent=3).encode(), mt.SCHEMA1_SIGNED) is not None
    elif row.case == "fixture":  # schema mismatch
        assert refused(fixture(row.value), mt.SCHEMA1_SIGNED) is not None
    else:  # extra fields: the error is the ambiguity check's, not the stale signature's
        error = refused(with_extra_field(valid, row.value), mt.SCHEMA1_SIGNED)
        assert error is not None and str(error).startswith(f"ambiguous manifest: {row.value}")


# -- TestSchema1Initialize (docker_schema1_test.go:86) --------------------------------------------------------
INIT_FS_LAYERS = [
    "sha256:e623934bca8d1a74f51014256445937714481e49343a31bda2bc5f534748184d",
    "sha256:62e48e39dc5b30b75a97f05bccc66efbae6058b860ee20a5c9a184b9d5e25788",
    "sha256:9e92df2aea7dc0baf5f1f8d509678d6a6306de27ad06513f8e218371938c07a6",
    "sha256:f576d102e09b9eef0e305aaef705d2d43a11bebc3fd5810a761624bd5e11997e",
    "sha256:4aa565ad8b7a87248163ce7dba1dd3894821aac97e846b932ff6b8ef9a8a508a",
    "sha256:9cadd93b16ff2a0c51ac967ea2abfadfac50cfa3af8b5bf983d89b8f8647f3e4",
]
INIT_HISTORY = [
    '{"architecture":"amd64","config":{"Hostname":"9428cdea83ba","Domainname":"","User":"nova","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","container=oci","KOLLA_BASE_DISTRO=rhel","KOLLA_INSTALL_TYPE=binary","KOLLA_INSTALL_METATYPE=rhos","PS1=$(tput bold)($(printenv KOLLA_SERVICE_NAME))$(tput sgr0)[$(id -un)@$(hostname -s) $(pwd)]$ "],"Cmd":["kolla_start"],"Healthcheck":{"Test":["CMD-SHELL","/openstack/healthcheck"]},"ArgsEscaped":true,"Image":"3bf9afe371220b1eb1c57bec39b5a99ba976c36c92d964a1c014584f95f51e33","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":[],"Labels":{"Kolla-SHA":"5.0.0-39-g6f1b947b","architecture":"x86_64","authoritative-source-url":"registry.access.redhat.com","build-date":"2018-01-25T00:32:27.807261","com.redhat.build-host":"ip-10-29-120-186.ec2.internal","com.redhat.component":"openstack-nova-api-docker","description":"Red Hat OpenStack Platform 12.0 nova-api","distribution-scope":"public","io.k8s.description":"Red Hat OpenStack Platform 12.0 nova-api","io.k8s.display-name":"Red Hat OpenStack Platform 12.0 nova-api","io.openshift.tags":"rhosp osp openstack osp-12.0","kolla_version":"stable/pike","name":"rhosp12/openstack-nova-api","release":"20180124.1","summary":"Red Hat OpenStack Platform 12.0 nova-api","tripleo-common_version":"7.6.3-23-g4891cfe","url":"https://access.redhat.com/containers/#/registry.access.redhat.com/rhosp12/openstack-nova-api/images/12.0-20180124.1","vcs-ref":"9b31243b7b448eb2fc3b6e2c96935b948f806e98","vcs-type":"git","vendor":"Red Hat, Inc.","version":"12.0","version-release":"12.0-20180124.1"}},"container_config":{"Hostname":"9428cdea83ba","Domainname":"","User":"nova","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","container=oci","KOLLA_BASE_DISTRO=rhel","KOLLA_INSTALL_TYPE=binary","KOLLA_INSTALL_METATYPE=rhos","PS1=$(tput bold)($(printenv KOLLA_SERVICE_NAME))$(tput sgr0)[$(id -un)@$(hostname -s) $(pwd)]$ "],"Cmd":["/bin/sh","-c","#(nop) ","USER [nova]"],"Healthcheck":{"Test":["CMD-SHELL","/openstack/healthcheck"]},"ArgsEscaped":true,"Image":"sha256:274ce4dcbeb09fa173a5d50203ae5cec28f456d1b8b59477b47a42bd74d068bf","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":[],"Labels":{"Kolla-SHA":"5.0.0-39-g6f1b947b","architecture":"x86_64","authoritative-source-url":"registry.access.redhat.com","build-date":"2018-01-25T00:32:27.807261","com.redhat.build-host":"ip-10-29-120-186.ec2.internal","com.redhat.component":"openstack-nova-api-docker","description":"Red Hat OpenStack Platform 12.0 nova-api","distribution-scope":"public","io.k8s.description":"Red Hat OpenStack Platform 12.0 nova-api","io.k8s.display-name":"Red Hat OpenStack Platform 12.0 nova-api","io.openshift.tags":"rhosp osp openstack osp-12.0","kolla_version":"stable/pike","name":"rhosp12/openstack-nova-api","release":"20180124.1","summary":"Red Hat OpenStack Platform 12.0 nova-api","tripleo-common_version":"7.6.3-23-g4891cfe","url":"https://access.redhat.com/containers/#/registry.access.redhat.com/rhosp12/openstack-nova-api/images/12.0-20180124.1","vcs-ref":"9b31243b7b448eb2fc3b6e2c96935b948f806e98","vcs-type":"git","vendor":"Red Hat, Inc.","version":"12.0","version-release":"12.0-20180124.1"}},"created":"2018-01-25T00:37:48.268558Z","docker_version":"1.12.6","id":"486cbbaf6c6f7d890f9368c86eda3f4ebe3ae982b75098037eb3c3cc6f0e0cdf","os":"linux","parent":"20d0c9c79f9fee83c4094993335b9b321112f13eef60ed9ec1599c7593dccf20"}',
    '{"id":"20d0c9c79f9fee83c4094993335b9b321112f13eef60ed9ec1599c7593dccf20","parent":"47a1014db2116c312736e11adcc236fb77d0ad32457f959cbaec0c3fc9ab1caa","created":"2018-01-24T23:08:25.300741Z","container_config":{"Cmd":["/bin/sh -c rm -f \'/etc/yum.repos.d/rhel-7.4.repo\' \'/etc/yum.repos.d/rhos-optools-12.0.repo\' \'/etc/yum.repos.d/rhos-12.0-container-yum-need_images.repo\'"]}}',
    '{"id":"47a1014db2116c312736e11adcc236fb77d0ad32457f959cbaec0c3fc9ab1caa","parent":"cec66cab6c92a5f7b50ef407b80b83840a0d089b9896257609fd01de3a595824","created":"2018-01-24T22:00:57.807862Z","container_config":{"Cmd":["/bin/sh -c rm -f \'/etc/yum.repos.d/rhel-7.4.repo\' \'/etc/yum.repos.d/rhos-optools-12.0.repo\' \'/etc/yum.repos.d/rhos-12.0-container-yum-need_images.repo\'"]}}',
    '{"id":"cec66cab6c92a5f7b50ef407b80b83840a0d089b9896257609fd01de3a595824","parent":"0e7730eccb3d014b33147b745d771bc0e38a967fd932133a6f5325a3c84282e2","created":"2018-01-24T21:40:32.494686Z","container_config":{"Cmd":["/bin/sh -c rm -f \'/etc/yum.repos.d/rhel-7.4.repo\' \'/etc/yum.repos.d/rhos-optools-12.0.repo\' \'/etc/yum.repos.d/rhos-12.0-container-yum-need_images.repo\'"]}}',
    '{"id":"0e7730eccb3d014b33147b745d771bc0e38a967fd932133a6f5325a3c84282e2","parent":"3e49094c0233214ab73f8e5c204af8a14cfc6f0403384553c17fbac2e9d38345","created":"2017-11-21T16:49:37.292899Z","container_config":{"Cmd":["/bin/sh -c rm -f \'/etc/yum.repos.d/compose-rpms-1.repo\'"]},"author":"Red Hat, Inc."}',
    '{"id":"3e49094c0233214ab73f8e5c204af8a14cfc6f0403384553c17fbac2e9d38345","comment":"Imported from -","created":"2017-11-21T16:47:27.755341705Z","container_config":{"Cmd":[""]}}',
]


class V1(NamedTuple):
    line: int
    id: str
    parent: str
    created: tuple[int, int, int, int, int, int, int]  # time.Date(year, month, day, hour, min, sec, nsec)
    cmd: tuple[str, ...]
    author: str = ""
    comment: str = ""
    throwaway: bool = False
    error: str = ""  # for the rows that expect Schema1FromComponents to fail: which input
    intentional: str | None = None


_RM = (
    "/bin/sh -c rm -f '/etc/yum.repos.d/rhel-7.4.repo' '/etc/yum.repos.d/rhos-optools-12.0.repo' "
    "'/etc/yum.repos.d/rhos-12.0-container-yum-need_images.repo'"
)
SCHEMA1_INITIALIZE = [
    V1(113, "486cbbaf6c6f7d890f9368c86eda3f4ebe3ae982b75098037eb3c3cc6f0e0cdf",
       "20d0c9c79f9fee83c4094993335b9b321112f13eef60ed9ec1599c7593dccf20", (2018, 1, 25, 0, 37, 48, 268558000),
       ("/bin/sh", "-c", "#(nop) ", "USER [nova]")),
    V1(122, "20d0c9c79f9fee83c4094993335b9b321112f13eef60ed9ec1599c7593dccf20",
       "47a1014db2116c312736e11adcc236fb77d0ad32457f959cbaec0c3fc9ab1caa", (2018, 1, 24, 23, 8, 25, 300741000), (_RM,)),
    V1(131, "47a1014db2116c312736e11adcc236fb77d0ad32457f959cbaec0c3fc9ab1caa",
       "cec66cab6c92a5f7b50ef407b80b83840a0d089b9896257609fd01de3a595824", (2018, 1, 24, 22, 0, 57, 807862000), (_RM,)),
    V1(140, "cec66cab6c92a5f7b50ef407b80b83840a0d089b9896257609fd01de3a595824",
       "0e7730eccb3d014b33147b745d771bc0e38a967fd932133a6f5325a3c84282e2", (2018, 1, 24, 21, 40, 32, 494686000), (_RM,)),
    V1(149, "0e7730eccb3d014b33147b745d771bc0e38a967fd932133a6f5325a3c84282e2",
       "3e49094c0233214ab73f8e5c204af8a14cfc6f0403384553c17fbac2e9d38345", (2017, 11, 21, 16, 49, 37, 292899000),
       ("/bin/sh -c rm -f '/etc/yum.repos.d/compose-rpms-1.repo'",), author="Red Hat, Inc."),
    V1(159, "3e49094c0233214ab73f8e5c204af8a14cfc6f0403384553c17fbac2e9d38345", "",
       (2017, 11, 21, 16, 47, 27, 755341705), ("",), comment="Imported from -"),
    V1(171, "", "", (0,) * 7, (), error="history[1:]"),
    V1(175, "", "", (0,) * 7, (), error="empty"),
    V1(179, "", "", (0,) * 7, (), error="invalid history JSON"),
]  # fmt: skip


def from_components(fs_layers: list[str], history: list[str]) -> bytes:
    document: dict[str, Any] = {
        "schemaVersion": 1,
        "architecture": "amd64",
        "fsLayers": [{"blobSum": blob} for blob in fs_layers],
        "history": [{"v1Compatibility": entry} for entry in history],
    }
    return json.dumps(document, indent=3).encode()


def go_time(text: str) -> tuple[int, ...]:
    match = re.fullmatch(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?Z", text)
    assert match is not None, text
    *whole, fraction = match.groups()
    return (*(int(part) for part in whole), int((fraction or "").ljust(9, "0")))


@pytest.mark.parametrize("row", params(SUITE, SCHEMA1_INITIALIZE, "TestSchema1Initialize"))
def test_schema1_initialize(row: V1) -> None:
    if row.error:
        fs_layers, history = {
            "history[1:]": (INIT_FS_LAYERS, INIT_HISTORY[1:]),
            "empty": ([], []),
            "invalid history JSON": (INIT_FS_LAYERS[:1], ["-"]),
        }[row.error]
        with pytest.raises(MalformedError):
            parsed(from_components(fs_layers, history), mt.SCHEMA1)
        return
    manifest = parsed(from_components(INIT_FS_LAYERS, INIT_HISTORY), mt.SCHEMA1)
    assert isinstance(manifest, Schema1Manifest)
    extracted = list(reversed(manifest.layers))  # ExtractedV1Compatibility lists the top first
    layer = extracted[SCHEMA1_INITIALIZE.index(row)]
    v1 = layer.v1
    assert (v1.get("id", ""), v1.get("parent", "")) == (row.id, row.parent)
    assert go_time(v1["created"]) == row.created
    assert tuple(v1["container_config"]["Cmd"]) == row.cmd
    assert (v1.get("author", ""), v1.get("comment", "")) == (row.author, row.comment)
    assert layer.throwaway is row.throwaway


# -- TestSchema1LayerInfos (docker_schema1_test.go:186) ---------------------------------------------------------
class LayerInfo(NamedTuple):
    line: int
    digest: str
    empty_layer: bool
    intentional: str | None = None


_LAYER_INFO_DIGESTS = [
    ("6a5a5368e0c2d3e5909184fa28ddfd56072e7ff3ee9a945876f7eee5896ef5bb", False),
    (EMPTY_LAYER, True), (EMPTY_LAYER, True), (EMPTY_LAYER, True),
    ("1bbf5d58d24c47512e234a5623474acf65ae00d4d1414272a893204f44cc680c", False),
    (EMPTY_LAYER, True),
    ("8f5dc8a4b12c307ac84de90cdd9a7f3915d1be04c9388868ca118831099c67a9", False),
    (EMPTY_LAYER, True), (EMPTY_LAYER, True), (EMPTY_LAYER, True), (EMPTY_LAYER, True),
    ("bbd6b22eb11afce63cc76f6bc41042d99f10d6024c96b655dafba930b8d25909", False),
    ("960e52ecf8200cbd84e70eb2ad8678f4367e50d14357021872c10fa3fc5935fa", False),
    (EMPTY_LAYER, True), (EMPTY_LAYER, True),
]  # fmt: skip
SCHEMA1_LAYER_INFOS = [
    LayerInfo(
        191 + i, digest if digest.startswith("sha256:") else f"sha256:{digest}", empty, intentional=STALE
    )
    for i, (digest, empty) in enumerate(_LAYER_INFO_DIGESTS)
]


@pytest.mark.parametrize("row", params(SUITE, SCHEMA1_LAYER_INFOS, "TestSchema1LayerInfos"))
def test_schema1_layer_infos(row: LayerInfo) -> None:
    assert refused(fixture(SCHEMA1_BY_DOCKER), mt.SCHEMA1_SIGNED) is not None  # the stale signature
    layers = schema1_by_docker().layers  # base first, as LayerInfos lists them
    assert len(layers) == len(SCHEMA1_LAYER_INFOS)
    layer = layers[SCHEMA1_LAYER_INFOS.index(row)]
    assert (str(layer.blob_sum), layer.throwaway) == (row.digest, row.empty_layer)


# -- TestSchema1ImageID (docker_schema1_test.go:362) ------------------------------------------------------------
class ImageID(NamedTuple):
    line: int
    expected: str
    intentional: str | None = None


SCHEMA1_IMAGE_ID = [
    ImageID(368, "9ca4bda0a6b3727a6ffcc43e981cad0f24e2ec79d338f6ba325b4dfd0756fb8f",
            intentional="oci-config-not-docker-config"),
]  # fmt: skip


@pytest.mark.parametrize("row", params(SUITE, SCHEMA1_IMAGE_ID, "TestSchema1ImageID"))
def test_schema1_image_id(row: ImageID) -> None:
    raw = config_bytes(schema1_by_docker(), FIXTURE_DIFF_IDS)
    config = json.loads(raw)
    assert config["rootfs"] == {"type": "layers", "diff_ids": FIXTURE_DIFF_IDS}
    assert set(config) <= {"created", "author", "architecture", "os", "os.version", "os.features", "variant",
                           "config", "rootfs", "history"}  # fmt: skip
    assert "docker_version" not in config and "container_config" not in config
    assert hashlib.sha256(raw).hexdigest() != row.expected  # the OCI config, not the Docker one


ROWS = [*SCHEMA1_FROM_MANIFEST, *SCHEMA1_INITIALIZE, *SCHEMA1_LAYER_INFOS, *SCHEMA1_IMAGE_ID]
