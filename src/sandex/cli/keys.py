"""``sandex keys …``: the API-key lifecycle, as the operator."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from sandex.cli.parsing import CliInputError, format_ms, parse_duration_ms, parse_expiry_ms
from sandex.cli.state import opened, out, print_json
from sandex.keys import (
    IpAllowlist,
    KeyKind,
    KeySettings,
    Mode,
    RiskPolicy,
    find_tokens,
    generate_ed25519_pair,
    parse_permissions,
)
from sandex.keys.policy import parse_notional, parse_symbols
from sandex.keys.reference import KeyById, parse_key_ref
from sandex.service import UNSET, Actor, IssuedKey, KeyPatch
from sandex.service.views import key_view

__all__ = ["app"]

app = typer.Typer(
    help="API keys: create, list, show, update, rotate, revoke, freeze.", no_args_is_help=True
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
KeyArg = Annotated[str, typer.Argument(help="The API key, its id, or its display prefix.")]
IpOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--ip", help="Allowed IPv4/IPv6 address or CIDR range (repeat, or comma-separate)."
    ),
]
PublicKeyOpt = Annotated[
    Path | None, typer.Option("--public-key", help="PEM file with your Ed25519 or RSA public key.")
]
GenerateOpt = Annotated[
    Path | None,
    typer.Option(
        "--generate",
        help="Make an Ed25519 pair here: the private key goes to this"
        " new 0600 file, only the public key is uploaded.",
    ),
]


def _ips(values: list[str] | None) -> IpAllowlist:
    items = [part for value in values or [] for part in value.split(",") if part.strip()]
    return IpAllowlist.parse(items)


def _write_private_key(path: Path, pem: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CliInputError(
            f"{path} already exists; choose a new file for the private key"
        ) from None
    except OSError as exc:
        raise CliInputError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(pem)


def _key_material(
    public_key: Path | None, generate: Path | None
) -> tuple[str | None, Path | None, str | None]:
    """(public PEM, private key file written, private PEM) from --public-key / --generate."""
    if public_key is not None and generate is not None:
        raise CliInputError("use either --public-key or --generate, not both")
    if public_key is not None:
        try:
            return public_key.read_text(), None, None
        except (OSError, UnicodeDecodeError) as exc:
            raise CliInputError(f"cannot read {public_key}: {exc}") from None
    if generate is not None:
        private_pem, public_pem = generate_ed25519_pair()
        _write_private_key(generate, private_pem)
        return public_pem, generate, private_pem
    return None, None, None


def _issued_json(issued: IssuedKey, now: int, private_file: Path | None) -> dict[str, Any]:
    view = key_view(issued.key, now=now)
    result: dict[str, Any] = {"apiKey": issued.api_key}
    if issued.secret is not None:
        result["secretKey"] = issued.secret
    if private_file is not None:
        result["privateKeyFile"] = str(private_file)
    result.update(view)
    return result


def _print_issued(issued: IssuedKey, now: int, private_file: Path | None, heading: str) -> None:
    view = key_view(issued.key, now=now)
    out.print(heading)
    out.print(f"  API key     {issued.api_key}", markup=False)
    if issued.secret is not None:
        out.print(f"  Secret key  {issued.secret}", markup=False)
        out.print("  [bold yellow]The secret is shown this once. Store it now.[/]")
    if private_file is not None:
        out.print(
            f"  Private key {private_file} (mode 0600; Sandex kept only the public key)",
            markup=False,
        )
    _print_summary(view)


def _print_summary(view: dict[str, Any]) -> None:
    rows = [
        ("Prefix", view["prefix"]),
        ("Label", view["label"]),
        ("Type", view["type"]),
        ("Permissions", ", ".join(view["permissions"])),
        ("IP allowlist", ", ".join(view["ips"]) or "none (unrestricted)"),
        ("Status", view["status"]),
        ("Created", format_ms(view["createdAt"])),
        ("Expires", format_ms(view["expiresAt"])),
        ("Trading lapses", format_ms(view["tradingAuthorityExpirationTime"])),
        ("Last used", f"{format_ms(view['lastUsedAt'])} from {view['lastUsedIp'] or '-'}"),
        ("Mode", view["policy"]["mode"]),
        ("Symbols", ", ".join(view["policy"]["symbols"] or []) or "all"),
        ("Max notional", view["policy"]["maxNotional"] or "none"),
        ("Max open orders", str(view["policy"]["maxOpenOrders"] or "none")),
    ]
    if view["graceEndsAt"]:
        rows.append(("Grace ends", format_ms(view["graceEndsAt"])))
    for name, value in rows:
        out.print(f"  {name:<15} {value}", markup=False)
    for warning in view["warnings"]:
        out.print(f"  [yellow]warning:[/] {warning}")


@app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The owner's e-mail.")],
    label: Annotated[str, typer.Option("--label", help="1-64 printable characters, unique.")],
    permissions: Annotated[
        str,
        typer.Option(
            "--permissions",
            help="Comma-separated: read, spot_trade,"
            " futures_trade, withdraw, deposit, internal_transfer.",
        ),
    ] = "read",
    ip: IpOpt = None,
    key_type: Annotated[
        str | None, typer.Option("--type", help="hmac (default), ed25519 or rsa.")
    ] = None,
    public_key: PublicKeyOpt = None,
    generate: GenerateOpt = None,
    expires: Annotated[
        str | None, typer.Option("--expires", help="ISO 8601 date/time (UTC) or duration (90d).")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option("--symbols", help="Only these symbols (BTCUSDT,ETHUSDT).")
    ] = None,
    max_notional: Annotated[
        str | None, typer.Option("--max-notional", help="Largest order value (quote asset).")
    ] = None,
    max_open_orders: Annotated[
        int | None, typer.Option("--max-open-orders", help="Most orders open at once.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a key. An HMAC key's secret is printed once and never again."""
    kind = KeyKind.parse(key_type) if key_type else None
    if generate is not None and kind not in (None, KeyKind.ED25519):
        raise CliInputError("--generate makes an Ed25519 key; drop --type or use --type ed25519")
    if kind in (KeyKind.ED25519, KeyKind.RSA) and public_key is None and generate is None:
        raise CliInputError(f"an {kind.value} key needs --public-key FILE (or --generate FILE)")
    if kind is KeyKind.HMAC_SHA256 and (public_key is not None or generate is not None):
        raise CliInputError("an HMAC key has no public key; drop --public-key/--generate")
    perms = parse_permissions(permissions)
    allowlist = _ips(ip)
    policy = RiskPolicy(parse_symbols(symbols or ""), parse_notional(max_notional), max_open_orders)
    with opened(ctx) as sx:
        now = sx.clock.now()
        settings = KeySettings(
            label, perms, allowlist, parse_expiry_ms(expires, now=now) if expires else None, policy
        ).validated(now=now)
        owner = sx.users.find(user)
        public_pem, private_file, _ = _key_material(public_key, generate)
        try:
            issued = sx.keys.create(
                owner.id,
                settings,
                now=now,
                actor=Actor.operator(),
                kind=kind or KeyKind.HMAC_SHA256,
                public_key_pem=public_pem,
            )
        except BaseException:
            if private_file is not None:
                private_file.unlink(missing_ok=True)
            raise
    if as_json:
        print_json(_issued_json(issued, now, private_file))
    else:
        _print_issued(issued, now, private_file, f"Created key for {owner.email}:")


