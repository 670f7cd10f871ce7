"""The schedule view: every schedule with its rule, next run, last job and that job's state,
live; keys pause (`p`) and resume (`r`/`u`) the selected schedule, and `g` makes one of its
jobs now (its next tick stays as it is).

Every change goes to the store in a thread worker (`QueueApp.store_action`), through the calls
`queuectl schedule pause/resume/run-now` make; names and commands are data, shown inert.
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Static

from queuectl.config import settings_of
from queuectl.durations import relative
from queuectl.sanitize import one_line
from queuectl.store.base import Store

from .columns import SCHEDULE_COLUMNS
from .inert import plain
from .main_screen import fit_footer
from .queue_view import QueueTable
from .snapshot import ScheduleRow, Snapshot

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


class ScheduleScreen(Screen):
    """The schedule view over the app's latest snapshot (read while this view is open)."""

    BINDINGS = [
        Binding("escape,S", "app.pop_screen", "Back"),
        Binding("p", "pause(True)", "Pause schedule"),
        Binding("r,u", "pause(False)", "Resume schedule"),
        Binding("g", "run_now", "Run now"),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(plain(" Schedules", "bold"), id="schedules-title")
        yield ScheduleTable(id="schedules")
        yield Static(plain(NOTE), id="schedules-note")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        if self.app.snapshot is not None:
            self.apply(self.app.snapshot)
        self.app.request_refresh()

    def on_resize(self) -> None:
        fit_footer(self.query_one(Footer), self.size.width)

    @property
    def table(self) -> ScheduleTable:
        return self.query_one(ScheduleTable)

    def apply(self, snap: Snapshot) -> None:
        if snap.schedules is None:  # read before this view opened: the next refresh has them
            return
        try:
            self.table.apply(snap.schedules)
            paused = sum(row.paused for row in snap.schedules)
            title = Text(" Schedules ", style="bold")
            title.append(f"{len(snap.schedules):,}", "bold")
            if paused:
                title.append(f"  ·  {paused:,} paused", "bold yellow")
            if not snap.schedules:
                title.append(f"  ·  {EMPTY}", "dim")
            self.query_one("#schedules-title", Static).update(title)
        except NoMatches:  # not mounted yet, or being taken down: on_mount applies it
            pass

    def selected(self) -> ScheduleRow | None:
        row = self.table.selected()
        if row is None:
            self.app.notify("no schedule selected", severity="warning")
        return row

    def action_pause(self, paused: bool) -> None:
        row = self.selected()
        if row is not None:
            self.app.store_action(pause_schedule(row.name, paused))

    def action_run_now(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.store_action(run_schedule_now(row.name))
