"""User.has_2fa and what a User shows when logged."""

from __future__ import annotations

from sandex.accounts import TotpSetup, User

NOW = 1_800_000_000_000
HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$ZGlnZXN0ZGlnZXN0"
ENVELOPE = b"sealed-totp-secret-envelope"


def make_user(totp: TotpSetup | None) -> User:
    return User(id=7, email="alice@example.com", password_hash=HASH, created_at=NOW, totp=totp)


def test_no_totp_means_no_2fa() -> None:
    assert make_user(None).has_2fa is False


def test_enrolled_but_unconfirmed_totp_is_not_2fa() -> None:
    pending = TotpSetup(secret_envelope=ENVELOPE, enrolled_at=NOW)
    assert make_user(pending).has_2fa is False


def test_confirmed_totp_is_2fa() -> None:
    confirmed = TotpSetup(secret_envelope=ENVELOPE, enrolled_at=NOW, confirmed_at=NOW + 60_000)
    assert make_user(confirmed).has_2fa is True


def test_repr_does_not_leak_the_password_hash_or_the_sealed_secret() -> None:
    totp = TotpSetup(secret_envelope=ENVELOPE, enrolled_at=NOW, confirmed_at=NOW)
    shown = repr(make_user(totp))
    assert "alice@example.com" in shown
    assert HASH not in shown
    assert "argon2" not in shown
    assert repr(ENVELOPE) not in shown
    assert "sealed-totp" not in shown
