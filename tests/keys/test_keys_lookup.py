"""Keyed hashes: how an API key is found without being stored."""

from __future__ import annotations

import hashlib
import hmac

from sandex.keys.formats import generate_api_key
from sandex.keys.lookup import keyed_hash

PEPPER = bytes(range(32))


def test_keyed_hash_is_hmac_sha256_of_the_token():
    key = generate_api_key()
    digest = keyed_hash(PEPPER, key)
    assert len(digest) == 32
    assert digest == hmac.new(PEPPER, key.encode(), hashlib.sha256).digest()
    assert keyed_hash(PEPPER, key) == digest  # deterministic, so it can be looked up


def test_keyed_hash_depends_on_pepper_and_token():
    key = generate_api_key()
    assert keyed_hash(PEPPER, key) != keyed_hash(bytes(32), key)
    assert keyed_hash(PEPPER, key) != keyed_hash(PEPPER, generate_api_key())
    # without the pepper, a plain hash of a guessed key does not match the stored value
    assert keyed_hash(PEPPER, key) != hashlib.sha256(key.encode()).digest()
