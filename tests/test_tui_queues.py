"""Named queues in the console: the queue column, the queue filter, the queue view and its keys,
the paused queues in the header. Every key is checked against the store's state afterwards.

The showcase store has `default`, `deploy` (paused, one job waiting), `encode` (limit 2, two
waiting) and `gpu` (limit 4, train-model running on slot 0).
"""

from __future__ import annotations

import pytest
from textual.widgets import Footer

from queuectl.models import JobState, NewJob, QueueInfo
from queuectl.store.sqlite import SQLiteStore
from queuectl_tui.columns import QUEUE_COLUMNS, fit, fit_columns
from queuectl_tui.dialogs import ConfirmScreen
from queuectl_tui.filters import Filter, parse_filter, with_queue
from queuectl_tui.help import HelpScreen
from queuectl_tui.main_screen import StatusBar, paused_label
from queuectl_tui.queue_view import QueueScreen
from queuectl_tui.snapshot import queue_row

from test_tui_support import (NOW, FakePool, assert_inert, build_app, open_store, ready,
                              seeded_path, sync, toast_with, wait_for)

SIZE = (120, 34)
HOSTILE = ("[/x]", "[b]SPOOF[/b]", "[@click=app.quit]q[/]")


@pytest.fixture
def path(tmp_path):
    return seeded_path(tmp_path)


def queue(path: str, name: str) -> QueueInfo:
    store = open_store(path)
    try:
        return store.queue(name)
    finally:
        store.close()


def row_keys(app, pane: str) -> list[str]:
    return [row.key.value for row in app.main.table(pane).ordered_rows]


def header(app) -> list[str]:
    return app.main.query_one(StatusBar).render().plain.split("\n")


def title(app, pane: str) -> str:
    return str(app.main.pane_box(pane).border_title)


async def open_queues(pilot, app, select: str | None = None) -> QueueScreen:
    await pilot.press("Q")
    await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen)
                   and app.screen.table.row_count, what="the queue view")
    if select is not None:
        table = app.screen.table
        names = [row.key.value for row in table.ordered_rows]
        table.move_cursor(row=names.index(select), animate=False)
        await pilot.pause()
    return app.screen


def assert_literal(content, literal: str) -> None:
    """`literal` is in `content` as it is: styled, if at all, only as a whole (never by markup
    inside it), and with no action."""
    start = content.plain.find(literal)
    assert start >= 0, content.plain
    for span in content.spans:
        assert "@click" not in str(span.style)
        inside = span.start < start + len(literal) and span.end > start
        assert not inside or (span.start <= start and span.end >= start + len(literal)), span


def cells(view: QueueScreen, name: str) -> dict[str, str]:
    table = view.table
    return {column.key.value: str(table.get_cell(name, column.key.value))
            for column in table.ordered_columns}


# -- the pure parts

@pytest.mark.parametrize("value, expected", [
    ("", Filter()),
    ("report", Filter(None, "report")),
    ("queue:gpu", Filter("gpu", None)),
    ("queue:gpu report", Filter("gpu", "report")),
    ("make  report queue:encode", Filter("encode", "make  report")),  # the text stays as typed
    ("queue:a queue:b", Filter("b", None)),  # the last one wins
    ("queue:", Filter()),  # being typed: no filter yet
    ("queue:[b]x[/b]", Filter("[b]x[/b]", None)),
    ("myqueue:x", Filter(None, "myqueue:x")),  # only a whole word names a queue
])
def test_the_filter_bar_names_a_queue_with_queue_colon(value, expected):
    assert parse_filter(value) == expected


def test_choosing_a_queue_keeps_the_text_of_the_filter():
    assert with_queue(None, "gpu") == "queue:gpu"
    assert with_queue("queue:encode report", "gpu") == "queue:gpu report"


@pytest.mark.parametrize("names, room, expected", [
    (["deploy"], 40, "paused: deploy"),
    (["deploy", "gpu"], 40, "paused: deploy, gpu"),
    (["deploy", "gpu", "encode"], 24, "paused: deploy, gpu +1"),
    (["deploy", "gpu", "encode"], 12, "3 queues paused"),  # then the header cuts what is left
    (["x" * 60], 80, "paused: " + "x" * 23 + "…"),  # a long name is clipped
])
def test_the_paused_queues_fit_the_room_left_in_the_header(names, room, expected):
    assert paused_label(names, room) == expected


def test_a_queue_row_shows_limit_state_counts_and_defaults():
    info = QueueInfo("gpu", 4, True, True, 1, 3600.0, None, None, NOW,
                     {JobState.PENDING: 2, JobState.FAILED: 1, JobState.RUNNING: 4,
                      JobState.DEAD: 1200})
    row = queue_row(info)
    assert row.cells == ("gpu", "4", "paused+kill", "3", "4", "0", "1,200",
                         "retries 1, timeout 1h")
    assert queue_row(info._replace(concurrency=None, paused=False, kill=False,
                                   max_retries=None, timeout=None)).cells[1:3] == (
        "unlimited", "open")


