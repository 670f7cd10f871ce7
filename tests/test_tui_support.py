"""Helpers for the console tests: a seeded store, a fake pool, an app factory, waiting, and
checking that toasts show untrusted text inertly."""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path
from typing import Callable

from textual.widgets._toast import Toast

from queuectl.store.sqlite import SQLiteStore
from queuectl_tui.app import QueueApp, make_app
from queuectl.demo import seed_showcase

NOW = 1_700_000_000.0
STORE_TEXT = "/var/lib/queuectl/queuectl.db"  # shown in the header; fixed for snapshots


def seeded_path(tmp_path: Path) -> str:
    path = tmp_path / "store" / "queuectl.db"
    store = SQLiteStore(str(path), durability="normal")
    seed_showcase(store, NOW)
    store.close()
    return str(path)


def open_store(path: str) -> SQLiteStore:
    return SQLiteStore(path, durability="normal")


class FakePool:
    """Records what the console asks of its pool."""

    def __init__(self, size: int = 2, busy: int = 0, ids: tuple[str, ...] = ("w-3f9a1c",)) -> None:
        self.size = size
        self.paused = False
        self._busy = busy
        self._ids = list(ids)
        self.calls: list[tuple] = []

    def scale(self, n: int) -> None:
        self.calls.append(("scale", n))
        self.size = n

    def pause(self) -> None:
        self.calls.append(("pause",))
        self.paused = True

    def resume(self) -> None:
        self.calls.append(("resume",))
        self.paused = False

    def busy(self) -> int:
        return self._busy

    def worker_ids(self) -> list[str]:
        return list(self._ids)

    def supervise(self) -> None:
        pass

    def request_stop(self, cold: bool = False) -> None:
        self.calls.append(("request_stop", cold))

    def stop(self, cold: bool = False, timeout: float | None = None) -> None:
        self.calls.append(("stop", cold))


def build_app(path: str, pool: FakePool | None = None,
              factory: Callable[[], SQLiteStore] | None = None, interval: float = 0.5) -> QueueApp:
    return make_app(factory or (lambda: open_store(path)), pool=pool, clock=lambda: NOW,
                    store_text=STORE_TEXT, watch=False, interval=interval)


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 5.0,
                   what: str = "condition") -> None:
    """Let the app run until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def burst(pilot, *keys: str) -> None:
    """Send `keys` the way a terminal delivers a fast burst: all queued at once, then let the
    app process them (`pilot.press` waits for each key to be handled before the next)."""
    from textual import events
    from textual.keys import _character_to_key

    app = pilot.app
    for key in keys:
        char = key if len(key) == 1 else None
        if char is not None and not char.isalnum():
            key = _character_to_key(char)
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)
    await pilot.pause()
    await pilot.pause()


async def ready(pilot, app: QueueApp, snapshots: int = 1) -> None:
    """Wait for the first snapshot(s) to be applied and painted."""
    await wait_for(pilot, lambda: app.applied >= snapshots, what="a snapshot")
    await pilot.pause()


def sync(test):
    """Run an async test body with asyncio.run (no async pytest plugin is installed)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))
    return wrapper


def toasts(app) -> list:
    """The rendered content of every toast on screen."""
    return [toast.render() for toast in app.screen.query(Toast)]


def assert_inert(content, literal: str) -> None:
    """`literal` is in `content` as it is, with no style or action of its own (the only styled
    part of a toast is its title)."""
    start = content.plain.find(literal)
    assert start >= 0, content.plain
    for span in content.spans:
        assert "@click" not in str(span.style)
        assert span.end <= start or span.start >= start + len(literal), span


async def toast_with(pilot, app, literal: str):
    await wait_for(pilot, lambda: any(literal in c.plain for c in toasts(app)),
                   what=f"a toast with {literal!r}")
    content = next(c for c in toasts(app) if literal in c.plain)
    assert_inert(content, literal)
    return content
