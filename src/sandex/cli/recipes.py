"""The connection recipes the README shows and ``sandex serve --demo`` prints: one text,
so that the two cannot drift apart (a test compares them, and runs the README's).

Every URL a ccxt client knows is moved to Sandex, REST and WebSocket alike, including
the testnet and demo sets that ``set_sandbox_mode`` and ``enable_demo_trading`` swap in:
whatever the client does, the key never leaves for binance.com.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_ADDRESS", "SANDEX_URLS", "CCXT", "ccxt_snippet"]

DEFAULT_ADDRESS: Final = "127.0.0.1:8765"

SANDEX_URLS: Final = '''\
import re

SANDEX = "127.0.0.1:8765"

def sandex_urls(urls):
    """Every URL in a ccxt client's urls (REST, WebSocket, testnet, demo) moved to Sandex;
    the spot streams' hosts (stream.*) to /stream, as ccxt.pro tells spot streams by it."""
    if isinstance(urls, dict):
        return {name: sandex_urls(url) for name, url in urls.items()}
    if isinstance(urls, list):
        return [sandex_urls(url) for url in urls]
    if isinstance(urls, str):
        urls = re.sub(r"^wss?://(demo-)?stream\\.[^/]+", f"ws://{SANDEX}/stream", urls)
        return re.sub(r"^(http|ws)s?://[^/]+", rf"\\g<1>://{SANDEX}", urls)
    return urls'''
"""Defines ``sandex_urls``: https://host/path becomes http://SANDEX/path, wss:// ws://, and a
spot stream host's wss://stream.../path ws://SANDEX/stream/path."""

CCXT: Final = """\
import ccxt

exchange = ccxt.binance({"apiKey": KEY, "secret": SECRET,  # or an Ed25519/RSA private key PEM
                         "urls": sandex_urls(ccxt.binance().urls)})"""
"""A ccxt.binance at Sandex (with ``sandex_urls`` defined); no options are needed."""


def ccxt_snippet(address: str, api_key: str) -> str:
    """The recipe for a server at ``address`` (host:port) and a key, secret left out."""
    return "\n".join(
        [
            SANDEX_URLS.replace(DEFAULT_ADDRESS, address),
            "",
            f'KEY, SECRET = "{api_key}", "<the secret above>"',
            CCXT,
            'print(exchange.fetch_time(), exchange.fetch_balance()["USDT"])',
        ]
    )