def test_the_queue_column_goes_before_id_state_and_command():
    for pane in ("pending", "running", "completed", "dead"):
        assert "queue" in [c.key for c, _ in fit(pane, 51)], pane  # a pane at 110 columns
        assert {"id", "command"} <= {c.key for c, _ in fit(pane, 36)}  # at 80: queue gone
        assert "queue" not in [c.key for c, _ in fit(pane, 36)]
    keys = [c.key for c, _ in fit_columns(QUEUE_COLUMNS, 80)]
    assert keys[:3] == ["name", "limit", "state"] and "running" in keys


# -- the panes and the header

@sync
async def test_the_panes_show_queues_and_slots_and_the_header_the_paused_queues(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert str(app.main.table("running").get_cell("train-model", "queue")) == "gpu#0"
        assert str(app.main.table("pending").get_cell("release-web", "queue")) == "deploy"
        assert str(app.main.table("dead").get_cell("flaky-deploy", "queue")) == "deploy"
        assert header(app)[0].endswith("paused: deploy")


@sync
async def test_slash_with_queue_colon_filters_every_pane_in_the_store(tmp_path):
    path = seeded_path(tmp_path)
    calls: list[str | None] = []

    class Recording(SQLiteStore):  # a real store that notes which queue each list asked for
        def list_jobs(self, *args, **kwargs):
            calls.append(kwargs.get("queue"))
            return super().list_jobs(*args, **kwargs)

    app = build_app(path, factory=lambda: Recording(path, durability="normal"))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash", *"queue:encode", "enter")
        await wait_for(pilot, lambda: row_keys(app, "pending") == ["resize-0414", "resize-0415"])
        assert row_keys(app, "completed") == ["thumbs-0413"]
        assert row_keys(app, "running") == [] and row_keys(app, "dead") == []
        assert title(app, "pending") == "1 Pending 2 · queue encode"
        assert title(app, "completed") == "3 Completed 1 · queue encode"
        assert calls[-4:] == ["encode"] * 4  # the store walked the queue; nothing was dropped here
        await pilot.press("slash", "end", *" 0415", "enter")
        await wait_for(pilot, lambda: row_keys(app, "pending") == ["resize-0415"])
        assert title(app, "pending") == "1 Pending 1/2 · queue encode"
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(row_keys(app, "pending")) == 8, what="every row back")
        assert title(app, "pending") == "1 Pending 8" and calls[-1] is None


