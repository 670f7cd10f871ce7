"""Capped head+tail capture of one run's interleaved stdout/stderr (pure, no I/O)."""

from __future__ import annotations

from collections import deque

STDOUT, STDERR = 1, 2

# A chunk grows by merging same-stream data only up to this size, so appending never copies
# more than this and trimming the oldest tail bytes stays cheap.
_MERGE_LIMIT = 64 * 1024


def _append(chunks: list | deque, stream: int, data: memoryview) -> None:
    if chunks and chunks[-1][0] == stream and len(chunks[-1][1]) < _MERGE_LIMIT:
        chunks[-1][1] += data
    else:
        chunks.append([stream, bytearray(data)])


def _merged(chunks) -> list[tuple[int, bytes]]:
    runs: list[tuple[int, list]] = []
    for stream, data in chunks:
        if runs and runs[-1][0] == stream:
            runs[-1][1].append(data)
        else:
            runs.append((stream, [data]))
    return [(stream, b"".join(parts)) for stream, parts in runs]


class OutputCapture:
    """Keeps the first `limit//2` bytes (head) and the last `limit - limit//2` bytes (tail) of a
    run's interleaved stdout/stderr, as (stream, bytes) chunks, counting what was dropped between.

    Memory stays within about `limit` plus the chunk being fed, whatever the volume fed.
    Invariant: head_bytes + dropped + tail_bytes == total.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0 bytes")
        self.limit = limit
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.total = 0
        self.dropped = 0
        self.head_bytes = 0  # head bytes kept so far, taken or not
        self.tail_bytes = 0
        self._head: list[list] = []  # [stream, bytearray] not yet taken
        self._tail: deque[list] = deque()
        self._tail_dirty = False

    def feed(self, stream: int, data: bytes) -> None:
        """Add bytes the run wrote on `stream` (STDOUT or STDERR)."""
        if stream not in (STDOUT, STDERR):
            raise ValueError(f"unknown stream {stream!r}")
        view = memoryview(data).cast("B")
        if not len(view):
            return
        self.total += len(view)
        room = self.head_limit - self.head_bytes
        if room > 0:
            part = view[:room]
            _append(self._head, stream, part)
            self.head_bytes += len(part)
            view = view[len(part):]
            if not len(view):
                return
        self._tail_dirty = True
        cap = self.tail_limit
        if len(view) >= cap:
            # The new bytes alone fill the tail: all older tail bytes go.
            self.dropped += self.tail_bytes + len(view) - cap
            self._tail.clear()
            if cap:
                self._tail.append([stream, bytearray(view[len(view) - cap:])])
            self.tail_bytes = cap
            return
        _append(self._tail, stream, view)
        self.tail_bytes += len(view)
        excess = self.tail_bytes - cap
        while excess > 0:
            oldest = self._tail[0][1]
            if len(oldest) <= excess:
                self._tail.popleft()
                cut = len(oldest)
            else:
                del oldest[:excess]
                cut = excess
            excess -= cut
            self.dropped += cut
            self.tail_bytes -= cut

    def take_head(self) -> list[tuple[int, bytes]]:
        """Head bytes fed since the previous call, in order, to be stored permanently."""
        out = _merged(self._head)
        self._head.clear()
        return out

    @property
    def tail_dirty(self) -> bool:
        """The tail or the dropped count changed since the last tail_snapshot()."""
        return self._tail_dirty

    def tail_snapshot(self) -> tuple[list[tuple[int, bytes]], int]:
        """(the current tail chunks in order, bytes dropped between head and tail)."""
        self._tail_dirty = False
        return _merged(self._tail), self.dropped
