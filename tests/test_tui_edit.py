"""The edit dialog (e): a job's command, priority and queue, saved through Store.edit_job;
refused for a running job; bad values and store errors shown in the form."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from queuectl.errors import InvalidInput
from queuectl.models import NewJob

from queuectl_tui.edit_dialog import EditJobScreen, edit_changes
from queuectl_tui.help import KEYS

from test_tui_support import (NOW, build_app, open_store, ready, seeded_path, sync, toast_with,
                              wait_for)

SIZE = (140, 34)
HOSTILE = "echo [b]x[/b]"


@pytest.fixture
def path(tmp_path):
    p = str(tmp_path / "q.db")
    store = open_store(p)
    store.enqueue([NewJob(HOSTILE, id="job1", priority=1)], now=NOW, default_max_retries=0,
                  default_cwd="/")
    store.close()
    return p


def job(path: str, job_id: str):
    store = open_store(path)
    try:
        return store.get(job_id)
    finally:
        store.close()


def field(app, key: str) -> Input:
    return app.screen.query_one(f"#field-{key}", Input)


def test_edit_changes_keeps_only_what_changed_and_validates(tmp_path):
    p = str(tmp_path / "q.db")
    store = open_store(p)
    store.enqueue([NewJob("make", id="j", priority=2)], now=NOW, default_max_retries=0,
                  default_cwd="/")
    current = store.get("j")
    store.close()
    same = {"command": "make", "priority": "2", "queue": "default"}
    assert edit_changes(current, same) == {}
    assert edit_changes(current, {**same, "priority": " 7 "}) == {"priority": 7}
    assert edit_changes(current, {**same, "priority": ""}) == {}  # empty: keeps it
    assert edit_changes(current, {**same, "queue": "gpu", "command": "make all"}) == {
        "command": "make all", "queue": "gpu"}
    for bad in ({**same, "priority": "high"}, {**same, "command": ""},
                {**same, "priority": str(2**40)}, {**same, "queue": "bad queue!"}):
        with pytest.raises(InvalidInput):
            edit_changes(current, bad)


@sync
async def test_e_edits_command_priority_and_queue(path):
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditJobScreen), what="the form")
        await pilot.pause()
        assert field(app, "command").value == HOSTILE  # the raw command, not markup
        assert field(app, "priority").value == "1"
        field(app, "command").value = "echo edited"
        field(app, "priority").value = "high"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EditJobScreen)  # a bad value stays in the form
        assert "not a whole number" in str(app.screen.query_one("#form-error").render())
        field(app, "priority").value = "9"
        field(app, "queue").value = "gpu"
        await pilot.press("ctrl+s")
        await toast_with(pilot, app, "edited job1: command, priority, queue")
        edited = job(path, "job1")
        assert (edited.command, edited.priority, edited.queue) == ("echo edited", 9, "gpu")
        await wait_for(pilot, lambda: str(app.main.table("pending").get_cell("job1", "command"))
                       == "echo edited", what="the pane to show the edit")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditJobScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, EditJobScreen))
        assert job(path, "job1").command == "echo edited"


@sync
async def test_e_refuses_a_running_job(tmp_path):
    path = seeded_path(tmp_path)
    app = build_app(path)
    async with app.run_test(size=(120, 34), notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("2")
        table = app.main.table("running")
        table.move_cursor(row=table.get_row_index("train-model"), animate=False)
        await pilot.pause()
        await pilot.press("e")
        await toast_with(pilot, app, "job 'train-model' is running; edit it once it ends")
        assert not isinstance(app.screen, EditJobScreen)


@sync
async def test_a_store_error_shows_in_the_form(path):
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, EditJobScreen))
        store = open_store(path)
        store.remove_job("job1")  # gone while the form is open
        store.close()
        field(app, "command").value = "echo late"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "job1" in str(app.screen.query_one("#form-error").render()),
                       what="the store's error in the form")
        assert isinstance(app.screen, EditJobScreen)


def test_help_lists_edit():
    assert "edit" in dict(KEYS)["e"]
