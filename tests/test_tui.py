"""Pilot tests of the console: each key, asserting the store's state and the widgets."""

from __future__ import annotations

import pytest

from queuectl.errors import StoreBusy
from queuectl.models import JobState, NewJob
from queuectl_tui.dialogs import ConfirmScreen, NewJobScreen
from queuectl_tui.help import HelpScreen
from queuectl_tui.logviewer import LogScreen, OutputView
from queuectl_tui.main_screen import StatusBar

from test_tui_support import (NOW, FakePool, build_app, open_store, ready, seeded_path, sync,
                              wait_for)

SIZE = (110, 32)


@pytest.fixture
def path(tmp_path):
    return seeded_path(tmp_path)


def state_of(path: str, job_id: str) -> JobState:
    store = open_store(path)
    try:
        return store.get(job_id).state
    finally:
        store.close()


def row_keys(app, pane: str) -> list[str]:
    table = app.main.table(pane)
    return [row.key.value for row in table.ordered_rows]


def select(app, pane: str, job_id: str) -> None:
    app.main.action_pane(pane)
    table = app.main.table(pane)
    table.move_cursor(row=table.get_row_index(job_id), animate=False)


@sync
async def test_main_screen_shows_every_pane(path):
    app = build_app(path, FakePool())
    async with app.run_test(size=(160, 40)) as pilot:  # wide enough for every column
        await ready(pilot, app)
        assert row_keys(app, "pending") == ["invoice-run", "resize-0414", "resize-0415",
                                            "release-web", "sync-eu", "delayed-20s",
                                            "weekly-report", "cleanup-tmp"]
        assert set(row_keys(app, "running")) == {"train-model", "sync-media"}
        assert row_keys(app, "completed")[0] == "colourful"
        assert set(row_keys(app, "dead")) == {"flaky-deploy", "webhook-17", "stuck-export"}
        pending = app.main.table("pending")
        assert str(pending.get_cell("sync-eu", "when")) == "retry in 3s"
        assert str(pending.get_cell("delayed-20s", "when")) == "in 20s"
        assert str(app.main.table("dead").get_cell("flaky-deploy", "tries")) == "3/3"
        status = str(app.main.query_one(StatusBar).render())
        assert "7 pending" in status and "1 retrying" in status and "3 dead" in status
        assert "1/2 own" in status and "1 external" in status
        assert "Pending 8" in str(app.main.pane_box("pending").border_title)
        assert "paused: deploy" in status
        assert str(app.main.table("running").get_cell("train-model", "queue")) == "gpu#0"
        assert str(pending.get_cell("resize-0414", "queue")) == "encode"


