"""Ids, commands, errors and output are data: no path of the console reads them as markup.

Each test drives the console as a person would (Pilot, notifications on) with jobs whose ids
and commands are Rich/Textual markup, and checks the toasts, dialogs and titles show them
literally: no MarkupError, no bold, no clickable action.
"""

from __future__ import annotations

import pytest
from queuectl.errors import StoreBusy
from queuectl.models import NewJob
from queuectl.store.base import Outcome, RetryPolicy
from queuectl_tui.dialogs import ConfirmScreen, NewJobScreen
from queuectl_tui.logviewer import LogScreen
from queuectl_tui.main_screen import StatusBar

from test_tui_support import (NOW, assert_inert, build_app, open_store, ready, sync,
                              toast_with, wait_for)

SIZE = (120, 34)
HOSTILE_IDS = ("[/x]", "[b]SPOOF[/b]", "[@click=app.quit]x[/]")
POLICY = RetryPolicy(1.0, None, 0.0)


def hostile_store(tmp_path, state: str) -> str:
    """A store whose only jobs have the hostile ids, each `pending`, `running` or `dead`."""
    path = str(tmp_path / "q.db")
    store = open_store(path)
    store.register_worker("w-1", 1, "h", NOW)
    for job_id in HOSTILE_IDS:
        store.enqueue([NewJob(command=f"echo {job_id} [red]cmd[/red]", id=job_id)], now=NOW,
                      default_max_retries=0, default_cwd="/")
        if state == "pending":
            continue
        job = store.claim("w-1", now=NOW, lease=60)
        if state == "dead":
            store.finish(job, Outcome(ok=False, exit_code=3, error=f"[b]{job_id}[/b] broke"),
                         now=NOW, policy=POLICY, head=[(1, b"[b]out[/b]\n")])
    store.close()
    return path


def select(app, pane: str, job_id: str) -> None:
    app.main.action_pane(pane)
    table = app.main.table(pane)
    table.move_cursor(row=table.get_row_index(job_id), animate=False)


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
@sync
async def test_retrying_a_dead_job_with_a_markup_id_shows_the_id_literally(tmp_path, job_id):
    app = build_app(hostile_store(tmp_path, "dead"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        select(app, "dead", job_id)
        await pilot.press("r")
        await toast_with(pilot, app, f"{job_id} is pending again")
        assert app.is_running


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
@sync
async def test_cancelling_a_job_with_a_markup_id_asks_and_tells_literally(tmp_path, job_id):
    app = build_app(hostile_store(tmp_path, "pending"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        select(app, "pending", job_id)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = app.screen.query_one("#confirm-question").render()
        assert_inert(question, f"Cancel job {job_id}?")
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        await toast_with(pilot, app, f"{job_id} cancelled")


@sync
async def test_store_errors_naming_a_markup_id_are_shown_literally(tmp_path):
    path = hostile_store(tmp_path, "dead")
    app = build_app(path, interval=60)  # no refresh moves the job before `r` acts on it
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        select(app, "dead", "[/x]")
        store = open_store(path)  # behind the console's back: no longer dead
        store.retry_dead(["[/x]"], now=NOW)
        store.close()
        await pilot.press("r")
        await toast_with(pilot, app, "'[/x]' is pending, not dead")


@sync
async def test_a_new_job_with_a_markup_id_is_announced_literally(tmp_path):
    app = build_app(hostile_store(tmp_path, "pending"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen))
        app.screen.query_one("#field-command").value = "echo [b]hi[/b]"
        app.screen.query_one("#field-id").value = "[i]new[/i]"
        await pilot.press("ctrl+s")
        await toast_with(pilot, app, "enqueued [i]new[/i]")


@sync
async def test_refresh_errors_with_markup_are_shown_literally(tmp_path):
    path = hostile_store(tmp_path, "pending")

    def factory():
        raise StoreBusy("store [b]x[/b] is locked [@click=app.quit]here[/]")

    app = build_app(path, factory=factory)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await toast_with(pilot, app, "[b]x[/b] is locked [@click=app.quit]here[/]")
        await wait_for(pilot, lambda: "[b]x[/b] is locked" in str(
            app.main.query_one(StatusBar).render()), what="the error in the header")


@pytest.mark.parametrize("job_id", HOSTILE_IDS)
@sync
async def test_the_log_viewer_shows_ids_commands_and_errors_literally(tmp_path, job_id):
    app = build_app(hostile_store(tmp_path, "dead"))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        select(app, "dead", job_id)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.data)
        title = app.screen.query_one("#log-title").render()
        info = app.screen.query_one("#log-info").render()
        assert f"job {job_id}" in str(title) and f"echo {job_id} [red]cmd[/red]" in str(title)
        assert f"[b]{job_id}[/b] broke" in str(info)
        await pilot.press("r")  # retry from the log viewer: the same literal toast
        await toast_with(pilot, app, f"{job_id} is pending again")
