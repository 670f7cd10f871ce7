"""The error hierarchy of the engine; the CLI maps each class to its exit code."""

from __future__ import annotations


class QueueError(Exception):
    """Base of every error queuectl reports to a person."""

    exit_code = 1


class InvalidInput(QueueError):
    """A spec, flag or config value is not acceptable."""

    exit_code = 2


class JobNotFound(QueueError):
    exit_code = 3


class QueueNotFound(QueueError):
    exit_code = 3


class NotFound(QueueError):
    """An unknown schedule or hook."""

    exit_code = 3


class Conflict(QueueError):
    """A duplicate id, or a transition the job's current state does not allow."""

    exit_code = 4


class StoreMissing(QueueError):
    """No store at the location, and the command only reads (it never creates one)."""

    exit_code = 66


class StoreUnusable(QueueError):
    """Not a database, a foreign SQLite file, a newer schema, or corrupt."""

    exit_code = 69


class StoreIOError(QueueError):
    """Disk full or another I/O failure."""

    exit_code = 74


class StoreBusy(QueueError):
    """The store stayed locked longer than the busy timeout."""

    exit_code = 75


class PermissionDenied(QueueError):
    exit_code = 77


EXIT_CODES = {
    0: "ok",
    1: "any other failure",
    2: "usage error or invalid input",
    3: "unknown job id, queue, schedule or hook",
    4: "conflict: duplicate id, or a transition the job's state does not allow",
    66: "no store at the location (commands that only read never create one)",
    69: "store unusable: not a database, a foreign SQLite file, a newer schema, corrupt",
    74: "I/O error or disk full",
    75: "store busy, retry later",
    77: "permission denied",
}
