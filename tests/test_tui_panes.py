"""The panes show the newest rows (Pending: the next to run) unless the person moved away.

Rows arrive at the top of Completed, Running and Dead while the console is open; a pane the
person has not touched keeps showing the newest, one where they chose a job keeps that job
selected where it was on screen; Home/End/PageUp/PageDown move as a person expects.
"""

from __future__ import annotations

from queuectl.models import NewJob
from queuectl.store.base import Outcome, RetryPolicy

from test_tui_support import NOW, build_app, open_store, ready, sync, wait_for

SIZE = (120, 34)  # each pane shows 11 rows below its header
POLICY = RetryPolicy(1.0, None, 0.0)


class Jobs:
    """Completes jobs n1, n2, … one after another, through the store API."""

    def __init__(self, path: str) -> None:
        self.store = open_store(path)
        self.store.register_worker("w-1", 1, "h", NOW)
        self.done = 0

    def complete(self, count: int) -> None:
        for _ in range(count):
            self.done += 1
            job_id = f"n{self.done}"
            at = NOW + self.done
            self.store.enqueue([NewJob(command=f"echo {job_id}", id=job_id)], now=at,
                               default_max_retries=0, default_cwd="/")
            job = self.store.claim("w-1", now=at, lease=60)
            self.store.finish(job, Outcome(ok=True, exit_code=0), now=at, policy=POLICY)

    def close(self) -> None:
        self.store.close()


def keys(table) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


def visible(table) -> list[str]:
    """The ids of the rows on screen, top to bottom."""
    top = round(table.scroll_y)
    height = table.scrollable_content_region.height - table.header_height
    return keys(table)[top:top + height]


async def complete_in_bursts(pilot, app, jobs: Jobs, bursts: int, each: int) -> None:
    """Complete `each` jobs at a time, letting the console show each burst."""
    table = app.main.table("completed")
    for _ in range(bursts):
        jobs.complete(each)
        await wait_for(pilot, lambda: keys(table)[:1] == [f"n{jobs.done}"],
                       what=f"n{jobs.done} in the pane")
        await pilot.pause()


def store_path(tmp_path) -> str:
    path = str(tmp_path / "q.db")
    open_store(path).close()
    return path


@sync
async def test_an_untouched_pane_shows_the_newest_rows_as_they_arrive(tmp_path):
    path = store_path(tmp_path)
    jobs = Jobs(path)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await complete_in_bursts(pilot, app, jobs, bursts=40, each=1)
        table = app.main.table("completed")
        assert visible(table)[:3] == ["n40", "n39", "n38"], visible(table)
        assert table.selected_id() == "n40"
        assert table.scroll_y == 0
    jobs.close()


@sync
async def test_a_job_the_person_chose_stays_selected_and_in_place(tmp_path):
    path = store_path(tmp_path)
    jobs = Jobs(path)
    jobs.complete(20)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("3", "down", "down", "down")  # n20 n19 n18 [n17]
        table = app.main.table("completed")
        assert table.selected_id() == "n17"
        before = visible(table).index("n17")
        await complete_in_bursts(pilot, app, jobs, bursts=5, each=3)
        assert table.selected_id() == "n17"
        assert visible(table).index("n17") == before  # it did not move on screen
        await pilot.press("home")  # back to the newest, and following again
        await pilot.pause()
        assert table.selected_id() == "n35" and visible(table)[0] == "n35"
        await complete_in_bursts(pilot, app, jobs, bursts=2, each=2)
        assert table.selected_id() == "n39" and visible(table)[0] == "n39"
    jobs.close()


@sync
async def test_home_end_page_up_and_page_down_move_in_the_pane(tmp_path):
    path = store_path(tmp_path)
    jobs = Jobs(path)
    jobs.complete(40)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("3")
        table = app.main.table("completed")
        height = len(visible(table))
        await pilot.press("end")
        await pilot.pause()
        assert table.selected_id() == "n1" and visible(table)[-1] == "n1"
        await pilot.press("home")
        await pilot.pause()
        assert table.selected_id() == "n40" and visible(table)[0] == "n40"
        await pilot.press("pagedown")
        await pilot.pause()
        selected = table.selected_id()
        assert keys(table).index(selected) >= height - 1 and selected in visible(table)
        jobs.complete(2)  # rows arrive while the person pages: the page stays put
        await wait_for(pilot, lambda: keys(table)[0] == "n42")
        await pilot.pause()
        assert table.selected_id() == selected and selected in visible(table)
        await pilot.press("pageup")
        await pilot.pause()
        assert table.selected_id() != selected and table.selected_id() in visible(table)
        assert keys(table).index(table.selected_id()) < keys(table).index(selected)
    jobs.close()


@sync
async def test_the_pending_pane_follows_the_next_job_to_run(tmp_path):
    path = store_path(tmp_path)
    store = open_store(path)
    store.register_worker("w-1", 1, "h", NOW)
    store.enqueue([NewJob(command="true", id=f"p{n}") for n in range(1, 31)], now=NOW,
                  default_max_retries=0, default_cwd="/")
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        table = app.main.table("pending")
        assert table.selected_id() == "p1"
        for n in range(1, 6):  # p1..p5 start running, one refresh after another
            store.claim("w-1", now=NOW, lease=60)
            await wait_for(pilot, lambda: keys(table)[0] == f"p{n + 1}")
            await pilot.pause()
        assert table.selected_id() == "p6" and visible(table)[0] == "p6"
        store.enqueue([NewJob(command="true", id="urgent", priority=9)], now=NOW,
                      default_max_retries=0, default_cwd="/")  # it runs next: shown, selected
        await wait_for(pilot, lambda: keys(table)[0] == "urgent")
        await pilot.pause()
        assert table.selected_id() == "urgent" and visible(table)[0] == "urgent"
    store.close()
