"""The log viewer: it follows a live job's output like `less +F`, and decodes it as a stream."""

from __future__ import annotations

from queuectl.models import NewJob
from queuectl.store.base import Outcome, RetryPolicy
from queuectl_tui.logviewer import LogScreen, OutputView

from test_tui_support import NOW, build_app, open_store, ready, sync, wait_for

SIZE = (100, 20)  # the output shows 17 lines
POLICY = RetryPolicy(1.0, None, 0.0)


class Live:
    """A running job `live` whose output the test writes, as its worker would."""

    def __init__(self, path: str, head: list[tuple[int, bytes]] = ()) -> None:
        self.store = open_store(path)
        self.store.register_worker("w-1", 1, "h", NOW)
        self.store.enqueue([NewJob(command="./ticker", id="live")], now=NOW,
                           default_max_retries=0, default_cwd="/")
        self.job = self.store.claim("w-1", now=NOW, lease=60)
        self.ticks = 0
        if head:
            self.write(list(head))

    def write(self, head: list[tuple[int, bytes]]) -> None:
        self.store.renew(self.job, now=NOW, lease=60, head=head)

    def tick(self, count: int) -> str:
        lines = [f"tick {self.ticks + n}\n".encode() for n in range(1, count + 1)]
        self.ticks += count
        self.write([(1, b"".join(lines))])
        return f"tick {self.ticks}"

    def close(self) -> None:
        self.store.close()


def shown(view: OutputView) -> list[str]:
    """The lines on screen."""
    top = round(view.scroll_y)
    return view.text().split("\n")[top:top + view.scrollable_content_region.height]


def info(app) -> str:
    return str(app.screen.query_one("#log-info").render())


async def open_log(pilot, app, job_id: str = "live") -> OutputView:
    await ready(pilot, app)
    app.open_log(job_id)
    await wait_for(pilot, lambda: isinstance(app.screen, LogScreen) and app.screen.log_ready
                   and app.screen.data is not None)
    return app.screen.query_one(OutputView)


async def tick_and_show(pilot, live: Live, view: OutputView, bursts: int, each: int) -> None:
    for _ in range(bursts):
        last = live.tick(each)
        await wait_for(pilot, lambda: last in view.text(), what=last)
        await pilot.pause()


@sync
async def test_the_log_follows_a_running_job_past_the_first_screen(tmp_path):
    path = str(tmp_path / "q.db")
    live = Live(path)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_log(pilot, app)
        await tick_and_show(pilot, live, view, bursts=10, each=4)
        assert shown(view)[-2:] == ["tick 40", ""], shown(view)
        assert "following" in info(app)
    live.close()


@sync
async def test_scrolling_up_pauses_following_and_end_resumes_it(tmp_path):
    path = str(tmp_path / "q.db")
    live = Live(path)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_log(pilot, app)
        await tick_and_show(pilot, live, view, bursts=5, each=8)
        await pilot.press("pageup")
        await pilot.pause()
        assert "paused" in info(app) and "End to follow" in info(app)
        top = shown(view)[0]
        await tick_and_show(pilot, live, view, bursts=3, each=5)
        assert shown(view)[0] == top  # what the person reads stays put
        await pilot.press("end")
        await pilot.pause()
        assert "following" in info(app) and "paused" not in info(app)
        await tick_and_show(pilot, live, view, bursts=3, each=5)
        assert shown(view)[-2:] == ["tick 70", ""], shown(view)
        await pilot.press("up", "down")  # back at the bottom by hand: following again
        await tick_and_show(pilot, live, view, bursts=2, each=5)
        assert shown(view)[-2:] == ["tick 80", ""], shown(view)
    live.close()


@sync
async def test_a_character_split_between_stored_chunks_is_shown_whole(tmp_path):
    path = str(tmp_path / "q.db")
    live = Live(path, head=[(1, b"caf\xc3")])  # printf 'caf\303'; sleep; printf '\251 ok\n'
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_log(pilot, app)
        await wait_for(pilot, lambda: "caf" in view.text())
        await pilot.pause(0.3)
        assert view.text() == "caf"  # the é is not complete yet: nothing shown for it
        live.write([(2, b"!"), (1, b"\xa9 ok\n"), (1, b"\xe2\x82")])
        await wait_for(pilot, lambda: "ok" in view.text())
        assert view.text() == "caf!é ok\n"
        live.store.finish(live.job, Outcome(ok=True, exit_code=0), now=NOW, policy=POLICY)
        await wait_for(pilot, lambda: view.text().endswith("\ufffd"), what="the cut € at the end")
        assert view.text() == "caf!é ok\n\ufffd"
    live.close()


@sync
async def test_switching_attempts_starts_the_text_afresh(tmp_path):
    path = str(tmp_path / "q.db")
    store = open_store(path)
    store.register_worker("w-1", 1, "h", NOW)
    store.enqueue([NewJob(command="./twice", id="twice")], now=NOW, default_max_retries=1,
                  default_cwd="/")
    job = store.claim("w-1", now=NOW, lease=60)
    store.finish(job, Outcome(ok=False, exit_code=1, error="exit code 1"), now=NOW,
                 policy=POLICY, head=[(1, b"\xa9 first\n")])
    job = store.claim("w-1", now=NOW + 10, lease=60)
    store.renew(job, now=NOW + 10, lease=60, head=[(1, b"second \xc3")])
    store.close()
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_log(pilot, app, "twice")
        await wait_for(pilot, lambda: "second" in view.text())
        await pilot.press("left_square_bracket")
        await wait_for(pilot, lambda: "first" in view.text())
        assert view.text() == "\ufffd first\n"  # not "é first": attempt 2's byte is gone


@sync
async def test_paused_lines_stay_put_when_old_lines_are_dropped(tmp_path):
    from queuectl_tui.logviewer import MAX_LINES

    path = str(tmp_path / "q.db")
    live = Live(path)
    live.tick(MAX_LINES - 10)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_log(pilot, app)
        # (~5,000 lines to load and lay out: slow on a loaded machine)
        await wait_for(pilot, lambda: view.max_scroll_y > 0 and view.scroll_y == view.max_scroll_y,
                       timeout=30, what="the view at the bottom")
        await pilot.press("pageup", "pageup")
        await pilot.pause()
        top = shown(view)[0]
        await tick_and_show(pilot, live, view, bursts=2, each=30)  # 50 lines roll out
        assert view.dropped_lines > 0
        assert shown(view)[0] == top
    live.close()


@sync
async def test_a_following_log_stays_at_the_bottom_when_its_size_changes(tmp_path):
    path = str(tmp_path / "q.db")
    live = Live(path)
    live.tick(200)
    app = build_app(path, interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_log(pilot, app)
        await wait_for(pilot, lambda: view.max_scroll_y > 0 and view.scroll_y == view.max_scroll_y,
                       what="the view at the bottom")
        await pilot.resize_terminal(SIZE[0], SIZE[1] - 6)  # the bottom moves down by 6 lines
        await wait_for(pilot, lambda: view.scrollable_content_region.height == 11, what="resize")
        await pilot.pause()
        assert view.following and view.scroll_y == view.max_scroll_y
        assert shown(view)[-2:] == ["tick 200", ""], shown(view)
    live.close()
