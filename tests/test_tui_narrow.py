"""Narrow and wide terminals: every pane keeps its id, state and command columns in view, the
lesser columns go first, the header keeps both lines, the footer is not cut."""

from __future__ import annotations

import pytest
from textual.widgets import Footer

from queuectl.models import NewJob
from queuectl.store.base import Outcome, RetryPolicy
from queuectl_tui.main_screen import StatusBar

from test_tui_support import NOW, FakePool, build_app, open_store, ready, seeded_path, sync

STATE = {"pending": "when", "running": "elapsed", "completed": "finished", "dead": "error"}
LONG_ERROR = "exit code 1: upstream answered 503 Service Unavailable, three times"


def shown_columns(table) -> dict[str, tuple[int, int]]:
    """key -> (first, last) screen column of each table column that is inside the pane."""
    out, x = {}, 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        if x + width <= table.size.width:
            out[column.key.value] = (x, x + width)
        x += width
    return out


def with_long_error(tmp_path) -> str:
    path = seeded_path(tmp_path)
    store = open_store(path)
    store.enqueue([NewJob(command="./bin/fetch-upstream --all", id="upstream")], now=NOW,
                  default_max_retries=0, default_cwd="/")
    store.register_worker("w-9", 9, "h", NOW)
    while (job := store.claim("w-9", now=NOW + 1, lease=60)).id != "upstream":
        store.finish(job, Outcome(ok=True, exit_code=0), now=NOW + 1,
                     policy=RetryPolicy(1.0, None, 0.0))
    store.finish(job, Outcome(ok=False, exit_code=1, error=LONG_ERROR), now=NOW + 1,
                 policy=RetryPolicy(1.0, None, 0.0))
    store.close()
    return path


@pytest.mark.parametrize("size", [(80, 24), (110, 30), (160, 45)])
@sync
async def test_every_pane_shows_id_state_and_command_and_nothing_is_cut(tmp_path, size):
    app = build_app(seeded_path(tmp_path), FakePool())
    async with app.run_test(size=size) as pilot:
        await ready(pilot, app)
        for pane, state in STATE.items():
            table = app.main.table(pane)
            columns = [c.key.value for c in table.ordered_columns]
            shown = shown_columns(table)
            assert {"id", state, "command"} <= set(shown), (pane, size, shown)
            assert columns == list(shown), f"{pane} at {size}: a column runs off the pane"
            assert shown["command"][1] - shown["command"][0] >= 10


@sync
async def test_lesser_columns_go_first_at_80_columns(tmp_path):
    app = build_app(seeded_path(tmp_path), FakePool())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot, app)
        assert [c.key.value for c in app.main.table("pending").ordered_columns] == [
            "id", "when", "command"]
        table = app.main.table("dead")
        assert str(table.get_cell("stuck-export", "error")) == "cancelled"
        assert str(table.get_cell("stuck-export", "command")) == "sleep 600"
        await pilot.resize_terminal(160, 45)  # wider again: the columns come back
        await pilot.pause()
        assert [c.key.value for c in app.main.table("pending").ordered_columns] == [
            "id", "queue", "pri", "when", "tries", "command"]
        assert str(app.main.table("pending").get_cell("invoice-run", "tries")) == "0/4"


@sync
async def test_a_long_error_is_not_cut_to_30_characters_on_a_wide_screen(tmp_path):
    app = build_app(with_long_error(tmp_path), FakePool())
    async with app.run_test(size=(240, 50)) as pilot:
        await ready(pilot, app)
        table = app.main.table("dead")
        first, last = shown_columns(table)["error"]
        assert last - first - 2 >= 40  # the error column takes most of the room left
        assert LONG_ERROR[:39] in app.export_screenshot().replace("&#160;", " ")


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
@sync
async def test_the_header_keeps_both_lines_and_the_footer_fits(tmp_path, size):
    app = build_app(seeded_path(tmp_path), FakePool())
    async with app.run_test(size=size) as pilot:
        await ready(pilot, app)
        lines = app.main.query_one(StatusBar).render().plain.split("\n")
        assert len(lines) == 2 and all(len(line) <= size[0] for line in lines), lines
        assert "dead" in lines[0] and lines[1].lstrip().startswith("workers")
        screen = app.export_screenshot().replace("&#160;", " ")
        assert "Quit" in screen and "Help" in screen, "the footer is cut"
        footer = app.main.query_one(Footer)
        assert sum(item.size.width for item in footer.children) <= size[0]
        await pilot.press("slash", *"report", "enter")  # a filter adds "esc Clear filter"
        await pilot.pause(0.2)
        assert sum(item.size.width for item in footer.children) <= size[0]
        assert "Quit" in app.export_screenshot().replace("&#160;", " ")
