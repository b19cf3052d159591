"""Binance SIGNED-request signing and verification, pinned by JSON vectors.

The vectors (``vectors/signing.json``) hold Binance's documented HMAC examples,
python-binance's unquoted-payload form, Ed25519 under the RFC 8032 test-1 key and
RSA-2048 verify-only vectors (the RSA private key was discarded after authoring).
"""

from __future__ import annotations

import base64
import hmac
import json
from pathlib import Path
from urllib.parse import quote, unquote, unquote_plus, unquote_to_bytes

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from sandex.keys.errors import BadSignature
from sandex.keys.material import load_public_key
from sandex.keys.signing import (
    encode_signature_param,
    find_param,
    hmac_verifier,
    public_key_verifier,
    read_signed,
    sign_hmac,
    sign_with_private_key,
    split_signature,
    verify,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "signing.json").read_text())["vectors"]
VALID = [v for v in VECTORS if v["expect"] == "valid"]
INVALID = [v for v in VECTORS if v["expect"] == "invalid"]
BY_NAME = {v["name"]: v for v in VECTORS}

BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
BINANCE_SIG = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
RFC8032_SEED = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"


def verifier_for(vector):
    if vector["kind"] == "HMAC_SHA256":
        return hmac_verifier(vector["secret"].encode())
    loaded = load_public_key(vector["public_key_pem"])
    assert loaded.kind.value == vector["kind"]
    return public_key_verifier(loaded.key)


def wire(vector) -> tuple[bytes, bytes]:
    return vector["query"].encode(), vector["body"].encode()


def canonical_of(vector) -> bytes:
    """What a replay cache must remember for this vector's signature."""
    if vector["kind"] == "HMAC_SHA256":
        return vector["signature"].lower().encode()
    return base64.b64decode(unquote(vector["signature"]))


def ids(vectors):
    return [v["name"] for v in vectors]


# -- the vector file itself ---------------------------------------------------------------


def test_vector_file_has_what_it_promises():
    names = set(BY_NAME)
    assert len(names) == len(VECTORS)
    assert {"HMAC_SHA256", "ED25519", "RSA"} == {v["kind"] for v in VECTORS}
    assert {"HMAC_SHA256", "ED25519", "RSA"} == {v["kind"] for v in INVALID}
    for v in VECTORS:
        assert v["expect"] in {"valid", "invalid"}
        assert v["method"] in {"GET", "POST", "DELETE", "PUT"}
        # the signature is on the wire, in the query or the body
        assert f"signature={v['signature']}" in v["query"] + v["body"]
    text = (Path(__file__).parent / "vectors" / "signing.json").read_text()
    assert "PRIVATE KEY" not in text


def test_binance_documented_values_are_what_hmac_gives():
    """The documented example, computed independently of the code under test."""
    key = BINANCE_SECRET.encode()
    assert hmac.digest(key, BINANCE_QUERY.encode(), "sha256").hex() == BINANCE_SIG
    mixed = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
        + "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert (
        hmac.digest(key, mixed.encode(), "sha256").hex()
        == "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )
    assert BY_NAME["binance-doc-hmac-query"]["signature"] == BINANCE_SIG
    assert BY_NAME["binance-doc-hmac-body"]["signature"] == BINANCE_SIG
    assert BY_NAME["binance-doc-hmac-mixed"]["body"].endswith(
        "signature=0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
    )


def test_ed25519_vectors_use_the_rfc8032_test1_key():
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RFC8032_SEED))
    raw_public = private.public_key().public_bytes_raw()
    assert raw_public.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    # RFC 8032 section 7.1, TEST 1: the signature of the empty message
    assert private.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
        "1cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    for v in VECTORS:
        if v["kind"] == "ED25519":
            assert v["seed_hex"] == RFC8032_SEED
            assert load_public_key(v["public_key_pem"]).key.public_bytes_raw() == raw_public


# -- verification of every vector ---------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
def test_split_signature_finds_the_wire_signature(vector):
    payload, sig = split_signature(*wire(vector))
    assert sig == vector["signature"].encode()
    assert b"signature=" not in payload
    if vector["name"] == "python-binance-unquoted-payload":
        assert payload != vector["signed_payload"].encode()
        assert _form_decoded(payload) == vector["signed_payload"].encode()
    elif "signed_payload" in vector:
        assert payload == vector["signed_payload"].encode()


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_valid_vectors_verify(vector):
    payload, sig = split_signature(*wire(vector))
    assert sig is not None
    assert verify(verifier_for(vector), payload, sig) == canonical_of(vector)


