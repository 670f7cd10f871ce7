"""Snapshot tests of the console's screens over a store seeded at a fixed time."""

from __future__ import annotations

import pytest

from queuectl_tui.dialogs import ConfirmScreen, NewJobScreen
from queuectl_tui.help import HelpScreen
from queuectl_tui.logviewer import LogScreen, OutputView
from queuectl_tui.queue_view import QueueScreen

from test_tui_support import FakePool, build_app, ready, seeded_path, wait_for

SIZE = (110, 30)


@pytest.fixture
def app(tmp_path):
    return build_app(seeded_path(tmp_path), FakePool())


def test_main_screen(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_dead_letter_pane(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)
        await pilot.press("4")

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_log_viewer(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)
        await pilot.press("3")  # Completed: the newest is the colourful job
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen))
        await wait_for(pilot, lambda: "stderr" in app.screen.query_one(OutputView).text())
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_confirmation_dialog(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_new_job_form(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen))
        app.screen.query_one("#field-command").value = "make -C docs html"
        app.screen.query_one("#field-priority").value = "high"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_queue_view(snap_compare, app):
    async def run_before(pilot):
        await ready(pilot, app)
        await pilot.press("Q")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen)
                       and app.screen.table.row_count == 4)
        await pilot.press("down", "down")  # encode
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
