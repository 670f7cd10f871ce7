"""The schedule view (S): every schedule with its rule, state, next run and last job, live; p
pauses, r resumes, g makes one of its jobs now. Every key is checked against the store."""

from __future__ import annotations

import pytest

from queuectl.ticks import make_rule

from queuectl_tui.help import KEYS
from queuectl_tui.schedule_view import ScheduleScreen

from test_tui_support import NOW, build_app, open_store, ready, sync, toast_with, wait_for

SIZE = (140, 30)
HOSTILE = "[b]x[/b]"


@pytest.fixture
def path(tmp_path):
    p = str(tmp_path / "q.db")
    store = open_store(p)
    try:
        store.add_schedule("nightly", make_rule(cron="0 3 * * *", every=None, tz=None, now=NOW),
                           {"command": "make report"}, "/", overlap="skip", catch_up="once",
                           now=NOW)
        store.add_schedule(HOSTILE, make_rule(cron=None, every="15m", tz=None, now=NOW),
                           {"command": "echo [red]hi[/red]"}, "/", overlap="skip",
                           catch_up="once", now=NOW)
    finally:
        store.close()
    return p


def schedule(path: str, name: str):
    store = open_store(path)
    try:
        return store.schedule(name)
    finally:
        store.close()


def cells(view: ScheduleScreen, name: str) -> dict[str, str]:
    table = view.table
    return {column.key.value: str(table.get_cell(name, column.key.value))
            for column in table.ordered_columns}


async def open_view(pilot, app, select: str) -> ScheduleScreen:
    await pilot.press("S")
    await wait_for(pilot, lambda: isinstance(app.screen, ScheduleScreen)
                   and app.screen.table.row_count == 2, what="the schedule view")
    table = app.screen.table
    names = [row.key.value for row in table.ordered_rows]
    table.move_cursor(row=names.index(select), animate=False)
    await pilot.pause()
    return app.screen


@sync
async def test_S_shows_every_schedule_with_rule_next_run_and_last_job(path):
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        assert app.snapshot.schedules is None  # not read while the view is closed
        view = await open_view(pilot, app, "nightly")
        row = cells(view, "nightly")
        assert row["rule"] == "cron '0 3 * * *' (UTC)"
        assert row["state"] == "active" and row["last"] == "-"
        assert row["command"] == "make report"
        hostile = view.table.get_cell(HOSTILE, "name")
        assert hostile.plain == HOSTILE and hostile.spans == []
        assert view.table.get_cell(HOSTILE, "command").plain == "echo [red]hi[/red]"
        assert cells(view, HOSTILE)["rule"] == "every 15m"
        assert "2" in str(view.query_one("#schedules-title").render())
        shown = [b.binding.description for b in app.active_bindings.values() if b.binding.show]
        assert "Pause schedule" in shown and "Filter panes" not in shown
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ScheduleScreen))


@sync
async def test_p_pauses_r_resumes_and_g_runs_a_schedule_now(path):
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        view = await open_view(pilot, app, HOSTILE)
        await pilot.press("p")
        await toast_with(pilot, app, f"paused schedule {HOSTILE}")
        assert schedule(path, HOSTILE).paused
        await wait_for(pilot, lambda: cells(view, HOSTILE)["state"] == "paused",
                       what="the view to show it paused")
        assert cells(view, HOSTILE)["next"] == "-"
        assert "1 paused" in str(view.query_one("#schedules-title").render())
        await pilot.press("r")
        await toast_with(pilot, app, f"resumed schedule {HOSTILE}")
        assert not schedule(path, HOSTILE).paused
        await wait_for(pilot, lambda: cells(view, HOSTILE)["state"] == "active")
        await pilot.press("g")
        await toast_with(pilot, app, f"schedule {HOSTILE} made job")
        made = schedule(path, HOSTILE).last_job
        assert made is not None
        await wait_for(pilot, lambda: cells(view, HOSTILE)["last"] == made,
                       what="the view to show the job it made")
        assert cells(view, HOSTILE)["last_state"] == "pending"


@sync
async def test_a_store_error_is_a_one_line_toast(path):
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await open_view(pilot, app, "nightly")
        store = open_store(path)
        store.remove_schedule("nightly")  # gone under the view's feet
        store.close()
        await pilot.press("p")
        await toast_with(pilot, app, "no schedule named 'nightly'")
        assert app.screen.is_attached


def test_help_lists_the_schedule_view():
    assert "schedules" in dict(KEYS)["S"]
