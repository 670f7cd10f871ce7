"""Workflows in the console: blocked jobs in Pending with what they wait for, and the log
viewer's header naming a job's dependencies. Ids are untrusted text: shown inert."""

from __future__ import annotations

import pytest

from queuectl.models import NewJob

from queuectl_tui.dialogs import ConfirmScreen
from queuectl_tui.help import KEYS

from test_tui_support import (NOW, build_app, open_store, ready, seeded_path, sync, toast_with,
                              wait_for)

SIZE = (160, 34)
HOSTILE = "[b]dep[/b]"


def make_store(path: str) -> None:
    """`build` (waiting), a cancelled dead `broken`, and three jobs after them."""
    store = open_store(path)
    try:
        store.enqueue([NewJob("make", id="build"), NewJob("echo x", id=HOSTILE),
                       NewJob("false", id="broken")],
                      now=NOW, default_max_retries=0, default_cwd="/")
        store.cancel(["broken"], now=NOW)
        store.enqueue([NewJob("deploy it", id="deploy", after=("build", HOSTILE)),
                       NewJob("report it", id="report", after=("broken",)),
                       NewJob("tidy up", id="tidy", after_any=("broken",))],
                      now=NOW, default_max_retries=0, default_cwd="/")
    finally:
        store.close()


@pytest.fixture
def path(tmp_path):
    p = str(tmp_path / "q.db")
    make_store(p)
    return p


def cell(app, job_id: str, column: str):
    return app.main.table("pending").get_cell(job_id, column)


@sync
async def test_pending_shows_what_a_blocked_job_waits_for_and_a_dead_dependency(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        deploy = cell(app, "deploy", "command")
        assert deploy.plain == f"waits for {HOSTILE}, build · deploy it"
        assert deploy.spans == []  # the id's brackets are text, not markup
        assert str(cell(app, "deploy", "when")) == "blocked"
        assert str(cell(app, "report", "when")) == "never runs"
        assert str(cell(app, "report", "command")) == "waits for broken (dead) · report it"
        assert str(cell(app, "tidy", "when")) == "ready"  # after_any on a dead job: met
        assert str(cell(app, "build", "when")) == "ready"
        assert str(cell(app, "build", "command")) == "make"


@sync
async def test_the_log_header_names_the_dependencies(path):
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        app.open_log("deploy")
        await wait_for(pilot, lambda: getattr(app.screen, "data", None) is not None)
        await pilot.pause()
        info = app.screen.query_one("#log-info").render()
        literal = f"waits for {HOSTILE}, build"
        start = info.plain.find(literal)
        assert start >= 0, info.plain
        for span in info.spans:  # styled as a whole, if at all: never by markup inside it
            inside = span.start < start + len(literal) and span.end > start
            assert not inside or (span.start <= start and span.end >= start + len(literal))
        await pilot.press("escape")
        app.open_log("tidy")
        await wait_for(pilot, lambda: getattr(app.screen, "data", None) is not None
                       and app.screen.job_id == "tidy")
        await pilot.pause()
        assert "after broken" in app.screen.query_one("#log-info").render().plain


# -- run now and remove

async def select(pilot, app, pane: str, job_id: str) -> None:
    await pilot.press(str(("pending", "running", "completed", "dead").index(pane) + 1))
    table = app.main.table(pane)
    table.move_cursor(row=table.get_row_index(job_id), animate=False)
    await pilot.pause()
    assert app.main.selected() == (pane, job_id)


def job(path: str, job_id: str):
    store = open_store(path)
    try:
        return store.get(job_id)
    finally:
        store.close()


def exists(path: str, job_id: str) -> bool:
    from queuectl.errors import JobNotFound
    try:
        job(path, job_id)
    except JobNotFound:
        return False
    return True


@sync
async def test_g_makes_a_delayed_job_due_now(path):
    store = open_store(path)
    store.enqueue([NewJob("later", id="later", delay=3600.0)], now=NOW, default_max_retries=0,
                  default_cwd="/")
    store.close()
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        assert str(cell(app, "later", "when")) != "ready"
        await select(pilot, app, "pending", "later")
        await pilot.press("g")
        await toast_with(pilot, app, "later is due now")
        assert job(path, "later").run_at <= NOW
        await wait_for(pilot, lambda: str(cell(app, "later", "when")) == "ready")
        await select(pilot, app, "pending", "build")  # not delayed: the store's error, inert
        await pilot.press("g")
        await toast_with(pilot, app, "job 'build' is waiting and due already; run-now makes")


@sync
async def test_D_removes_a_job_after_asking(path):
    app = build_app(path)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "pending", "tidy")
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # no: nothing happens
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert exists(path, "tidy")
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await toast_with(pilot, app, "removed tidy")
        assert not exists(path, "tidy")
        await wait_for(pilot, lambda: "tidy" not in
                       [r.key.value for r in app.main.table("pending").ordered_rows])
        await select(pilot, app, "pending", "build")  # deploy waits for it: the store refuses
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await toast_with(pilot, app, "wait")
        assert exists(path, "build")


@sync
async def test_D_refuses_a_running_job_without_asking(tmp_path):
    path = seeded_path(tmp_path)
    app = build_app(path)
    async with app.run_test(size=(120, 34), notifications=True) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "running", "train-model")
        await pilot.press("D")
        await toast_with(pilot, app, "job 'train-model' is running; cancel it first")
        assert not isinstance(app.screen, ConfirmScreen)
        assert exists(path, "train-model")


def test_help_lists_run_now_and_remove():
    keys = dict(KEYS)
    assert "now" in keys["g"] and "remove" in keys["D"]
