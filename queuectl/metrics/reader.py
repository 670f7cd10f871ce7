"""What a metrics scrape reads from the store: gauges from the counts the store keeps, and run
totals from its run history (seeded once from an aggregate, then only what changed).

One reader belongs to one thread (its store connection is that thread's). A store that fails
is closed and opened again on the next read; the run totals carry on across that.
"""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

from ..config import live_window, settings_of
from ..errors import QueueError
from ..models import JobState
from ..store import run_reads
from ..store.base import Store
from .labels import Scope, scope_of_queue
from .tally import BOUNDS, SETTLE, RunTally, Totals

PAGE = 5000  # runs per read while catching up


class Reading(NamedTuple):
    """One scrape's values, as plain data."""

    jobs: dict[Scope, dict[JobState, int]]
    limits: dict[Scope, int | None]  # a queue's concurrency limit (None: unlimited)
    paused: dict[Scope, bool]
    oldest_ready_age: float  # seconds, over every queue; 0 when no job is ready
    workers: int  # live workers (recent heartbeat)
    busy_workers: int
    runs: dict[tuple[Scope, str], Totals]
    read_seconds: float


def seed(store: Store, tally: RunTally, now: float) -> None:
    """Start `tally` from the store's aggregate of the runs settled by `now`."""
    last = run_reads.last_settled_run(store, now - SETTLE)
    if last is None:
        return
    tally.seed(run_reads.run_totals(store, last.id, BOUNDS), last,
               run_reads.unfinished_runs(store, last.id))


def advance(store: Store, tally: RunTally, now: float) -> None:
    """Fold into `tally` the runs that finished since its last advance."""
    tally.begin()
    start = tally.cursor
    if tally.cursor:
        rows = run_reads.runs_from(store, tally.cursor, PAGE)
        if not tally.cursor_intact(rows[0] if rows and rows[0].id == tally.cursor else None):
            tally.rewind(_original(store, tally))
            start = tally.cursor
            rows = run_reads.runs_from(store, start + 1, PAGE)
    else:
        rows = run_reads.runs_from(store, 1, PAGE)
    while rows:
        tally.take(rows, now - SETTLE)
        if len(rows) < PAGE:
            break
        rows = run_reads.runs_from(store, rows[-1].id + 1, PAGE)
    if tally.open:
        tally.take_open(run_reads.runs_by_id(store, list(tally.open)))
    tally.end()


def _original(store: Store, tally: RunTally):
    """The newest run at or below the cursor that started no later than the cursor's run: the
    runs above it reuse ids of deleted ones."""
    top = tally.cursor
    while top > 0:
        rows = run_reads.runs_down_from(store, top, PAGE)
        for row in rows:
            if tally.cursor_started is not None and row.started_at <= tally.cursor_started:
                return row
        if len(rows) < PAGE:
            return None
        top = rows[-1].id - 1
    return None


class MetricsReader:
    """Reads a `Reading` from the store opened by `opener`, keeping the run totals between
    reads."""

    def __init__(self, opener: Callable[[], Store]) -> None:
        self.opener = opener
        self.tally = RunTally()
        self._store: Store | None = None
        self._seeded = False

    def read(self) -> Reading:
        started = time.perf_counter()
        try:
            store = self._store = self._store or self.opener()
            now = store.now()
            if not self._seeded:
                seed(store, self.tally, now)
                self._seeded = True
            advance(store, self.tally, now)
            window = live_window(settings_of(store))
            status = store.status(now, window)
            workers = store.workers()
            queues = store.queues()
        except QueueError:
            self.close()
            raise
        busy = sum(1 for w in workers if w.job_id and w.heartbeat_at >= now - window)
        return Reading(
            jobs={scope_of_queue(q): {s: q.counts.get(s, 0) for s in JobState} for q in queues},
            limits={scope_of_queue(q): q.concurrency for q in queues},
            paused={scope_of_queue(q): q.paused for q in queues},
            oldest_ready_age=status.oldest_waiting_age or 0.0,
            workers=status.workers,
            busy_workers=busy,
            runs={key: Totals(t.count, t.seconds, list(t.at_most))
                  for key, t in self.tally.totals.items()},
            read_seconds=time.perf_counter() - started,
        )

    def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            try:
                store.close()
            except QueueError:
                pass  # a store that failed may fail to close too; it is dropped either way
