"""Keys land where the focus is, however fast they come (the new-job form, the panes).

`burst` queues every key at once, as a terminal does when a person (or tmux) types faster than
the app handles keys; before the fix, keys typed right after Tab still went to the field Tab
was leaving, because Tab moved the focus only once that field had handled it.
"""

from __future__ import annotations

import pytest

from queuectl.errors import JobNotFound
from queuectl_tui.dialogs import ConfirmScreen, NewJobScreen

from test_tui_support import build_app, burst, open_store, ready, seeded_path, sync, wait_for

SIZE = (110, 32)


def field(app, key: str) -> str:
    return app.screen.query_one(f"#field-{key}").value


async def open_form(pilot, app) -> None:
    await ready(pilot, app)
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen))
    await pilot.pause()


@pytest.mark.parametrize("burst_no", range(8))
@sync
async def test_keys_typed_right_after_tab_go_to_the_next_field(tmp_path, burst_no):
    app = build_app(seeded_path(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, app)
        await burst(pilot, *"echo hi", "tab", *f"fast-{burst_no}", "tab", "7", "tab", "tab", "2")
        await wait_for(pilot, lambda: field(app, "max_retries") == "2", what="the last key")
        assert (field(app, "command"), field(app, "id"), field(app, "priority"),
                field(app, "max_retries")) == ("echo hi", f"fast-{burst_no}", "7", "2")
        await burst(pilot, "shift+tab", *"5m", "shift+tab", "shift+tab", *"x")
        await wait_for(pilot, lambda: field(app, "id").endswith("x"), what="the last key")
        assert field(app, "delay") == "5m" and field(app, "priority") == "7"


@sync
async def test_a_fast_burst_ending_in_enter_enqueues_what_was_typed(tmp_path):
    path = seeded_path(tmp_path)
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await open_form(pilot, app)
        await burst(pilot, *"echo fast", "tab", *"typed-fast", "enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewJobScreen),
                       what="the form to close")
    store = open_store(path)
    try:
        assert store.get("typed-fast").command == "echo fast"
        with pytest.raises(JobNotFound):
            store.get("echo fasttyped-fast")
    finally:
        store.close()


@sync
async def test_keys_typed_right_after_switching_panes_go_to_the_new_pane(tmp_path):
    app = build_app(seeded_path(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await burst(pilot, "4", "down", "down")
        assert app.main.active == "dead"
        assert app.main.table("dead").cursor_row == 2
        assert app.main.table("pending").cursor_row == 0
        await burst(pilot, "tab", "down")  # Dead -> Pending
        assert app.main.table("pending").cursor_row == 1
        assert app.main.table("dead").cursor_row == 2


@sync
async def test_keys_typed_right_after_n_go_to_the_command_field(tmp_path):
    path = seeded_path(tmp_path)
    app = build_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await burst(pilot, "n", *"echo cc", "tab", *"after-n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewJobScreen)
                       and field(app, "id") == "after-n", what="the id typed")
        assert field(app, "command") == "echo cc"
        assert not any(isinstance(s, ConfirmScreen) for s in app.screen_stack)


@sync
async def test_keys_typed_right_after_slash_go_to_the_filter(tmp_path):
    app = build_app(seeded_path(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await burst(pilot, "slash", *"n3", "enter")  # n: new job, 3: the Completed pane
        await wait_for(pilot, lambda: app.main.query_one("#filter").value == "n3",
                       what="the filter text")
        assert not isinstance(app.screen, NewJobScreen) and app.main.active == "pending"
