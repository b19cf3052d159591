"""Authentication throughput, in process, with the cache warm (DESIGN §6).

Prints authentications/s for HMAC and Ed25519 requests with 1k and 1M keys stored,
next to the raw ``hmac`` and ``cryptography`` verification rates measured in the same
run, plus the cold-lookup time (cache miss → database) and the audit flush rate.

    .venv/bin/python bench/auth.py [--stored 1000,1000000] [--requests 200000]

Every request is a distinct ccxt-shaped signed GET (a replay would be refused), the
audit event of each decision is queued as in production, and the 1M run also fills the
key cache with 1M entries so that dictionary size is part of the measurement.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import os
import random
import secrets
import statistics
import string
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from sandex.accounts import HashParams
from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings
from sandex.keys import ApiKey, KeyKind, KeySettings, Permission
from sandex.keys.lookup import keyed_hash
from sandex.keys.signing import encode_signature_param, sign_hmac, sign_with_private_key
from sandex.service import Actor, Request

NOW = 1_800_000_000_000
WORKING_SET = 1000
ED25519_KEYS = 50
OPERATOR = Actor.operator()
_ALNUM = string.ascii_letters + string.digits


def fill(sx: Sandex, user_id: int, count: int) -> None:
    """Store ``count`` filler keys shaped like real ones (sealed 54-byte secrets)."""
    template_envelope = sx.keyring.seal(secrets.token_bytes(64), b"filler")
    rng = random.Random(7)
    batch: list[ApiKey] = []
    settings = KeySettings("filler", Permission.READ)
    with sx.uow() as uow:
        for n in range(count):
            token = "sdxk" + "".join(rng.choices(_ALNUM, k=60))
            batch.append(
                ApiKey(
                    id=0,
                    user_id=user_id,
                    kind=KeyKind.HMAC_SHA256,
                    prefix=token[:12],
                    lookup_hash=keyed_hash(sx.secrets.pepper, token),
                    settings=replace(settings, label=f"f{n}"),
                    created_at=NOW,
                    updated_at=NOW,
                    secret_envelope=template_envelope,
                )
            )
            if len(batch) == 20_000:
                uow.keys.add_many(batch)  # type: ignore[attr-defined]
                batch.clear()
        if batch:
            uow.keys.add_many(batch)  # type: ignore[attr-defined]
        uow.commit()


def request(api_key: str, query: str, signature: str) -> Request:
    wire = f"{query}&signature={signature}".encode()
    return Request("GET", "/api/v3/account", wire, b"", {"x-mbx-apikey": api_key}, "127.0.0.1")


def timed(fn, items) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for item in items:
        fn(item)
    return time.perf_counter() - start


def rounds(build, fn, total: int, *, chunk: int = 1000, repeat: int = 5, after=None):  # type: ignore[no-untyped-def]
    """Seconds per call: (best round, median round, seconds per call spent in ``after``).

    Inputs are built ``chunk`` at a time just before they are used (untimed), as a
    server authenticates a request it has just read. ``after`` runs after each chunk
    (the audit flush a server runs every 200 ms) and is timed on its own.
    """
    results = []
    after_s = 0.0
    serial = 0
    calls = total // chunk * chunk
    for _ in range(repeat):
        spent = 0.0
        for _ in range(total // chunk):
            items = [build(serial + i) for i in range(chunk)]
            serial += chunk
            spent += timed(fn, items)
            if after is not None:
                start = time.perf_counter()
                after()
                after_s += time.perf_counter() - start
        results.append(spent / calls)
    return min(results), statistics.median(results), after_s / (calls * repeat)


def run(stored: int, n_requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), password_hash=HashParams(1, 1024))
        with open_sandex(settings) as sx:
            user = sx.users.create(
                "bench@example.com", "bench password 123", now=NOW, actor=OPERATOR
            )
            t0 = time.perf_counter()
            # at most 30 keys per user: the working set is spread over users
            hmac_keys = []
            for i in range(WORKING_SET):
                if i % 25 == 0:
                    owner = sx.users.create(
                        f"h{i}@example.com", "bench password 123", now=NOW, actor=OPERATOR
                    )
                hmac_keys.append(
                    sx.keys.create(owner.id, KeySettings(f"h{i}"), now=NOW, actor=OPERATOR)
                )
            ed_privates, ed_keys = [], []
            for i in range(ED25519_KEYS):
                if i % 25 == 0:
                    owner = sx.users.create(
                        f"ed{i}@example.com", "bench password 123", now=NOW, actor=OPERATOR
                    )
                private = ed25519.Ed25519PrivateKey.generate()
                pem = private.public_key().public_bytes(
                    Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
                )
                ed_privates.append(private)
                ed_keys.append(
                    sx.keys.create(
                        owner.id,
                        KeySettings(f"e{i}"),
                        now=NOW,
                        actor=OPERATOR,
                        kind=KeyKind.ED25519,
                        public_key_pem=pem,
                    )
                )
            if stored > WORKING_SET:
                fill(sx, user.id, stored - WORKING_SET - ED25519_KEYS)
            setup = time.perf_counter() - t0
            with sx.uow(readonly=True) as uow:
                total = uow.keys.count()

            # cold lookups: cache misses that go to the database
            cold = [
                request(
                    k.api_key,
                    f"timestamp={NOW}&recvWindow=10000",
                    sign_hmac(k.secret or "", f"timestamp={NOW}&recvWindow=10000".encode()),
                )
                for k in hmac_keys
            ]
            cold_s = timed(lambda r: sx.auth.authenticate(r, NOW), cold)
            if stored > WORKING_SET:  # a cache as full as the store
                shared = next(iter(sx.cache.entries.values()))
                for n in range(stored - len(sx.cache.entries)):
                    sx.cache.entries[f"sdxkfill{n:056d}"] = shared

            # HMAC: distinct ccxt-shaped requests over the warm working set
            def hmac_request(n: int) -> Request:
                k = hmac_keys[n % WORKING_SET]
                query = f"symbol=BTCUSDT&timestamp={NOW}&recvWindow=10000&n={n}"
                return request(k.api_key, query, sign_hmac(k.secret or "", query.encode()))

            def raw_hmac_input(n: int) -> tuple[bytes, bytes, bytes]:
                k = hmac_keys[n % WORKING_SET]
                query = f"symbol=BTCUSDT&timestamp={NOW}&recvWindow=10000&n={n}".encode()
                return (k.secret or "").encode(), query, sign_hmac(k.secret or "", query).encode()

            sx.activity.flush()
            auth = sx.auth.authenticate
            hmac_best, hmac_median, flush_s = rounds(
                hmac_request, lambda r: auth(r, NOW + 1), n_requests, after=sx.activity.flush
            )
            raw_hmac_best, _, _ = rounds(
                raw_hmac_input,
                lambda t: hmac.compare_digest(
                    hmac.digest(t[0], t[1], "sha256").hex().encode(), t[2]
                ),
                n_requests,
            )

            # Ed25519
            n_ed = max(n_requests // 20, 5000)
            publics = [p.public_key() for p in ed_privates]

            def ed_request(n: int) -> Request:
                i = n % ED25519_KEYS
                query = f"symbol=BTCUSDT&timestamp={NOW}&recvWindow=10000&n={n}"
                raw_sig = sign_with_private_key(ed_privates[i], query.encode())
                return request(ed_keys[i].api_key, query, encode_signature_param(raw_sig))

            def raw_ed_input(n: int):  # type: ignore[no-untyped-def]
                i = n % ED25519_KEYS
                query = f"symbol=BTCUSDT&timestamp={NOW}&recvWindow=10000&n={n}".encode()
                raw = base64.b64decode(sign_with_private_key(ed_privates[i], query))
                return publics[i], raw, query

            for k, p in zip(ed_keys, ed_privates, strict=True):  # warm
                q = f"timestamp={NOW}&recvWindow=10000&warm=1"
                sx.auth.authenticate(
                    request(
                        k.api_key, q, encode_signature_param(sign_with_private_key(p, q.encode()))
                    ),
                    NOW,
                )
            ed_best, _, _ = rounds(
                ed_request, lambda r: auth(r, NOW + 2), n_ed, chunk=500, after=sx.activity.flush
            )
            raw_ed_best, _, _ = rounds(
                raw_ed_input, lambda t: t[0].verify(t[1], t[2]), n_ed, chunk=500
            )
            sx.activity.flush()
    return {
        "stored": total,
        "setup_s": setup,
        "cold_us": cold_s / len(cold) * 1e6,
        "hmac_rate": 1 / hmac_best,
        "hmac_median_rate": 1 / hmac_median,
        "raw_hmac_rate": 1 / raw_hmac_best,
        "ed_rate": 1 / ed_best,
        "raw_ed_rate": 1 / raw_ed_best,
        "flush_rate": 1 / flush_s,
        "hmac_us": hmac_best * 1e6,
        "sustained_rate": 1 / (hmac_best + flush_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", default="1000,1000000")
    parser.add_argument("--requests", type=int, default=100_000, help="per round")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; one thread (per core)")
    results = [run(int(s), args.requests) for s in args.stored.split(",")]
    print("Best of 5 rounds (median in brackets). Every request is distinct and built just")
    print("before it is authenticated; each decision is queued for the audit chain.")
    print(
        f"{'keys stored':>12} {'HMAC auth/s':>21} {'raw hmac/s':>11} {'ratio':>6}"
        f" {'Ed25519 auth/s':>15} {'raw verify/s':>13} {'ratio':>6}"
        f" {'µs/auth':>8} {'cold µs':>8} {'audit flush/s':>14} {'auth+flush/s':>13}"
    )
    for r in results:
        median = f"({r['hmac_median_rate']:,.0f})"
        print(
            f"{r['stored']:>12,} {r['hmac_rate']:>11,.0f} {median:>9}"
            f" {r['raw_hmac_rate']:>11,.0f} {r['hmac_rate'] / r['raw_hmac_rate']:>6.2f}"
            f" {r['ed_rate']:>15,.0f} {r['raw_ed_rate']:>13,.0f}"
            f" {r['ed_rate'] / r['raw_ed_rate']:>6.2f} {r['hmac_us']:>8.2f}"
            f" {r['cold_us']:>8.0f} {r['flush_rate']:>14,.0f} {r['sustained_rate']:>13,.0f}"
        )
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(
            f"time per HMAC authentication, {last['stored']:,} vs {first['stored']:,} keys:"
            f" {last['hmac_us'] / first['hmac_us']:.2f}x (target <= 1.2x);"
            f" cold lookup {last['cold_us'] / first['cold_us']:.2f}x"
        )
    print(
        "targets: HMAC >= 150,000 auth/s/core; Ed25519 >= 0.85x raw verify;"
        " 1M keys <= 1.2x the 1k time"
    )


if __name__ == "__main__":
    main()
