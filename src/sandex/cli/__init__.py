"""The ``sandex`` command line (typer + rich)."""

from sandex.cli.main import app, main, run

__all__ = ["app", "main", "run"]
