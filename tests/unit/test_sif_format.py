"""The SIF format (``regpeek.formats.sif``): byte-exact layouts, round trips, and hostile headers and tables.

The reference layouts are sylabs/sif's own golden files (``pkg/sif/testdata/TestCreateContainer/*.golden``
at commit 4c44215, v2.24.1), identified here by their git blob SHA-1 as ``git ls-tree`` lists them, so
the files themselves are not copied: our bytes must hash to exactly what the Go library wrote.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regpeek.errors import MalformedError, RegpeekError, UnsupportedError
from regpeek.formats import sif
from regpeek.formats.sif import (
    DESCRIPTOR_SIZE,
    HEADER_SIZE,
    DataType,
    Descriptor,
    FsType,
    Header,
    Layout,
    ObjectInput,
    Partition,
    PartType,
    arch_code,
    arch_name,
    format_uuid,
    parse_descriptors,
    parse_header,
    plan,
)

GO_ZERO_TIME = -62135596800  # time.Time{}.Unix(): what OptCreateDeterministic stores
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def assemble(layout: Layout, objects: list[tuple[int, bytes]]) -> bytes:
    """The file the Go library writes: the head, then each object at its offset (zeros between)."""
    out = bytearray(layout.head())
    for offset, data in objects:
        out += bytes(offset - len(out)) + data
    return bytes(out)


def build(inputs: list[tuple[ObjectInput, bytes]], **options: int) -> bytes:
    layout = Layout(image_id=bytes(16), created_at=GO_ZERO_TIME, launch_script=b"", **options)  # type: ignore[arg-type]
    placed = []
    for obj, data in inputs:
        offset = layout.next_offset(obj)
        layout.record(obj, offset, len(data))
        placed.append((offset, data))
    return assemble(layout, placed)


GENERIC = ObjectInput(DataType.GENERIC)
PARTITION_386 = ObjectInput.partition("386")


@pytest.mark.parametrize(
    ("golden", "blob", "data"),
    [
        ("Empty", "01584e247040c983c82f5263aec325702f4a1d1c", lambda: build([])),
        (
            "EmptyDescriptorLimitedCapacity",
            "4177726deeff73032a23d535c985da87bfdd4f86",
            lambda: build([], capacity=1),
        ),
        (
            "OneDescriptor",
            "74b6489cc62b849d79558a5c92de01b40fb09315",
            lambda: build([(GENERIC, b"\xfa\xce")]),
        ),
        (
            "TwoDescriptors",
            "df09aeef6a3812e707718b9b001c4f657169388e",
            lambda: build([(GENERIC, b"\xfa\xce"), (PARTITION_386, b"\xfe\xed")]),
        ),
        (
            "TwoDescriptorsNotAligned",
            "2855fffe904c54eb5663c2b7f0d2ce135919f174",
            lambda: build(
                [
                    (dataclasses.replace(GENERIC, alignment=0), b"\xfa\xce"),
                    (dataclasses.replace(PARTITION_386, alignment=0), b"\xfe\xed"),
                ]
            ),
        ),
        (
            "TwoDescriptorsAligned",
            "f6f83f34294c36dfdb3b7e2de6cdde7698e128b6",
            lambda: build(
                [
                    (dataclasses.replace(GENERIC, alignment=4), b"\xfa\xce"),
                    (dataclasses.replace(PARTITION_386, alignment=4), b"\xfe\xed"),
                ]
            ),
        ),
        (
            "EmptyLaunchScript",
            "eb31563e5843a74ef6e2820b455a6aec7b07c75f",
            lambda: Layout(
                image_id=bytes(16), created_at=GO_ZERO_TIME, launch_script=b"#!/usr/bin/env launch-script\n"
            ).head(),
        ),
        (
            "EmptyWithID",
            "ebe80064332b53487a2f900ab55a0c69665c7a41",
            lambda: Layout(
                image_id=bytes.fromhex("de170c4336ab44a8bca91ea1a070a274"),
                created_at=GO_ZERO_TIME,
                launch_script=b"",
            ).head(),
        ),
        (
            "EmptyWithTime",
            "43833b9e77b92634e817409aec56cced117475e7",
            lambda: Layout(image_id=bytes(16), created_at=946702800, launch_script=b"").head(),
        ),
    ],
)
def test_bytes_match_the_go_library_golden_files(golden: str, blob: str, data: object) -> None:
    assert callable(data)
    assert git_blob_sha1(data()) == blob, golden


def test_the_layout_is_the_one_siftool_and_apptainer_expect() -> None:
    layout = plan(
        [(ObjectInput(DataType.DEFFILE), 40), (ObjectInput(DataType.GENERIC_JSON, name="oci-config.json"), 100),
         (ObjectInput.partition("arm64"), 5000)],
        image_id=bytes(range(16)),
        created_at=1_700_000_000,
    )  # fmt: skip
    header = layout.header
    assert (header.descriptors_offset, header.descriptors_total, header.descriptors_size) == (
        4096,
        48,
        48 * 585,
    )
    assert header.data_offset == 4096 + 48 * 585 == 32176
    offsets = [(d.offset, d.size, d.size_with_padding) for d in layout.descriptors]
    assert offsets == [(32176, 40, 40), (32216, 100, 100), (32768, 5000, 32768 - 32316 + 5000)]
    assert header.data_size == 32768 + 5000 - 32176
    assert header.arch == b"04\x00" and header.architecture == "arm64"
    assert header.descriptors_free == 45
    assert [d.id for d in layout.descriptors] == [1, 2, 3]
    assert all(d.group == 1 and d.group_id == 0xF0000001 and d.link is None for d in layout.descriptors)
    assert layout.descriptors[2].partition == Partition(FsType.SQUASHFS, PartType.PRIMSYS, b"04\x00")
    head = layout.head()
    assert len(head) == 32176
    assert head[:32] == b"#!/usr/bin/env run-singularity\n\x00"
    assert head[32:48] == b"SIF_MAGIC\x0001\x0004\x00"
    assert head[48:64] == bytes(range(16))


def test_header_and_descriptor_round_trip() -> None:
    layout = plan([(ObjectInput(DataType.SBOM, name="sbom.json", group=None, link=3, extra=b"\x04\x00\x00\x00"), 9)],
                  image_id=os.urandom(16), created_at=-5)  # fmt: skip
    head = layout.head()
    header = parse_header(head[:HEADER_SIZE], len(head) + 9)
    assert header == layout.header
    assert header.encode() == head[:HEADER_SIZE]
    (descriptor,) = parse_descriptors(head[4096:], header, len(head) + 9)
    assert descriptor == layout.descriptors[0]
    assert descriptor.encode() == head[4096 : 4096 + DESCRIPTOR_SIZE]
    assert (descriptor.name, descriptor.group, descriptor.link, descriptor.sbom_format) == (
        "sbom.json",
        None,
        (3, False),
        "spdx-json",
    )
    assert descriptor.created_at == descriptor.modified_at == -5
    assert header.created_at == -5


def test_links_groups_and_type_names() -> None:
    linked = Descriptor(int(DataType.SIGNATURE), True, 5, 0, 0xF0000001, 0, 0, 0, 0, 0,
                        extra=(2).to_bytes(4, "little") + bytes.fromhex("1137E72E6816BFC06D9CAA0D15F3F4F4F14B03B2"))  # fmt: skip
    assert linked.link == (1, True) and linked.group is None
    assert linked.signature == ("SHA-384", "1137E72E6816BFC06D9CAA0D15F3F4F4F14B03B2")
    assert (linked.type_name, linked.type_id) == ("Signature", "signature")
    unknown = dataclasses.replace(linked, data_type=0x5000)
    assert (unknown.type_name, unknown.type_id, unknown.signature) == ("Unknown", "0x5000", None)
    blob = Descriptor(
        int(DataType.OCI_BLOB), True, 1, 0, 0, 0, 0, 0, 0, 0, extra=b"sha256:" + b"a" * 64 + b"\x00"
    )
    assert blob.oci_digest == "sha256:" + "a" * 64
    message = Descriptor(
        int(DataType.CRYPTO_MESSAGE), True, 1, 0, 0, 0, 0, 0, 0, 0, extra=bytes.fromhex("0200000000020000")
    )
    assert message.crypto_message == ("PEM", "RSA-OAEP")


@pytest.mark.parametrize(
    ("arch", "code"),
    [("386", b"01"), ("amd64", b"02"), ("arm", b"03"), ("arm64", b"04"), ("ppc64", b"05"), ("ppc64le", b"06"),
     ("mips", b"07"), ("mipsle", b"08"), ("mips64", b"09"), ("mips64le", b"10"), ("s390x", b"11"),
     ("riscv64", b"12"), ("loong64", b"13")],
)  # fmt: skip
def test_architecture_codes(arch: str, code: bytes) -> None:
    assert arch_code(arch) == code + b"\x00"
    assert arch_name(code + b"\x00") == arch


def test_unknown_architectures() -> None:
    with pytest.raises(UnsupportedError, match="wasm"):
        arch_code("wasm")
    assert arch_name(b"00\x00") == arch_name(b"99\x00") == arch_name(b"\xff\xff\xff") == "unknown"


def test_uuid_format() -> None:
    assert (
        format_uuid(bytes.fromhex("de170c4336ab44a8bca91ea1a070a274"))
        == "de170c43-36ab-44a8-bca9-1ea1a070a274"
    )


def test_layout_refusals() -> None:
    layout = Layout(image_id=bytes(16), created_at=0, capacity=2)
    primary = ObjectInput.partition("amd64")
    layout.record(primary, layout.next_offset(primary), 10)
    with pytest.raises(ValueError, match="primary partition"):
        layout.record(primary, layout.next_offset(primary), 10)
    data = ObjectInput.partition("amd64", part_type=PartType.DATA)
    with pytest.raises(ValueError, match="expected"):
        layout.record(data, layout.next_offset(data) + 1, 10)
    layout.record(data, layout.next_offset(data), 10)
    with pytest.raises(ValueError, match="no free descriptor"):
        layout.next_offset(GENERIC)
    with pytest.raises(ValueError, match="name"):
        ObjectInput(DataType.GENERIC, name="x" * 129)
    with pytest.raises(ValueError, match="launch script"):
        Layout(image_id=bytes(16), created_at=0, launch_script=b"#" * 32)
    with pytest.raises(ValueError, match="16 bytes"):
        Layout(image_id=b"short", created_at=0)


# -- hostile input ------------------------------------------------------------------------------
def valid_file() -> bytes:
    layout = Layout(image_id=bytes(16), created_at=0)
    data = ObjectInput(DataType.GENERIC, name="x")
    layout.record(data, layout.next_offset(data), 5)
    return layout.head() + b"hello"


def with_header(**fields: int | bytes) -> bytes:
    image = valid_file()
    header = dataclasses.replace(Header.decode(image[:HEADER_SIZE]), **fields)  # type: ignore[arg-type]
    return header.encode() + image[HEADER_SIZE:]


def with_descriptor(**fields: int | bool) -> bytes:
    image = valid_file()
    at = 4096
    descriptor = dataclasses.replace(Descriptor.decode(image[at : at + DESCRIPTOR_SIZE]), **fields)  # type: ignore[arg-type]
    return image[:at] + descriptor.encode() + image[at + DESCRIPTOR_SIZE :]


def parse_all(image: bytes) -> list[Descriptor]:
    header = parse_header(image[:HEADER_SIZE], len(image))
    return parse_descriptors(image[header.descriptors_offset :], header, len(image))


def test_the_valid_file_parses() -> None:
    (descriptor,) = parse_all(valid_file())
    assert (descriptor.name, descriptor.offset, descriptor.size) == ("x", 32176, 5)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (b"", MalformedError, "the header alone"),
        (b"#!/usr/bin/env run-singularity\n" + bytes(60), MalformedError, "the header alone"),
        (bytes(HEADER_SIZE), MalformedError, "SIF_MAGIC"),
        (valid_file().replace(b"SIF_MAGIC", b"SIF_MAGIK", 1), MalformedError, "SIF_MAGIC"),
        (with_header(version=b"02\x00"), UnsupportedError, "'02'"),
        (with_header(descriptors_total=-1), MalformedError, "-1 descriptors"),
        (with_header(descriptors_total=2**40), MalformedError, "descriptors"),
        (with_header(descriptors_total=65537), MalformedError, "at most 65536"),
        (with_header(descriptors_free=49), MalformedError, "49 free"),
        (with_header(descriptors_free=-1), MalformedError, "free"),
        (with_header(descriptors_size=585 * 47), MalformedError, "need"),
        (with_header(descriptors_offset=2**62), MalformedError, "outside the file"),
        (with_header(descriptors_offset=-4096), MalformedError, "outside the file"),
        (with_header(descriptors_offset=8), MalformedError, "outside the file"),
        (valid_file()[:30000], MalformedError, "outside the file"),
        (with_header(data_offset=2**63 - 1), MalformedError, "data section"),
        (with_header(data_size=10**9), MalformedError, "data section"),
        (with_descriptor(offset=2**63 - 1), MalformedError, "outside the file"),
        (with_descriptor(offset=-1), MalformedError, "offset -1"),
        (with_descriptor(size=6), MalformedError, "outside the file"),
        (with_descriptor(size=-5), MalformedError, "size -5"),
        (with_descriptor(size=2**63 - 1), MalformedError, "outside the file"),
    ],
)
def test_hostile_files_are_refused(image: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_all(image)


def test_two_objects_with_one_id_are_refused() -> None:
    image = valid_file()
    first = image[4096 : 4096 + DESCRIPTOR_SIZE]
    image = image[: 4096 + DESCRIPTOR_SIZE] + first + image[4096 + 2 * DESCRIPTOR_SIZE :]
    with pytest.raises(MalformedError, match="repeats"):
        parse_all(image)


def test_unused_descriptors_are_not_checked() -> None:
    """Go skips unused descriptors; so do we, whatever garbage they hold."""
    image = valid_file()
    garbage = Descriptor(int(DataType.GENERIC), False, 9, 0, 0, -1, 2**62, 0, 0, 0).encode()
    image = image[: 4096 + DESCRIPTOR_SIZE] + garbage + image[4096 + 2 * DESCRIPTOR_SIZE :]
    assert [d.id for d in parse_all(image)] == [1]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_files_raise_only_regpeek_errors(data: st.DataObject) -> None:
    image = bytearray(valid_file())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.sampled_from([*range(HEADER_SIZE), *range(4096, 4096 + DESCRIPTOR_SIZE)]))
        image[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.sampled_from([len(image), *range(0, len(image), 997)]))
    try:
        descriptors = parse_all(bytes(image[:cut]))
    except RegpeekError:
        return
    for descriptor in descriptors:  # what parses lies inside the file and can be described
        assert 0 <= descriptor.offset <= descriptor.offset + descriptor.size <= cut
        assert isinstance(descriptor.type_name, str) and isinstance(descriptor.name, str)
        _ = (descriptor.partition, descriptor.signature, descriptor.link, descriptor.group)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=HEADER_SIZE + 64), st.integers(0, 2**64))
def test_arbitrary_headers_raise_only_regpeek_errors(raw: bytes, file_size: int) -> None:
    try:
        header = parse_header(raw, file_size)
    except RegpeekError:
        return
    assert header.magic == sif.MAGIC
    assert header.descriptors_offset + header.descriptors_total * DESCRIPTOR_SIZE <= file_size
