"""The console app: live panes over a store, actions on jobs, and the app's own worker pool.

Blocking work (store reads and writes, pool changes) runs in thread workers that only post
messages; handlers on the UI thread apply them. Refreshes never overlap, are throttled to
`MIN_GAP`, and are triggered by the store's doorbell (live.py) or a fallback timer.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

from queuectl.errors import QueueError
from queuectl.sanitize import one_line
from queuectl.store.base import Store

from .action_store import ActionStore
from .commands import palette
from .dialogs import ConfirmScreen
from .filters import parse_filter, with_queue
from .help import HelpScreen
from .job_actions import JobActions
from .live import StoreWatcher
from .loader import Loader
from .logviewer import LogScreen
from .main_screen import MainScreen
from .messages import (Notice, PoolChanged, RefreshDone, RefreshFailed, SnapshotReady,
                       StoreChanged, WatchFailed, plural)
from .pool_control import PoolControl, PoolLike
from .queue_view import QueueScreen
from .schedule_view import ScheduleScreen
from .snapshot import PANE_LIMIT, Request, Snapshot

MIN_GAP = 0.1  # seconds between refresh starts: at most ~10 refreshes per second

__all__ = ["QueueApp", "make_app", "PoolLike"]


class QueueApp(JobActions, App):
    CSS_PATH = "queuectl.tcss"
    TITLE = "queuectl"

    def __init__(self, store_factory: Callable[[], Store], *, pool: PoolLike | None,
                 clock: Callable[[], float] | None = None, store_text: str,
                 watch: bool = True, interval: float = 1.0, pane_limit: int = PANE_LIMIT) -> None:
        super().__init__()
        self.store_factory = store_factory
        self.control = PoolControl(pool)
        self.clock = clock
        self.store_text = store_text  # the store as the header shows it (no password)
        self.interval = interval
        self.pane_limit = pane_limit
        self.loader = Loader(store_factory, pool=pool, clock=clock)
        self.actions = ActionStore(store_factory)
        self.snapshot: Snapshot | None = None
        self.applied = 0  # snapshots applied (tests wait on it)
        self.filter_text: str | None = None  # the filter bar's text (filters.py)
        self.error: str | None = None  # why the last refresh failed
        self.watch_problem: str | None = None  # why the store is not watched
        self._watcher: StoreWatcher | None = None
        if watch:
            self._watcher = StoreWatcher(self._open_doorbell,
                                         lambda: self.post_message(StoreChanged()),
                                         lambda reason: self.post_message(WatchFailed(reason)))
        self._seq = 0
        self._refresh_busy = False
        self._refresh_dirty = False
        self._last_start = 0.0
        self._pending_timer = None
        self._loader_lock = threading.Lock()

    def notify(self, message: str, *, title: str = "", severity="information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every toast is literal text: messages carry ids, commands and errors (see inert.py)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def get_default_screen(self) -> Screen:
        self._main = MainScreen()
        return self._main

    @property
    def main(self) -> MainScreen:
        return self._main

    # -- refreshing
    def on_mount(self) -> None:
        if self._watcher is not None:
            self._watcher.start()
        self.set_interval(self.interval, self.request_refresh)
        if not self.control.watch_only:
            self.set_interval(1.0, self._supervise)
        self.request_refresh()

    def _open_doorbell(self):
        store = self.store_factory()
        try:
            return store.doorbell(everything=True)
        finally:
            store.close()

    def now(self, store: Store) -> float:
        """The app's clock if it was given one (tests), else the store's."""
        return self.clock() if self.clock is not None else store.now()

    def on_unmount(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        with self._loader_lock:
            self.loader.close()
        self.actions.close()

    def on_store_changed(self, message: StoreChanged) -> None:
        self.request_refresh()

    def on_watch_failed(self, message: WatchFailed) -> None:
        self.watch_problem = one_line(message.reason, 200)
        self.main.show_status()

    def request_refresh(self) -> None:
        """Refresh soon: never two at once, never more often than every MIN_GAP seconds."""
        if self._refresh_busy:
            self._refresh_dirty = True
            return
        wait = self._last_start + MIN_GAP - time.monotonic()
        if wait > 0:
            if self._pending_timer is None:
                self._pending_timer = self.set_timer(wait, self._timer_fired)
            return
        self._refresh_busy, self._refresh_dirty = True, False
        self._last_start = time.monotonic()
        self._seq += 1
        log = next((s.request() for s in self.screen_stack if isinstance(s, LogScreen)), None)
        wanted = parse_filter(self.filter_text)
        schedules = any(isinstance(s, ScheduleScreen) for s in self.screen_stack)
        self._refresh(Request(self._seq, wanted.text, self.pane_limit, log, wanted.queue,
                              schedules))

    def _timer_fired(self) -> None:
        self._pending_timer = None
        self.request_refresh()

    @work(thread=True, group="refresh")
    def _refresh(self, request: Request) -> None:
        try:
            with self._loader_lock:
                snapshot = self.loader.load(request)
            self.post_message(SnapshotReady(snapshot))
        except QueueError as exc:
            self.post_message(RefreshFailed(str(exc)))
        finally:
            self.post_message(RefreshDone())

    def on_refresh_done(self, message: RefreshDone) -> None:
        self._refresh_busy = False
        if self._refresh_dirty:
            self.request_refresh()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snap = message.snapshot
        if self.error is not None:
            self.notify("the store is readable again", title="store")
            self.error = None
        self.snapshot = snap
        self.main.apply(snap)
        if snap.log is not None:
            for screen in self.screen_stack:
                if isinstance(screen, LogScreen):
                    screen.apply(snap.log, snap.taken_at)
        for screen in self.screen_stack:
            if isinstance(screen, (QueueScreen, ScheduleScreen)):
                screen.apply(snap)
        self.applied += 1

    def on_refresh_failed(self, message: RefreshFailed) -> None:
        if message.error != self.error:
            self.notify(f"{message.error} (retrying)", title="store unavailable",
                        severity="error", timeout=8)
        self.error = message.error
        self.main.show_status()

    def on_notice(self, message: Notice) -> None:
        self.notify(message.text, severity=message.severity)  # type: ignore[arg-type]

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip() or None
        self.refresh_bindings()
        self.request_refresh()

    def filter_queue(self, name: str) -> None:
        """Back to the panes, filtered to queue `name` (and the text already in the filter)."""
        self._to_main()
        self.main.show_filter(with_queue(self.filter_text, name))

    def action_show_queues(self) -> None:
        if not isinstance(self.screen, QueueScreen):
            self._to_main()
            self.push_screen(QueueScreen())

    def action_show_schedules(self) -> None:
        if not isinstance(self.screen, ScheduleScreen):
            self._to_main()
            self.push_screen(ScheduleScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- the palette's ways to the main screen
    def _to_main(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_show_pane(self, name: str) -> None:
        self._to_main()
        self.main.action_pane(name)

    def action_show_filter(self) -> None:
        self._to_main()
        self.main.action_filter()

    def action_open_selected_log(self) -> None:
        self._to_main()
        self.main.action_open_log()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        return palette(super().get_system_commands(screen), self.run_action)

    # -- the pool
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause_pool":
            return not self.control.paused
        if action == "resume_pool":
            return self.control.paused
        return True

    def _pool_ready(self) -> bool:
        if self.control.watch_only:
            self.notify(PoolControl.WATCH_ONLY, severity="warning")
            return False
        return not self.control.stopping

    @work(thread=True, group="pool")
    def _pool_call(self, fn: Callable[[], str]) -> None:
        self.post_message(PoolChanged(fn()))

    def on_pool_changed(self, message: PoolChanged) -> None:
        self.notify(message.text)
        self.refresh_bindings()
        self.request_refresh()

    def action_scale(self, step: int) -> None:
        if self._pool_ready():
            self._pool_call(lambda: self.control.scale(step))

    def action_pause_pool(self) -> None:
        if self._pool_ready():
            self._pool_call(lambda: self.control.set_paused(True))

    def action_resume_pool(self) -> None:
        if self._pool_ready():
            self._pool_call(lambda: self.control.set_paused(False))

    def action_toggle_pause(self) -> None:
        if self._pool_ready():
            paused = not self.control.paused
            self._pool_call(lambda: self.control.set_paused(paused))

    @work(thread=True, group="pool")
    def _supervise(self) -> None:
        self.control.supervise()

    # -- quitting
    async def action_quit(self) -> None:
        if self.control.stopping:
            self.control.kill()
            self.notify("killing the running jobs; they go back to the queue",
                        severity="warning")
            return
        busy = self.control.busy()
        if not busy:
            self._begin_shutdown()
            return
        self.push_screen(ConfirmScreen(
            f"{plural(busy, 'job')} running in this console's pool. Quit?",
            "The workers finish their running jobs first, then stop "
            "(q again while they do: kill the jobs and give them back).", yes="Quit"),
            lambda yes: self._begin_shutdown() if yes else None)

    def action_help_quit(self) -> None:
        self.notify("press q to quit", title="Do you want to quit?")

    def _begin_shutdown(self) -> None:
        if self.control.watch_only:
            self.exit()
            return
        self.control.stopping = True
        self.notify("stopping the pool: waiting for running jobs to finish… "
                    "(q again: kill them and give them back)", timeout=30)
        self._stop_pool()

    @work(thread=True, group="pool-stop")
    def _stop_pool(self) -> None:
        try:
            self.control.stop()
        finally:
            self.call_from_thread(self.exit)


def make_app(store_factory: Callable[[], Store], *, pool: PoolLike | None,
             clock: Callable[[], float] | None = None, store_text: str,
             watch: bool = True, interval: float = 1.0) -> QueueApp:
    """The console over the store opened by `store_factory` (called once per thread).

    `store_text` is how the header names the store (a URL without its password). `pool` is
    the app's own worker pool, already started (or None to only watch); quitting stops it
    warmly. `watch=False` disables the doorbell watcher (the timer still refreshes).
    """
    return QueueApp(store_factory, pool=pool, clock=clock, store_text=store_text, watch=watch,
                    interval=interval)
