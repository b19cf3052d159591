"""Binance SIGNED-request signing and verification, written once.

The server, the SDK and the tests all use these functions; JSON test vectors pin
them (``tests/keys/vectors/signing.json``).

Binance's rule: the signed payload is the query string concatenated with the body
(no separator), exactly as sent, minus the ``signature`` parameter. HMAC-SHA256
signatures are hex (case-insensitive); Ed25519 and RSA (PKCS#1 v1.5, SHA-256)
signatures are base64, usually percent-encoded on the wire. python-binance signs
the *unquoted* ``k=v&…`` string while sending it quoted, so a failed check is retried
once over the unquoted payload.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Final
from urllib.parse import quote, unquote_to_bytes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from sandex.keys.errors import BadSignature
from sandex.keys.lookup import keyed_sha256
from sandex.keys.material import PrivateKey, PublicKey

__all__ = [
    "Verifier",
    "split_signature",
    "find_param",
    "read_signed",
    "hmac_verifier",
    "public_key_verifier",
    "verify",
    "sign_hmac",
    "sign_with_private_key",
    "encode_signature_param",
]

Verifier = Callable[[bytes, bytes], bytes | None]
"""``verifier(payload, raw_signature)``: the signature in canonical form (lower-case hex,
or the decoded bytes) when it is valid over ``payload``, else None. The canonical form
is what a replay cache must remember, so that re-encoding a signature cannot pass it
off as new."""

_SIG: Final = b"signature="
_AMP_SIG: Final = b"&" + _SIG
_TS: Final = b"timestamp="
_RW: Final = b"recvWindow="
_PKCS1: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()


def find_param(data: bytes, name_eq: bytes) -> bytes | None:
    """The raw value of the first ``name=`` parameter in ``data``, or None.

    ``name_eq`` includes the ``=`` (``b"timestamp="``). The value is returned as sent
    (not percent-decoded).
    """
    i = data.find(name_eq)
    while i > 0 and data[i - 1] != 38:  # not at a parameter boundary (b"&"): look further
        i = data.find(name_eq, i + 1)
    if i < 0:
        return None
    j = data.find(b"&", i)
    return data[i + len(name_eq) :] if j < 0 else data[i + len(name_eq) : j]


def _cut(data: bytes) -> tuple[bytes, bytes] | None:
    """Remove the ``signature=…`` parameter from ``data``: (rest, raw signature).

    If a client sent several, the last one is the signature and the others are part of
    the signed payload (so they must have been signed too).
    """
    last = data.rfind(_AMP_SIG)
    if last >= 0 and data.find(b"&", last + 1) < 0:
        return data[:last], data[last + len(_AMP_SIG) :]  # the usual case: it comes last
    i = data.rfind(_SIG)
    while i > 0 and data[i - 1] != 38:  # not at a parameter boundary: look further back
        i = data.rfind(_SIG, 0, i)
    if i < 0:
        return None
    j = data.find(b"&", i)
    value = data[i + len(_SIG) :] if j < 0 else data[i + len(_SIG) : j]
    if i == 0:
        rest = b"" if j < 0 else data[j + 1 :]
    else:
        rest = data[: i - 1] if j < 0 else data[: i - 1] + data[j:]
    return rest, value


def split_signature(query: bytes, body: bytes) -> tuple[bytes, bytes | None]:
    """Split a request into (signed payload, raw signature value or None).

    The signature is looked for in the query first (the query wins, as on Binance),
    then in the body; the payload is ``query + body`` without it.
    """
    if query:
        cut = _cut(query)
        if cut is not None:
            return cut[0] + body, cut[1]
    if body:
        cut = _cut(body)
        if cut is not None:
            return query + cut[0], cut[1]
    return query + body, None


def read_signed(
    query: bytes, body: bytes
) -> tuple[bytes, bytes | None, bytes | None, bytes | None]:
    """Everything authentication reads from a request, in one pass over its raw bytes:
    ``(payload, signature, timestamp, recvWindow)``; absent values are None.

    A query parameter wins over a body parameter of the same name (Binance), and the
    first of several same-named parameters wins, except for ``signature`` (the last).
    """
    data = body if not query else (query if not body else b"")
    if data:  # the usual layouts: everything in the query, or everything in the body
        parts = data.split(b"&")
        last = parts[-1]
        if last[:10] == _SIG:
            timestamp = recv_window = None
            for part in parts:
                if part[:10] == _TS:
                    if timestamp is None:
                        timestamp = part[10:]
                elif part[:11] == _RW and recv_window is None:
                    recv_window = part[11:]
            cut = len(data) - len(last) - 1
            return (data[:cut] if cut > 0 else b""), last[10:], timestamp, recv_window
    payload, signature = split_signature(query, body)
    timestamp = find_param(query, _TS)
    if timestamp is None and body:
        timestamp = find_param(body, _TS)
    recv_window = find_param(query, _RW)
    if recv_window is None and body:
        recv_window = find_param(body, _RW)
    return payload, signature, timestamp, recv_window


def hmac_verifier(secret: bytes) -> Verifier:
    """A verifier for hex HMAC-SHA256 signatures under ``secret`` (constant-time compare)."""
    keyed = keyed_sha256(secret)
    compare = hmac.compare_digest

    def verify_hmac(payload: bytes, signature: bytes) -> bytes | None:
        state = keyed.copy()
        state.update(payload)
        expected: bytes = state.hexdigest().encode()
        return expected if compare(expected, signature.lower()) else None

    return verify_hmac


def _decode_b64(signature: bytes) -> bytes | None:
    """Strict base64 of a signature as sent: raw, or percent-encoded as ccxt sends it."""
    if b"%" in signature:
        signature = signature.replace(b"%2B", b"+").replace(b"%2F", b"/").replace(b"%3D", b"=")
        if b"%" in signature:  # other spellings (%2b ...): the general decoder
            signature = unquote_to_bytes(signature)
    try:
        return binascii.a2b_base64(signature, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def public_key_verifier(key: PublicKey) -> Verifier:
    """A verifier for base64 Ed25519 or RSA (PKCS#1 v1.5, SHA-256) signatures."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        ed_verify = key.verify

        def verify_ed25519(payload: bytes, signature: bytes) -> bytes | None:
            sig = _decode_b64(signature)
            if sig is None or len(sig) != 64:
                return None
            try:
                ed_verify(sig, payload)
            except InvalidSignature:
                return None
            return sig

        return verify_ed25519

    rsa_verify = key.verify

    def verify_rsa(payload: bytes, signature: bytes) -> bytes | None:
        sig = _decode_b64(signature)
        if sig is None:
            return None
        try:
            rsa_verify(sig, payload, _PKCS1, _SHA256)
        except (InvalidSignature, ValueError):
            return None
        return sig

    return verify_rsa


def verify(verifier: Verifier, payload: bytes, signature: bytes) -> bytes:
    """The canonical signature if it verifies over ``payload``, else :class:`BadSignature`.

    Tries the payload as received, then (for python-binance) its unquoted form.
    """
    token = verifier(payload, signature)
    if token is not None:
        return token
    if b"%" in payload or b"+" in payload:
        token = verifier(unquote_to_bytes(payload.replace(b"+", b" ")), signature)
        if token is not None:
            return token
    raise BadSignature("Signature for this request is not valid.")


def sign_hmac(secret: str | bytes, payload: bytes) -> str:
    """The hex HMAC-SHA256 signature of ``payload`` (what clients send)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, payload, "sha256").hex()


def sign_with_private_key(key: PrivateKey, payload: bytes) -> str:
    """The base64 Ed25519 or RSA-PKCS#1v1.5-SHA256 signature of ``payload``."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(payload)
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(payload, _PKCS1, _SHA256)
    else:  # pragma: no cover - the type union is exhaustive
        raise TypeError(f"unsupported private key {type(key).__name__}")
    return base64.b64encode(raw).decode("ascii")


def encode_signature_param(signature: str) -> str:
    """Percent-encode a signature for a query string or form body."""
    return quote(signature, safe="")
