"""The help screen: every key, what it does, and where the data comes from."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .snapshot import PANE_LIMIT

KEYS = (
    ("1 2 3 4", "show Pending, Running, Completed, Dead"),
    ("tab / shift+tab", "next / previous pane"),
    ("↑ ↓ pgup pgdn end", "move in the pane; the chosen job stays put as rows arrive"),
    ("home", "top row: follow the newest (Pending: the next to run)"),
    ("enter", "open the selected job's log (click a row too)"),
    ("[ ]", "log: previous / next attempt"),
    ("end", "log: follow the live output (scrolling up pauses)"),
    ("escape", "back / close"),
    ("r", "retry the selected dead job"),
    ("R", "retry every dead job (asks first)"),
    ("c", "cancel the selected job; a running one is killed (asks first)"),
    ("g", "run the selected delayed or retrying job now"),
    ("D", "remove the selected job, its runs and output (asks first)"),
    ("e", "edit the selected job: command, priority, queue"),
    ("n", "new job"),
    ("/", "filter by id or command text; queue:NAME for one queue"),
    ("Q", "queues; there p pause, K pause+stop, r resume, enter filter"),
    ("S", "schedules; there p pause, r resume, g run one now"),
    ("+ / -", "add / remove a worker in this console's pool"),
    ("p", "pause / resume this console's pool (not a queue: see Q)"),
    ("ctrl+p", "command palette: every action by name"),
    ("?", "this help"),
    ("q", "quit (asks first while the pool is running jobs)"),
)

NOTES = (
    f"Panes show the first {PANE_LIMIT} jobs of each state: waiting jobs in the order they will run, "
    "the others newest first. Yellow 'retry in …' rows failed and wait for their next attempt; "
    "cyan rows are delayed; blue 'blocked' rows wait for other jobs (their command starts with "
    "what they wait for) and a red 'never runs' row waits for a dead (or removed) job: retry "
    "the dead one and the chain goes on. In Dead, magenta errors are cancelled jobs. Throughput is the number of jobs finished in the last minute "
    "divided by 60, one bar per 10 s. A running job of a limited queue shows its slot "
    "(gpu#2: QUEUECTL_SLOT=2). Job output is shown as plain text: escape sequences "
    "appear as ^[ and markup is not interpreted."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(Text(key), Text(what))
        with VerticalScroll(id="help", classes="dialog"):
            yield Static(Text("queuectl console: keys", style="bold"), id="help-title")
            yield Static(table)
            yield Static(Text(NOTES, style="dim"), id="help-notes")