@sync
async def test_a_queue_that_does_not_exist_filters_to_nothing(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash", *"queue:nope")
        await wait_for(pilot, lambda: title(app, "pending") == "1 Pending 0 · queue nope")
        assert all(row_keys(app, pane) == [] for pane in ("pending", "running", "dead"))


# -- the queue view and its keys

@sync
async def test_shift_q_opens_the_queue_view_and_it_follows_the_store(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        view = await open_queues(pilot, app)
        assert [r.key.value for r in view.table.ordered_rows] == [
            "default", "deploy", "encode", "gpu"]
        assert cells(view, "deploy")["state"] == "paused"
        assert cells(view, "gpu") == {"name": "gpu", "limit": "4", "state": "open",
                                      "waiting": "0", "running": "1", "completed": "0",
                                      "dead": "0", "defaults": "timeout 4h"}
        assert cells(view, "encode")["limit"] == "2" and cells(view, "encode")["waiting"] == "2"
        store = open_store(path)  # behind the console's back: a new queue, and a new job
        store.enqueue([NewJob(command="make", id="m1", queue="builds")], now=NOW,
                      default_max_retries=0, default_cwd="/")
        store.close()
        app.request_refresh()
        await wait_for(pilot, lambda: "builds" in [r.key.value for r in view.table.ordered_rows],
                       what="the new queue")
        assert cells(view, "builds")["waiting"] == "1"
        await pilot.press("escape")
        assert app.screen is app.main


@sync
async def test_p_pauses_the_selected_queue_in_the_store(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        view = await open_queues(pilot, app, select="encode")
        await pilot.press("p")
        await wait_for(pilot, lambda: queue(path, "encode").paused, what="encode paused")
        assert not queue(path, "encode").kill
        await wait_for(pilot, lambda: cells(view, "encode")["state"] == "paused")
        assert header(app)[0].endswith("paused: deploy, encode")
        assert view.table.selected().name == "encode"  # the refresh kept the selection


@sync
async def test_shift_k_asks_then_pauses_and_stops_the_running_jobs(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await open_queues(pilot, app, select="gpu")
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        detail = str(app.screen.query_one("#confirm-detail").render())
        assert "Its 1 running job is killed and goes back to the queue, uncounted" in detail
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not queue(path, "gpu").paused
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: queue(path, "gpu").kill, what="gpu paused with kill")
        store = open_store(path)
        assert store.orders(store.get("train-model")).give_back  # its worker gives it back
        store.close()
        await wait_for(pilot, lambda: cells(app.screen, "gpu")["state"] == "paused+kill")


@pytest.mark.parametrize("key", ["r", "u"])
@sync
async def test_r_and_u_resume_the_selected_queue(path, key):
    app = build_app(path, FakePool())
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        view = await open_queues(pilot, app, select="deploy")
        await pilot.press(key)
        await wait_for(pilot, lambda: not queue(path, "deploy").paused, what="deploy resumed")
        await toast_with(pilot, app, "resumed queue deploy")
        await wait_for(pilot, lambda: cells(view, "deploy")["state"] == "open")
        assert "paused" not in header(app)[0]
        await pilot.press(key)  # an open queue: nothing to resume, and it says so
        await toast_with(pilot, app, "queue deploy is not paused")


@sync
async def test_enter_in_the_queue_view_filters_the_panes_to_that_queue(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await open_queues(pilot, app, select="deploy")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.main and row_keys(app, "pending") == [
            "release-web"], what="the deploy queue's jobs")
        assert row_keys(app, "dead") == ["flaky-deploy"]
        assert app.main.query_one("#filter").value == "queue:deploy"
        assert title(app, "dead") == "4 Dead 1 · queue deploy"
        assert app.focused is app.main.table()


@sync
async def test_the_queue_view_is_in_the_help_and_the_palette(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert "Queues" in {c.title for c in app.get_system_commands(app.screen)}
        await app.run_action("show_queues")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen))
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "K pause+stop" in app.export_screenshot().replace("&#160;", " ")


# -- untrusted queue names

def hostile_store(tmp_path) -> str:
    """One pending job in each hostile queue; every such queue paused."""
    path = str(tmp_path / "q.db")
    store = open_store(path)
    for n, name in enumerate(HOSTILE):
        store.enqueue([NewJob(command="echo hi", id=f"j{n}", queue=name)], now=NOW,
                      default_max_retries=0, default_cwd="/")
        store.pause_queue(name)
    store.close()
    return path


@sync
async def test_hostile_queue_names_are_inert_everywhere(tmp_path):
    path = hostile_store(tmp_path)
    app = build_app(path)
    async with app.run_test(size=(160, 40), notifications=True) as pilot:
        await ready(pilot, app)
        line = app.main.query_one(StatusBar).render().split("\n")[0]
        assert_literal(line, "paused: [/x], [@click=app.quit]q[/], [b]SPOOF[/b]")
        assert str(app.main.table("pending").get_cell("j1", "queue")) == "[b]SPOOF[/b]"
        view = await open_queues(pilot, app)
        for name in HOSTILE:
            assert cells(view, name)["name"] == name
            assert_inert(view.table.get_cell(name, "name"), name)
        view.table.move_cursor(row=[r.key.value for r in view.table.ordered_rows].index(
            "[@click=app.quit]q[/]"), animate=False)
        await pilot.press("r")
        await toast_with(pilot, app, "resumed queue [@click=app.quit]q[/]")
        assert not queue(path, "[@click=app.quit]q[/]").paused and app.is_running
        await pilot.press("p")
        await toast_with(pilot, app, "paused queue [@click=app.quit]q[/]")
        await pilot.press("K")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert_inert(app.screen.query_one("#confirm-question").render(),
                     "Pause queue [@click=app.quit]q[/] and stop its running jobs?")
        await pilot.press("n", "enter")
        await wait_for(pilot, lambda: app.screen is app.main and row_keys(app, "pending") == ["j2"])
        await pilot.pause()  # the title, as drawn (it is kept as escaped markup)
        assert "1 Pending 1 · queue [@click=app.quit]q[/]" in app.export_screenshot().replace(
            "&#160;", " ")


# -- narrow terminals

@sync
async def test_queues_at_80x24_fit_and_q_works_where_the_footer_has_no_room(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        assert all(len(line) <= 80 for line in header(app))
        assert header(app)[0].endswith("paused: deploy")
        view = await open_queues(pilot, app)
        shown = [c.key.value for c in view.table.ordered_columns]
        assert shown[:5] == ["name", "limit", "state", "waiting", "running"]
        assert sum(c.get_render_width(view.table) for c in view.table.ordered_columns) <= 80
        footer = view.query_one(Footer)
        assert sum(item.size.width for item in footer.children) <= 80
        assert "Quit" in app.export_screenshot().replace("&#160;", " ")
        await pilot.press("escape")
        await pilot.resize_terminal(60, 20)  # no room for "Q Queues" in the footer: Q still works
        await pilot.pause()
        await open_queues(pilot, app)
