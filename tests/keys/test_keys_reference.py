"""A key reference is read once, where a person types it: id, whole API key or prefix."""

from __future__ import annotations

import pytest

from sandex.keys import generate_api_key, generate_secret
from sandex.keys.reference import (
    InvalidKeyRef,
    KeyByApiKey,
    KeyById,
    KeyByPrefix,
    parse_key_ref,
)


def test_digits_are_an_id() -> None:
    assert parse_key_ref(" 42 ") == KeyById(42)
    assert parse_key_ref("0") == KeyById(0)


def test_a_whole_api_key_is_looked_up_by_itself_and_shows_only_its_prefix() -> None:
    api_key = generate_api_key()
    ref = parse_key_ref(api_key)
    assert ref == KeyByApiKey(api_key)
    assert ref.shown == api_key[:12]
    assert api_key not in repr(ref)


def test_a_prefix_is_cut_to_the_display_prefix() -> None:
    api_key = generate_api_key()
    assert parse_key_ref(api_key[:8]) == KeyByPrefix(api_key[:8])
    assert parse_key_ref(api_key[:20]) == KeyByPrefix(api_key[:12])
    # a mistyped whole key (bad checksum) still names the key by its prefix
    assert parse_key_ref(api_key[:-1] + "?") == KeyByPrefix(api_key[:12])


@pytest.mark.parametrize(
    "text", ["", "  ", "hello", "sdxk123", "-1", "1.5", "²", "٣", "sdxs", "SDXKabcdefgh"]
)
def test_anything_else_is_refused_with_what_to_give(text: str) -> None:
    with pytest.raises(InvalidKeyRef, match="give its id, its API key"):
        parse_key_ref(text)


def test_an_id_beyond_any_column_is_refused() -> None:
    with pytest.raises(InvalidKeyRef, match="out of range"):
        parse_key_ref("9" * 30)


def test_a_secret_given_by_mistake_is_not_echoed() -> None:
    secret = generate_secret()
    with pytest.raises(InvalidKeyRef) as caught:
        parse_key_ref(secret)
    assert secret[4:12] not in str(caught.value)
    assert "secret" in str(caught.value)
