"""TOTP: secrets, provisioning URIs, and matching codes with a ±1 step window and no replay."""

from __future__ import annotations

import base64
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest

from sandex.accounts import InvalidCode, match_totp, new_totp_secret, provisioning_uri

SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
STEP_MS = 30_000
NOW = 1_800_000_012_345
"""Fixed 'now' in epoch ms, 12.345 s into its 30-second step."""
CURRENT = NOW // STEP_MS


def code_at(offset_steps: int, now: int = NOW, secret: str = SECRET) -> str:
    """The code an authenticator app shows ``offset_steps`` steps away from ``now``."""
    return str(pyotp.TOTP(secret).at(now // 1000 + 30 * offset_steps))


def test_the_fixed_codes_around_now_are_all_different() -> None:
    # Guards the tests below: with this secret and time no two nearby steps share a code.
    codes = [code_at(k) for k in range(-3, 4)]
    assert len(set(codes)) == len(codes)


# --- secrets and URIs -----------------------------------------------------------------


def test_new_secret_is_base32_of_160_bits() -> None:
    secret = new_totp_secret()
    assert re.fullmatch(r"[A-Z2-7]+", secret)
    assert len(base64.b32decode(secret)) == 20


def test_new_secrets_are_unique() -> None:
    secrets = {new_totp_secret() for _ in range(50)}
    assert len(secrets) == 50


def test_provisioning_uri_is_an_otpauth_totp_uri_for_sandex_and_the_email() -> None:
    uri = provisioning_uri(SECRET, "alice@example.com")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth"
    assert parts.netloc == "totp"
    assert unquote(parts.path) == "/Sandex:alice@example.com"
    query = parse_qs(parts.query)
    assert query["issuer"] == ["Sandex"]
    assert query["secret"] == [SECRET]


def test_provisioning_uri_round_trips_through_an_authenticator_parser() -> None:
    parsed = pyotp.parse_uri(provisioning_uri(SECRET, "alice@example.com"))
    assert isinstance(parsed, pyotp.TOTP)
    assert parsed.secret == SECRET
    assert parsed.name == "alice@example.com"
    assert parsed.issuer == "Sandex"
    assert parsed.at(NOW // 1000) == code_at(0)


# --- matching -------------------------------------------------------------------------


def test_the_current_code_is_accepted_and_its_step_returned() -> None:
    assert match_totp(SECRET, code_at(0), now=NOW, last_step=None) == CURRENT


def test_a_fresh_secret_matches_its_current_code() -> None:
    secret = new_totp_secret()
    assert match_totp(secret, code_at(0, secret=secret), now=NOW, last_step=None) == CURRENT


@pytest.mark.parametrize("offset", [-1, 1])
def test_the_previous_and_next_step_are_accepted(offset: int) -> None:
    assert match_totp(SECRET, code_at(offset), now=NOW, last_step=None) == CURRENT + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_two_or_more_steps_away_are_refused(offset: int) -> None:
    with pytest.raises(InvalidCode, match="wrong"):
        match_totp(SECRET, code_at(offset), now=NOW, last_step=None)


def test_step_boundaries_follow_30_second_steps() -> None:
    start = CURRENT * STEP_MS
    # The first and last millisecond of the step both use the step's own code.
    assert match_totp(SECRET, code_at(0), now=start, last_step=None) == CURRENT
    assert match_totp(SECRET, code_at(0), now=start + STEP_MS - 1, last_step=None) == CURRENT
    # One millisecond later the code is the previous step's, still accepted...
    assert match_totp(SECRET, code_at(0), now=start + STEP_MS, last_step=None) == CURRENT
    # ...and one full step after that it is two steps old: refused.
    with pytest.raises(InvalidCode):
        match_totp(SECRET, code_at(0), now=start + 2 * STEP_MS, last_step=None)


def test_a_wrong_code_is_refused() -> None:
    wrong = "000000" if code_at(0) != "000000" else "111111"
    assert wrong not in {code_at(k) for k in (-1, 0, 1)}
    with pytest.raises(InvalidCode, match="wrong 2FA code"):
        match_totp(SECRET, wrong, now=NOW, last_step=None)


def test_surrounding_whitespace_is_ignored() -> None:
    assert match_totp(SECRET, f"  {code_at(0)}\n", now=NOW, last_step=None) == CURRENT


@pytest.mark.parametrize(
    "text",
    ["", "12345", "1234567", "abcdef", "12 345", "123-456", "١٢٣٤٥٦", "12345a", "+12345"],
)
def test_input_that_is_not_six_digits_is_refused(text: str) -> None:
    with pytest.raises(InvalidCode, match="6 digits"):
        match_totp(SECRET, text, now=NOW, last_step=None)


# --- replay ---------------------------------------------------------------------------


def test_the_same_code_cannot_be_used_twice_at_the_same_moment() -> None:
    step = match_totp(SECRET, code_at(0), now=NOW, last_step=None)
    with pytest.raises(InvalidCode, match="already used"):
        match_totp(SECRET, code_at(0), now=NOW, last_step=step)


def test_the_same_code_cannot_be_reused_later_inside_its_window() -> None:
    code = code_at(0)
    step = match_totp(SECRET, code, now=NOW, last_step=None)
    later = NOW + STEP_MS  # the code is now the previous step's: still inside the window
    assert code == code_at(-1, now=later)
    with pytest.raises(InvalidCode, match="already used"):
        match_totp(SECRET, code, now=later, last_step=step)


def test_a_code_of_the_next_step_used_early_cannot_be_used_again() -> None:
    early = code_at(1)
    step = match_totp(SECRET, early, now=NOW, last_step=None)
    assert step == CURRENT + 1
    for now in (NOW, NOW + STEP_MS, NOW + 2 * STEP_MS):
        with pytest.raises(InvalidCode, match="already used"):
            match_totp(SECRET, early, now=now, last_step=step)


def test_an_older_code_cannot_be_used_after_a_newer_one() -> None:
    step = match_totp(SECRET, code_at(0), now=NOW, last_step=None)
    with pytest.raises(InvalidCode, match="already used"):
        match_totp(SECRET, code_at(-1), now=NOW, last_step=step)
    newer = match_totp(SECRET, code_at(1), now=NOW, last_step=step)
    assert newer == CURRENT + 1
    with pytest.raises(InvalidCode, match="already used"):
        match_totp(SECRET, code_at(0), now=NOW, last_step=newer)


def test_the_next_code_is_accepted_after_one_was_used() -> None:
    step = match_totp(SECRET, code_at(0), now=NOW, last_step=None)
    later = NOW + STEP_MS
    assert match_totp(SECRET, code_at(0, now=later), now=later, last_step=step) == step + 1


def test_a_last_step_far_in_the_past_does_not_block_the_current_code() -> None:
    assert match_totp(SECRET, code_at(0), now=NOW, last_step=CURRENT - 2) == CURRENT
    assert match_totp(SECRET, code_at(-1), now=NOW, last_step=CURRENT - 2) == CURRENT - 1
