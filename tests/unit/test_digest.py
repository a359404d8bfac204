"""Digests: parse and validate, compute, verify incrementally and in one go."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regpeek.errors import DigestMismatchError, SizeMismatchError, UsageError, VerificationError
from regpeek.formats.digest import BlobCheck, Digest, DigestVerifier, compute, is_digest, verify_bytes

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HELLO_SHA256 = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
EMPTY_SHA512 = (
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)


@pytest.mark.parametrize(
    ("text", "algorithm", "hexpart"),
    [
        pytest.param(EMPTY_SHA256, "sha256", EMPTY_SHA256[7:], id="sha256"),
        pytest.param(EMPTY_SHA512, "sha512", EMPTY_SHA512[7:], id="sha512"),
        pytest.param("sha256:" + "0" * 64, "sha256", "0" * 64, id="all-zero"),
    ],
)
def test_parse_valid(text: str, algorithm: str, hexpart: str) -> None:
    digest = Digest.parse(text)
    assert (digest.algorithm, digest.hex) == (algorithm, hexpart)
    assert str(digest) == text
    assert is_digest(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("sha256", id="no-colon"),
        pytest.param("sha256:", id="no-hex"),
        pytest.param(":" + "a" * 64, id="no-algorithm"),
        pytest.param("sha256:" + "a" * 63, id="sha256-short"),
        pytest.param("sha256:" + "a" * 65, id="sha256-long"),
        pytest.param("sha256:" + "A" * 64, id="sha256-uppercase"),
        pytest.param("sha256:" + "g" * 64, id="sha256-not-hex"),
        pytest.param("sha512:" + "a" * 64, id="sha512-short"),
        pytest.param("md5:" + "a" * 32, id="md5-unsupported"),
        pytest.param("sha384:" + "a" * 96, id="sha384-unsupported"),
        pytest.param("SHA256:" + "a" * 64, id="uppercase-algorithm"),
        pytest.param(" sha256:" + "a" * 64, id="leading-space"),
        pytest.param("sha256:" + "a" * 64 + " ", id="trailing-space"),
        pytest.param("sha256:../../" + "a" * 58, id="path-traversal"),
        pytest.param("sha256:" + "a" * 32 + "/" + "a" * 31, id="slash"),
        # Python's `$` also matches before a final newline: the digest must still be refused
        # (CVE-2024-3727: digests go into URLs and paths).
        pytest.param("sha256:" + "a" * 64 + "\n", id="trailing-newline"),
    ],
)
def test_parse_invalid(text: str) -> None:
    with pytest.raises(UsageError):
        Digest.parse(text)
    assert not is_digest(text)


@pytest.mark.parametrize(
    ("data", "algorithm", "expected"),
    [
        pytest.param(b"", "sha256", EMPTY_SHA256, id="empty-sha256"),
        pytest.param(b"hello", "sha256", HELLO_SHA256, id="hello-sha256"),
        pytest.param(b"", "sha512", EMPTY_SHA512, id="empty-sha512"),
    ],
)
def test_compute(data: bytes, algorithm: str, expected: str) -> None:
    assert str(compute(data, algorithm)) == expected


def test_compute_defaults_to_sha256() -> None:
    assert compute(b"hello") == Digest.parse(HELLO_SHA256)


def test_digests_order_and_compare_by_value() -> None:
    a, b = Digest("sha256", "0" * 64), Digest("sha256", "1" * 64)
    assert a < b
    assert Digest.parse("sha256:" + "0" * 64) == a
    assert len({a, Digest("sha256", "0" * 64)}) == 1


def test_hasher_uses_the_digest_algorithm() -> None:
    verifier = Digest.parse(EMPTY_SHA512).hasher()
    assert verifier.algorithm == "sha512"
    assert str(verifier.digest()) == EMPTY_SHA512


def test_verifier_rejects_unknown_algorithm() -> None:
    with pytest.raises(UsageError):
        DigestVerifier("md5")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8), st.sampled_from(["sha256", "sha512"]))
def test_incremental_equals_one_shot(chunks: list[bytes], algorithm: str) -> None:
    data = b"".join(chunks)
    verifier = DigestVerifier(algorithm)
    for chunk in chunks:
        verifier.update(chunk)
    assert verifier.size == len(data)
    assert verifier.digest() == compute(data, algorithm)
    assert verifier.digest().hex == hashlib.new(algorithm, data).hexdigest()
    verifier.verify("blob", compute(data, algorithm), len(data))  # no exception


def test_verify_digest_mismatch_names_expected_and_actual() -> None:
    expected = Digest.parse(EMPTY_SHA256)
    verifier = DigestVerifier()
    verifier.update(b"hello")
    with pytest.raises(DigestMismatchError) as info:
        verifier.verify("blob x", expected)
    assert info.value.expected == Digest.parse(EMPTY_SHA256)  # Digest values, not strings
    assert info.value.actual == Digest.parse(HELLO_SHA256)
    assert info.value.what == "blob x"
    assert str(info.value) == f"digest mismatch for blob x: expected {EMPTY_SHA256}, got {HELLO_SHA256}"
    assert isinstance(info.value, VerificationError)
    assert info.value.exit_code == 5


def test_verify_size_mismatch_names_expected_and_actual() -> None:
    verifier = DigestVerifier()
    verifier.update(b"hello")
    with pytest.raises(SizeMismatchError) as info:
        verifier.verify("blob x", Digest.parse(HELLO_SHA256), size=4)
    assert (info.value.expected, info.value.actual) == (4, 5)
    assert str(info.value) == "size mismatch for blob x: expected 4 bytes, got 5"
    assert info.value.exit_code == 5


@pytest.mark.parametrize(
    ("data", "digest", "size", "error"),
    [
        pytest.param(b"hello", HELLO_SHA256, 5, None, id="ok"),
        pytest.param(b"hello", HELLO_SHA256, None, None, id="ok-no-size"),
        pytest.param(b"hello", EMPTY_SHA256, None, DigestMismatchError, id="wrong-digest"),
        pytest.param(b"hello", HELLO_SHA256, 6, SizeMismatchError, id="wrong-size"),
        pytest.param(b"", EMPTY_SHA512, 0, None, id="sha512-ok"),
    ],
)
def test_verify_bytes(data: bytes, digest: str, size: int | None, error: type[Exception] | None) -> None:
    if error is None:
        verify_bytes("x", data, Digest.parse(digest), size)
    else:
        with pytest.raises(error):
            verify_bytes("x", data, Digest.parse(digest), size)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_parse_arbitrary_text_is_digest_or_usage_error(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except UsageError:
        return
    assert str(digest) == text


# -- messages, the one-argument constructor, BlobCheck and copy ---------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nocolon", "invalid digest 'nocolon': expected algorithm:hex"),
        ("md5:" + "a" * 32, f"unsupported digest algorithm 'md5' in 'md5:{'a' * 32}'"),
        ("sha256:" + "a" * 63, f"invalid digest 'sha256:{'a' * 63}': sha256 needs 64 lowercase hex digits"),
        (
            "sha512:" + "A" * 128,
            f"invalid digest 'sha512:{'A' * 128}': sha512 needs 128 lowercase hex digits",
        ),
    ],
)
def test_parse_errors_say_why(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        Digest.parse(text)
    assert str(info.value) == message


def test_one_argument_constructor_parses_and_validates() -> None:
    assert Digest(HELLO_SHA256) == Digest("sha256", HELLO_SHA256[7:]) == Digest.parse(HELLO_SHA256)
    assert repr(Digest(HELLO_SHA256)) == f"Digest({HELLO_SHA256!r})"
    with pytest.raises(UsageError, match="invalid digest"):
        Digest("sha256:nope")


def test_verifier_error_names_the_algorithm() -> None:
    with pytest.raises(UsageError) as info:
        DigestVerifier("md5")
    assert str(info.value) == "unsupported digest algorithm 'md5'"


def test_verify_bytes_names_what() -> None:
    with pytest.raises(DigestMismatchError) as info:
        verify_bytes("config of x", b"hello", Digest.parse(EMPTY_SHA256))
    assert info.value.what == "config of x"
    assert str(info.value).startswith("digest mismatch for config of x:")


def test_verifier_copy_is_independent_and_in_the_same_state() -> None:
    verifier = DigestVerifier("sha512")
    verifier.update(b"hel")
    twin = verifier.copy()
    assert (twin.algorithm, twin.size) == ("sha512", 3)
    twin.update(b"lo")
    verifier.update(b"p!")
    assert twin.digest() == compute(b"hello", "sha512") and twin.size == 5
    assert verifier.digest() == compute(b"help!", "sha512") and verifier.size == 5


HELLO = Digest.parse(HELLO_SHA256)


def _verified(check: BlobCheck) -> bool:
    """``check.verified`` read afresh (mypy would keep a narrowing across ``add``)."""
    return check.verified


def test_blob_check_verifies_at_the_last_byte_of_a_known_size() -> None:
    check = BlobCheck(HELLO, 5, "blob h")
    assert (check.digest, check.size, check.what, check.verified, check.seen) == (
        HELLO,
        5,
        "blob h",
        False,
        0,
    )
    assert check.add(b"he") is False and check.seen == 2 and not _verified(check)
    assert check.add(b"llo") is True and _verified(check) and check.seen == 5
    assert check.add(b"") is False  # already verified: said once
    check.finish()  # nothing left to verify


def test_blob_check_refuses_a_byte_too_many_at_once() -> None:
    check = BlobCheck(HELLO, 5, "blob h")
    check.add(b"hell")
    with pytest.raises(SizeMismatchError) as info:
        check.add(b"o!")
    assert (info.value.expected, info.value.actual, info.value.what) == (5, 6, "blob h")


def test_blob_check_refuses_the_wrong_last_byte_before_it_is_handed_on() -> None:
    check = BlobCheck(HELLO, 5, "blob h")
    check.add(b"hell")
    with pytest.raises(DigestMismatchError) as info:
        check.add(b"O")
    assert (info.value.expected, info.value.what) == (HELLO, "blob h")
    assert not _verified(check)


def test_blob_check_finish_refuses_a_short_blob() -> None:
    check = BlobCheck(HELLO, 5, "blob h")
    check.add(b"hell")
    with pytest.raises(SizeMismatchError) as info:
        check.finish()
    assert (info.value.expected, info.value.actual) == (5, 4)
    assert not _verified(check)


def test_blob_check_of_unknown_size_verifies_at_finish() -> None:
    check = BlobCheck(HELLO, None, "blob h")
    assert check.add(b"hello") is False and not _verified(check)
    check.finish()
    assert _verified(check)
    wrong = BlobCheck(HELLO, None, "blob h")
    wrong.add(b"hellO")
    with pytest.raises(DigestMismatchError) as info:
        wrong.finish()
    assert info.value.what == "blob h"
    sha512 = BlobCheck(compute(b"x", "sha512"), 1, "b")
    assert sha512.add(b"x") is True
