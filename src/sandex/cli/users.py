"""``sandex users …``: create users and manage their 2FA."""

from __future__ import annotations

import io
import sys
from typing import Annotated

import qrcode
import typer
from rich.table import Table

from sandex.cli.parsing import CliInputError, format_ms
from sandex.cli.state import opened, out, print_json
from sandex.service import Actor

__all__ = ["app"]

app = typer.Typer(help="Users and their two-factor authentication.", no_args_is_help=True)
totp = typer.Typer(help="TOTP two-factor authentication.", no_args_is_help=True)
app.add_typer(totp, name="totp")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
CodeOpt = Annotated[
    str, typer.Option("--code", help="The current 6-digit code (or a recovery code).")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliInputError("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise CliInputError(
            "standard input is not a terminal: pass the password with --password-stdin"
        )
    value: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@app.command("create")
def create(
    ctx: typer.Context,
    email: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user (password: at least 12 characters)."""
    password = _read_password(password_stdin)
    with opened(ctx) as sx:
        user = sx.users.create(email, password, now=sx.clock.now(), actor=Actor.operator())
    if as_json:
        print_json({"id": user.id, "email": user.email, "createdAt": user.created_at})
    else:
        out.print(f"created user {user.email} (id {user.id})")


@app.command("invite")
def invite(
    ctx: typer.Context,
    days: Annotated[
        int, typer.Option("--days", min=1, max=90, help="Days the code works (at most 90).")
    ] = 7,
    as_json: JsonOpt = False,
) -> None:
    """A one-time sign-up code, for SANDEX_SIGNUP=invite (shown once; stored as a hash)."""
    with opened(ctx) as sx:
        made = sx.users.invite(now=sx.clock.now(), actor=Actor.operator(), ttl_ms=days * 86_400_000)
    if as_json:
        print_json({"id": made.id, "code": made.code, "expiresAt": made.expires_at})
        return
    out.print(
        f"invitation {made.id}, single use, until {format_ms(made.expires_at)}:", markup=False
    )
    out.print(f"  {made.code}", markup=False)
    out.print(
        'sign up with it: POST /sandex/v1/users {"email", "password", "invite"}', markup=False
    )


@app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List users."""
    with opened(ctx) as sx:
        users = sx.users.all()
    if as_json:
        print_json(
            [
                {"id": u.id, "email": u.email, "createdAt": u.created_at, "twoFactor": u.has_2fa}
                for u in users
            ]
        )
        return
    table = Table("id", "email", "created", "2FA")
    for u in users:
        table.add_row(str(u.id), u.email, format_ms(u.created_at), "on" if u.has_2fa else "off")
    out.print(table)


@totp.command("enable")
def totp_enable(ctx: typer.Context, email: str, as_json: JsonOpt = False) -> None:
    """Start TOTP enrolment: shows the otpauth URI and a QR code to scan."""
    with opened(ctx) as sx:
        user = sx.users.find(email)
        enrolment = sx.users.begin_totp(user.id, now=sx.clock.now(), actor=Actor.operator())
    if as_json:
        print_json({"secret": enrolment.secret, "uri": enrolment.uri})
        return
    qr = qrcode.QRCode(border=1)
    qr.add_data(enrolment.uri)
    buffer = io.StringIO()
    qr.print_ascii(out=buffer, invert=True)
    out.print(buffer.getvalue(), markup=False)
    out.print(f"otpauth URI: {enrolment.uri}", markup=False)
    out.print(f"or type this secret into the app: {enrolment.secret}", markup=False)
    out.print(f"then confirm: sandex users totp confirm {user.email} --code NNNNNN", markup=False)


@totp.command("confirm")
def totp_confirm(ctx: typer.Context, email: str, code: CodeOpt, as_json: JsonOpt = False) -> None:
    """Finish enrolment with a first code; prints 10 single-use recovery codes (once)."""
    with opened(ctx) as sx:
        user = sx.users.find(email)
        codes = sx.users.confirm_totp(user.id, code, now=sx.clock.now(), actor=Actor.operator())
    if as_json:
        print_json({"enabled": True, "recoveryCodes": codes})
        return
    out.print(f"2FA is on for {user.email}. Recovery codes (each works once; store them offline):")
    for c in codes:
        out.print(f"  {c}")


@totp.command("disable")
def totp_disable(ctx: typer.Context, email: str, code: CodeOpt) -> None:
    """Turn 2FA off (needs a valid code or recovery code)."""
    with opened(ctx) as sx:
        user = sx.users.find(email)
        sx.users.disable_totp(user.id, code, now=sx.clock.now(), actor=Actor.operator())
    out.print(f"2FA is off for {user.email}")


@totp.command("recovery-codes")
def totp_recovery_codes(
    ctx: typer.Context, email: str, code: CodeOpt, as_json: JsonOpt = False
) -> None:
    """Replace all recovery codes (the old ones stop working)."""
    with opened(ctx) as sx:
        user = sx.users.find(email)
        codes = sx.users.regenerate_recovery_codes(
            user.id, code, now=sx.clock.now(), actor=Actor.operator()
        )
    if as_json:
        print_json({"recoveryCodes": codes})
        return
    out.print("New recovery codes (each works once):")
    for c in codes:
        out.print(f"  {c}")
