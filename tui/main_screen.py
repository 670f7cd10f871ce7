"""The main screen: the status header, the four panes side by side, the filter bar, the footer."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.containers import Grid, Vertical
from textual.events import DescendantFocus
from textual.widgets import DataTable, Footer, Input, Static

from queuectl.sanitize import one_line

from .inert import plain
from .panes import JobTable
from .rate import format_rate
from .snapshot import PANE_TITLES, PANES, Snapshot, header_counts

SEPARATOR = "  ·  "
COUNT_STYLES = {"pending": "bold", "retrying": "yellow", "running": "bold green",
                "completed": "green", "dead": "bold red"}
PAUSED_STYLE = "bold black on yellow"
QUEUE_TITLE = 24  # characters of a queue's name in a pane's title or the header


def paused_label(names: list[str], room: int) -> str:
    """`paused: a, b` for the header, in at most `room` cells when it can be: the names that
    fit, then how many more (`paused: a, b +3`), else only the number (`3 queues paused`)."""
    names = [one_line(name, QUEUE_TITLE) for name in names]
    for shown in range(len(names), 0, -1):
        more = len(names) - shown
        label = "paused: " + ", ".join(names[:shown]) + (f" +{more}" if more else "")
        if cell_len(label) <= room:
            return label
    return f"{len(names)} queue{'s' if len(names) != 1 else ''} paused"


class StatusBar(Static):
    """Two lines, each cut to the width: counts per state; workers, throughput and the store
    (or what is wrong with it). Separators narrow before anything is cut."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shown: tuple = (None, None, "", None)

    def show(self, snap: Snapshot | None, *, error: str | None, store_text: str,
             watch_problem: str | None) -> None:
        self._shown = (snap, error, store_text, watch_problem)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = self.size.width or 200
        lines = []
        for build in (self._counts, self._second):
            line = build(SEPARATOR, width)
            if line.cell_len > width:
                line = build(SEPARATOR.strip().center(3), width)
            line.truncate(width, overflow="ellipsis")
            lines.append(line)
        self.update(Text("\n").join(lines))

    def _counts(self, gap: str, width: int) -> Text:
        """The jobs per state, then the paused queues in what room is left."""
        snap = self._shown[0]
        text = Text(" ", no_wrap=True)
        if snap is None:
            text.append("loading…", "dim")
            return text
        for index, (label, number) in enumerate(header_counts(snap.counts)):
            if index:
                text.append(gap, "dim")
            text.append(f"{number:,}", COUNT_STYLES[label] if number else "dim")
            text.append(f" {label}", "" if number else "dim")
        paused = snap.paused_queues
        if paused:
            text.append(gap, "dim")
            text.append(paused_label(paused, width - text.cell_len - 1), PAUSED_STYLE)
        return text

    def _second(self, gap: str, width: int) -> Text:
        snap, error, store_text, watch_problem = self._shown
        text = Text(" ", no_wrap=True)
        if snap is not None:
            w = snap.workers
            text.append("workers ", "dim")
            if w.target is None:
                text.append(f"{w.external} live", "bold")
                text.append(" (watch-only)", "dim")
            else:
                text.append(f"{w.own}/{w.target} own", "bold")
                text.append(f" ({w.busy} busy)", "dim")
                text.append(f" + {w.external} external", "dim" if not w.external else "")
                if w.paused:
                    text.append("  PAUSED", PAUSED_STYLE)
            text.append(gap, "dim")
            text.append(format_rate(snap.rate), "bold")
            text.append(" finished ", "dim")
            text.append(snap.spark or "", "green")
            text.append(gap, "dim")
        if error:
            text.append(f"store unavailable, retrying: {one_line(error, 100)}", "bold red")
        elif watch_problem:
            text.append(f"not watching the store: {watch_problem}; refreshing every second",
                        "bold yellow")
        else:
            text.append(one_line(store_text, 200), "dim")
        return text


def fit_footer(footer: Footer, width: int) -> None:
    """Narrow terminals: the footer's compact style, and no palette key (ctrl+p still works)."""
    footer.compact = width < 120
    footer.show_command_palette = width >= 100


class FilterInput(Input):
    BINDINGS = [Binding("escape", "clear", "Clear filter")]

    def action_clear(self) -> None:
        self.value = ""
        self.screen.close_filter()


