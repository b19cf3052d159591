"""Envelope encryption of secrets at rest, and master-key handling."""

from __future__ import annotations

import base64
import os

import pytest

from sandex.keys.envelope import MASTER_KEY_BYTES, Keyring, MasterKey
from sandex.keys.errors import SealError

CONTEXT = b"api_key:42"
HEADER = 1 + 8 + 12 + 48  # version | master key id | wrap nonce | wrapped data key
SECRET = b"the-hmac-secret-of-key-42"


@pytest.fixture
def old():
    return MasterKey.generate()


@pytest.fixture
def new():
    return MasterKey.generate()


def test_seal_open_round_trip(old):
    ring = Keyring([old])
    envelope = ring.seal(SECRET, CONTEXT)
    assert SECRET not in envelope
    assert ring.open(envelope, CONTEXT) == SECRET
    assert Keyring.key_id_of(envelope) == old.key_id


@pytest.mark.parametrize("plaintext", [b"", b"x", os.urandom(1000)])
def test_round_trip_sizes(old, plaintext):
    ring = Keyring([old])
    assert ring.open(ring.seal(plaintext, CONTEXT), CONTEXT) == plaintext


def test_each_seal_is_fresh(old):
    ring = Keyring([old])
    assert ring.seal(SECRET, CONTEXT) != ring.seal(SECRET, CONTEXT)


def test_a_different_keyring_object_with_the_same_key_opens(old):
    envelope = Keyring([old]).seal(SECRET, CONTEXT)
    same = MasterKey(old.material)
    assert Keyring([same]).open(envelope, CONTEXT) == SECRET


@pytest.mark.parametrize("context", [b"", b"api_key:43", b"api_key:42 ", b"API_KEY:42"])
def test_wrong_context_refused(old, context):
    ring = Keyring([old])
    envelope = ring.seal(SECRET, CONTEXT)
    with pytest.raises(SealError, match="wrong context or tampered"):
        ring.open(envelope, context)


def test_every_flipped_byte_is_detected(old):
    ring = Keyring([old])
    envelope = ring.seal(SECRET, CONTEXT)
    for i in range(len(envelope)):
        for mask in (0x01, 0x80):
            tampered = bytearray(envelope)
            tampered[i] ^= mask
            with pytest.raises(SealError):
                ring.open(bytes(tampered), CONTEXT)


def test_truncated_or_extended_envelope_refused(old):
    ring = Keyring([old])
    envelope = ring.seal(SECRET, CONTEXT)
    for bad in (b"", envelope[:1], envelope[:50], envelope[:-1], envelope + b"\x00"):
        with pytest.raises(SealError):
            ring.open(bad, CONTEXT)


def test_swapped_bodies_refused(old):
    ring = Keyring([old])
    a = ring.seal(b"secret-a", CONTEXT)
    b = ring.seal(b"secret-b", CONTEXT)
    with pytest.raises(SealError):
        ring.open(a[:HEADER] + b[HEADER:], CONTEXT)


def test_keyring_without_the_sealing_key_names_it(old, new):
    envelope = Keyring([old]).seal(SECRET, CONTEXT)
    with pytest.raises(SealError) as info:
        Keyring([new]).open(envelope, CONTEXT)
    assert old.key_id in str(info.value)
    assert "not in the keyring" in str(info.value)


def test_rotation_old_keys_still_open_and_rewrap_moves_to_primary(old, new):
    envelope = Keyring([old]).seal(SECRET, CONTEXT)
    rotated = Keyring([new, old])
    assert rotated.primary == new
    assert rotated.key_ids == (new.key_id, old.key_id)
    assert rotated.open(envelope, CONTEXT) == SECRET  # old key still opens

    rewrapped = rotated.rewrap(envelope)
    assert Keyring.key_id_of(rewrapped) == new.key_id
    assert rewrapped != envelope
    # the data part is unchanged: only the data key was re-wrapped
    assert rewrapped[HEADER:] == envelope[HEADER:]
    assert rewrapped[1 + 8 : HEADER] != envelope[1 + 8 : HEADER]
    assert rotated.open(rewrapped, CONTEXT) == SECRET
    # once re-wrapped, the old master key can be dropped
    assert Keyring([new]).open(rewrapped, CONTEXT) == SECRET
    with pytest.raises(SealError, match=new.key_id):
        Keyring([old]).open(rewrapped, CONTEXT)


def test_rewrap_under_primary_is_a_no_op(old):
    ring = Keyring([old])
    envelope = ring.seal(SECRET, CONTEXT)
    assert ring.rewrap(envelope) == envelope


def test_rewrap_without_the_sealing_key_refused(old, new):
    envelope = Keyring([old]).seal(SECRET, CONTEXT)
    with pytest.raises(SealError, match=old.key_id):
        Keyring([new]).rewrap(envelope)


def test_new_seals_use_the_primary(old, new):
    envelope = Keyring([new, old]).seal(SECRET, CONTEXT)
    assert Keyring.key_id_of(envelope) == new.key_id


def test_key_id_of_garbage_refused():
    with pytest.raises(SealError, match="not a Sandex envelope"):
        Keyring.key_id_of(b"\x02" + bytes(200))
    with pytest.raises(SealError, match="not a Sandex envelope"):
        Keyring.key_id_of(b"\x01" * 10)


def test_empty_keyring_refused():
    with pytest.raises(SealError):
        Keyring([])


# -- MasterKey ----------------------------------------------------------------------------


def test_master_key_text_round_trip(old):
    text = old.to_text()
    assert "=" not in text
    assert len(text) == 43
    assert MasterKey.from_text(text) == old
    assert MasterKey.from_text(f"  {text}\n").material == old.material


def test_master_key_from_standard_base64(old):
    assert MasterKey.from_text(base64.b64encode(old.material).decode()).material == old.material
    assert (
        MasterKey.from_text(base64.urlsafe_b64encode(old.material).decode()).material
        == old.material
    )


def test_master_key_id_is_stable_fingerprint(old, new):
    assert MasterKey(old.material).key_id == old.key_id
    assert old.key_id != new.key_id
    assert len(old.key_id) == 16
    assert old.key_id not in old.material.hex()


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_wrong_length_text_refused(size):
    text = base64.urlsafe_b64encode(os.urandom(size)).decode().rstrip("=")
    with pytest.raises(SealError, match="32"):
        MasterKey.from_text(text)


@pytest.mark.parametrize("text", ["A", "é" * 43, "AAAAA"])
def test_master_key_undecodable_text_refused(text):
    with pytest.raises(SealError):
        MasterKey.from_text(text)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_master_key_wrong_length_bytes_refused(size):
    with pytest.raises(SealError, match=str(MASTER_KEY_BYTES)):
        MasterKey(os.urandom(size))


def test_master_key_repr_hides_material(old):
    shown = repr(old) + str(old)
    assert old.key_id in shown
    for secret_form in (
        old.material.hex(),
        repr(old.material),
        old.to_text(),
        base64.b64encode(old.material).decode(),
    ):
        assert secret_form not in shown


def test_keyring_repr_hides_material(old):
    ring = Keyring([old])
    shown = repr(ring) + repr(ring.keys)
    assert old.material.hex() not in shown
    assert old.to_text() not in shown