@pytest.mark.parametrize("vector", INVALID, ids=ids(INVALID))
def test_invalid_vectors_raise_bad_signature(vector):
    payload, sig = split_signature(*wire(vector))
    assert sig is not None
    with pytest.raises(BadSignature, match="Signature for this request is not valid"):
        verify(verifier_for(vector), payload, sig)


def test_binance_mixed_form_is_query_then_body_without_separator():
    v = BY_NAME["binance-doc-hmac-mixed"]
    payload, _ = split_signature(*wire(v))
    assert payload == (v["query"] + v["body"].split("&signature=")[0]).encode()
    # with an "&" between query and body, the signature must not verify
    query, body = wire(v)
    with pytest.raises(BadSignature):
        verify(verifier_for(v), *split_signature(query + b"&", body))


def test_python_binance_payload_is_signed_unquoted():
    v = BY_NAME["python-binance-unquoted-payload"]
    payload, sig = split_signature(*wire(v))
    assert b"newClientOrderId=a+b%2Fc&" in payload
    assert unquote_plus(payload.decode()) == v["signed_payload"]
    check = verifier_for(v)
    assert check(payload, sig) is None  # not valid over the raw bytes ...
    assert verify(check, payload, sig) == sig  # ... but valid over the unquoted form


# -- signing reproduces the vectors -------------------------------------------------------

HMAC_VALID = [v for v in VALID if v["kind"] == "HMAC_SHA256"]
ED_VALID = [v for v in VALID if v["kind"] == "ED25519"]


@pytest.mark.parametrize("vector", HMAC_VALID, ids=ids(HMAC_VALID))
def test_sign_hmac_reproduces_vectors(vector):
    signed = sign_hmac(vector["secret"], vector["signed_payload"].encode())
    assert signed == vector["signature"].lower()
    assert sign_hmac(vector["secret"].encode(), vector["signed_payload"].encode()) == signed


@pytest.mark.parametrize("vector", ED_VALID, ids=ids(ED_VALID))
def test_sign_ed25519_reproduces_vectors(vector):
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["seed_hex"]))
    signed = sign_with_private_key(private, vector["signed_payload"].encode())
    assert encode_signature_param(signed) == vector["signature"]
    assert signed == unquote(vector["signature"])


def test_encode_signature_param_is_what_ccxt_sends():
    assert encode_signature_param("ab+c/d==") == "ab%2Bc%2Fd%3D%3D"
    assert encode_signature_param("abc123") == "abc123"


def test_rsa_sign_then_verify_round_trip():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    payload = b"timestamp=1700000000000&recvWindow=10000"
    sig = encode_signature_param(sign_with_private_key(private, payload)).encode()
    check = public_key_verifier(private.public_key())
    assert verify(check, payload, sig) == base64.b64decode(unquote(sig.decode()))
    with pytest.raises(BadSignature):
        verify(check, payload + b"0", sig)


# -- canonical tokens: re-encoding a signature does not make it new -----------------------


B64_VALID = [v for v in VALID if v["kind"] != "HMAC_SHA256"]


@pytest.mark.parametrize("vector", B64_VALID, ids=ids(B64_VALID))
def test_percent_encoded_and_raw_base64_give_the_same_token(vector):
    payload, sig = split_signature(*wire(vector))
    check = verifier_for(vector)
    raw = unquote(sig.decode())
    assert "+" in raw and "/" in raw and raw.endswith("=")
    forms = {
        sig,  # %2B %2F %3D
        raw.encode(),  # + / =
        sig.replace(b"%2B", b"%2b").replace(b"%2F", b"%2f").replace(b"%3D", b"%3d"),
        quote(raw, safe="").replace("%3D", "=").encode(),  # padding left raw
    }
    assert len(forms) == 4
    tokens = {verify(check, payload, form) for form in forms}
    assert tokens == {base64.b64decode(raw)}


@pytest.mark.parametrize("vector", B64_VALID, ids=ids(B64_VALID))
def test_non_canonical_base64_gives_the_same_token(vector):
    """Base64 has spare bits before the padding; flipping them must not mint a new token."""
    payload, sig = split_signature(*wire(vector))
    check = verifier_for(vector)
    raw = unquote(sig.decode())
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body = raw.rstrip("=")
    assert raw.endswith("=")  # padded, so the low bit of the last character is spare
    variant = body[:-1] + alphabet[alphabet.index(body[-1]) ^ 1] + raw[len(body) :]
    assert variant != raw
    assert base64.b64decode(variant) == base64.b64decode(raw)
    expected = verify(check, payload, sig)
    assert verify(check, payload, variant.encode()) == expected


