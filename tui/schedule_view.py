"""The schedule view: every schedule with its rule, next run, last job and that job's state,
live; keys pause (`p`) and resume (`r`/`u`) the selected schedule, and `g` makes one of its
jobs now (its next tick stays as it is).

Every change goes to the store in a thread worker (`QueueApp.store_action`), through the calls
`queuectl schedule pause/resume/run-now` make; names and commands are data, shown inert.
"""

from __future__ import annotations

from typing import Callable

from textual.binding import Binding

from queuectl.config import settings_of
from queuectl.durations import relative
from queuectl.sanitize import one_line
from queuectl.store.base import Store

from .columns import SCHEDULE_COLUMNS
from .queue_view import NamedListScreen, QueueTable
from .snapshot import Snapshot

NOTE = ("A schedule makes a job at each tick, on whichever pool runs. p: pause (no more jobs "
        "until resumed) · r: resume (from its next tick; the ticks missed are not made up) · "
        "g: make one of its jobs now")
EMPTY = "no schedules yet: `queuectl schedule add NAME --every 15m -- COMMAND` adds one"


def pause_schedule(name: str, paused: bool) -> Callable[[Store, float], str]:
    """The store call that pauses or resumes schedule `name`, returning what to tell."""
    def pause(store: Store, now: float) -> str:
        shown = one_line(name, 40)
        if store.schedule(name).paused == paused:
            return f"schedule {shown} is {'paused' if paused else 'not paused'} already"
        info = store.pause_schedule(name, paused=paused, now=now)
        if paused:
            return f"paused schedule {shown}: it makes no more jobs until resumed"
        return f"resumed schedule {shown}: next run {relative(info.next_at, now)}"
    return pause


def run_schedule_now(name: str) -> Callable[[Store, float], str]:
    def run(store: Store, now: float) -> str:
        job_id = store.run_schedule_now(name, now=now,
                                        default_max_retries=settings_of(store).max_retries)
        return f"schedule {one_line(name, 40)} made job {one_line(job_id, 40)}"
    return run


class ScheduleTable(QueueTable):
    """Every schedule, one row each, keyed by name."""

    BINDINGS = [Binding("enter", "select_cursor", "", show=False)]  # not the queue view's filter
    COLUMNS = SCHEDULE_COLUMNS
    NUMBERS = frozenset()
    STATE_STYLES = {"active": "green", "paused": "bold yellow"}


class ScheduleScreen(NamedListScreen):
    """The schedule view over the app's latest snapshot (read while this view is open)."""

    KIND = "schedule"
    TABLE = ScheduleTable
    NOTE = NOTE
    EMPTY = EMPTY
    BINDINGS = [
        Binding("escape,S", "app.pop_screen", "Back"),
        Binding("p", "pause(True)", "Pause schedule"),
        Binding("r,u", "pause(False)", "Resume schedule"),
        Binding("g", "run_now", "Run now"),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def rows_of(self, snap: Snapshot) -> tuple | None:
        return snap.schedules

    def action_pause(self, paused: bool) -> None:
        row = self.selected()
        if row is not None:
            self.app.store_action(pause_schedule(row.name, paused))

    def action_run_now(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.store_action(run_schedule_now(row.name))
