"""Modal dialogs: a yes/no confirmation and the new-job form."""

from __future__ import annotations

import os
from typing import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from queuectl.errors import InvalidInput, QueueError
from queuectl.models import NewJob, validate_spec

from .inert import plain


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "", yes: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self.question = question
        self.detail = detail
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(plain(self.question), id="confirm-question")
            if self.detail:
                yield Static(plain(self.detail), id="confirm-detail")
            with Horizontal(classes="buttons"):
                yield Button(plain(f"{self.yes} (y)"), variant="error", id="yes")
                yield Button(plain("No (n)"), variant="default", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


FIELDS = (
    ("command", "Command", "echo hello", "the shell command to run (required)"),
    ("id", "Id", "generated", "a unique job id"),
    ("priority", "Priority", "0", "higher runs first"),
    ("delay", "Delay", "0", "run no sooner than this from now: 30s, 5m"),
    ("max_retries", "Retries", "default", "retries after the first run"),
    ("timeout", "Timeout", "none", "seconds or 30s, 5m, 2h"),
)


def spec_from_form(values: dict[str, str]) -> NewJob:
    """Validate the form's text fields as `queuectl enqueue --command ...` does."""
    given: dict[str, object] = {}
    for key, text in values.items():
        if key == "command":
            if text:
                given[key] = text
            continue
        text = text.strip()
        if not text:
            continue
        if key in ("priority", "max_retries"):
            try:
                given[key] = int(text)
            except ValueError:
                raise InvalidInput(f"{key}: {text[:40]!r} is not a whole number") from None
        else:
            given[key] = text
    return validate_spec(given)


class NewJobScreen(ModalScreen[str | None]):
    """A form for one job; errors from validation or the store are shown inline.

    Tab and shift+tab are priority bindings: the app moves the focus as it reads the key, so
    the keys typed right after it go to the next field even when they arrive in one burst (a
    plain binding moved the focus only once the field being left had handled the Tab, after
    the app had already handed it the keys that followed).
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Enqueue"),
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(self, enqueue: Callable[[NewJob, str], str]) -> None:
        super().__init__(classes="dialog-screen")
        self.enqueue = enqueue  # called off the UI thread: (job, cwd) -> id

    def compose(self) -> ComposeResult:
        with Vertical(id="new-job", classes="dialog"):
            yield Static(plain("New job", "bold"), id="new-job-title")
            yield Static(plain("Durations: 30s, 5m, 2h. Empty fields take the defaults.", "dim"),
                         id="new-job-hint")
            with Grid(id="new-job-fields"):
                for key, label, placeholder, tip in FIELDS:
                    yield Label(plain(label), classes="field-label")
                    yield Input(placeholder=placeholder, id=f"field-{key}", tooltip=tip, compact=True)
            yield Static(plain(""), id="form-error")
            with Horizontal(classes="buttons"):
                yield Button(plain("Enqueue (ctrl+s)"), variant="primary", id="submit")
                yield Button(plain("Cancel (esc)"), id="cancel")

    def values(self) -> dict[str, str]:
        return {key: self.query_one(f"#field-{key}", Input).value for key, *_ in FIELDS}

    def show_error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(plain(message))
        self.query_one("#new-job", Vertical).add_class("has-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_submit(self) -> None:
        try:
            job = spec_from_form(self.values())
        except InvalidInput as exc:
            self.show_error(str(exc))
            return
        try:
            cwd = os.getcwd()
        except OSError:
            self.show_error("the current directory no longer exists")
            return
        self.query_one("#submit", Button).disabled = True
        self._enqueue(job, cwd)

    @work(thread=True, group="enqueue")
    def _enqueue(self, job: NewJob, cwd: str) -> None:
        try:
            job_id = self.enqueue(job, cwd)
        except QueueError as exc:
            self.app.call_from_thread(self._failed, str(exc))
        else:
            self.app.call_from_thread(self.dismiss, job_id)

    def _failed(self, message: str) -> None:
        self.query_one("#submit", Button).disabled = False
        self.show_error(message)
