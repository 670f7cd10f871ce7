"""Running totals of finished runs, kept honest however many processes write runs.

A pure fold: the reader (`reader.py`) feeds it rows of the store's runs table; nothing here
reads the store or the clock. The invariant: every run that finishes is counted exactly once,

- runs with an id up to `cursor` are counted, or waiting in `open` (unfinished when the cursor
  passed them), so a scrape re-reads only the runs after the cursor and the open ones;
- the cursor passes a run only once it is `SETTLE` seconds old, so a run whose id a concurrent
  transaction took earlier but committed later (PostgreSQL) is not stepped over;
- a run is known by its id *and* its start, so an id SQLite hands out again (after the newest
  runs were pruned) is a new run, not one already counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..store.run_reads import RunRow, RunTotal
from .labels import Scope, scope_of_run, scope_of_total

# Upper bounds (seconds) of the run duration histogram: shell jobs take from milliseconds to hours.
BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
                             3600)
SETTLE = 5.0


@dataclass
class Totals:
    """Finished runs of one scope and outcome; `at_most[i]` counts runs of at most BOUNDS[i]."""

    count: int = 0
    seconds: float = 0.0
    at_most: list[int] = field(default_factory=lambda: [0] * len(BOUNDS))

    def add(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        for i, bound in enumerate(BOUNDS):
            if seconds <= bound:
                self.at_most[i] += 1


class RunTally:
    """Counts of finished runs per (scope, outcome), with the cursor that makes them cheap."""

    def __init__(self) -> None:
        self.totals: dict[tuple[Scope, str], Totals] = {}
        self.cursor = 0  # every run with an id up to here is counted or in `open`
        self.cursor_started: float | None = None  # the start of the run at `cursor`
        self.open: dict[int, float] = {}  # unfinished runs behind the cursor: id -> start
        self.counted_ahead: dict[int, float] = {}  # finished runs after it, already counted
        self._advancing = True

    # -- seeding from the store's aggregate
    def seed(self, totals: Iterable[RunTotal], last: RunRow | None,
             unfinished: Iterable[RunRow]) -> None:
        """Start from the store's totals of the finished runs up to `last` (its newest settled
        run) and the unfinished runs up to it."""
        for total in totals:
            kept = self._totals(scope_of_total(total), total.outcome)
            kept.count += total.count
            kept.seconds += total.seconds
            kept.at_most = [a + b for a, b in zip(kept.at_most, total.at_most)]
        if last is not None:
            self.cursor, self.cursor_started = last.id, last.started_at
        self.open = {r.id: r.started_at for r in unfinished if r.id <= self.cursor}

    # -- one scrape
    def cursor_intact(self, row: RunRow | None) -> bool:
        """Whether `row` (the store's run with the cursor's id, or None) is the run the cursor
        passed; when it is not, the newest runs were deleted and their ids may be reused."""
        if self.cursor == 0:
            return True
        return row is not None and row.id == self.cursor and row.started_at == self.cursor_started

    def rewind(self, original: RunRow | None) -> None:
        """Move the cursor back to `original`: the newest run at or below the old cursor that
        started no later than the cursor's run (None: none is left)."""
        self.cursor = original.id if original else 0
        self.cursor_started = original.started_at if original else None
        self.open = {i: s for i, s in self.open.items() if i <= self.cursor}

    def begin(self) -> None:
        """Start a scrape: the cursor may advance again."""
        self._advancing = True

    def take(self, rows: Sequence[RunRow], settled_before: float) -> None:
        """Count the finished runs among `rows` (runs after the cursor, in id order, each page
        following the previous one) not counted yet; move the cursor over the leading runs that
        started before `settled_before`."""
        for row in rows:
            if row.id <= self.cursor:
                continue
            if row.finished_at is not None and self.counted_ahead.get(row.id) != row.started_at:
                self._count(row)
                self.counted_ahead[row.id] = row.started_at
            if self._advancing and row.started_at < settled_before:
                self.cursor, self.cursor_started = row.id, row.started_at
                self.counted_ahead.pop(row.id, None)
                if row.finished_at is None:
                    self.open[row.id] = row.started_at
            else:
                self._advancing = False

    def take_open(self, rows: Iterable[RunRow]) -> None:
        """Count the open runs that finished, among `rows` (the store's rows for `open`'s ids);
        forget the ones that are gone (a claim given back before it started)."""
        found = {r.id: r for r in rows}
        for run_id in list(self.open):
            row = found.get(run_id)
            if row is None:
                del self.open[run_id]
            elif row.finished_at is not None:
                self._count(row)
                del self.open[run_id]
            else:
                self.open[run_id] = row.started_at

    def end(self) -> None:
        """End a scrape: forget what the cursor has passed (or what has gone behind it)."""
        self.counted_ahead = {i: s for i, s in self.counted_ahead.items() if i > self.cursor}

    # -- reading
    def _totals(self, scope: Scope, outcome: str) -> Totals:
        return self.totals.setdefault((scope, outcome), Totals())

    def _count(self, row: RunRow) -> None:
        self._totals(scope_of_run(row), row.outcome or "unknown").add(
            row.finished_at - row.started_at)
