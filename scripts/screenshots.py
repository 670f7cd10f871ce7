"""Regenerate screenshots/*.svg (and *.png when rsvg-convert is installed) from a seeded store.

    python scripts/screenshots.py [--out screenshots] [--size 120x32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from queuectl.store.sqlite import SQLiteStore
from queuectl_tui.app import make_app
from queuectl.demo import seed_showcase
from queuectl_tui.logviewer import LogScreen, OutputView

NOW = 1_700_000_000.0
STORE_TEXT = "~/.local/share/queuectl/queuectl.db"


class FakePool:
    """A pool that does nothing, so the header shows an own pool without running anything."""

    def __init__(self) -> None:
        self.size, self.paused = 2, False

    def scale(self, n: int) -> None:
        self.size = n

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def busy(self) -> int:
        return 1

    def worker_ids(self) -> list[str]:
        return ["w-3f9a1c", "w-7b2e04"]

    def supervise(self) -> None:
        pass

    def request_stop(self, cold: bool = False) -> None:
        pass

    def stop(self, cold: bool = False, timeout: float | None = None) -> None:
        pass


async def _until(pilot, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await pilot.pause(0.02)


async def shoot(path: str, out: str, size: tuple[int, int]) -> list[str]:
    app = make_app(lambda: SQLiteStore(path, durability="normal"), pool=FakePool(),
                   clock=lambda: NOW, store_text=STORE_TEXT, watch=False)
    saved = []

    def save(name: str) -> None:
        saved.append(app.save_screenshot(f"{name}.svg", out))

    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: app.applied >= 1)
        await pilot.pause()
        save("main")
        await pilot.press("4")
        await pilot.pause()
        save("dead-letter")
        await pilot.press("2")
        table = app.main.table("running")
        table.move_cursor(row=table.get_row_index("train-model"), animate=False)
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, LogScreen)
                     and "epoch 7" in app.screen.query_one(OutputView).text())
        await pilot.pause()
        save("log-viewer")
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.2)
        save("help")
        await pilot.press("escape", "n")
        await pilot.pause(0.2)
        app.screen.query_one("#field-command").value = "make -C docs html"
        app.screen.query_one("#field-delay").value = "5m"
        await pilot.pause()
        save("new-job")
    return saved


def to_png(svg: str) -> str | None:
    """Render with rsvg-convert; Textual's SVG uses &#160; which rsvg squeezes, so use spaces."""
    tool = shutil.which("rsvg-convert")
    if tool is None:
        return None
    with open(svg, encoding="utf-8") as handle:
        text = handle.read()
    text = re.sub(r"<svg ", '<svg xml:space="preserve" ', text.replace("&#160;", " "), count=1)
    png = svg[:-4] + ".png"
    subprocess.run([tool, "-o", png], input=text.encode(), check=True)
    return png


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "screenshots"))
    parser.add_argument("--size", default="120x32")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queuectl.db")
        store = SQLiteStore(path, durability="normal")
        seed_showcase(store, NOW)
        store.close()
        svgs = asyncio.run(shoot(path, out, (width, height)))
    for svg in svgs:
        png = to_png(svg)
        print(os.path.relpath(svg), "+ png" if png else "(no rsvg-convert: SVG only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