@app.command("list")
def list_keys(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", help="The owner's e-mail.")],
    as_json: JsonOpt = False,
) -> None:
    """List a user's keys (never their secrets)."""
    with opened(ctx) as sx:
        owner = sx.users.find(user)
        now = sx.clock.now()
        views = [key_view(k, now=now) for k in sx.keys.for_user(owner.id, actor=Actor.operator())]
    if as_json:
        print_json(views)
        return
    table = Table(
        "prefix", "label", "type", "permissions", "IPs", "status", "created", "expires", "last used"
    )
    for v in views:
        table.add_row(
            v["prefix"],
            v["label"],
            v["type"],
            ",".join(v["permissions"]),
            ",".join(v["ips"]) or "any",
            v["status"],
            format_ms(v["createdAt"]),
            format_ms(v["expiresAt"]),
            f"{format_ms(v['lastUsedAt'])} {v['lastUsedIp'] or ''}".strip(),
        )
    out.print(table)


@app.command("show")
def show(ctx: typer.Context, key: KeyArg, as_json: JsonOpt = False) -> None:
    """Show one key."""
    ref = parse_key_ref(key)
    with opened(ctx) as sx:
        found = sx.keys.find(ref, actor=Actor.operator())
        view = key_view(found, now=sx.clock.now())
    if as_json:
        print_json(view)
    else:
        _print_summary(view)


