"""Which store a command uses, and opening it the way every command does: --db (before or
after the command), else QUEUECTL_DB, else the per-user default. Free of Typer, so that the
lean command line (lean.py) and the Typer app (app.py) share it."""

from __future__ import annotations

import os

from ..errors import InvalidInput


def chosen_db(current: str | None, value: str) -> str:
    """The --db of an invocation that already chose `current` (None: not yet) and is given
    `value` at another level of the command line (before and after the command)."""
    if current is not None and value != current:
        from ..store import display_location

        raise InvalidInput("--db given twice, with different stores "
                           f"({display_location(current)} and {display_location(value)})")
    return value


def location(db: str | None) -> str:
    """The store named by `db` (the --db given, or None), else QUEUECTL_DB, else the default."""
    from ..store import resolve_location

    if db is not None and not db.strip():
        raise InvalidInput("--db: the store location is empty")
    return resolve_location(db)


def open_for(db: str | None, durability: str = "full", *, create: bool):
    """Open the store of `location(db)`.

    Commands that put something in the store pass `create=True` (a missing store is created);
    the others pass False, so a mistyped --db or QUEUECTL_DB is an error (StoreMissing) instead
    of a new, empty store. The per-user default store is created on first use either way."""
    from ..store import open_store

    named = db is not None or bool(os.environ.get("QUEUECTL_DB"))
    return open_store(location(db), durability=durability, create=create or not named)