def test_hex_case_gives_the_same_token():
    v = BY_NAME["binance-doc-hmac-query"]
    payload, sig = split_signature(*wire(v))
    check = verifier_for(v)
    mixed = "".join(c if i % 2 else c.upper() for i, c in enumerate(sig.decode()))
    lower = verify(check, payload, sig)
    assert lower == BINANCE_SIG.encode()
    assert verify(check, payload, sig.upper()) == lower
    assert verify(check, payload, mixed.encode()) == lower


# -- tampering ----------------------------------------------------------------------------


_REPLACEMENTS = b"0&=%+ \x00\xff"


def _mutations(payload: bytes):
    """Each position replaced by a bit flip, a case flip and a few bytes that mean something
    in a query string (``& = % +`` and space exercise the python-binance fallback)."""
    for i, byte in enumerate(payload):
        others = {byte ^ 0x01, byte ^ 0x20, byte ^ 0x80, *_REPLACEMENTS} - {byte}
        for other in sorted(others):
            yield payload[:i] + bytes([other]) + payload[i + 1 :]


def _form_decoded(data: bytes) -> bytes:
    """``unquote_plus`` on bytes: how a form decoder reads the payload."""
    return unquote_to_bytes(data.replace(b"+", b" "))


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_every_single_byte_change_of_the_payload_fails(vector):
    payload, sig = split_signature(*wire(vector))
    check = verifier_for(vector)
    signed = vector["signed_payload"].encode()
    tried = same_meaning = 0
    for mutated in _mutations(payload):
        tried += 1
        if _form_decoded(mutated) == signed:
            # python-binance form: a re-encoding of the very same unquoted payload
            # (``+`` -> space, ``%2F`` -> ``%2f``). The same canonical signature comes
            # back, so the replay cache still catches a replay of it.
            assert verify(check, mutated, sig) == canonical_of(vector)
            same_meaning += 1
            continue
        with pytest.raises(BadSignature):
            verify(check, mutated, sig)
    assert tried >= 8 * len(payload)
    if vector["name"] == "python-binance-unquoted-payload":
        assert same_meaning >= 2
    else:
        assert same_meaning == 0


@pytest.mark.parametrize("vector", VALID, ids=ids(VALID))
def test_dropping_or_adding_a_byte_fails(vector):
    payload, sig = split_signature(*wire(vector))
    check = verifier_for(vector)
    for bad in (payload[:-1], payload[1:], payload + b"&", b"&" + payload, payload + b"0"):
        with pytest.raises(BadSignature):
            verify(check, bad, sig)


def test_hmac_under_another_secret_fails():
    v = BY_NAME["binance-doc-hmac-query"]
    payload, sig = split_signature(*wire(v))
    with pytest.raises(BadSignature):
        verify(hmac_verifier(BINANCE_SECRET.encode()[:-1] + b"k"), payload, sig)


def test_ed25519_signature_under_another_key_fails():
    v = BY_NAME["ed25519-ccxt-body"]
    payload, sig = split_signature(*wire(v))
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BadSignature):
        verify(public_key_verifier(other), payload, sig)


@pytest.mark.parametrize("bad", [b"", b"=", b"%2B", b"AAAA", b"A" * 88, b" " + b"A" * 86 + b"=="])
def test_malformed_base64_never_verifies(bad):
    v = BY_NAME["ed25519-ccxt-query"]
    payload, _ = split_signature(*wire(v))
    with pytest.raises(BadSignature):
        verify(verifier_for(v), payload, bad)


# -- find_param ---------------------------------------------------------------------------


def test_find_param_basic():
    data = b"symbol=BTCUSDT&timestamp=1700000000000&recvWindow=5000"
    assert find_param(data, b"symbol=") == b"BTCUSDT"
    assert find_param(data, b"timestamp=") == b"1700000000000"
    assert find_param(data, b"recvWindow=") == b"5000"
    assert find_param(data, b"signature=") is None
    assert find_param(b"", b"timestamp=") is None


def test_find_param_first_occurrence_wins():
    assert find_param(b"timestamp=1&timestamp=2", b"timestamp=") == b"1"
    assert find_param(b"a=0&timestamp=1&b=2&timestamp=3", b"timestamp=") == b"1"


