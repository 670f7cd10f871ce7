"""The command palette: every action of the console by name, from one plain list.

Textual reads palette titles and help as markup, so they are constants here, never data.
"""

from __future__ import annotations

from typing import Callable, Iterable, NamedTuple

from textual.app import SystemCommand

from .snapshot import PANE_TITLES, PANES


class Command(NamedTuple):
    title: str
    help: str
    action: str  # an action of the app, with its arguments: "show_pane('dead')"


COMMANDS: tuple[Command, ...] = (
    *(Command(f"Show {PANE_TITLES[name]}", f"Jump to the {name} pane ({index})",
              f"show_pane('{name}')") for index, name in enumerate(PANES, 1)),
    Command("Open log", "Open the selected job's output (enter)", "open_selected_log"),
    Command("Retry job", "Retry the selected dead job (r)", "retry_job"),
    Command("Retry all dead jobs", "Move every dead job back to pending (R)", "retry_all"),
    Command("Cancel job", "Cancel the selected job, killing it if it runs (c)", "cancel_job"),
    Command("Run job now", "Make the selected delayed or retrying job due now (g)", "run_now"),
    Command("Remove job", "Delete the selected job with its runs and output (D)", "remove_job"),
    Command("Edit job", "Change the selected job's command, priority or queue (e)", "edit_job"),
    Command("New job", "Enqueue a shell command (n)", "new_job"),
    Command("Filter", "Filter the panes by id or command text, or queue:NAME (/)", "show_filter"),
    Command("Queues", "Every queue: limits, counts; pause, resume, filter by one (Q)",
            "show_queues"),
    Command("Schedules", "Every schedule: when, next run, last job; pause, resume, run now (S)",
            "show_schedules"),
    Command("Add worker", "Grow this console's pool by one (+)", "scale(1)"),
    Command("Remove worker", "Shrink this console's pool by one (-)", "scale(-1)"),
    Command("Pause or resume pool", "Stop or restart taking new jobs (p)", "toggle_pause"),
    Command("Keys", "Show every key and what it does (?)", "help"),
    Command("Quit", "Quit; asks first while the pool runs jobs (q)", "quit"),
)
# Textual's own commands that ours replace (its "Keys" opens a different panel, its "Quit"
# does not wait for the pool).
REPLACED = frozenset({"Keys", "Quit"})


def palette(builtin: Iterable[SystemCommand],
            run: Callable[[str], object]) -> Iterable[SystemCommand]:
    """Textual's commands that ours do not replace, then ours; `run(action)` runs an action."""
    for command in builtin:
        if command.title not in REPLACED:
            yield command
    for command in COMMANDS:
        yield SystemCommand(command.title, command.help,
                            lambda action=command.action: run(action))
