"""``sandex audit …``: verify the hash chain, read recent events."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sandex.cli.parsing import format_ms
from sandex.cli.state import err, opened, out, print_json
from sandex.service.views import audit_view

__all__ = ["app"]

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Recompute the hash chain and compare its tail with the newest signed digest;
    one line per problem (exit 1): a bad entry, a truncated, wiped or rewound log, a
    forged digest, a digest missing from the digest chain."""
    with opened(ctx) as sx:
        check = sx.audit.check()
    report, newest = check.chain, check.newest
    if not report.ok:
        err.print(
            f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem}"
            f" ({report.checked} entries verified before it)",
            markup=False,
        )
    for problem in check.problems:
        err.print(f"audit log TAMPERED: {problem}", markup=False)
    if not check.ok:
        raise typer.Exit(1)
    if newest is None:
        out.print(f"audit chain intact: {report.checked} entries verified", markup=False)
        err.print(
            f"warning: no audit digest in {check.location} yet, so the newest entries"
            " could be cut off unnoticed (`sandex serve` writes digests;"
            " `sandex audit digest` writes one now)",
            markup=False,
        )
        return
    out.print(
        f"audit chain OK: {report.checked} entries verified; {check.digests} signed digests,"
        f" the newest ({newest.describe()}) recorded entry {newest.head.seq}",
        markup=False,
    )


@app.command("digest")
def digest(ctx: typer.Context) -> None:
    """Sign the audit chain's head into a new digest now (if it moved since the last)."""
    with opened(ctx) as sx:
        written = sx.audit.write_digest(sx.clock.now())
        location = sx.settings.digest_dir
    if written is None:
        out.print("the audit chain has not moved since the newest digest; nothing written")
        return
    out.print(
        f"audit digest {written.number} written: head at entry {written.head.seq},"
        f" {written.time} ({location / written.file_name})",
        markup=False,
    )


@app.command("tail")
def tail(
    ctx: typer.Context,
    key: Annotated[
        str | None, typer.Option("--key", help="Only this key (display prefix).")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user (e-mail).")] = None,
    limit: Annotated[int, typer.Option("-n", "--limit", min=1, max=10_000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the newest events, oldest first."""
    with opened(ctx) as sx:
        user_id = sx.users.find(user).id if user else None
        records = sx.audit.tail(limit=limit, key_prefix=key, user_id=user_id)
    if as_json:
        print_json([audit_view(r) for r in records])
        return
    table = Table("seq", "time", "event", "actor", "key", "ip", "endpoint", "outcome", "reason")
    for r in records:
        e = r.event
        table.add_row(
            str(r.seq),
            format_ms(e.ts),
            e.event,
            e.actor or "",
            e.key_prefix or "",
            e.ip or "",
            e.endpoint or "",
            e.outcome or "",
            e.reason or "",
        )
    out.print(table)
