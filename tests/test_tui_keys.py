"""The footer and the palette say what the keys do now: Pause/Resume, Esc clears a filter, one
entry per action in the palette."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from test_tui_support import FakePool, build_app, ready, seeded_path, sync, wait_for

SIZE = (140, 32)


def footer(app) -> dict[str, str]:
    """key -> description of what the footer shows."""
    return {item.key: item.description for item in app.screen.query(FooterKey)}


def row_keys(app, pane: str) -> list[str]:
    return [row.key.value for row in app.main.table(pane).ordered_rows]


@sync
async def test_the_footer_offers_resume_while_the_pool_is_paused(tmp_path):
    pool = FakePool()
    app = build_app(seeded_path(tmp_path), pool)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        assert footer(app).get("p") == "Pause"
        await pilot.press("p")
        await wait_for(pilot, lambda: pool.paused and footer(app).get("p") == "Resume",
                       what="Resume in the footer")
        await pilot.press("p")
        await wait_for(pilot, lambda: not pool.paused and footer(app).get("p") == "Pause",
                       what="Pause in the footer")


@sync
async def test_escape_on_the_panes_clears_an_active_filter(tmp_path):
    app = build_app(seeded_path(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("escape")  # nothing to clear: nothing happens
        await pilot.press("slash", *"thumbs", "enter")  # filter, then back to the panes
        await wait_for(pilot, lambda: row_keys(app, "pending") == ["resize-0414", "resize-0415"])
        assert app.focused is app.main.table("pending")
        assert "esc clears" in str(app.main.query_one("#filter").border_subtitle)
        await pilot.press("escape")
        await wait_for(pilot, lambda: len(row_keys(app, "pending")) == 8, what="every row back")
        assert app.filter_text is None and app.main.query_one("#filter").value == ""
        assert "hidden" in app.main.query_one("#filter").classes


@sync
async def test_the_palette_lists_each_command_once(tmp_path):
    app = build_app(seeded_path(tmp_path))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert len(titles) == len(set(titles)), titles
        assert "Keys" in titles and "Quit" in titles
