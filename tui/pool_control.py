"""The console's own worker pool: what the keys ask of it, one call at a time.

The pool talks to processes, so every method here except the properties may block: the app
calls them from thread workers. A lock keeps them from overlapping (scaling while stopping,
supervising while scaling); `supervise` skips a round rather than wait for the lock.
"""

from __future__ import annotations

import threading
from typing import Protocol

from .messages import plural


class PoolLike(Protocol):
    """What the console uses of `queuectl.pool.Pool`."""

    size: int
    paused: bool

    def scale(self, n: int) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def busy(self) -> int: ...
    def worker_ids(self) -> list[str]: ...
    def supervise(self) -> None: ...
    def request_stop(self, cold: bool = False) -> None: ...
    def stop(self, cold: bool = False, timeout: float | None = None) -> None: ...


class PoolControl:
    """The app's handle on its pool, or on no pool at all (a watch-only console)."""

    WATCH_ONLY = "watch-only: this console has no worker pool (start it with --workers N)"

    def __init__(self, pool: PoolLike | None) -> None:
        self.pool = pool
        self.stopping = False  # a stop has begun: no more scaling or pausing
        self._lock = threading.Lock()

    @property
    def watch_only(self) -> bool:
        return self.pool is None

    @property
    def paused(self) -> bool:
        return self.pool is not None and bool(self.pool.paused)

    def busy(self) -> int:
        return self.pool.busy() if self.pool is not None else 0

    def scale(self, step: int) -> str:
        with self._lock:
            self.pool.scale(max(0, self.pool.size + step))
            return f"pool: {plural(self.pool.size, 'worker')}"

    def set_paused(self, paused: bool) -> str:
        with self._lock:
            if paused:
                self.pool.pause()
                return "pool paused: running jobs finish, no new ones start"
            self.pool.resume()
            return "pool resumed"

    def supervise(self) -> None:
        """Replace dead workers and rescue their jobs; skipped while another call runs."""
        if self.pool is None or self.stopping or not self._lock.acquire(blocking=False):
            return
        try:
            self.pool.supervise()
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Stop warmly: running jobs finish first (blocks until they have)."""
        self.stopping = True
        with self._lock:
            self.pool.stop()

    def kill(self) -> None:
        """During a warm stop: kill the running jobs and give them back (does not block)."""
        self.pool.request_stop(cold=True)
