"""Token formats: generation, the checksum, and the leak scanner."""

from __future__ import annotations

import json
import string

import pytest

from sandex.keys.formats import (
    API_KEY_PREFIX,
    DISPLAY_PREFIX_LENGTH,
    SECRET_PREFIX,
    TOKEN_LENGTH,
    display_prefix,
    find_tokens,
    generate_api_key,
    generate_secret,
    is_api_key,
    is_secret,
)

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


@pytest.mark.parametrize(
    ("generate", "prefix", "accepts"),
    [(generate_api_key, API_KEY_PREFIX, is_api_key), (generate_secret, SECRET_PREFIX, is_secret)],
    ids=["api_key", "secret"],
)
def test_generated_tokens_are_64_base62_chars_with_prefix_and_valid(generate, prefix, accepts):
    for _ in range(50):
        token = generate()
        assert len(token) == TOKEN_LENGTH == 64
        assert token.startswith(prefix)
        assert set(token) <= set(BASE62)
        assert accepts(token)


def test_prefixes_are_the_documented_ones():
    assert generate_api_key().startswith("sdxk")
    assert generate_secret().startswith("sdxs")


def test_generated_tokens_are_distinct():
    keys = {generate_api_key() for _ in range(200)}
    secrets_ = {generate_secret() for _ in range(200)}
    assert len(keys) == 200
    assert len(secrets_) == 200
    # the random part differs too, not only the checksum
    assert len({k[4:58] for k in keys}) == 200


def _every_single_char_change(token: str):
    for pos in range(len(token)):
        for ch in BASE62:
            if ch != token[pos]:
                yield pos, token[:pos] + ch + token[pos + 1 :]


@pytest.mark.parametrize(
    ("generate", "accepts"),
    [(generate_api_key, is_api_key), (generate_secret, is_secret)],
    ids=["api_key", "secret"],
)
def test_checksum_catches_every_single_character_change(generate, accepts):
    token = generate()
    assert accepts(token)
    changed = 0
    for pos, mutated in _every_single_char_change(token):
        # not the same kind of token, and not the other kind either (prefix changes)
        assert not accepts(mutated), f"change at position {pos} not detected"
        assert not is_api_key(mutated) and not is_secret(mutated)
        changed += 1
    assert changed == 64 * 61


def test_api_key_is_not_a_secret_and_vice_versa():
    key, secret = generate_api_key(), generate_secret()
    assert not is_secret(key)
    assert not is_api_key(secret)
    # same body under the other prefix: the checksum covers the prefix
    assert not is_secret(SECRET_PREFIX + key[4:])
    assert not is_api_key(API_KEY_PREFIX + secret[4:])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t + "0",
        lambda t: t[:30] + "-" + t[31:],
        lambda t: t[:30] + "é" + t[31:],
        lambda t: t.upper(),
        lambda t: " " + t[1:],
        lambda t: "",
    ],
    ids=["short", "long", "dash", "non-ascii", "upper", "space", "empty"],
)
def test_malformed_tokens_are_rejected(mangle):
    key = generate_api_key()
    bad = mangle(key)
    assert not is_api_key(bad)


def test_a_secret_is_not_an_api_key():
    assert is_api_key(generate_api_key())
    assert not is_api_key(generate_secret())


def test_display_prefix_is_12_chars_of_the_key():
    key = generate_api_key()
    shown = display_prefix(key)
    assert DISPLAY_PREFIX_LENGTH == 12
    assert shown == key[:12]
    assert len(shown) == 12
    assert shown.startswith("sdxk")


def test_find_tokens_in_env_json_and_url():
    key, secret = generate_api_key(), generate_secret()
    env = f"# exchange\nSANDEX_API_KEY={key}\nSANDEX_API_SECRET={secret}\n"
    assert find_tokens(env) == [key, secret]

    blob = json.dumps({"apiKey": key, "secret": secret, "other": "x" * 64})
    assert find_tokens(blob) == [key, secret]

    url = f"https://api.example.com/api/v3/account?apiKey={key}&signature=abc"
    assert find_tokens(url) == [key]

    quoted = f"export KEY='{key}'; curl -H \"X-MBX-APIKEY: {key}\""
    assert find_tokens(quoted) == [key, key]

    assert find_tokens(f"{key}") == [key]


def test_find_tokens_ignores_bad_checksums():
    key = generate_api_key()
    # change the last checksum character to another base62 character
    last = key[-1]
    bad = key[:-1] + ("0" if last != "0" else "1")
    assert find_tokens(f"KEY={bad}\n") == []
    # a lookalike with the right prefix and length but a made-up body
    assert find_tokens("sdxk" + "A" * 60) == []
    assert find_tokens("sdxs" + "0" * 60) == []


def test_find_tokens_ignores_tokens_inside_longer_alphanumeric_runs():
    key, secret = generate_api_key(), generate_secret()
    assert find_tokens("x" + key) == []
    assert find_tokens(key + "0") == []
    assert find_tokens("Z" + secret + "z") == []
    assert find_tokens(key + secret) == []
    # but any non-alphanumeric boundary is fine
    assert find_tokens(f"_{key}_") == [key]
    assert find_tokens(f"{key}.{secret}") == [key, secret]


def test_find_tokens_on_text_without_tokens():
    assert find_tokens("") == []
    assert find_tokens("nothing to see here sdxk sdxs " + "a" * 200) == []
