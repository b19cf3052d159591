"""Single-use recovery codes: generation, normalisation, keyed digests."""

from __future__ import annotations

import re

import pytest

from sandex.accounts import (
    RECOVERY_CODE_COUNT,
    new_recovery_codes,
    normalize_recovery_code,
    recovery_code_digest,
)

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
"""Lower-case letters and digits without the look-alikes 0, 1, i, l and o."""
CODE_SHAPE = re.compile(rf"[{ALPHABET}]{{5}}-[{ALPHABET}]{{5}}")
PEPPER = b"p" * 32


def test_ten_distinct_codes_of_the_documented_shape() -> None:
    codes = new_recovery_codes()
    assert RECOVERY_CODE_COUNT == 10
    assert len(codes) == 10
    assert len(set(codes)) == 10
    for code in codes:
        assert CODE_SHAPE.fullmatch(code), code


def test_codes_never_use_look_alike_characters_and_differ_between_calls() -> None:
    batches = [new_recovery_codes() for _ in range(20)]
    every = [code for batch in batches for code in batch]
    assert len(set(every)) == len(every)
    used = set("".join(every).replace("-", ""))
    assert used <= set(ALPHABET)
    assert not used & set("01ilo")


def test_generated_codes_are_already_normal() -> None:
    for code in new_recovery_codes():
        assert normalize_recovery_code(code) == code


@pytest.mark.parametrize(
    "text",
    [
        "k7m2p-x9q4r",
        "K7M2P-X9Q4R",
        "k7m2px9q4r",
        "K7M2PX9Q4R",
        "  k7m2p-x9q4r  ",
        "\tK7m2P-x9Q4r\n",
    ],
)
def test_normalize_accepts_case_missing_dash_and_surrounding_spaces(text: str) -> None:
    assert normalize_recovery_code(text) == "k7m2p-x9q4r"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("k7m2p-x9q4", id="too-short"),
        pytest.param("k7m2p-x9q4rr", id="too-long"),
        pytest.param("k7m2-px9q4r", id="dash-misplaced"),
        pytest.param("k7m2p--x9q4r", id="two-dashes"),
        pytest.param("k7m2p_x9q4r", id="underscore"),
        pytest.param("k7m2p-x9q40", id="zero"),
        pytest.param("k7m2p-x9q4l", id="letter-l"),
        pytest.param("k7m2p-x9q4o", id="letter-o"),
        pytest.param("123456", id="a-totp-code"),
        pytest.param("k7m2p-x9q4r-k7m2p", id="three-groups"),
    ],
)
def test_normalize_rejects_wrong_shapes(text: str) -> None:
    assert normalize_recovery_code(text) is None


def test_digest_is_stable_for_one_pepper_and_code() -> None:
    assert recovery_code_digest(PEPPER, "k7m2p-x9q4r") == recovery_code_digest(
        PEPPER, "k7m2p-x9q4r"
    )


def test_digest_depends_on_the_pepper() -> None:
    assert recovery_code_digest(PEPPER, "k7m2p-x9q4r") != recovery_code_digest(
        b"q" * 32, "k7m2p-x9q4r"
    )


def test_digest_depends_on_the_code() -> None:
    assert recovery_code_digest(PEPPER, "k7m2p-x9q4r") != recovery_code_digest(
        PEPPER, "k7m2p-x9q4s"
    )


def test_digest_does_not_contain_the_code() -> None:
    for code in new_recovery_codes():
        digest = recovery_code_digest(PEPPER, code)
        assert isinstance(digest, bytes)
        assert len(digest) == 32
        assert code.encode() not in digest
        assert code.replace("-", "").encode() not in digest
        assert code not in digest.hex()
