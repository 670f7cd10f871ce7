"""Wake-ups for the PostgreSQL store: LISTEN on a channel, block in select() on the connection.

The waiter has its own autocommit connection. When that connection drops, `wait` reports a
ring (so the caller re-checks the store at once) and connects again on the next wait, backing
off while the server is away; the caller's poll interval covers the gap.
"""

from __future__ import annotations

import select
import time

from .conn import CONNECT_TIMEOUT, PgLocation, driver


class PgDoorbell:
    mechanism = "listen"

    def __init__(self, location: PgLocation, channel: str) -> None:
        self.location = location
        self.channel = channel
        self._conn = None
        self._retry_at = 0.0
        self._backoff = 0.1
        self._connect()

    def _connect(self) -> bool:
        psycopg = driver()
        try:
            conn = psycopg.connect(self.location.conninfo, autocommit=True,
                                   connect_timeout=CONNECT_TIMEOUT,
                                   application_name="queuectl-listen")
            conn.execute(f'LISTEN "{self.channel}"')
        except psycopg.Error:
            self._retry_at = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, 5.0)
            return False
        self._conn = conn
        self._backoff = 0.1
        return True

    def _lost(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass
        self._conn = None
        self._retry_at = time.monotonic()

    def _drain(self) -> bool:
        """Read what the server sent; True when a notification arrived."""
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        rung = False
        while pgconn.notifies() is not None:
            rung = True
        return rung

    def wait(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> bool:
        """Block until notified (True), a `wake_fds` fd is readable, or `timeout` passes."""
        if self._conn is None:
            if time.monotonic() < self._retry_at or not self._connect():
                time.sleep(max(0.0, min(timeout, max(0.0, self._retry_at - time.monotonic()))))
                return False
            return True  # back after a gap: whatever was notified meanwhile was missed
        try:
            fd = self._conn.fileno()
            ready, _, _ = select.select([fd, *wake_fds], [], [], max(0.0, timeout))
            if fd in ready:
                if self._drain():
                    return True
                if self._conn.pgconn.status != driver().pq.ConnStatus.OK:
                    self._lost()
                    return True
            return False
        except (OSError, driver().Error):
            self._lost()
            return True

    def clear(self) -> None:
        if self._conn is None:
            return
        try:
            self._drain()
        except (OSError, driver().Error):
            self._lost()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
