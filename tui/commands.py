"""Pool actions, quitting, and the command palette: a mixin of `QueueApp`."""

from __future__ import annotations

from typing import Callable, Iterable

from textual import work
from textual.app import SystemCommand
from textual.screen import Screen

from .dialogs import ConfirmScreen
from .loader import PoolLike
from .messages import Notice, StoreChanged, plural
from .snapshot import PANE_TITLES, PANES


class PoolAndPalette:
    """Needs `pool`, `_pool_lock`, `_stopping`, `main` and the job actions of QueueApp."""

    # -- the pool
    def _no_pool(self) -> bool:
        if self.pool is None:
            self.notify("watch-only: this console has no worker pool (start it with --workers N)",
                        severity="warning")
            return True
        return False

    @work(thread=True, group="pool")
    def _pool_call(self, fn: Callable[[PoolLike], str]) -> None:
        with self._pool_lock:
            text = fn(self.pool)  # type: ignore[arg-type]
        self.post_message(Notice(text))
        self.post_message(StoreChanged())

    def action_scale(self, step: int) -> None:
        if self._no_pool() or self._stopping:
            return

        def scale(pool: PoolLike) -> str:
            pool.scale(max(0, pool.size + step))
            return f"pool: {plural(pool.size, 'worker')}"

        self._pool_call(scale)

    def action_toggle_pause(self) -> None:
        if self._no_pool() or self._stopping:
            return

        def toggle(pool: PoolLike) -> str:
            if pool.paused:
                pool.resume()
                return "pool resumed"
            pool.pause()
            return "pool paused: running jobs finish, no new ones start"

        self._pool_call(toggle)

    @work(thread=True, group="pool")
    def _supervise(self) -> None:
        if self._stopping or not self._pool_lock.acquire(blocking=False):
            return
        try:
            self.pool.supervise()  # type: ignore[union-attr]
        finally:
            self._pool_lock.release()

    # -- quitting
    async def action_quit(self) -> None:
        if self._stopping:
            if self.pool is not None and hasattr(self.pool, "request_stop"):
                self.pool.request_stop(cold=True)
                self.notify("killing the running jobs; they go back to the queue",
                            severity="warning")
            else:
                self.notify("still waiting for running jobs to finish", severity="warning")
            return
        busy = self.pool.busy() if self.pool is not None else 0
        if not busy:
            self._begin_shutdown()
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._begin_shutdown()

        self.push_screen(ConfirmScreen(
            f"{plural(busy, 'job')} running in this console's pool. Quit?",
            "The workers finish their running jobs first, then stop "
            "(q again while they do: kill the jobs and give them back).", yes="Quit"), confirmed)

    def _begin_shutdown(self) -> None:
        if self.pool is None:
            self.exit()
            return
        self._stopping = True
        self.notify("stopping the pool: waiting for running jobs to finish… "
                    "(q again: kill them and give them back)", timeout=30)
        self._stop_pool()

    @work(thread=True, group="pool-stop")
    def _stop_pool(self) -> None:
        try:
            with self._pool_lock:
                self.pool.stop()  # type: ignore[union-attr]
        finally:
            self.call_from_thread(self.exit)

    # -- the command palette
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for index, name in enumerate(PANES, 1):
            yield SystemCommand(f"Show {PANE_TITLES[name]}", f"Jump to the {name} pane ({index})",
                                lambda name=name: self._show_pane(name))
        yield SystemCommand("Open log", "Open the selected job's output (enter)",
                            lambda: self.main.action_open_log())
        yield SystemCommand("Retry job", "Retry the selected dead job (r)", self.action_retry_job)
        yield SystemCommand("Retry all dead jobs", "Move every dead job back to pending (R)",
                            self.action_retry_all)
        yield SystemCommand("Cancel job", "Cancel the selected job, killing it if it runs (c)",
                            self.action_cancel_job)
        yield SystemCommand("New job", "Enqueue a shell command (n)", self.action_new_job)
        yield SystemCommand("Filter", "Filter the panes by id or command text (/)",
                            lambda: self._show_pane(None, filter=True))
        yield SystemCommand("Add worker", "Grow this console's pool by one (+)",
                            lambda: self.action_scale(1))
        yield SystemCommand("Remove worker", "Shrink this console's pool by one (-)",
                            lambda: self.action_scale(-1))
        yield SystemCommand("Pause or resume pool", "Stop or restart taking new jobs (p)",
                            self.action_toggle_pause)
        yield SystemCommand("Keys", "Show every key (?)", self.action_help)

    def _show_pane(self, name: str | None, filter: bool = False) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if name:
            self.main.action_pane(name)
        if filter:
            self.main.action_filter()
