"""normalize_email: one normal form per address, clear refusals for malformed input."""

from __future__ import annotations

import pytest

from sandex.accounts import AccountsError, InvalidEmail, normalize_email


@pytest.mark.parametrize(
    "text",
    [
        "Alice@Example.COM",
        "alice@example.com",
        "ALICE@EXAMPLE.COM",
        "  Alice@Example.COM  ",
        "\talice@example.com\n",
    ],
)
def test_case_and_surrounding_spaces_give_one_account(text: str) -> None:
    assert normalize_email(text) == "alice@example.com"


def test_normal_form_is_stable() -> None:
    once = normalize_email("Bob.Smith+Trades@Mail.Example.ORG")
    assert once == "bob.smith+trades@mail.example.org"
    assert normalize_email(once) == once


LONG_ADDRESS = "a" * 250 + "@example.com"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("alice.example.com", id="missing-at"),
        pytest.param("@example.com", id="empty-local-part"),
        pytest.param("ali ce@example.com", id="space-in-local-part"),
        pytest.param("alice@exa mple.com", id="space-in-domain"),
        pytest.param("alice@example", id="domain-without-dot"),
        pytest.param("alice@", id="empty-domain"),
        pytest.param("alice@@example.com", id="two-at-signs"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param(LONG_ADDRESS, id="too-long"),
    ],
)
def test_malformed_addresses_are_refused_quoting_the_input(text: str) -> None:
    with pytest.raises(InvalidEmail) as info:
        normalize_email(text)
    assert repr(text) in str(info.value)
    assert isinstance(info.value, AccountsError)
