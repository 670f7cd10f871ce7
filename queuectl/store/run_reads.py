"""Reads of the run history for metrics, the same SQL on every backend (`SharedReads._read`).

Every query walks the runs table's primary key, except `run_totals`, which aggregates every
finished run once (when a metrics reader starts) without bringing the rows into Python.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..models import DEFAULT_QUEUE
from .base import Store


class RunRow(NamedTuple):
    """A run as metrics see it: finished when `finished_at` is set."""

    id: int
    started_at: float
    finished_at: float | None
    outcome: str | None
    queue: str = DEFAULT_QUEUE


class RunTotal(NamedTuple):
    """Finished runs of one outcome: how many, their summed duration, and how many lasted at
    most each bound (cumulative, in the order of the bounds asked for)."""

    outcome: str
    count: int
    seconds: float
    at_most: tuple[int, ...]
    queue: str = DEFAULT_QUEUE


# A run and its job's queue (the job's row is there: a job's runs go with it).
_ROW = ("r.id, r.started_at, r.finished_at, r.outcome, "
        f"coalesce((SELECT j.queue FROM jobs j WHERE j.id = r.job_id), '{DEFAULT_QUEUE}')")
IN_BATCH = 500  # ids per `IN (...)`: under every backend's limit on parameters


def runs_from(store: Store, first_id: int, limit: int) -> list[RunRow]:
    """Runs with an id of at least `first_id`, in id order, at most `limit` of them."""
    rows = store._read(f"SELECT {_ROW} FROM runs r WHERE r.id >= ? ORDER BY r.id LIMIT ?",
                       (first_id, limit))
    return [RunRow(*r) for r in rows]


def runs_down_from(store: Store, last_id: int, limit: int) -> list[RunRow]:
    """Runs with an id of at most `last_id`, newest id first, at most `limit` of them."""
    rows = store._read(f"SELECT {_ROW} FROM runs r WHERE r.id <= ? ORDER BY r.id DESC LIMIT ?",
                       (last_id, limit))
    return [RunRow(*r) for r in rows]


def runs_by_id(store: Store, ids: Sequence[int]) -> list[RunRow]:
    """The runs among `ids` that still exist."""
    out: list[RunRow] = []
    ids = sorted(ids)
    for start in range(0, len(ids), IN_BATCH):
        batch = ids[start:start + IN_BATCH]
        marks = ",".join("?" * len(batch))
        out.extend(RunRow(*r) for r in store._read(
            f"SELECT {_ROW} FROM runs r WHERE r.id IN ({marks}) ORDER BY r.id", batch))
    return out


def last_settled_run(store: Store, started_before: float) -> RunRow | None:
    """The run with the highest id among those started before `started_before` (a walk down
    the primary key that stops at the first such run)."""
    rows = store._read(f"SELECT {_ROW} FROM runs r WHERE r.started_at < ? ORDER BY r.id DESC LIMIT 1",
                       (started_before,))
    return RunRow(*rows[0]) if rows else None


def unfinished_runs(store: Store, last_id: int) -> list[RunRow]:
    """The runs up to `last_id` that have not finished."""
    return [RunRow(*r) for r in store._read(
        f"SELECT {_ROW} FROM runs r WHERE r.id <= ? AND r.finished_at IS NULL ORDER BY r.id",
        (last_id,))]


def run_totals(store: Store, last_id: int, bounds: Sequence[float]) -> list[RunTotal]:
    """Per outcome, the finished runs with an id up to `last_id`: count, summed seconds, and
    how many lasted at most each of `bounds` (seconds)."""
    buckets = "".join(
        ", sum(CASE WHEN r.finished_at - r.started_at <= ? THEN 1 ELSE 0 END)" for _ in bounds)
    rows = store._read(
        f"SELECT coalesce(j.queue, '{DEFAULT_QUEUE}'), r.outcome, count(*), "
        f"sum(r.finished_at - r.started_at){buckets} FROM runs r LEFT JOIN jobs j "
        "ON j.id = r.job_id WHERE r.id <= ? AND r.finished_at IS NOT NULL "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [float(b) for b in bounds] + [last_id])
    return [RunTotal(str(r[1] or "unknown"), int(r[2]), float(r[3] or 0.0),
                     tuple(int(n or 0) for n in r[4:]), r[0]) for r in rows]
