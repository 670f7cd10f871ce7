"""The console's pure parts and its live mechanics: rows, rate, form validation, refreshes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from queuectl.errors import InvalidInput
from queuectl.models import Job, JobState, NewJob
from queuectl_tui.dialogs import spec_from_form
from queuectl_tui.logviewer import MAX_LINE_CHARS, LogScreen, OutputView
from queuectl_tui.rate import Rate, format_rate
from queuectl_tui.snapshot import job_row

from queuectl.store.sqlite import SQLiteStore
from queuectl_tui.app import make_app
from queuectl_tui.main_screen import StatusBar
from test_tui_support import NOW, build_app, open_store, ready, seeded_path, sync, wait_for


def job(**changes) -> Job:
    base = dict(id="j1", command="echo hi", state=JobState.PENDING, priority=0, tries=0,
                max_retries=2, timeout=None, cwd="/", run_at=NOW, created_at=NOW - 10,
                updated_at=NOW - 10)
    base.update(changes)
    return Job(**base)


@pytest.mark.parametrize("changes, pane, cell, expected", [
    ({}, "pending", 3, "ready"),
    ({"run_at": NOW + 20}, "pending", 3, "in 20s"),
    ({"state": JobState.FAILED, "run_at": NOW + 3, "tries": 1}, "pending", 3, "retry in 3s"),
    ({"state": JobState.FAILED, "run_at": NOW - 1, "tries": 1}, "pending", 4, "1/3"),
    ({"state": JobState.RUNNING, "started_at": NOW - 65, "worker_id": "w-1"}, "running", 2,
     "1m05s"),
    ({"state": JobState.COMPLETED, "started_at": NOW - 9, "finished_at": NOW - 4.5,
      "exit_code": 0}, "completed", 2, "4.5s"),
    ({"state": JobState.DEAD, "last_error": "exit code 3\nand more", "finished_at": NOW - 60},
     "dead", 4, "exit code 3⏎and more"),
    ({"command": "printf '\x1b[2J' [bold]"}, "pending", 5, "printf '^[[2J' [bold]"),
    ({}, "pending", 1, "default"),
    ({"queue": "[b]gpu[/b]"}, "dead", 1, "[b]gpu[/b]"),
    ({"state": JobState.RUNNING, "started_at": NOW - 1, "queue": "gpu", "slot": 2}, "running",
     1, "gpu#2"),
    ({"state": JobState.RUNNING, "started_at": NOW - 1, "queue": "encode"}, "running", 1,
     "encode"),
])
def test_job_rows(changes, pane, cell, expected):
    assert job_row(pane, job(**changes), NOW).cells[cell] == expected


def test_row_tones_mark_retries_delays_and_cancels():
    assert job_row("pending", job(state=JobState.FAILED, run_at=NOW + 3), NOW).tone == "retry"
    assert job_row("pending", job(run_at=NOW + 60), NOW).tone == "delayed"
    assert job_row("dead", job(state=JobState.DEAD, cancelled=True), NOW).tone == "cancelled"


def test_rate_keeps_one_sample_per_bucket_and_draws_gaps():
    rate = Rate(bucket=10, buckets=6)
    assert rate.spark() == "" and rate.current == 0
    rate.add(100, 60)
    rate.add(105, 120)  # same bucket: the latest wins
    rate.add(130, 30)
    assert rate.current == 0.5
    assert rate.spark() == "█  ▃"
    rate.add(200, 0)  # older buckets roll out
    assert len(rate.spark()) <= 6
    assert format_rate(0) == "0.0/s" and format_rate(0.05) == "3/min" and format_rate(12) == "12/s"


def test_form_validation_matches_the_cli():
    job = spec_from_form({"command": "echo hi", "id": "x1", "priority": " 3 ", "delay": "5m",
                          "max_retries": "1", "timeout": "30s"})
    assert job == NewJob(command="echo hi", id="x1", priority=3, max_retries=1, timeout=30.0,
                         delay=300.0)
    assert spec_from_form({"command": "ls", "id": "", "priority": "", "delay": "",
                           "max_retries": "", "timeout": ""}) == NewJob(command="ls")
    for values, message in (({"command": ""}, "command is required"),
                            ({"command": "  "}, "must not be empty"),
                            ({"command": "ls", "id": "a b"}, "whitespace"),
                            ({"command": "ls", "max_retries": "-1"}, "between"),
                            ({"command": "ls", "timeout": "0"}, "greater than 0")):
        with pytest.raises(InvalidInput, match=message):
            spec_from_form(values)


@sync
async def test_requests_are_coalesced_and_never_overlap(tmp_path):
    path = seeded_path(tmp_path)
    app = build_app(path)
    app.interval = 60
    async with app.run_test() as pilot:
        await ready(pilot, app)
        start_seq = app._seq
        started = time.monotonic()
        for _ in range(200):
            app.request_refresh()
            await pilot.pause(0.002)
        elapsed = time.monotonic() - started
        await wait_for(pilot, lambda: not app._refresh_busy and app._pending_timer is None)
        refreshes = app._seq - start_seq
        assert 1 <= refreshes <= elapsed / 0.1 + 3


@sync
async def test_store_changes_are_noticed_without_the_timer(tmp_path):
    path = seeded_path(tmp_path)
    app = make_app(lambda: open_store(path), pool=None, clock=lambda: NOW, store_text="q.db",
                   watch=True, interval=60)  # the timer would be too late: only the doorbell
    async with app.run_test() as pilot:
        await ready(pilot, app)
        await pilot.pause(0.3)  # let the watcher start
        store = open_store(path)
        store.enqueue([NewJob(command="echo new", id="noticed")], now=NOW,
                      default_max_retries=0, default_cwd="/")
        store.close()
        await wait_for(pilot, lambda: "noticed" in [
            r.key.value for r in app.main.table("pending").ordered_rows], what="the new job")


class UnwatchableStore(SQLiteStore):
    """A real SQLite store on a machine where it cannot be watched (inotify limits reached,
    no watchfiles): its console doorbell fails the way the real one does then."""

    def doorbell(self, everything: bool = False):
        raise OSError("inotify: [Errno 24] inotify_init1 failed; watchfiles: too many open files")


@sync
async def test_a_store_that_cannot_be_watched_is_said_so_in_the_header(tmp_path):
    path = seeded_path(tmp_path)
    app = make_app(lambda: UnwatchableStore(path, durability="normal"), pool=None,
                   clock=lambda: NOW, store_text="q.db", watch=True, interval=0.2)
    async with app.run_test(size=(220, 30)) as pilot:
        await wait_for(pilot, lambda: "not watching the store" in str(
            app.main.query_one(StatusBar).render()), what="the warning in the header")
        header = str(app.main.query_one(StatusBar).render())
        assert "inotify_init1 failed" in header and "refreshing every second" in header
        store = open_store(path)  # the timer still refreshes
        store.enqueue([NewJob(command="echo new", id="seen-anyway")], now=NOW,
                      default_max_retries=0, default_cwd="/")
        store.close()
        await wait_for(pilot, lambda: "seen-anyway" in [
            r.key.value for r in app.main.table("pending").ordered_rows], what="the new job")


@sync
async def test_huge_lines_are_clipped(tmp_path):
    path = str(tmp_path / "q.db")
    store = open_store(path)
    store.register_worker("w-1", 1, "h", NOW)
    store.enqueue([NewJob(command="yes | tr -d '\\n'", id="wide")], now=NOW,
                  default_max_retries=0, default_cwd="/")
    claimed = store.claim("w-1", now=NOW, lease=60)
    store.renew(claimed, now=NOW, lease=60, head=[(1, b"y" * 400_000 + b"\nend\n")])
    store.close()
    app = build_app(path)
    async with app.run_test() as pilot:
        await ready(pilot, app)
        app.open_log("wide")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_ready)
        view = app.screen.query_one(OutputView)
        await wait_for(pilot, lambda: "end" in view.text())
        assert sum(len(d) for _, d in view.lines[0]) == MAX_LINE_CHARS
        assert "line clipped" in view.text()
        started = time.monotonic()
        await pilot.press("right", "end")
        await pilot.pause()
        assert time.monotonic() - started < 1


def test_importing_the_cli_does_not_import_the_console():
    code = ("import sys, queuectl.cli; bad = [m for m in sys.modules "
            "if m.split('.')[0] in ('textual', 'queuectl_tui')]; print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@sync
async def test_a_postgres_store_is_shown_and_its_changes_are_noticed_by_listen(pg_url):
    """The console on PostgreSQL: the same panes, woken by NOTIFY (the timer is at 60 s)."""
    from queuectl.store import open_store as open_any
    from queuectl.lifecycle import Outcome, RetryPolicy

    store = open_any(pg_url)
    store.enqueue([NewJob(command="echo a", id="first")], now=store.now(), default_max_retries=0,
                  default_cwd="/")
    app = make_app(lambda: open_any(pg_url), pool=None, store_text="postgresql://test", watch=True,
                   interval=60)
    try:
        async with app.run_test() as pilot:
            await ready(pilot, app)
            assert [r.key.value for r in app.main.table("pending").ordered_rows] == ["first"]
            await pilot.pause(0.3)  # let the listener start
            store.enqueue([NewJob(command="echo b", id="second")], now=store.now(),
                          default_max_retries=0, default_cwd="/")
            await wait_for(pilot, lambda: "second" in [
                r.key.value for r in app.main.table("pending").ordered_rows], what="the new job")
            store.register_worker("w-1", 1, "h", store.now())
            job = store.claim("w-1", now=store.now(), lease=60)
            store.finish(job, Outcome(ok=True, exit_code=0), now=store.now(),
                         policy=RetryPolicy(1.0, None, 0.0))
            await wait_for(pilot, lambda: job.id in [
                r.key.value for r in app.main.table("completed").ordered_rows],
                what="the finished job")
    finally:
        store.close()
