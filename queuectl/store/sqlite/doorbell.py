"""Wake-ups: a doorbell file next to the store that enqueue/retry/cancel/stop touch after commit.

An idle worker blocks on the bell file until it is rung, one of its wake fds is readable, or
its timeout passes. A console watches more: every change of the database or its WAL as well
as the bell. On Linux the wait is a blocking inotify read (no CPU while idle, ~0.1 ms to wake);
elsewhere a `watchfiles` thread signals a pipe; if neither works a worker's wait sleeps its
whole timeout (its poll interval is the fallback), and a console's doorbell refuses to open,
saying why, so the console can tell the person it only refreshes on its timer.
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
from typing import Callable, Iterable

_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then the name
_IN_MODIFY = 0x00000002
_IN_ATTRIB = 0x00000004
_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_FILE_EVENTS = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE
_DIRECTORY_EVENTS = _FILE_EVENTS | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE


def ensure_bell(path: str) -> None:
    if not os.path.exists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def ring(path: str) -> None:
    """Touch the doorbell; failures are ignored because every waiter also polls."""
    try:
        os.utime(path)
    except FileNotFoundError:
        try:
            ensure_bell(path)
        except OSError:
            pass
    except OSError:
        pass


class _Inotify:
    """One inotify watch: on the bell file itself, or on the directory, for some names in it."""

    def __init__(self, path: str, names: frozenset[str] | None) -> None:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.names = names
        self.fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        mask = _FILE_EVENTS if names is None else _DIRECTORY_EVENTS
        if libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            errno = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(errno, f"inotify_add_watch failed: {os.strerror(errno)}")

    def readable(self) -> int:
        return self.fd

    def drain(self) -> bool:
        """Read every pending event; True when one was about a watched file."""
        rung = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return rung
            if not data:
                return rung
            rung = rung or any(self._wanted(name) for name in _event_names(data))

    def _wanted(self, name: bytes) -> bool:
        return self.names is None or os.fsdecode(name) in self.names

    def close(self) -> None:
        os.close(self.fd)


def _event_names(data: bytes) -> Iterable[bytes]:
    offset = 0
    while offset + _EVENT.size <= len(data):
        _, _, _, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        yield data[start:start + length].rstrip(b"\0")
        offset = start + length


class _Watchfiles:
    """`watchfiles.watch` (public API) in a thread that writes to a pipe on every change."""

    def __init__(self, path: str, names: frozenset[str] | None) -> None:
        import watchfiles

        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        self._stop = threading.Event()
        wanted: Callable[[object, str], bool] | None = None
        if names is not None:
            wanted = lambda change, changed: os.path.basename(changed) in names  # noqa: E731
        changes = watchfiles.watch(path, watch_filter=wanted, debounce=1600, step=5,
                                   stop_event=self._stop, rust_timeout=0, recursive=False,
                                   raise_interrupt=False)
        self._thread = threading.Thread(target=self._run, args=(changes,), daemon=True,
                                        name="queuectl-doorbell")
        self._thread.start()

    def _run(self, changes) -> None:
        try:
            for _ in changes:
                os.write(self._write, b"!")
        except (OSError, RuntimeError):  # the watch broke: waiters fall back to their timeout
            pass

    def readable(self) -> int:
        return self._read

    def drain(self) -> bool:
        rung = False
        while True:
            try:
                rung = bool(os.read(self._read, 4096)) or rung
            except BlockingIOError:
                return rung

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._read)
        os.close(self._write)


MECHANISMS = {"inotify": _Inotify, "watchfiles": _Watchfiles}
WAKE_VAR = "QUEUECTL_WAKE"  # "poll": idle workers do not watch the bell, they poll


def wake_mechanisms() -> tuple[str, ...]:
    """How idle workers wait: inotify, else watchfiles; QUEUECTL_WAKE=poll makes them only
    poll (every poll-interval), for a file system whose changes do not reach the watchers."""
    if os.environ.get(WAKE_VAR, "").strip().lower() == "poll":
        return ()
    return ("inotify", "watchfiles")


class Doorbell:
    """Wait for the store's doorbell file to be rung; with `also` (file names next to it, e.g.
    the database and its WAL), for any change of those files too.

    `mechanisms` are tried in order. A worker's doorbell (no `also`) that can use none of them
    sleeps through its waits (`mechanism == "poll"`, `problem` says why); a console's
    (`required=True`) raises OSError instead, with every reason.
    """

    def __init__(self, path: str, *, also: Iterable[str] = (), required: bool = False,
                 mechanisms: Iterable[str] = ("inotify", "watchfiles")) -> None:
        self.path = path
        self.problem: str | None = None
        self._impl: _Inotify | _Watchfiles | None = None
        self.mechanism = "poll"
        names = frozenset(os.path.basename(p) for p in (path, *also)) if also else None
        target = os.path.dirname(os.path.abspath(path)) if names else path
        reasons = []
        try:
            ensure_bell(path)
        except OSError as exc:
            reasons.append(f"cannot create {path}: {exc.strerror or exc}")
        else:
            for name in mechanisms:
                try:
                    self._impl = MECHANISMS[name](target, names)
                    self.mechanism = name
                    break
                except Exception as exc:  # noqa: BLE001 - any failure means: try the next one
                    reasons.append(f"{name}: {exc}")
        if self._impl is None:
            self.problem = "; ".join(reasons) or "no way to watch files"
            if required:
                raise OSError(self.problem)

    def wait(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> bool:
        """Block until rung (True), a `wake_fds` fd is readable, or `timeout` passes (False)."""
        timeout = max(0.0, timeout)
        if self._impl is None:
            if wake_fds:
                select.select(list(wake_fds), [], [], timeout)
            else:
                time.sleep(timeout)
            return False
        fd = self._impl.readable()
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([fd, *wake_fds], [], [], timeout)
            if fd not in ready:
                return False
            if self._impl.drain():
                return True
            if any(f in ready for f in wake_fds):
                return False
            timeout = deadline - time.monotonic()  # only other files in the directory changed
            if timeout <= 0:
                return False

    def clear(self) -> None:
        """Forget rings that happened before now (call before checking the store)."""
        if self._impl is not None:
            self._impl.drain()

    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()
            self._impl = None
