"""A worker's log: each line stamped when it was logged, the lines written to the stream
together, not one write per line."""

from __future__ import annotations

import time
from typing import Callable, TextIO

FLUSH_AFTER = 0.1  # seconds: the longest a logged line waits in the buffer while work goes on


class LineLog:
    """Call it with a line to log it; `flush()` writes what is buffered.

    A line waits at most FLUSH_AFTER while the worker keeps logging, and not at all once the
    worker flushes: a worker flushes before it sleeps, while a job runs (every tick), and
    when it stops. So a busy worker writes a few times a second, not twice per job, and a line
    is never held back while nothing else happens. Lines still in the buffer when the process
    is killed with SIGKILL are lost (what they said is in the store). Write errors are
    ignored: a closed terminal must not stop the work."""

    def __init__(self, stream: TextIO, prefix: str, *, after: float = FLUSH_AFTER,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self.prefix = prefix
        self.after = after
        self.monotonic = monotonic
        self.wall = wall
        self._lines: list[str] = []
        self._first = 0.0  # monotonic time of the oldest buffered line
        self._second = -1
        self._stamp = ""

    def __call__(self, line: str) -> None:
        second = int(self.wall())
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%H:%M:%S", time.localtime(second))
        now = self.monotonic()
        if not self._lines:
            self._first = now
        self._lines.append(f"{self._stamp} {self.prefix} {line}\n")
        if now - self._first >= self.after:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        text, self._lines = "".join(self._lines), []
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass
