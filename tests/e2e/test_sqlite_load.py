"""SQLite, the default backend, under ordinary load, against a real ``sandex serve``.

* **Mixed load:** 4 traders place signed orders while 4 readers page through the same
  accounts' order history (``GET /api/v3/order``, ``allOrders``, ``myTrades``) and a
  fifth client signs up, logs in, creates and revokes keys through the management API,
  for 10 s. Not one answer may be a 5xx ("database is locked" was 2.7 % of the reads).
* **A minute of serving:** the simulated market runs for a minute beside a trader; the
  server prints no traceback, the write-ahead log stays small, and ``sandex.db`` itself
  is written (the checkpoints succeed).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from e2e.clients import Credentials, new_key, now_ms
from e2e.conftest import Launch, Server, server_env
from sandex.keys import Permission
from sandex.keys.signing import sign_hmac
from sandex.storage.database import WAL_SIZE_LIMIT
from support import PASSWORD

NO_LIMIT = str(10**9)
TRADE = Permission.READ | Permission.SPOT_TRADE
SYMBOL = "BTCUSDT"
WAL_PEAK_BOUND = 32 * 1024 * 1024
"""The write-ahead log's size bound under load, whatever the uptime: the 4 MB it is cut
back to plus a quarter second's writes (at this test's few hundred orders a second, about
10 MB at most). Without working checkpoints it held every write: 12 KB a second idle,
about 250 MB in this minute."""


def _env(**extra: str) -> dict[str, str]:
    return server_env(
        SANDEX_IP_WEIGHT_1M=NO_LIMIT,
        SANDEX_KEY_WEIGHT_1M=NO_LIMIT,
        SANDEX_ORDERS_10S=NO_LIMIT,
        SANDEX_ORDERS_1D=NO_LIMIT,
        SANDEX_STARTING_BALANCE="1000000 USDT, 100 BTC",
        SANDEX_SIGNUP="open",
        **extra,
    )


class Tally:
    """Status codes per route, from every client thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.codes: Counter[tuple[str, int]] = Counter()
        self.server_errors: list[str] = []

    def send(
        self, client: httpx.Client, route: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send a request; its status is counted, a 5xx or a dropped connection noted."""
        try:
            response = client.request(method, url, **kwargs)
        except httpx.TransportError as exc:  # a server that dies or drops us mid-request
            with self._lock:
                self.server_errors.append(f"{route}: {exc!r}")
            return None
        with self._lock:
            self.codes[(route, response.status_code)] += 1
            if response.status_code >= 500:
                self.server_errors.append(f"{route} {response.status_code} {response.text[:200]}")
        return response

    def signed(
        self,
        client: httpx.Client,
        route: str,
        creds: Credentials,
        params: list[tuple[str, str]],
    ) -> httpx.Response | None:
        """An HMAC-signed Binance request; ``route`` is ``"GET /api/v3/order"`` and so on."""
        assert creds.secret is not None
        method, path = route.split()
        payload = urlencode([*params, ("timestamp", str(now_ms()))])
        query = f"{payload}&signature={sign_hmac(creds.secret, payload.encode())}"
        headers = {"X-MBX-APIKEY": creds.api_key}
        return self.send(client, route, method, f"{path}?{query}", headers=headers)

    def count(self, route: str, status: int = 200) -> int:
        return self.codes[(route, status)]


def _best_prices(server: Server) -> tuple[Decimal, Decimal]:
    response = httpx.get(
        f"{server.base}/api/v3/ticker/bookTicker", params={"symbol": SYMBOL}, trust_env=False
    )
    book = response.json()
    return Decimal(book["bidPrice"]), Decimal(book["askPrice"])


def _trader(
    server: Server, creds: Credentials, tally: Tally, until: float, seed: int
) -> Callable[[], None]:
    """LIMIT IOC orders, alternately buying and selling, every other one priced to cross
    the market makers' quotes (a trade) and the rest to miss (expired, stored)."""

    def run() -> None:
        with httpx.Client(base_url=server.base, timeout=30.0, trust_env=False) as client:
            bid, ask = _best_prices(server)
            for n in itertools.count(seed):
                if time.monotonic() > until:
                    return
                buy, cross = n % 2 == 0, n % 4 < 2
                if buy:
                    price = ask * Decimal("1.01") if cross else bid * Decimal("0.99")
                else:
                    price = bid * Decimal("0.99") if cross else ask * Decimal("1.01")
                params = [
                    ("symbol", SYMBOL),
                    ("side", "BUY" if buy else "SELL"),
                    ("type", "LIMIT"),
                    ("timeInForce", "IOC"),
                    ("quantity", "0.001"),
                    ("price", f"{price:.2f}"),
                    ("newClientOrderId", f"load-{seed}-{n}"),
                ]
                tally.signed(client, "POST /api/v3/order", creds, params)

    return run


def _reader(server: Server, creds: Credentials, tally: Tally, until: float) -> Callable[[], None]:
    """An account's order history, over and over: the newest orders, one of them by id,
    the trades."""

    def run() -> None:
        with httpx.Client(base_url=server.base, timeout=30.0, trust_env=False) as client:
            last_id = 1
            for n in itertools.count():
                if time.monotonic() > until:
                    return
                history = [("symbol", SYMBOL), ("limit", str(10 + n % 40))]
                one = [("symbol", SYMBOL), ("orderId", str(last_id))]
                orders = tally.signed(client, "GET /api/v3/allOrders", creds, history)
                if orders is not None and orders.status_code == 200 and orders.json():
                    last_id = orders.json()[-1]["orderId"]
                    one = [("symbol", SYMBOL), ("orderId", str(last_id))]
                tally.signed(client, "GET /api/v3/order", creds, one)
                tally.signed(client, "GET /api/v3/myTrades", creds, history)

    return run


def _accounts(server: Server, email: str, tally: Tally, until: float) -> Callable[[], None]:
    """Sign-ups, and a logged-in user creating and revoking keys: writes of the key
    service beside the exchange's."""

    def run() -> None:
        with httpx.Client(base_url=server.base, timeout=30.0, trust_env=False) as client:
            login = {"email": email, "password": PASSWORD}
            session = client.post("/sandex/v1/sessions", json=login)
            assert session.status_code == 201, session.text
            auth = {"Authorization": "Bearer " + session.json()["accessToken"]}
            for n in itertools.count():
                if time.monotonic() > until:
                    return
                if n % 4 == 0:
                    body = {"email": f"load-signup-{n}@example.com", "password": PASSWORD}
                    tally.send(client, "POST users", "POST", "/sandex/v1/users", json=body)
                label = {"label": f"load-{n}"}
                created = tally.send(
                    client, "POST keys", "POST", "/sandex/v1/keys", json=label, headers=auth
                )
                if created is not None and created.status_code == 201:
                    revoke = f"/sandex/v1/keys/{created.json()['key']['id']}/revoke"
                    tally.send(client, "POST revoke", "POST", revoke, headers=auth)

    return run


def _run_all(jobs: list[Callable[[], None]]) -> None:
    failures: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # reported by the test, not lost in a thread
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def test_mixed_orders_history_and_key_changes_on_sqlite_get_no_5xx(start_server: Launch) -> None:
    server = start_server(env=_env())
    with server.open() as sx:
        traders = [
            new_key(sx, f"load-{n}@example.com", label="trader", permissions=TRADE)
            for n in range(4)
        ]
        readers = [new_key(sx, f"load-{n}@example.com", label="reader") for n in range(4)]
        new_key(sx, "load-keys@example.com", label="first")
    tally = Tally()
    until = time.monotonic() + 10.0
    jobs = [_trader(server, c, tally, until, seed) for seed, c in enumerate(traders)]
    jobs += [_reader(server, c, tally, until) for c in readers]
    jobs.append(_accounts(server, "load-keys@example.com", tally, until))
    _run_all(jobs)

    summary = sorted(tally.codes.items())
    print(f"\nmixed load on SQLite, 10 s: {summary}")
    assert not tally.server_errors, tally.server_errors[:10]
    # the load was real: every kind of request was answered many times
    assert tally.count("POST /api/v3/order") >= 200, summary
    for route in ("GET /api/v3/allOrders", "GET /api/v3/order", "GET /api/v3/myTrades"):
        assert tally.count(route) >= 100, summary
    assert tally.count("POST revoke") >= 5, summary
    assert server.proc.poll() is None, server.log_tail()
    assert "Traceback" not in server.log.read_text(errors="replace"), server.log_tail()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_a_minute_of_market_and_orders_logs_nothing_and_keeps_the_wal_small(
    start_server: Launch,
) -> None:
    server = start_server(env=_env(SANDEX_MARKET_TICK_MS="100"))
    db = server.data_dir / "sandex.db"
    wal = server.data_dir / "sandex.db-wal"
    with server.open() as sx:
        trader = new_key(sx, "minute@example.com", label="trader", permissions=TRADE)
        watcher = new_key(sx, "minute@example.com", label="reader")
    db_size_at_start = _size(db)
    db_mtime_at_start = db.stat().st_mtime_ns
    tally = Tally()
    wal_sizes: list[int] = []
    until = time.monotonic() + 60.0

    def watch() -> None:
        while time.monotonic() < until:
            wal_sizes.append(_size(wal))
            time.sleep(0.1)

    _run_all(
        [_trader(server, trader, tally, until, 0), _reader(server, watcher, tally, until), watch]
    )
    time.sleep(2.0)  # the market goes on alone: the log starts over and is cut back
    wal_sizes.append(_size(wal))

    log = server.log.read_text(errors="replace")
    print(
        f"\na minute on SQLite: {tally.count('POST /api/v3/order')} orders; WAL peak"
        f" {max(wal_sizes)} B, last {wal_sizes[-1]} B; sandex.db {db_size_at_start} B ->"
        f" {_size(db)} B"
    )
    assert not tally.server_errors, tally.server_errors[:10]
    assert tally.count("POST /api/v3/order") >= 100
    assert server.proc.poll() is None, server.log_tail()
    assert "Traceback" not in log and "ERROR" not in log, server.log_tail()
    assert max(wal_sizes) < WAL_PEAK_BOUND, wal_sizes
    assert wal_sizes[-1] <= WAL_SIZE_LIMIT, wal_sizes
    # the checkpoints copy the log into the database file itself
    assert db.stat().st_mtime_ns > db_mtime_at_start
    assert _size(db) > db_size_at_start
