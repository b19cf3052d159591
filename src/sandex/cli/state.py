"""What every command shares: the data directory, the console, opening Sandex."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from sandex.bootstrap import Sandex, open_sandex
from sandex.cli.parsing import CliInputError
from sandex.config import Settings

__all__ = [
    "CliState",
    "state",
    "use_data_dir",
    "warn_if_exposed",
    "opened",
    "print_json",
    "out",
    "err",
]

# Piped output keeps whole lines (tables included) instead of Rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else max(shutil.get_terminal_size((200, 24)).columns, 160)
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)


@dataclass
class CliState:
    data_dir: Path | None = None


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def use_data_dir(ctx: typer.Context, data_dir: Path | None) -> None:
    """A command's own ``--data-dir`` (``sandex serve --data-dir DIR``), the same as
    ``sandex --data-dir DIR serve``; given both ways, they must name one directory."""
    if data_dir is None:
        return
    current = state(ctx)
    if current.data_dir is not None and current.data_dir != data_dir:
        raise CliInputError(
            f"--data-dir is given twice, as {current.data_dir} and as {data_dir}; give it once"
        )
    current.data_dir = data_dir


def warn_if_exposed(settings: Settings) -> None:
    """Warn on stderr when other users may list the data directory (the files in it are
    created readable by their owner only, but their names and sizes would show)."""
    directory = settings.data_dir
    if not directory.is_dir():
        return
    mode = stat.S_IMODE(directory.stat().st_mode)
    if mode & 0o077:
        err.print(
            f"warning: the data directory {directory} is open to other users (mode {mode:o});"
            f" run: chmod 700 {directory}",
            markup=False,
        )


@contextmanager
def opened(ctx: typer.Context) -> Iterator[Sandex]:
    """Open Sandex for one command; queued audit events are written before it returns."""
    settings = Settings.from_env(data_dir=state(ctx).data_dir)
    sandex = open_sandex(settings)
    try:
        yield sandex
    finally:
        sandex.close()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()
