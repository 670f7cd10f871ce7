"""The queue view: every queue with its limit, state, jobs per state and defaults, live; keys
pause (`p`; `K` also stops its running jobs) and resume (`r`/`u`) the selected queue, and
`enter` filters the panes to it.

A queue's pause is stored: it holds for every pool and host until resumed, unlike `p` on the
panes, which pauses only this console's pool. Every change goes to the store in a thread worker
(`QueueApp.store_action`); queue names are data, shown as inert text (inert.py).
"""

from __future__ import annotations

from typing import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from queuectl.sanitize import one_line
from queuectl.store.base import Store

from .columns import QUEUE_COLUMNS, fit_columns
from .dialogs import ConfirmScreen
from .inert import plain
from .main_screen import fit_footer
from .messages import plural
from .panes import SCROLLBAR
from .snapshot import QueueRow, Snapshot

STATE_STYLES = {"open": "green", "paused": "bold yellow", "paused+kill": "bold red"}
NUMBERS = frozenset({"limit", "waiting", "running", "completed", "dead"})
NOTE = ("A queue's pause is stored: it holds on every pool and host, across restarts, until it "
        "is resumed. p: pause (running jobs finish) · K: pause and stop its running jobs (they "
        "go back, uncounted) · r: resume · enter: show only its jobs in the panes")
EMPTY = "no queues yet: a queue exists once a job or `queuectl queue set` names it"


def pause_queue(name: str, kill: bool) -> Callable[[Store, float], str]:
    """The store call that pauses queue `name`, returning what to tell the person."""
    def pause(store: Store, now: float) -> str:
        queue = store.pause_queue(name, kill=kill)
        shown = one_line(name, 40)
        if kill:
            return (f"paused queue {shown}: no new jobs start; its running jobs are stopped and "
                    "go back to it")
        running = queue.running
        rest = (f"{plural(running, 'running job')} finish{'es' if running == 1 else ''} first"
                if running else "none of its jobs is running")
        return f"paused queue {shown}: no new jobs start; {rest}"
    return pause


def resume_queue(name: str) -> Callable[[Store, float], str]:
    def resume(store: Store, now: float) -> str:
        shown = one_line(name, 40)
        if not store.queue(name).paused:
            return f"queue {shown} is not paused"
        store.resume_queue(name)
        return f"resumed queue {shown}: its jobs start again"
    return resume


class QueueTable(DataTable):
    """Every queue, one row each, keyed by name; its columns fit the width (columns.py).

    Rows are any frozen rows with a `name`, `cells` in the order of `COLUMNS`, and a `state`
    (styled by `STATE_STYLES`): the schedule view's table is one too."""

    BINDINGS = [Binding("enter", "select_cursor", "Filter panes")]  # the screen's on_..._selected
    COLUMNS = QUEUE_COLUMNS
    NUMBERS = NUMBERS
    STATE_STYLES = STATE_STYLES

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.rows_shown: tuple[QueueRow, ...] = ()
        self._index = {column.key: n for n, column in enumerate(self.COLUMNS)}
        self._shown = self._fit(80)
        self._add_columns()

    def _fit(self, width: int) -> tuple[tuple[str, int], ...]:
        columns = fit_columns(self.COLUMNS, width - SCROLLBAR, self.cell_padding)
        return tuple((column.key, width) for column, width in columns)

    def on_resize(self) -> None:
        shown = self._fit(self.size.width)
        if shown != self._shown:
            self._shown = shown
            self._rebuild(self.rows_shown)

    def selected(self) -> QueueRow | None:
        if not 0 <= self.cursor_row < self.row_count:
            return None
        name = self.ordered_rows[self.cursor_row].key.value
        return next((row for row in self.rows_shown if row.name == name), None)

    def _cell(self, row: QueueRow, key: str) -> Text:
        text = Text(row.cells[self._index[key]], no_wrap=True, overflow="ellipsis",
                    justify="right" if key in self.NUMBERS else "left")
        if key == "state":
            text.stylize(self.STATE_STYLES.get(row.state, ""))
        return text

    def apply(self, rows: tuple[QueueRow, ...]) -> None:
        """Show `rows`: changed cells in place, the table laid out again when queues come or go."""
        if rows == self.rows_shown:
            return
        if [r.name for r in rows] != [r.name for r in self.rows_shown]:
            self._rebuild(rows)
            return
        with self.app.batch_update():
            for old, new in zip(self.rows_shown, rows):
                for key, _ in self._shown:
                    index = self._index[key]
                    if old.cells[index] != new.cells[index] or old.state != new.state:
                        self.update_cell(new.name, key, self._cell(new, key))
        self.rows_shown = rows

    def _add_columns(self) -> None:
        labels = {column.key: column.label for column in self.COLUMNS}
        for key, width in self._shown:
            self.add_column(labels[key], width=width, key=key)

    def _rebuild(self, rows: tuple[QueueRow, ...]) -> None:
        """Every row again; the selected queue stays selected while it exists."""
        chosen = self.selected()
        with self.app.batch_update():
            self.clear(columns=True)
            self._add_columns()
            for row in rows:
                self.add_row(*(self._cell(row, key) for key, _ in self._shown), key=row.name)
            self.rows_shown = rows
            names = [row.name for row in rows]
            if chosen is not None and chosen.name in names:
                self.move_cursor(row=names.index(chosen.name), animate=False)