def test_find_param_needs_a_parameter_boundary():
    assert find_param(b"xtimestamp=1&timestamp=2", b"timestamp=") == b"2"
    assert find_param(b"xtimestamp=1", b"timestamp=") is None
    assert find_param(b"note=timestamp=5&timestamp=7", b"timestamp=") == b"7"
    assert find_param(b"recvWindow=1", b"Window=") is None


def test_find_param_value_is_not_decoded():
    assert find_param(b"id=a%20b%2Fc&x=1", b"id=") == b"a%20b%2Fc"
    assert find_param(b"id=a+b", b"id=") == b"a+b"
    assert find_param(b"x=1&id=a%20b", b"id=") == b"a%20b"
    assert find_param(b"x=1&id=%26", b"id=") == b"%26"


def test_find_param_empty_value():
    assert find_param(b"a=&b=1", b"a=") == b""
    assert find_param(b"b=1&a=", b"a=") == b""


# -- split_signature ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "rest"),
    [
        (b"signature=SIG&a=1&b=2", b"a=1&b=2"),
        (b"a=1&signature=SIG&b=2", b"a=1&b=2"),
        (b"a=1&b=2&signature=SIG", b"a=1&b=2"),
        (b"signature=SIG", b""),
    ],
    ids=["first", "middle", "last", "only"],
)
def test_split_signature_position(data, rest):
    assert split_signature(data, b"") == (rest, b"SIG")
    assert split_signature(b"", data) == (rest, b"SIG")


def test_split_signature_in_query_with_body():
    assert split_signature(b"a=1&signature=SIG", b"b=2") == (b"a=1b=2", b"SIG")


def test_split_signature_in_body_with_query():
    assert split_signature(b"a=1", b"b=2&signature=SIG") == (b"a=1b=2", b"SIG")
    assert split_signature(b"a=1", b"signature=SIG&b=2") == (b"a=1b=2", b"SIG")


def test_split_signature_query_wins_when_both():
    payload, sig = split_signature(b"a=1&signature=Q", b"b=2&signature=B")
    assert sig == b"Q"
    assert payload == b"a=1b=2&signature=B"


def test_split_signature_absent():
    assert split_signature(b"a=1&b=2", b"c=3") == (b"a=1&b=2c=3", None)
    assert split_signature(b"", b"") == (b"", None)
    assert split_signature(b"xsignature=1", b"mysignature=2") == (
        b"xsignature=1mysignature=2",
        None,
    )


def test_split_signature_skips_lookalike_names():
    assert split_signature(b"xsignature=1&signature=S&y=2", b"") == (b"xsignature=1&y=2", b"S")


def test_split_signature_empty_value():
    assert split_signature(b"a=1&signature=", b"") == (b"a=1", b"")


def test_split_signature_takes_the_last_of_several_and_signs_the_others():
    """With two ``signature`` parameters the last one is the signature; the earlier one stays
    in the payload, so it must have been signed too: a forger gains nothing."""
    assert split_signature(b"a=1&signature=X&b=2&signature=Y", b"") == (
        b"a=1&signature=X&b=2",
        b"Y",
    )
    assert split_signature(b"signature=X&a=1&signature=Y&b=2", b"") == (
        b"signature=X&a=1&b=2",
        b"Y",
    )


# -- read_signed ---------------------------------------------------------------------------


def test_read_signed_reads_a_ccxt_get():
    query = b"symbol=BTCUSDT&timestamp=1700000000000&recvWindow=10000&signature=ab12"
    assert read_signed(query, b"") == (
        b"symbol=BTCUSDT&timestamp=1700000000000&recvWindow=10000",
        b"ab12",
        b"1700000000000",
        b"10000",
    )


def test_read_signed_reads_a_form_body_and_prefers_the_query():
    body = b"quantity=1&timestamp=2&recvWindow=3&signature=s"
    assert read_signed(b"", body) == (b"quantity=1&timestamp=2&recvWindow=3", b"s", b"2", b"3")
    payload, sig, ts, rw = read_signed(b"timestamp=9", body)
    assert (sig, ts, rw) == (b"s", b"9", b"3")
    assert payload == b"timestamp=9quantity=1&timestamp=2&recvWindow=3"


def test_read_signed_reports_what_is_missing():
    assert read_signed(b"a=1", b"") == (b"a=1", None, None, None)
    assert read_signed(b"xtimestamp=1&myrecvWindow=2", b"") == (
        b"xtimestamp=1&myrecvWindow=2",
        None,
        None,
        None,
    )
