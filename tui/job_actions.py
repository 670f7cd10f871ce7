"""The keys that act on jobs (retry, cancel, run now, remove, edit, new), for the app: each
goes to the store in a thread worker that only posts messages (`Notice`, `StoreChanged`);
dialogs ask first."""

from __future__ import annotations

from typing import Callable

from textual import work

from queuectl.config import settings_of
from queuectl.errors import QueueError
from queuectl.models import NewJob
from queuectl.sanitize import one_line
from queuectl.store.base import Store

from .dialogs import ConfirmScreen, NewJobScreen
from .edit_dialog import EditJobScreen
from .logviewer import LogScreen
from .messages import Notice, StoreChanged, plural


class JobActions:
    """Mixed into `QueueApp`: uses its `actions` (ActionStore), `now`, `main` and `snapshot`."""

    @work(thread=True, group="actions")
    def store_action(self, fn: Callable[[Store, float], str]) -> None:
        try:
            text = self.actions.run(lambda store: fn(store, self.now(store)))
        except QueueError as exc:
            self.post_message(Notice(str(exc), "error"))
        else:
            self.post_message(Notice(str(text)))
        self.post_message(StoreChanged())

    def enqueue_job(self, job: NewJob, cwd: str) -> str:
        """Enqueue `job` (call from a thread worker: the form's)."""
        def enqueue(store: Store) -> str:
            settings = settings_of(store)
            return store.enqueue([job], now=self.now(store), default_max_retries=settings.max_retries,
                                 default_cwd=cwd)[0]
        job_id = self.actions.run(enqueue)
        self.post_message(StoreChanged())
        return str(job_id)

    def _target(self) -> tuple[str | None, str | None]:
        """(pane or job state, job id) of the job the keys act on."""
        if isinstance(self.screen, LogScreen):
            data = self.screen.data
            state = data.job.state.value if data and data.job else None
            return ("pending" if state == "failed" else state), self.screen.job_id
        return self.main.selected()

    def open_log(self, job_id: str) -> None:
        self.push_screen(LogScreen(job_id))

    def action_retry_job(self) -> None:
        pane, job_id = self._target()
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return
        if pane != "dead":
            self.notify("only dead jobs can be retried (press 4 for the Dead pane)",
                        severity="warning")
            return
        self.store_action(lambda store, now: (
            store.retry_dead([job_id], now=now), f"{one_line(job_id, 40)} is pending again")[1])

    def action_retry_all(self) -> None:
        dead = self.snapshot.panes["dead"].total if self.snapshot else 0
        if not dead:
            self.notify("the dead letter queue is empty")
            return

        def retry_all(store: Store, now: float) -> str:
            return f"retried {plural(len(store.retry_dead(None, now=now)), 'dead job')}"

        self.push_screen(ConfirmScreen(f"Retry all {plural(dead, 'dead job')}?",
                                       "Each goes back to Pending with a fresh retry budget.",
                                       yes="Retry all"),
                         lambda yes: self.store_action(retry_all) if yes else None)

    def action_cancel_job(self) -> None:
        pane, job_id = self._target()
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return
        if pane in ("completed", "dead"):
            self.notify(f"that job is already {pane}; nothing to cancel", severity="warning")
            return
        detail = ("It is running: its command will be killed, then it goes to the Dead pane."
                  if pane == "running" else "It goes to the Dead pane marked cancelled.")

        def cancel(store: Store, now: float) -> str:
            return "; ".join(f"{one_line(k, 40)} {v}"
                             for k, v in store.cancel([job_id], now=now).items())

        self.push_screen(ConfirmScreen(f"Cancel job {one_line(job_id, 60)}?", detail,
                                       yes="Cancel job"),
                         lambda yes: self.store_action(cancel) if yes else None)

    def action_run_now(self) -> None:
        pane, job_id = self._target()
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return
        self.store_action(lambda store, now: (
            store.run_now(job_id, now=now), f"{one_line(job_id, 40)} is due now")[1])

    def action_remove_job(self) -> None:
        pane, job_id = self._target()
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return
        if pane == "running":  # the store refuses it too; this says so before asking
            self.notify(f"job {one_line(job_id, 40)!r} is running; cancel it first",
                        severity="error")
            return

        def remove(store: Store, now: float) -> str:
            store.remove_job(job_id)
            return f"removed {one_line(job_id, 40)}"

        self.push_screen(ConfirmScreen(f"Remove job {one_line(job_id, 60)}?",
                                       "It is deleted from the store with its runs and output.",
                                       yes="Remove"),
                         lambda yes: self.store_action(remove) if yes else None)

    def action_edit_job(self) -> None:
        pane, job_id = self._target()
        if job_id is None:
            self.notify("no job selected", severity="warning")
            return
        if pane == "running":  # the store refuses it too; this says so before the form
            self.notify(f"job {one_line(job_id, 40)!r} is running; edit it once it ends "
                        "(or cancel it)", severity="error")
            return
        self._open_edit(job_id)

    @work(thread=True, group="actions")
    def _open_edit(self, job_id: str) -> None:
        """Read the job whole (the panes hold only its cells), then open the form on it."""
        try:
            job = self.actions.run(lambda store: store.get(job_id))
        except QueueError as exc:
            self.post_message(Notice(str(exc), "error"))
            return

        def save(changes: dict) -> str:
            self.actions.run(lambda store: store.edit_job(job_id, now=self.now(store), **changes))
            self.post_message(StoreChanged())
            return f"edited {one_line(job_id, 40)}: {', '.join(changes)}"

        def done(text: str | None) -> None:
            if text:
                self.notify(text)

        self.call_from_thread(self.push_screen, EditJobScreen(job, save), done)

    def action_new_job(self) -> None:
        def done(job_id: str | None) -> None:
            if job_id:
                self.notify(f"enqueued {one_line(job_id, 60)}")
                self.request_refresh()

        self.push_screen(NewJobScreen(self.enqueue_job), done)