class NamedListScreen(Screen):
    """A view over the app's latest snapshot of one kind of named thing (queues, schedules): a
    title with how many and how many paused, a live table, a note, the footer."""

    KIND = "queue"  # the title reads "Queues"; widget ids queues-title, queues, queues-note
    TABLE: type[QueueTable]
    NOTE = ""
    EMPTY = ""

    def compose(self) -> ComposeResult:
        yield Static(plain(f" {self.KIND.capitalize()}s", "bold"), id=f"{self.KIND}s-title")
        yield self.TABLE(id=f"{self.KIND}s")
        yield Static(plain(self.NOTE), id=f"{self.KIND}s-note")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        if self.app.snapshot is not None:
            self.apply(self.app.snapshot)
        self.app.request_refresh()

    def on_resize(self) -> None:
        fit_footer(self.query_one(Footer), self.size.width)

    @property
    def table(self) -> QueueTable:
        return self.query_one(self.TABLE)

    def rows_of(self, snap: Snapshot) -> tuple | None:
        """This view's rows in `snap` (None: they were not read into it)."""
        raise NotImplementedError

    def apply(self, snap: Snapshot) -> None:
        rows = self.rows_of(snap)
        if rows is None:  # read before this view opened: the next refresh has them
            return
        try:
            self.table.apply(rows)
            paused = sum(row.paused for row in rows)
            title = Text(f" {self.KIND.capitalize()}s ", style="bold")
            title.append(f"{len(rows):,}", "bold")
            if paused:
                title.append(f"  ·  {paused:,} paused", "bold yellow")
            if not rows:
                title.append(f"  ·  {self.EMPTY}", "dim")
            self.query_one(f"#{self.KIND}s-title", Static).update(title)
        except NoMatches:  # not mounted yet, or being taken down: on_mount applies it
            pass

    def selected(self):
        row = self.table.selected()
        if row is None:
            self.app.notify(f"no {self.KIND} selected", severity="warning")
        return row


class QueueScreen(NamedListScreen):
    """The queue view over the app's latest snapshot; every refresh brings the new counts."""

    KIND = "queue"
    TABLE = QueueTable
    NOTE = NOTE
    EMPTY = EMPTY
    BINDINGS = [
        Binding("escape,Q", "app.pop_screen", "Back"),
        Binding("p", "pause(False)", "Pause queue"),
        Binding("K", "pause(True)", "Pause+stop"),
        Binding("r,u", "resume", "Resume queue"),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    def rows_of(self, snap: Snapshot) -> tuple:
        return snap.queues

    def action_pause(self, kill: bool) -> None:
        row = self.selected()
        if row is None:
            return
        if not kill:
            self.app.store_action(pause_queue(row.name, False))
            return
        one = row.running == 1
        detail = (f"Its {plural(row.running, 'running job')} {'is' if one else 'are'} killed and "
                  f"{'goes' if one else 'go'} back to the queue, uncounted;" if row.running else
                  "None of its jobs is running;")
        self.app.push_screen(
            ConfirmScreen(f"Pause queue {one_line(row.name, 60)} and stop its running jobs?",
                          f"{detail} no new ones start on any pool or host until it is resumed.",
                          yes="Pause and stop"),
            lambda yes: self.app.store_action(pause_queue(row.name, True)) if yes else None)

    def action_resume(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.store_action(resume_queue(row.name))

    def action_filter(self) -> None:
        row = self.selected()
        if row is not None:
            self.app.filter_queue(row.name)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_filter()
