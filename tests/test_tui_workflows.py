"""Workflows in the console: blocked jobs in Pending with what they wait for, and the log
viewer's header naming a job's dependencies. Ids are untrusted text: shown inert."""

from __future__ import annotations

import pytest

from queuectl.models import NewJob

from test_tui_support import NOW, build_app, open_store, ready, sync, wait_for

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
