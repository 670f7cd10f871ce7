"""The edit dialog: a job's command, priority and queue, for a job that is not running.

It is the new-job form with the job's values filled in; only the fields that changed go to the
store (`Store.edit_job`, as `queuectl edit` does), and the store's errors show inline.
"""

from __future__ import annotations

from typing import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from queuectl.errors import InvalidInput, QueueError
from queuectl.models import Job, validate_spec
from queuectl.sanitize import one_line

from .dialogs import NewJobScreen
from .inert import plain

EDIT_FIELDS = (
    ("command", "Command", "the shell command to run (required)"),
    ("priority", "Priority", "higher runs first"),
    ("queue", "Queue", "the queue it waits in (a new name makes a queue)"),
)


def edit_changes(job: Job, values: dict[str, str]) -> dict[str, object]:
    """The fields of `values` that differ from `job`, validated as `enqueue` validates a spec."""
    priority = values["priority"].strip()
    try:
        number = int(priority) if priority else job.priority
    except ValueError:
        raise InvalidInput(f"priority: {priority[:40]!r} is not a whole number") from None
    spec = validate_spec({"command": values["command"], "priority": number,
                          "queue": values["queue"].strip() or job.queue})
    wanted = {"command": spec.command, "priority": spec.priority, "queue": spec.queue}
    return {key: value for key, value in wanted.items() if value != getattr(job, key)}


class EditJobScreen(NewJobScreen):
    """The form for `job`; dismisses with what to tell the person, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Save"),
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(self, job: Job, save: Callable[[dict[str, object]], str]) -> None:
        super().__init__(lambda job, cwd: "")
        self.job = job
        self.save = save  # called off the UI thread: changes -> what to tell

    def compose(self) -> ComposeResult:
        job = self.job
        with Vertical(id="new-job", classes="dialog"):
            yield Static(plain(f"Edit job {one_line(job.id, 50)}", "bold"), id="new-job-title")
            yield Static(plain("Only the fields you change are saved.", "dim"), id="new-job-hint")
            with Grid(id="new-job-fields"):
                for key, label, tip in EDIT_FIELDS:
                    yield Label(plain(label), classes="field-label")
                    yield Input(value=str(getattr(job, key)), id=f"field-{key}", tooltip=tip,
                                compact=True)
            yield Static(plain(""), id="form-error")
            with Horizontal(classes="buttons"):
                yield Button(plain("Save (ctrl+s)"), variant="primary", id="submit")
                yield Button(plain("Cancel (esc)"), id="cancel")

    def values(self) -> dict[str, str]:
        return {key: self.query_one(f"#field-{key}", Input).value for key, *_ in EDIT_FIELDS}

    def action_submit(self) -> None:
        try:
            changes = edit_changes(self.job, self.values())
        except InvalidInput as exc:
            self.show_error(str(exc))
            return
        if not changes:
            self.dismiss("nothing changed")
            return
        self.query_one("#submit", Button).disabled = True
        self._save(changes)

    @work(thread=True, group="edit")
    def _save(self, changes: dict[str, object]) -> None:
        try:
            text = self.save(changes)
        except QueueError as exc:
            self.app.call_from_thread(self._failed, str(exc))
        else:
            self.app.call_from_thread(self.dismiss, text)