class MainScreen(Screen):
    """The header, the four panes, the filter bar and the footer.

    The keys that move the focus (or open the form) are priority bindings: the app acts on
    them as it reads them, so the keys typed right after land where the focus went, even in
    one burst. While the filter has the focus, those that are also text are typed instead.
    """

    BINDINGS = [
        Binding("1", "pane('pending')", "Pending", show=False, priority=True),
        Binding("2", "pane('running')", "Running", show=False, priority=True),
        Binding("3", "pane('completed')", "Completed", show=False, priority=True),
        Binding("4", "pane('dead')", "Dead", show=False, priority=True),
        Binding("tab", "cycle(1)", "Next pane", show=False, priority=True),
        Binding("shift+tab", "cycle(-1)", "Previous pane", show=False, priority=True),
        Binding("enter", "open_log", "Log", show=False),
        Binding("r", "app.retry_job", "Retry"),
        Binding("R", "app.retry_all", "Retry all", show=False),
        Binding("c", "app.cancel_job", "Cancel"),
        Binding("g", "app.run_now", "Run now", show=False),
        Binding("D", "app.remove_job", "Remove", show=False),
        Binding("e", "app.edit_job", "Edit", show=False),
        Binding("n", "new_job", "New", priority=True),
        Binding("slash", "filter", "Filter", priority=True),
        Binding("Q", "queues(True)", "Queues"),  # in the footer where it has the room
        Binding("Q", "queues(False)", "Queues", show=False),
        Binding("S", "app.show_schedules", "Schedules", show=False),
        Binding("plus", "app.scale(1)", "+worker", show=False),
        Binding("minus", "app.scale(-1)", "-worker", show=False),
        Binding("p", "app.pause_pool", "Pause"),
        Binding("p", "app.resume_pool", "Resume"),
        Binding("escape", "clear_filter", "Clear filter", show=False),  # the bar says so
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.quit", "Quit"),
    ]

    TYPED_IN_FILTER = frozenset({"pane", "new_job", "filter"})
    QUEUES_IN_FOOTER = 70  # the least width whose footer has room for "Q Queues"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.TYPED_IN_FILTER and isinstance(self.focused, Input):
            return False  # the key is text for the filter
        if action == "clear_filter":
            return self.app.filter_text is not None
        if action == "queues":  # one of its two bindings, shown or not
            return parameters[0] == (self.size.width >= self.QUEUES_IN_FOOTER)
        return True

    def action_queues(self, shown: bool) -> None:
        self.app.action_show_queues()

    def action_clear_filter(self) -> None:
        self.query_one(FilterInput).action_clear()

    def action_new_job(self) -> None:
        self.app.action_new_job()

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        bar = FilterInput(placeholder="filter by id or command text; queue:NAME for one queue",
                          id="filter", classes="hidden")
        bar.border_subtitle = plain("esc clears")
        yield bar
        with Grid(id="panes"):
            for index, name in enumerate(PANES, 1):
                with Vertical(id=f"pane-{name}", classes="pane") as box:
                    box.border_title = plain(f"{index} {PANE_TITLES[name]}")
                    yield JobTable(name, id=f"table-{name}")
        yield Footer()

    def on_mount(self) -> None:
        self._active = PANES[0]
        self.show_status()
        self.table().focus()
        self.call_after_refresh(self._reapply)

    def on_resize(self) -> None:
        fit_footer(self.query_one(Footer), self.size.width)
        self.refresh_bindings()

    def _reapply(self) -> None:
        """Apply a snapshot that arrived before the tabs were mounted."""
        if self.app.snapshot is not None:
            self.apply(self.app.snapshot)
        else:
            self.show_status()

    @property
    def active(self) -> str:
        """The pane whose table has (or last had) the focus."""
        return getattr(self, "_active", PANES[0])

    def pane_box(self, name: str) -> Vertical:
        return self.query_one(f"#pane-{name}", Vertical)

    def table(self, name: str | None = None) -> JobTable:
        return self.query_one(f"#table-{name or self.active}", JobTable)

    def selected(self) -> tuple[str, str | None]:
        """(pane, selected job id or None)."""
        return self.active, self.table().selected_id()

    def apply(self, snap: Snapshot) -> None:
        try:
            self.show_status(snap)
            for index, name in enumerate(PANES, 1):
                pane = snap.panes[name]
                count = f"{len(pane.rows)}/{pane.total:,}" if snap.text else f"{pane.total:,}"
                queue = f" · queue {one_line(snap.queue, QUEUE_TITLE)}" if snap.queue else ""
                self.pane_box(name).border_title = plain(
                    f"{index} {PANE_TITLES[name]} {count}{queue}")
                self.table(name).apply(pane)
        except NoMatches:  # the panes are still being mounted: apply once they are
            self.call_after_refresh(self._reapply)

    def show_status(self, snap: Snapshot | None = None) -> None:
        """The header for `snap` (default: the last one) and the app's troubles."""
        app = self.app
        try:
            bar = self.query_one(StatusBar)
        except NoMatches:  # not mounted yet: shown on mount
            return
        bar.show(snap or app.snapshot, error=app.error, store_text=app.store_text,
                 watch_problem=app.watch_problem)

    def action_pane(self, name: str) -> None:
        self._active = name
        self.set_focus(self.table(name))  # at once (widget.focus() waits): see BINDINGS

    def action_cycle(self, step: int) -> None:
        index = PANES.index(self.active)
        self.action_pane(PANES[(index + step) % len(PANES)])

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, JobTable):
            self._active = event.widget.pane

    def action_open_log(self) -> None:
        job_id = self.table().selected_id()
        if job_id is not None:
            self.app.open_log(job_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.app.open_log(event.row_key.value)

    def action_filter(self) -> None:
        bar = self.query_one(FilterInput)
        bar.remove_class("hidden")
        self.set_focus(bar)

    def show_filter(self, value: str) -> None:
        """The filter bar showing `value` (applied at once), the focus on the panes."""
        bar = self.query_one(FilterInput)
        bar.value = value
        bar.remove_class("hidden")
        self.app.set_filter(value)  # now, not when the bar's Changed message arrives
        self.set_focus(self.table())

    def close_filter(self) -> None:
        self.query_one(FilterInput).add_class("hidden")
        self.set_focus(self.table())

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.app.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value.strip():
                self.close_filter()
            else:
                self.table().focus()
