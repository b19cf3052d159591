"""What every command shares: the data directory, the console, opening Sandex."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from sandex.bootstrap import Sandex, open_sandex
from sandex.config import Settings

__all__ = ["CliState", "state", "opened", "print_json", "out", "err"]

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
