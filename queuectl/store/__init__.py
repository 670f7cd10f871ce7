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


def open_store(location: str, *, durability: str = "full") -> Store:
    if is_url(location):
        raise InvalidInput("PostgreSQL stores are not supported yet; use an SQLite file path")
    from .sqlite import SQLiteStore

    return SQLiteStore(location, durability=durability)