@sync
async def test_unchanged_snapshot_touches_no_rows(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        table, data = app.main.table("pending"), app.snapshot.panes["pending"]
        assert table.apply(data) == 0
        rows = list(data.rows)
        rows[1] = type(rows[1])(rows[1].key, rows[1].cells[:3] + ("in 9s",) + rows[1].cells[4:])
        assert table.apply(type(data)(data.name, data.total, tuple(rows))) == 1
        assert str(table.get_cell(rows[1].key, "when")) == "in 9s"
        reordered = (data.rows[-1],) + data.rows[:-1]
        table.apply(type(data)(data.name, data.total, reordered))
        assert row_keys(app, "pending")[0] == "cleanup-tmp"


@sync
async def test_number_and_tab_keys_switch_panes(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("2")
        assert app.main.active == "running"
        await pilot.press("tab")
        assert app.main.active == "completed"
        await pilot.press("shift+tab", "shift+tab", "shift+tab")
        assert app.main.active == "dead"
        assert app.focused is app.main.table("dead")


@sync
async def test_r_retries_the_selected_dead_job(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        select(app, "dead", "flaky-deploy")
        await pilot.press("r")
        await wait_for(pilot, lambda: state_of(path, "flaky-deploy") is JobState.PENDING)
        await wait_for(pilot, lambda: "flaky-deploy" in row_keys(app, "pending"))
        assert state_of(path, "webhook-17") is JobState.DEAD


@sync
async def test_r_on_a_pending_job_changes_nothing(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("1", "r")
        await pilot.pause(0.1)
        assert state_of(path, "invoice-run") is JobState.PENDING


@sync
async def test_shift_r_retries_all_dead_after_confirmation(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Retry all 3 dead jobs?" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: all(state_of(path, j) is JobState.PENDING
                                          for j in ("flaky-deploy", "webhook-17", "stuck-export")))
        await wait_for(pilot, lambda: row_keys(app, "dead") == [])


@sync
async def test_c_cancels_the_selected_pending_job_after_confirmation(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("1", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await pilot.pause(0.1)
        assert state_of(path, "invoice-run") is JobState.PENDING
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: state_of(path, "invoice-run") is JobState.DEAD)
        store = open_store(path)
        assert store.get("invoice-run").cancelled
        store.close()
        await wait_for(pilot, lambda: "invoice-run" in row_keys(app, "dead"))


@sync
async def test_c_on_a_running_job_flags_it_for_its_worker(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        select(app, "running", "train-model")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "killed" in str(app.screen.query_one("#confirm-detail").render())
        await pilot.press("y")
        store = open_store(path)
        job = store.get("train-model")
        await wait_for(pilot, lambda: store.orders(job).cancel)
        store.close()


@sync
async def test_n_form_enqueues_a_job(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen))
        form = app.screen
        for key, value in (("command", "echo hi"), ("id", "from-form"), ("priority", "3"),
                           ("delay", "10s"), ("max_retries", "1"), ("timeout", "5m")):
            form.query_one(f"#field-{key}").value = value
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewJobScreen))
        store = open_store(path)
        job = store.get("from-form")
        store.close()
        assert (job.command, job.priority, job.max_retries, job.timeout) == ("echo hi", 3, 1, 300)
        assert job.run_at == pytest.approx(NOW + 10)
        await wait_for(pilot, lambda: "from-form" in row_keys(app, "pending"))


@sync
async def test_n_form_shows_errors_inline(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen))
        form = app.screen
        error = lambda: str(form.query_one("#form-error").render())  # noqa: E731
        await pilot.press("enter")
        assert "command is required" in error()
        form.query_one("#field-command").value = "echo hi"
        form.query_one("#field-priority").value = "high"
        await pilot.press("ctrl+s")
        assert "priority" in error() and "whole number" in error()
        form.query_one("#field-priority").value = ""
        form.query_one("#field-delay").value = "soon"
        await pilot.press("ctrl+s")
        assert "not a duration" in error()
        form.query_one("#field-delay").value = ""
        form.query_one("#field-id").value = "invoice-run"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "already exists" in error(), what="duplicate id error")
        assert isinstance(app.screen, NewJobScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, NewJobScreen)


@sync
async def test_slash_filters_every_pane(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash", *"thumbs")
        await wait_for(pilot, lambda: row_keys(app, "pending") == ["resize-0414", "resize-0415"])
        await wait_for(pilot, lambda: row_keys(app, "completed") == ["thumbs-0413"])
        assert row_keys(app, "dead") == []
        assert "Pending 2/8" in str(app.main.pane_box("pending").border_title)
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(row_keys(app, "pending")) == 8)
        assert app.focused is app.main.table("pending")


@sync
async def test_pool_keys_call_the_pool(path):
    pool = FakePool(size=2)
    app = build_app(path, pool)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("plus")
        await wait_for(pilot, lambda: ("scale", 3) in pool.calls)
        await pilot.press("minus")
        await wait_for(pilot, lambda: pool.calls[-1] == ("scale", 2))
        await pilot.press("p")
        await wait_for(pilot, lambda: pool.calls[-1] == ("pause",))
        await wait_for(pilot, lambda: "PAUSED" in str(app.main.query_one(StatusBar).render()))
        await pilot.press("p")
        await wait_for(pilot, lambda: pool.calls[-1] == ("resume",))


@sync
async def test_pool_keys_without_a_pool_only_explain(path):
    app = build_app(path, None)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("plus", "p")
        await pilot.pause(0.1)
        assert any("watch-only" in n.message for n in app._notifications)


