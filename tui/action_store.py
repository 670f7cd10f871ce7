"""The job actions' own store connection: retries, cancels and enqueues from thread workers."""

from __future__ import annotations

import threading
from typing import Callable

from queuectl.errors import QueueError
from queuectl.store.base import Store


class ActionStore:
    """The job actions' own store connection, opened when first needed (thread workers only)."""

    def __init__(self, factory: Callable[[], Store]) -> None:
        self.factory = factory
        self._lock = threading.Lock()
        self._store: Store | None = None

    def run(self, fn: Callable[[Store], object]) -> object:
        """`fn(store)`; a QueueError drops the connection (reopened next time)."""
        with self._lock:
            try:
                if self._store is None:
                    self._store = self.factory()
                return fn(self._store)
            except QueueError:
                self._close()
                raise

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            store.close()
