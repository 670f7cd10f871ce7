"""Wake-ups: a doorbell file next to the store that enqueue/retry/cancel/stop touch after commit.

An idle worker blocks on it until it is rung, a signal arrives, or its timeout passes. On Linux
the wait is a blocking inotify read (no CPU while idle, ~0.1 ms to wake); elsewhere it uses
`watchfiles`; if neither works, it sleeps (the caller's poll interval is the fallback).
"""

from __future__ import annotations

import os
import select
import struct
import time


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


_IN_MODIFY = 0x00000002
_IN_ATTRIB = 0x00000004
_IN_CLOSE_WRITE = 0x00000008
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000


class _Inotify:
    def __init__(self, path: str) -> None:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        wd = libc.inotify_add_watch(self.fd, os.fsencode(path),
                                    _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE)
        if wd < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), "inotify_add_watch failed")

    def wait(self, timeout: float, extra_fds: tuple[int, ...]) -> bool:
        ready, _, _ = select.select([self.fd, *extra_fds], [], [], max(0.0, timeout))
        return self.drain() if self.fd in ready else False

    def drain(self) -> bool:
        rung = False
        while True:
            try:
                data = os.read(self.fd, 4096)
            except BlockingIOError:
                return rung
            if not data:
                return rung
            rung = rung or len(data) >= struct.calcsize("iIII")

    def close(self) -> None:
        os.close(self.fd)


class _Watchfiles:
    def __init__(self, path: str) -> None:
        from watchfiles._rust_notify import RustNotify

        self._notify = RustNotify([path], False, False, 50, False, False)

    def wait(self, timeout: float, extra_fds: tuple[int, ...]) -> bool:
        result = self._notify.watch(1600, 5, max(1, int(timeout * 1000)), None)
        return isinstance(result, set) and bool(result)

    def drain(self) -> bool:
        return False

    def close(self) -> None:
        self._notify.close()


class Doorbell:
    """Wait for the store's doorbell file to be rung."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._impl: _Inotify | _Watchfiles | None = None
        try:
            ensure_bell(path)
        except OSError:
            return
        for kind in (_Inotify, _Watchfiles):
            try:
                self._impl = kind(path)
                return
            except Exception:  # noqa: BLE001 - any failure means: use the next mechanism
                continue

    @property
    def mechanism(self) -> str:
        return {None: "poll", _Inotify: "inotify", _Watchfiles: "watchfiles"}[type(self._impl) if self._impl else None]

    def wait(self, timeout: float, wake_fds: tuple[int, ...] = ()) -> bool:
        """Block until rung (True), a `wake_fds` fd is readable, or `timeout` passes (False)."""
        if self._impl is None:
            time.sleep(max(0.0, min(timeout, 0.05)))
            return False
        return self._impl.wait(timeout, wake_fds)

    def clear(self) -> None:
        """Forget rings that happened before now (call before checking the store)."""
        if self._impl is not None:
            self._impl.drain()

    def close(self) -> None:
        if self._impl is not None:
            self._impl.close()
            self._impl = None
