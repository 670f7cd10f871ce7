"""Reads of the run history for metrics, the same SQL on every backend (`SharedReads._read`).

Every query walks the runs table's primary key, except `run_totals`, which aggregates every
finished run once (when a metrics reader starts) without bringing the rows into Python.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from .base import Store


class RunRow(NamedTuple):
    """A run as metrics see it: finished when `finished_at` is set."""

    id: int
    started_at: float
    finished_at: float | None
    outcome: str | None


class RunTotal(NamedTuple):
    """Finished runs of one outcome: how many, their summed duration, and how many lasted at
    most each bound (cumulative, in the order of the bounds asked for)."""

    outcome: str
    count: int
    seconds: float
    at_most: tuple[int, ...]


_ROW = "id, started_at, finished_at, outcome"
IN_BATCH = 500  # ids per `IN (...)`: under every backend's limit on parameters


def runs_from(store: Store, first_id: int, limit: int) -> list[RunRow]:
    """Runs with an id of at least `first_id`, in id order, at most `limit` of them."""
    rows = store._read(f"SELECT {_ROW} FROM runs WHERE id >= ? ORDER BY id LIMIT ?",
                       (first_id, limit))
    return [RunRow(*r) for r in rows]


def runs_down_from(store: Store, last_id: int, limit: int) -> list[RunRow]:
    """Runs with an id of at most `last_id`, newest id first, at most `limit` of them."""
    rows = store._read(f"SELECT {_ROW} FROM runs WHERE id <= ? ORDER BY id DESC LIMIT ?",
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
            f"SELECT {_ROW} FROM runs WHERE id IN ({marks}) ORDER BY id", batch))
    return out


def last_settled_run(store: Store, started_before: float) -> RunRow | None:
    """The run with the highest id among those started before `started_before` (a walk down
    the primary key that stops at the first such run)."""
    rows = store._read(f"SELECT {_ROW} FROM runs WHERE started_at < ? ORDER BY id DESC LIMIT 1",
                       (started_before,))
    return RunRow(*rows[0]) if rows else None


def unfinished_runs(store: Store, last_id: int) -> list[RunRow]:
    """The runs up to `last_id` that have not finished."""
    return [RunRow(*r) for r in store._read(
        f"SELECT {_ROW} FROM runs WHERE id <= ? AND finished_at IS NULL ORDER BY id", (last_id,))]


def run_totals(store: Store, last_id: int, bounds: Sequence[float]) -> list[RunTotal]:
    """Per outcome, the finished runs with an id up to `last_id`: count, summed seconds, and
    how many lasted at most each of `bounds` (seconds)."""
    buckets = "".join(
        ", sum(CASE WHEN finished_at - started_at <= ? THEN 1 ELSE 0 END)" for _ in bounds)
    rows = store._read(
        f"SELECT outcome, count(*), sum(finished_at - started_at){buckets} FROM runs "
        "WHERE id <= ? AND finished_at IS NOT NULL GROUP BY outcome ORDER BY outcome",
        [float(b) for b in bounds] + [last_id])
    return [RunTotal(str(r[0] or "unknown"), int(r[1]), float(r[2] or 0.0), tuple(int(n or 0) for n in r[3:]))
            for r in rows]
