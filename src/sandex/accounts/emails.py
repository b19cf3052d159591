"""E-mail address validation and normalisation."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from sandex.accounts.errors import InvalidEmail

__all__ = ["normalize_email"]


def normalize_email(text: str) -> str:
    """Validate ``text`` (syntax only: no DNS lookup) and return its normal form.

    The whole address is lower-cased, so ``Alice@Example.com`` and
    ``alice@example.com`` are the same account.
    """
    try:
        info = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"{text!r} is not a valid e-mail address: {exc}") from None
    return info.normalized.lower()
