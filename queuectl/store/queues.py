"""Named queues, written once for every store: each function runs inside the caller's
transaction on `c` (an sqlite3 connection or a PostgreSQL Tx, both taking `?` SQL).

A queue is gated when it has a concurrency limit or is paused: its waiting jobs carry
`gated = 1`, which keeps them out of the index the claim walks for every open queue at once;
the claim looks at a gated queue's jobs only while it is open (not paused, a slot free).
"""

from __future__ import annotations

from typing import Iterable, Mapping, NamedTuple, Sequence

from ..errors import Conflict, QueueNotFound
from ..models import DEFAULT_QUEUE, JobState, QueueInfo

QUEUE_COLUMNS = "name, concurrency, paused, max_retries, timeout, backoff_base, priority, created_at"
OPEN, PAUSED, KILLING = 0, 1, 2  # queues.paused
# 1 when a job's queue is gated (its row is there: every job's queue has one).
GATED_OF_JOB = ("coalesce((SELECT CASE WHEN q.concurrency IS NOT NULL OR q.paused > 0 THEN 1 "
                "ELSE 0 END FROM queues q WHERE q.name = jobs.queue), 0)")
UNSET = object()  # a setting `set_queue` leaves as it is


class Defaults(NamedTuple):
    """What a job enqueued into a queue takes unless it says otherwise."""

    max_retries: int | None = None
    timeout: float | None = None
    backoff_base: float | None = None
    priority: int | None = None
    gated: bool = False


def _info(row: Sequence, counts: Mapping[str, dict]) -> QueueInfo:
    name, concurrency, paused, max_retries, timeout, backoff_base, priority, created = row
    return QueueInfo(name, concurrency, paused > 0, paused == KILLING, max_retries, timeout,
                     backoff_base, priority, created, counts.get(name, {}))


def ensure(c, names: Iterable[str], now: float, *, count_rows: bool) -> None:
    """Create the queues among `names` that do not exist yet (SQLite's per-queue count rows
    too, with `count_rows`)."""
    for name in names:
        c.execute("INSERT INTO queues (name, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                  (name, now))
        if count_rows:
            for state in JobState:
                c.execute("INSERT INTO counts (queue, state, n) VALUES (?, ?, 0) "
                          "ON CONFLICT DO NOTHING", (name, state.value))


def defaults(c, names: Iterable[str]) -> dict[str, Defaults]:
    out = {}
    for name in names:
        row = c.execute("SELECT max_retries, timeout, backoff_base, priority, "
                        "concurrency IS NOT NULL OR paused > 0 FROM queues WHERE name = ?",
                        (name,)).fetchone()
        out[name] = Defaults() if row is None else Defaults(*row[:4], gated=bool(row[4]))
    return out


def counts(c) -> dict[str, dict[JobState, int]]:
    out: dict[str, dict[JobState, int]] = {}
    for queue, state, n in c.execute("SELECT queue, state, sum(n) FROM counts "
                                     "GROUP BY queue, state").fetchall():
        if n:
            out.setdefault(queue, {})[JobState(state)] = int(n)
    return out


def listing(c) -> list[QueueInfo]:
    found = counts(c)
    return [_info(row, found) for row in
            c.execute(f"SELECT {QUEUE_COLUMNS} FROM queues ORDER BY name").fetchall()]


def get(c, name: str, *, lock: str = "") -> QueueInfo:
    row = c.execute(f"SELECT {QUEUE_COLUMNS} FROM queues WHERE name = ?{lock}", (name,)).fetchone()
    if row is None:
        raise QueueNotFound(f"no queue named {name!r} (queuectl queue list shows them)")
    return _info(row, {name: counts(c).get(name, {})})


def _regate(c, name: str) -> None:
    """Bring the ready jobs of `name` in line with its limit and pause (a blocked job is
    brought in line when its last dependency is met)."""
    c.execute(f"UPDATE jobs SET gated = {GATED_OF_JOB} "
              "WHERE queue = ? AND state IN ('pending', 'failed') AND blocked = 0", (name,))


def configure(c, name: str, now: float, *, count_rows: bool, concurrency=UNSET,
              max_retries=UNSET, timeout=UNSET, backoff_base=UNSET, priority=UNSET) -> None:
    """Create or change a queue: each given setting (None: unlimited / no default)."""
    ensure(c, [name], now, count_rows=count_rows)
    given = {"concurrency": concurrency, "max_retries": max_retries, "timeout": timeout,
             "backoff_base": backoff_base, "priority": priority}
    for column, value in given.items():
        if value is not UNSET:
            c.execute(f"UPDATE queues SET {column} = ? WHERE name = ?", (value, name))
    if concurrency is not UNSET:
        _regate(c, name)


def pause(c, name: str, *, kill: bool) -> None:
    get(c, name)
    c.execute("UPDATE queues SET paused = ? WHERE name = ?", (KILLING if kill else PAUSED, name))
    _regate(c, name)


def resume(c, name: str) -> None:
    get(c, name)
    c.execute("UPDATE queues SET paused = ? WHERE name = ?", (OPEN, name))
    _regate(c, name)


def remove(c, name: str, *, lock: str = "") -> None:
    queue = get(c, name, lock=lock)
    if queue.total:
        raise Conflict(f"queue {name!r} still holds {queue.total} job"
                       f"{'s' if queue.total != 1 else ''}; prune or purge them first")
    c.execute("DELETE FROM queues WHERE name = ?", (name,))
    c.execute("DELETE FROM counts WHERE queue = ?", (name,))


def queue_of(name: str | None) -> str:
    return DEFAULT_QUEUE if name is None else name
