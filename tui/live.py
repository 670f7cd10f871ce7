"""Noticing store changes: a thread waiting on the store's `doorbell(everything=True)`.

The console does not know which backend it watches: SQLite's doorbell watches the database
files, PostgreSQL's listens for notifications. When there is no doorbell, or it cannot be
opened or breaks, the watcher says why once (`failed`) and stops; the app's timer still
refreshes every second.
"""

from __future__ import annotations

import threading
from typing import Callable

from queuectl.errors import QueueError


class StoreWatcher:
    """Calls `changed()` (from its own thread) after the store changes, at most once per
    `debounce_ms`; calls `failed(reason)` if it cannot watch."""

    def __init__(self, open_bell: Callable[[], object | None], changed: Callable[[], None],
                 failed: Callable[[str], None], *, debounce_ms: int = 100) -> None:
        self.open_bell = open_bell
        self.changed = changed
        self.failed = failed
        self.debounce_ms = debounce_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="queuectl-ui-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        try:
            bell = self.open_bell()
        except (OSError, QueueError) as exc:
            self.failed(str(exc) or type(exc).__name__)
            return
        if bell is None:
            self.failed("this store sends no notifications")
            return
        try:
            while not self._stop.is_set():
                if bell.wait(0.5):
                    # A burst (a drain writes per job) becomes one refresh per debounce; what
                    # arrives after the clear rings again, so the last change is never missed.
                    self._stop.wait(self.debounce_ms / 1000)
                    bell.clear()
                    self.changed()
        except (OSError, QueueError) as exc:
            self.failed(str(exc) or type(exc).__name__)
        finally:
            bell.close()
