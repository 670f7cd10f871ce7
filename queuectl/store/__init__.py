"""Stores: `open_store(location)` picks the implementation for a path or URL."""

from __future__ import annotations

import os

from ..errors import InvalidInput
from .base import Store


def default_location() -> str:
    from platformdirs import user_data_dir

    return os.path.join(user_data_dir("queuectl", appauthor=False), "queuectl.db")


def resolve_location(db: str | None) -> str:
    """--db, else QUEUECTL_DB, else the per-user default."""
    location = db or os.environ.get("QUEUECTL_DB") or default_location()
    if not location.strip():
        raise InvalidInput("the store location is empty")
    return location


def is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def display_location(location: str) -> str:
    """The location as shown to people: a URL loses its password."""
    if is_url(location):
        from .postgres.conn import parse_location

        return parse_location(location).display
    return location


def open_store(location: str, *, durability: str = "full", create: bool = True) -> Store:
    """The store at `location`. With `create` (for commands that write), a missing store is
    created (the SQLite file and its directory, or the PostgreSQL schema); without it (for
    commands that only read) nothing is created and a missing store is StoreMissing."""
    if is_url(location):
        from .postgres import PostgresStore

        return PostgresStore(location, durability=durability, create=create)
    from .sqlite import SQLiteStore

    return SQLiteStore(location, durability=durability, create=create)
