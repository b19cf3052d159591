"""The ``sandex`` command: the operator's tool.

Errors are one clear line on stderr and a non-zero exit code, never a traceback
(set ``SANDEX_DEBUG=1`` to see one).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from sandex.accounts import AccountsError
from sandex.cli import admin, audit, keys, users
from sandex.cli.exchange import balances_app, market_app
from sandex.cli.parsing import CliInputError
from sandex.cli.serve import engine, serve
from sandex.cli.state import CliState, err
from sandex.config import ConfigError
from sandex.keys import KeysError
from sandex.service import ServiceError

__all__ = ["app", "main", "run"]

app = typer.Typer(
    name="sandex",
    help="Sandex: a self-hosted Binance-compatible exchange with API keys done right.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(users.app, name="users")
app.add_typer(keys.app, name="keys")
app.add_typer(audit.app, name="audit")
app.add_typer(admin.app, name="admin")
app.add_typer(balances_app, name="balances")
app.add_typer(market_app, name="market")
app.command("init")(admin.init)
app.command("serve")(serve)
app.command("engine")(engine)


@app.callback()
def _root(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where Sandex keeps its database and master key"
            " [env: SANDEX_DATA_DIR; default ./.sandex].",
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(data_dir)


_EXPECTED = (KeysError, AccountsError, ServiceError, ConfigError, CliInputError)


def run(args: list[str] | None = None) -> int:
    """Run the CLI with ``args``; returns the exit code."""
    try:
        app(args=args, prog_name="sandex")  # usage errors: typer prints them and exits 2
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except _EXPECTED as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("SANDEX_DEBUG"):
            raise
        err.print(
            f"error: unexpected {type(exc).__name__}; run again with SANDEX_DEBUG=1 for details",
            markup=False,
        )
        return 70
    return 0


def main() -> None:
    sys.exit(run())