@app.command("update")
def update(
    ctx: typer.Context,
    key: KeyArg,
    label: Annotated[str | None, typer.Option("--label")] = None,
    permissions: Annotated[str | None, typer.Option("--permissions")] = None,
    ip: IpOpt = None,
    no_ip: Annotated[bool, typer.Option("--no-ip", help="Remove the IP allowlist.")] = False,
    expires: Annotated[str | None, typer.Option("--expires")] = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="Remove the expiry.")] = False,
    symbols: Annotated[str | None, typer.Option("--symbols")] = None,
    all_symbols: Annotated[
        bool, typer.Option("--all-symbols", help="Remove the symbol allowlist.")
    ] = False,
    max_notional: Annotated[str | None, typer.Option("--max-notional")] = None,
    no_max_notional: Annotated[bool, typer.Option("--no-max-notional")] = False,
    max_open_orders: Annotated[int | None, typer.Option("--max-open-orders")] = None,
    no_max_open_orders: Annotated[bool, typer.Option("--no-max-open-orders")] = False,
    mode: Annotated[
        str | None, typer.Option("--mode", help="NORMAL, CANCEL_ONLY or FROZEN.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a key's label, permissions, restrictions or policy."""
    ref = parse_key_ref(key)
    for a, b, name in (
        (ip, no_ip, "--ip/--no-ip"),
        (expires, no_expiry, "--expires/--no-expiry"),
        (symbols, all_symbols, "--symbols/--all-symbols"),
        (max_notional, no_max_notional, "--max-notional/--no-max-notional"),
        (max_open_orders, no_max_open_orders, "--max-open-orders/--no-max-open-orders"),
    ):
        if a is not None and b:
            raise CliInputError(f"{name}: give one or the other")
    with opened(ctx) as sx:
        now = sx.clock.now()
        patch = KeyPatch(
            label=UNSET if label is None else label,
            permissions=UNSET if permissions is None else parse_permissions(permissions),
            allowlist=IpAllowlist() if no_ip else (UNSET if ip is None else _ips(ip)),
            expires_at=None
            if no_expiry
            else (UNSET if expires is None else parse_expiry_ms(expires, now=now)),
            symbols=None if all_symbols else (UNSET if symbols is None else parse_symbols(symbols)),
            max_notional=None
            if no_max_notional
            else (UNSET if max_notional is None else parse_notional(max_notional)),
            max_open_orders=None
            if no_max_open_orders
            else (UNSET if max_open_orders is None else max_open_orders),
            mode=UNSET if mode is None else Mode.parse(mode),
        )
        updated = sx.keys.update(ref, patch, now=now, actor=Actor.operator())
        view = key_view(updated, now=now)
    if as_json:
        print_json(view)
    else:
        out.print(f"updated key {updated.prefix}")
        _print_summary(view)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    key: KeyArg,
    grace: Annotated[
        str, typer.Option("--grace", help="How long the old key keeps working (max 7d).")
    ] = "24h",
    public_key: PublicKeyOpt = None,
    generate: GenerateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key with a new key and secret; the old one works until the grace ends."""
    ref = parse_key_ref(key)
    grace_ms = parse_duration_ms(grace) if grace.strip() not in ("0", "") else 0
    with opened(ctx) as sx:
        now = sx.clock.now()
        old = sx.keys.find(ref, actor=Actor.operator())
        if old.kind is not KeyKind.HMAC_SHA256 and public_key is None and generate is None:
            raise CliInputError(
                f"rotating an {old.kind.value} key needs --public-key FILE or --generate FILE"
            )
        public_pem, private_file, _ = (None, None, None)
        if old.kind is not KeyKind.HMAC_SHA256:
            public_pem, private_file, _ = _key_material(public_key, generate)
        try:
            issued = sx.keys.rotate(
                ref, now=now, actor=Actor.operator(), grace_ms=grace_ms, public_key_pem=public_pem
            )
        except BaseException:
            if private_file is not None:
                private_file.unlink(missing_ok=True)
            raise
        refreshed = sx.keys.find(KeyById(old.id), actor=Actor.operator())
    if as_json:
        result = _issued_json(issued, now, private_file)
        result["previous"] = {"prefix": refreshed.prefix, "graceEndsAt": refreshed.grace_ends_at}
        print_json(result)
    else:
        _print_issued(issued, now, private_file, f"Rotated {refreshed.prefix}; new key:")
        out.print(
            f"  the old key {refreshed.prefix} works until {format_ms(refreshed.grace_ends_at)}",
            markup=False,
        )


@app.command("revoke")
def revoke(ctx: typer.Context, key: KeyArg) -> None:
    """Revoke a key now."""
    ref = parse_key_ref(key)
    with opened(ctx) as sx:
        revoked = sx.keys.revoke(ref, now=sx.clock.now(), actor=Actor.operator())
    out.print(f"revoked key {revoked.prefix}")


@app.command("freeze")
def freeze(ctx: typer.Context, key: KeyArg) -> None:
    """Quarantine a key: it can still read and cancel orders, nothing else."""
    ref = parse_key_ref(key)
    with opened(ctx) as sx:
        frozen = sx.keys.freeze(ref, now=sx.clock.now(), actor=Actor.operator())
    out.print(f"froze key {frozen.prefix} (reads and cancels only)")


@app.command("unfreeze")
def unfreeze(ctx: typer.Context, key: KeyArg) -> None:
    """Lift a freeze."""
    ref = parse_key_ref(key)
    with opened(ctx) as sx:
        thawed = sx.keys.unfreeze(ref, now=sx.clock.now(), actor=Actor.operator())
    out.print(f"unfroze key {thawed.prefix}")


@app.command("scan")
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to scan.")],
) -> None:
    """Find Sandex API keys and secrets in files (checksum-verified; exits 1 if any)."""
    found = 0
    for root in paths:
        files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else [root]
        for path in files:
            try:
                text = path.read_text(errors="ignore")
            except OSError:
                continue
            for token in find_tokens(text):
                found += 1
                what = "secret" if token.startswith("sdxs") else "API key"
                out.print(f"{path}: Sandex {what} {token[:8]}… (revoke or rotate it)", markup=False)
    if found:
        raise typer.Exit(1)
    out.print("no Sandex keys or secrets found")
