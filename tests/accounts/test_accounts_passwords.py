"""Password rules and argon2id hashing."""

from __future__ import annotations

import pytest

from sandex.accounts import (
    DEFAULT_HASH_PARAMS,
    HashParams,
    PasswordHasher,
    WeakPassword,
    WrongPassword,
    check_password_strength,
)

FAST = HashParams(time_cost=1, memory_kib=1024)
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(FAST)


@pytest.fixture(scope="module")
def stored(hasher: PasswordHasher) -> str:
    return hasher.hash(PASSWORD)


# --- strength -------------------------------------------------------------------------


def test_eleven_characters_are_refused_and_the_message_says_12() -> None:
    with pytest.raises(WeakPassword, match=r"\b12\b"):
        check_password_strength("abcdefghijk")


def test_exactly_twelve_characters_are_enough() -> None:
    check_password_strength("abcdefghijkl")


def test_over_1024_characters_are_refused() -> None:
    long_password = ("abcdefghij" * 103)[:1025]
    with pytest.raises(WeakPassword, match=r"\b1024\b"):
        check_password_strength(long_password)


def test_exactly_1024_characters_are_accepted() -> None:
    check_password_strength(("abcdefghij" * 103)[:1024])


@pytest.mark.parametrize(
    "password",
    ["aaaaaaaaaaaa", "abababababab", "abcabcabcabc", "1" * 40, "xyz" * 20],
)
def test_one_to_three_distinct_characters_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword):
        check_password_strength(password)


def test_four_distinct_characters_are_not_called_repetitive() -> None:
    check_password_strength("abcdabcdabcd")


@pytest.mark.parametrize(
    ("password", "email"),
    [
        ("my alice@example.com pass", "alice@example.com"),
        ("MY ALICE@EXAMPLE.COM PASS", "alice@example.com"),
        ("my alice@example.com pass", "Alice@Example.COM"),
        ("alice@example.com", "alice@example.com"),
    ],
)
def test_a_password_containing_the_email_is_refused(password: str, email: str) -> None:
    with pytest.raises(WeakPassword, match="e-mail"):
        check_password_strength(password, email=email)


def test_the_same_password_is_fine_without_that_email() -> None:
    check_password_strength("my alice@example.com pass")
    check_password_strength("my alice@example.com pass", email="bob@example.com")


# --- hashing --------------------------------------------------------------------------


def test_hash_is_argon2id_with_the_given_parameters(stored: str) -> None:
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert PASSWORD not in stored


def test_verify_accepts_the_right_password(hasher: PasswordHasher, stored: str) -> None:
    hasher.verify(stored, PASSWORD)


@pytest.mark.parametrize(
    "attempt",
    ["correct horse battery stapl", "Correct horse battery staple", "", PASSWORD + " "],
)
def test_verify_refuses_a_wrong_password(hasher: PasswordHasher, stored: str, attempt: str) -> None:
    with pytest.raises(WrongPassword):
        hasher.verify(stored, attempt)


def _corruptions(good: str) -> dict[str, str]:
    last = "A" if good[-1] != "A" else "B"
    return {
        "empty": "",
        "garbage": "not a hash at all",
        "truncated": good[:-6],
        "digest-changed": good[:-1] + last,
        "unknown-variant": good.replace("$argon2id$", "$argon2xx$"),
        "bad-parameters": good.replace("m=1024", "m=lots"),
    }


@pytest.mark.parametrize(
    "kind",
    ["empty", "garbage", "truncated", "digest-changed", "unknown-variant", "bad-parameters"],
)
def test_verify_refuses_a_corrupted_hash_with_wrong_password(
    hasher: PasswordHasher, stored: str, kind: str
) -> None:
    with pytest.raises(WrongPassword):
        hasher.verify(_corruptions(stored)[kind], PASSWORD)


def test_verify_refuses_a_hash_corrupted_with_a_non_ascii_character(
    hasher: PasswordHasher, stored: str
) -> None:
    # A stored hash damaged into non-ASCII text (mojibake in the database) is still just a
    # hash that does not match: the login must fail with WrongPassword, not crash.
    with pytest.raises(WrongPassword):
        hasher.verify(stored[:-1] + "é", PASSWORD)


def test_the_message_does_not_say_whether_email_or_password_was_wrong(
    hasher: PasswordHasher, stored: str
) -> None:
    with pytest.raises(WrongPassword) as wrong_password:
        hasher.verify(stored, "not the password at all")
    with pytest.raises(WrongPassword) as bad_hash:
        hasher.verify("garbage", PASSWORD)
    message = str(wrong_password.value)
    assert message == str(bad_hash.value)
    assert "e-mail" in message
    assert "password" in message
    assert "or" in message.split()


def test_two_hashes_of_one_password_differ_and_both_verify(
    hasher: PasswordHasher, stored: str
) -> None:
    again = hasher.hash(PASSWORD)
    assert again != stored
    assert again.split("$")[4] != stored.split("$")[4]  # the salt
    hasher.verify(again, PASSWORD)
    hasher.verify(stored, PASSWORD)


def test_needs_rehash_is_false_for_its_own_hash(hasher: PasswordHasher, stored: str) -> None:
    assert hasher.needs_rehash(stored) is False


@pytest.mark.parametrize(
    "other",
    [
        HashParams(time_cost=2, memory_kib=1024),
        HashParams(time_cost=1, memory_kib=2048),
        HashParams(time_cost=1, memory_kib=1024, parallelism=2),
    ],
)
def test_needs_rehash_is_true_for_a_hash_made_with_other_parameters(
    hasher: PasswordHasher, other: HashParams
) -> None:
    old = PasswordHasher(other).hash(PASSWORD)
    assert hasher.needs_rehash(old) is True
    hasher.verify(old, PASSWORD)  # still verifies, so the caller can rehash at login


@pytest.mark.parametrize("attempt", [PASSWORD, "anything", "", "sandex decoy password"])
def test_burn_never_raises(hasher: PasswordHasher, attempt: str) -> None:
    assert hasher.burn(attempt) is None


def test_default_parameters_are_argon2id_m32768_t2_p1() -> None:
    hasher = PasswordHasher()
    assert hasher.params == DEFAULT_HASH_PARAMS
    produced = hasher.hash(PASSWORD)
    assert produced.startswith("$argon2id$v=19$m=32768,t=2,p=1$")
    assert hasher.needs_rehash(produced) is False
