"""The `queuectl` command line: `main` (lean.py) serves `enqueue` and `status` without Typer
and hands everything else to the Typer app (app.py)."""

from .lean import main

__all__ = ["main"]
