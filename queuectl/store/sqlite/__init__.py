"""The SQLite store (the default): one file in WAL mode."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
