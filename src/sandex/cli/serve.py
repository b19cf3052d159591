"""``sandex serve``: the HTTP server (Binance routes and the management API)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from sandex.bootstrap import Sandex
from sandex.cli.recipes import ccxt_snippet
from sandex.cli.state import opened, out, state, use_data_dir, warn_if_exposed
from sandex.config import ConfigError, Settings
from sandex.keys import IpAllowlist, KeySettings, Permission
from sandex.service import Actor

__all__ = ["serve", "DEMO_EMAIL"]

DEMO_EMAIL = "demo@sandex.example"


def _create_demo(sx: Sandex, base: str) -> None:
    """On first run (no users yet): a demo user and a READ+SPOT_TRADE HMAC key, printed once."""
    if sx.users.all():
        return
    now = sx.clock.now()
    password = secrets.token_urlsafe(12)
    user = sx.users.create(DEMO_EMAIL, password, now=now, actor=Actor.operator())
    issued = sx.keys.create(
        user.id,
        KeySettings(
            "demo",
            Permission.READ | Permission.SPOT_TRADE,
            IpAllowlist.parse(["127.0.0.1", "::1"]),
        ),
        now=now,
        actor=Actor.operator(),
    )
    out.print(
        "First run: created a demo user and a demo API key. They are shown ONCE:", markup=False
    )
    out.print(f"  user:     {DEMO_EMAIL}", markup=False)
    out.print(f"  password: {password}", markup=False)
    out.print(f"  API key:  {issued.api_key}", markup=False)
    out.print(f"  secret:   {issued.secret}", markup=False)
    out.print("  permissions READ + SPOT_TRADE; usable from 127.0.0.1 and ::1 only.", markup=False)
    out.print("Connect ccxt (pip install ccxt):", markup=False)
    out.print(ccxt_snippet(base.removeprefix("http://"), issued.api_key), markup=False)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8765,
    workers: Annotated[
        int, typer.Option("--workers", min=1, max=64, help="Worker processes (>1 needs Redis).")
    ] = 1,
    demo: Annotated[
        bool, typer.Option("--demo", help="On first run, create a demo user and key.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where Sandex keeps its data (as sandex --data-dir)."),
    ] = None,
) -> None:
    """Serve the Binance-compatible API and the management API until SIGINT/SIGTERM."""
    use_data_dir(ctx, data_dir)
    settings = Settings.from_env(data_dir=state(ctx).data_dir)
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            "--workers above 1 needs SANDEX_REDIS_URL: the workers must share rate-limit"
            " counters and the replay cache"
        )
    base = f"http://{host}:{port}"
    with opened(ctx) as sx:  # creates and migrates the database before any worker starts
        if demo:
            _create_demo(sx, base)
    warn_if_exposed(settings)
    os.environ["SANDEX_DATA_DIR"] = str(settings.data_dir)
    if not os.environ.get("SANDEX_SIGNUP", "").strip() and not _loopback(host):
        os.environ["SANDEX_SIGNUP"] = "invite"  # open sign-up only where only this host sees it
        out.print(
            f"note: listening on {host}, so sign-up through the API needs an invitation code"
            " (sandex users invite); SANDEX_SIGNUP=open|invite|closed chooses",
            markup=False,
        )
    if workers > 1:  # the books live in one process; several would each hold a copy
        os.environ["SANDEX_EXCHANGE"] = "0"
        out.print(
            "note: the spot exchange runs with one worker only; with --workers above 1 the"
            " key service and gateway run, and the exchange routes are not served",
            markup=False,
        )
    out.print(
        f"Sandex serving on {base} ({workers} worker{'s' if workers > 1 else ''});"
        f" data in {settings.data_dir}. Ctrl-C stops it.",
        markup=False,
    )
    uvicorn.run(
        "sandex.bootstrap:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="sandex.http.wire:JsonErrorsHttpToolsProtocol",  # httptools, JSON parse errors
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; Sandex decides whom
        # to believe itself (SANDEX_TRUSTED_PROXIES), so uvicorn must not rewrite the peer
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


def _loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
