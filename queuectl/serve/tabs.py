"""The console behind each browser tab: one `queuectl.serve.tab` process per websocket, run by
textual-serve's AppService, in a process group of its own (so that it is stopped as a whole, and
a Ctrl+C on `serve`'s terminal reaches only `serve`) but in `serve`'s session: the pool's
supervisor kills children in other sessions as leftovers of dead workers' jobs."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from textual_serve.app_service import AppService
from textual_serve.download_manager import DownloadManager

QUIT_WAIT = 5.0  # seconds a tab gets to quit before its process group is killed


class Tab(AppService):
    """One console process for one browser tab."""

    def __init__(self, location: str, **kw) -> None:
        super().__init__("queuectl console", **kw)
        self.location = location

    async def _open_app_process(self, width: int = 80, height: int = 24):
        env = self._build_environment(width=width, height=height)
        env["QUEUECTL_DB"] = self.location  # not on the command line, where `ps` shows it
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "queuectl.serve.tab",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, process_group=0)
        self._stdin = self._process.stdin
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def close(self) -> None:
        """Ask the console to quit; kill its process group if it has not within QUIT_WAIT."""
        try:
            await asyncio.wait_for(self.stop(), QUIT_WAIT)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            pass  # it did not quit in time, or its pipes are gone: killed below either way
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever it left in its session
        except (ProcessLookupError, PermissionError):
            pass
        await process.wait()


class Tabs:
    """The open tabs, at most `limit` at once."""

    def __init__(self, location: str, limit: int) -> None:
        self.location = location
        self.limit = limit
        self.open: set[Tab] = set()
        self.downloads = DownloadManager()

    @property
    def full(self) -> bool:
        return len(self.open) >= self.limit

    def new(self, write_bytes, write_str, close) -> Tab:
        tab = Tab(self.location, write_bytes=write_bytes, write_str=write_str, close=close,
                  download_manager=self.downloads)
        self.open.add(tab)
        return tab

    async def close(self, tab: Tab) -> None:
        try:
            await tab.close()
        finally:
            self.open.discard(tab)
