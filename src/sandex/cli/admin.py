"""``sandex init`` and ``sandex admin …``: set-up and master-key care."""

from __future__ import annotations

import typer

from sandex.cli.state import opened, out, state, warn_if_exposed
from sandex.config import Settings
from sandex.keys import MasterKey
from sandex.service import Actor

__all__ = ["app", "init"]

app = typer.Typer(help="Operator tasks: master key rotation.", no_args_is_help=True)


def init(ctx: typer.Context) -> None:
    """Create (or open) the data directory, database and master key; print a summary."""
    settings = Settings.from_env(data_dir=state(ctx).data_dir)
    with opened(ctx) as sx:
        users = sx.users.all()
        key_count = sx.keys.count()
        report = sx.audit.verify()
        keyring = sx.keyring.keyring
    where = (settings.database_url and "PostgreSQL (SANDEX_DATABASE_URL)") or str(
        settings.data_dir / "sandex.db"
    )
    out.print(f"Sandex data directory: {settings.data_dir}", markup=False)
    out.print(f"  database:   {where}", markup=False)
    out.print(
        f"  master key: {sx.keyring.source.description} (id {keyring.primary.key_id})", markup=False
    )
    out.print(f"  users: {len(users)}, API keys: {key_count}")
    out.print(f"  audit chain: {'OK' if report.ok else 'BROKEN'} ({report.checked} entries)")
    out.print("Next: sandex users create EMAIL, then sandex keys create --user EMAIL --label L")
    warn_if_exposed(settings)


@app.command("rotate-master-key")
def rotate_master_key(ctx: typer.Context) -> None:
    """Re-wrap every sealed secret under a new master key, without downtime."""
    with opened(ctx) as sx:
        report = sx.master_keys.rotate(now=sx.clock.now(), actor=Actor.operator())
    out.print(f"master key rotated to {report.new_key_id}: {report.rewrapped} secrets re-wrapped")
    if report.retired:
        out.print(f"retired {', '.join(report.old_key_ids) or 'nothing'} from the key file")
    elif report.old_key_ids:
        out.print(
            f"everything is sealed with {report.new_key_id}; you can now remove"
            f" {', '.join(report.old_key_ids)} from SANDEX_MASTER_KEY"
        )


@app.command("generate-master-key")
def generate_master_key() -> None:
    """Print a new random master key (for SANDEX_MASTER_KEY). Store it like a password."""
    out.print(MasterKey.generate().to_text(), markup=False)
