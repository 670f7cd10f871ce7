"""Noticing store changes: a `watchfiles` thread over the SQLite file, its WAL and doorbell, or
for a server store a thread waiting on the store's own notifications (LISTEN)."""

from __future__ import annotations

import os
import threading
from typing import Callable

from queuectl.store import is_url

WATCHED_SUFFIXES = ("", "-wal", "-bell")


def watched_files(location: str) -> tuple[str, set[str]] | None:
    """(directory, file names) to watch for a store location; None for a server URL."""
    if is_url(location):
        return None
    path = os.path.abspath(os.path.expanduser(location))
    directory, name = os.path.split(path)
    return directory, {name + suffix for suffix in WATCHED_SUFFIXES}


class StoreWatcher:
    """Calls `changed()` (from its own thread) when the store's files change.

    Bursts are grouped by watchfiles for up to `debounce_ms`; the app's refresh throttle and
    timer fallback cover the rest, so a watcher that cannot start only costs latency.
    """

    def __init__(self, location: str, changed: Callable[[], None], *,
                 debounce_ms: int = 100, doorbell: Callable[[], object] | None = None) -> None:
        self.target = watched_files(location)
        self.doorbell = doorbell  # opens the store's doorbell(everything=True), for a URL
        self.changed = changed
        self.debounce_ms = debounce_ms
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        if self.target is None:
            if self.doorbell is None:
                return False
            run = self._listen
        elif not os.path.isdir(self.target[0]):
            return False
        else:
            run = self._run
        self._thread = threading.Thread(target=run, name="queuectl-ui-watch", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _listen(self) -> None:
        try:
            bell = self.doorbell()  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the timer still polls
            self.error = f"{type(exc).__name__}: {exc}"
            return
        if bell is None:
            return
        try:
            while not self._stop.is_set():
                if bell.wait(0.5):
                    # A burst (a drain notifies per job) becomes one refresh per debounce; what
                    # arrives after the clear rings again, so the last change is never missed.
                    self._stop.wait(self.debounce_ms / 1000)
                    bell.clear()
                    self.changed()
        finally:
            bell.close()

    def _run(self) -> None:
        import watchfiles

        directory, names = self.target  # type: ignore[misc]

        def wanted(change: object, path: str) -> bool:
            return os.path.basename(path) in names

        try:
            for _ in watchfiles.watch(directory, watch_filter=wanted, debounce=self.debounce_ms,
                                      step=20, stop_event=self._stop, rust_timeout=500,
                                      recursive=False, raise_interrupt=False):
                self.changed()
        except (OSError, RuntimeError) as exc:  # e.g. inotify limits: the timer still polls
            self.error = f"{type(exc).__name__}: {exc}"
