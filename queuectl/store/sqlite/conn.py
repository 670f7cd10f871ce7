"""Opening an SQLite store safely, and turning sqlite3 errors into queuectl errors."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import urllib.parse
from typing import Iterator

from ...errors import (PermissionDenied, QueueError, StoreBusy, StoreIOError, StoreMissing,
                      StoreUnusable)
from . import schema

DEFAULT_BUSY_TIMEOUT_MS = 5000


def busy_timeout_ms() -> int:
    text = os.environ.get("QUEUECTL_BUSY_TIMEOUT_MS", "")
    return int(text) if text.isdigit() else DEFAULT_BUSY_TIMEOUT_MS


def translate(exc: BaseException, path: str) -> QueueError:
    """Map an sqlite3 or OS error to the error class (and exit code) a person should see."""
    if isinstance(exc, QueueError):
        return exc
    if isinstance(exc, OSError):
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return PermissionDenied(f"store {path}: permission denied")
        if exc.errno == errno.ENOSPC:
            return StoreIOError(f"store {path}: no space left on device")
        return StoreIOError(f"store {path}: {exc.strerror or exc}")
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreBusy(f"store {path} is busy (locked by another process); retry later")
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return StoreIOError(f"store {path}: disk full")
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")) or "readonly" in text:
        return PermissionDenied(f"store {path} is read-only for this user")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        parent = os.path.dirname(path) or "."
        if not os.access(parent, os.W_OK | os.X_OK) or (
            os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK)
        ):
            return PermissionDenied(f"store {path}: permission denied")
        return StoreIOError(f"store {path}: cannot open")
    if name.startswith("SQLITE_NOTADB") or "not a database" in text:
        return StoreUnusable(f"{path} is not a queuectl store (not an SQLite database, or corrupt)")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreUnusable(f"store {path} is corrupt or not a database")
    if name.startswith("SQLITE_IOERR") or "I/O" in text:
        return StoreIOError(f"store {path}: I/O error")
    return QueueError(f"store {path}: {text}")


@contextlib.contextmanager
def translated(path: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError:
        raise  # constraint violations are answered by the caller (e.g. a duplicate id)
    except (sqlite3.Error, OSError) as exc:
        raise translate(exc, path) from exc


def _create_file(path: str) -> None:
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        if os.path.lexists(parent):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", parent)
        os.makedirs(parent, mode=0o700, exist_ok=True)
    if not os.path.exists(path):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return
        os.close(fd)


def _missing(path: str) -> StoreMissing:
    return StoreMissing(f"no queuectl store at {path} "
                        "(run queuectl init, or enqueue a job, to create one)")


def open_connection(path: str, *, durability: str = "full", create: bool = True) -> sqlite3.Connection:
    """Open (migrating as needed) the store at `path`; refuse files that are not ours.

    With `create`, a missing file (and its directory) is created and an empty file becomes a
    store; without it, neither is touched and StoreMissing is raised instead.
    The file is only written after it has been recognised as a queuectl store or an empty one.
    """
    # The file is never opened here except by SQLite: closing any other descriptor of it would
    # drop the POSIX locks of this process's other connections to it (and with them the WAL).
    with translated(path):
        if create:
            _create_file(path)
            target, uri = path, False
        elif not os.path.exists(path):
            raise _missing(path)
        else:  # mode=rw: SQLite itself refuses to create the file
            target, uri = "file:" + urllib.parse.quote(path) + "?mode=rw", True
        conn = sqlite3.connect(
            target, isolation_level=None, check_same_thread=False,
            timeout=busy_timeout_ms() / 1000, uri=uri,
        )
    try:
        with translated(path):
            conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms()}")
            version = schema.inspect(conn, path)
            if version == 0 and not create:
                raise _missing(path)  # an empty file holds no store yet
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            if version < schema.SCHEMA_VERSION:
                schema.migrate(conn, version)
                version = schema.inspect(conn, path)
            conn.execute("PRAGMA synchronous = " + ("FULL" if durability == "full" else "NORMAL"))
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("PRAGMA temp_store = MEMORY")
        return conn
    except BaseException:
        conn.close()
        raise


@contextlib.contextmanager
def write(conn: sqlite3.Connection, path: str) -> Iterator[sqlite3.Connection]:
    """One short write transaction, taken with BEGIN IMMEDIATE so busy_timeout applies."""
    with translated(path):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