@sync
async def test_q_quits_at_once_when_the_pool_is_idle(path):
    pool = FakePool(busy=0)
    app = build_app(path, pool)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("q")
        await wait_for(pilot, lambda: ("stop", False) in pool.calls)
        await wait_for(pilot, lambda: app._exit_renderables is not None or not app.is_running,
                       what="exit")


@sync
async def test_q_asks_first_while_the_pool_runs_jobs(path):
    pool = FakePool(busy=2)
    app = build_app(path, pool)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "2 jobs running" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")
        await pilot.pause(0.05)
        assert pool.calls == [] and app.is_running
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: ("stop", False) in pool.calls)


@sync
async def test_help_and_palette_commands(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Show Dead", "Open log", "Retry job", "Retry all dead jobs", "Cancel job",
                "New job", "Filter", "Add worker", "Remove worker", "Pause or resume pool",
                "Keys"} <= titles


@sync
async def test_store_errors_notify_and_recover(path):
    failing = {"on": True}

    def factory():
        if failing["on"]:
            raise StoreBusy("the store is locked")
        return open_store(path)

    app = build_app(path, factory=factory)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: app.error is not None)
        await wait_for(pilot, lambda: "store unavailable" in str(
            app.main.query_one(StatusBar).render()))
        assert any("locked" in n.message for n in app._notifications)
        failing["on"] = False
        await wait_for(pilot, lambda: app.applied >= 1 and app.error is None)
        assert len(row_keys(app, "pending")) == 8


@sync
async def test_enter_opens_the_log_with_attempts(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        select(app, "dead", "flaky-deploy")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_ready)
        view = app.screen.query_one(OutputView)
        await wait_for(pilot, lambda: "attempt 3: no such host" in view.text())
        assert "attempt 3 of 3" in str(app.screen.query_one("#log-info").render())
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: "attempt 2: no such host" in view.text())
        assert "attempt 3" not in view.text()
        await pilot.press("escape")
        assert not isinstance(app.screen, LogScreen)


@sync
async def test_log_tails_a_running_job(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        select(app, "running", "train-model")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_ready)
        view = app.screen.query_one(OutputView)
        await wait_for(pilot, lambda: "epoch 7/20" in view.text())
        store = open_store(path)
        job = store.get("train-model")
        store.renew(job, now=NOW, lease=1e9, head=[(1, b"epoch 8/20  loss=0.1250\n"),
                                                    (2, b"warning: lr too high\n")])
        store.close()
        await wait_for(pilot, lambda: "warning: lr too high" in view.text(), what="new output")
        assert view.text().count("epoch 7/20") == 1
        assert view.is_vertical_scroll_end


HOSTILE = b"\x1b[2Jcleared? \x1b]0;title\x07 [bold]x[/bold] [link=http://x]y[/] \xff\xfe\n"


@sync
async def test_log_output_is_shown_literally(tmp_path):
    path = str(tmp_path / "q.db")
    store = open_store(path)
    store.register_worker("w-1", 1, "h", NOW)
    store.enqueue([NewJob(command="printf hostile", id="hostile")], now=NOW,
                  default_max_retries=0, default_cwd="/")
    job = store.claim("w-1", now=NOW, lease=60)
    store.renew(job, now=NOW, lease=60, head=[(1, HOSTILE), (2, "\x9b31m C1 \u202e bidi\n".encode())])
    store.close()
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        select(app, "running", "hostile")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_ready)
        view = app.screen.query_one(OutputView)
        await wait_for(pilot, lambda: "[bold]" in view.text())
        text = view.text()
        assert "^[[2Jcleared?" in text
        assert "^[]0;title^G" in text
        assert "[bold]x[/bold]" in text and "[link=http://x]y[/]" in text
        assert "\ufffd" in text and "\x1b" not in text and "\x07" not in text
        await pilot.pause()
        screen = app.export_screenshot()
        assert "[bold]x[/bold]" in screen.replace("&#160;", " ")
        assert "[link=http://x]y[/]" in screen.replace("&#160;", " ")
