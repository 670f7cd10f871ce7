"""Adding jobs inside a caller's write transaction, written once for every store (`c`: an
sqlite3 connection or a PostgreSQL Tx, both taking `?` SQL): for enqueue, and for the jobs that
schedules and hooks make in the transaction that decides them."""

from __future__ import annotations

from typing import Sequence

from ..models import NewJob
from . import deps, queues as queue_ops
from .base import Enqueued
from .rows import ENQUEUE_COLUMNS, enqueue_rows, queues_of

INSERT_COLUMNS = (*ENQUEUE_COLUMNS.split(", "), "state")  # a row's values, then 'pending'
_INSERT = (f"INSERT INTO jobs ({', '.join(INSERT_COLUMNS)}) VALUES "
           f"({', '.join('?' * (len(INSERT_COLUMNS) - 1))}, 'pending')")


def plan_rows(c, ids: Sequence[str], jobs: Sequence[NewJob], *, now: float,
              default_max_retries: int, default_cwd: str, unique_for: float | None,
              on_conflict: str, count_rows: bool) -> tuple[deps.Planned, list[tuple]]:
    """Decide the batch (unique keys, dependencies: store/deps.py), create its queues, and
    build the rows of its new jobs."""
    planned = deps.plan(c, ids, jobs, now=now, unique_for=unique_for, on_conflict=on_conflict)
    names = queues_of(jobs)
    queue_ops.ensure(c, names, now, count_rows=count_rows)
    rows = enqueue_rows(planned.ids, jobs, now=now, default_max_retries=default_max_retries,
                        default_cwd=default_cwd, defaults=queue_ops.defaults(c, names),
                        new=planned.new, blocked=planned.blocked)
    return planned, rows


def finish_batch(c, planned: deps.Planned, rows: list[tuple], *, count_rows: bool) -> Enqueued:
    """After the rows are in: their dependencies, and SQLite's per-queue counts (which inserts
    keep by hand, one statement per queue, not by trigger)."""
    deps.insert(c, planned.deps)
    if count_rows:
        added: dict[str, int] = {}
        for row in rows:
            added[row[2]] = added.get(row[2], 0) + 1
        c.executemany("UPDATE counts SET n = n + ? WHERE queue = ? AND state = 'pending'",
                      [(n, q) for q, n in added.items()])
    return Enqueued(planned.ids, planned.existing)


def insert_jobs(c, ids: Sequence[str], jobs: Sequence[NewJob], *, now: float,
                default_max_retries: int, default_cwd: str, count_rows: bool,
                unique_for: float | None = None, on_conflict: str = "existing") -> Enqueued:
    """Add `jobs` (with these `ids`) in the caller's transaction."""
    planned, rows = plan_rows(c, ids, jobs, now=now, default_max_retries=default_max_retries,
                              default_cwd=default_cwd, unique_for=unique_for,
                              on_conflict=on_conflict, count_rows=count_rows)
    if rows:
        c.executemany(_INSERT, rows)
    return finish_batch(c, planned, rows, count_rows=count_rows)
