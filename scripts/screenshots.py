"""Regenerate screenshots/*.svg (and *.png when rsvg-convert is installed) from a seeded store.

    python scripts/screenshots.py [--out screenshots] [--size 160x45]

The store is the tests' showcase plus a busy day's worth of jobs (so every pane is full at
160x45), written through the Store API at a fixed time, with its named queues busy too (encodes
at their limit of 2, training runs on their GPU slots, a paused deploy); the main screen is also
shot at 80x24, the log viewer follows a long live output, and the queue view has its own shot.
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

from queuectl.demo import seed_showcase
from queuectl.models import NewJob
from queuectl.store.base import Outcome, RetryPolicy
from queuectl.store.sqlite import SQLiteStore
from queuectl_tui.app import make_app
from queuectl_tui.logviewer import LogScreen, OutputView
from queuectl_tui.queue_view import QueueScreen
from queuectl_tui.schedule_view import ScheduleScreen
from queuectl.ticks import make_rule

NOW = 1_700_000_000.0
STORE_TEXT = "~/.local/share/queuectl/queuectl.db"
OWN = tuple(f"w-{n:02d}a{n * 7919 % 4096:03x}" for n in range(1, 13))  # the console's pool
EXTERNAL = ("w-ext1", "w-ext2", "w-ext3", "w-ext4")
POLICY = RetryPolicy(base=2.0, cap=3600.0, jitter=0.0)
LIVE = "nightly-etl"  # the running job whose output the log viewer follows
LIVE_OUTPUT = {"encode": b"frame=  812 fps= 48\n", "gpu": b"epoch 3/10  loss=0.4127\n",
               "default": b"uploaded 1.2 GiB of 3.0 GiB\n"}


class FakePool:
    """A pool that does nothing, so the header shows an own pool without running anything."""

    def __init__(self) -> None:
        self.size, self.paused = len(OWN), False

    def scale(self, n: int) -> None:
        self.size = n

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def busy(self) -> int:
        return len(OWN)

    def worker_ids(self) -> list[str]:
        return list(OWN)

    def supervise(self) -> None:
        pass

    def request_stop(self, cold: bool = False) -> None:
        pass

    def stop(self, cold: bool = False, timeout: float | None = None) -> None:
        pass


def _etl_output() -> list[tuple[int, bytes]]:
    lines = []
    for n in range(1, 481):
        table = ("orders", "customers", "invoices", "shipments")[n % 4]
        lines.append((1, f"[{n:03d}/480] {table}: copied {n * 1375:,} rows, "
                         f"{n * 0.37:.1f} MB, {1200 + n * 3 % 97} rows/s\n".encode()))
        if n % 60 == 0:
            lines.append((2, f"warning: {table} partition {n // 60} has no primary key; "
                             f"deduplicating by checksum\n".encode()))
    return lines


def seed_busy(store: SQLiteStore, now: float) -> None:
    """A busy day on top of the showcase: enough jobs that every pane is full."""
    for worker in OWN + EXTERNAL:
        store.register_worker(worker, 5000 + len(worker), "build-01", now - 900)

    def add(job: NewJob, at: float) -> str:
        return store.enqueue([job], now=at, default_max_retries=2, default_cwd="/srv/app")[0]

    for n in range(1, 25):  # completed, newest last
        job_id = add(NewJob(command=f"python make_thumbs.py --batch {500 + n}",
                            id=f"thumbs-{500 + n}", priority=100, queue="encode"),
                     now - 250 + n * 10)
        job = store.claim(OWN[n % len(OWN)], now=now - 250 + n * 10, lease=15)
        assert job.id == job_id
        store.finish(job, Outcome(ok=True, exit_code=0), now=now - 245 + n * 10, policy=POLICY,
                     head=[(1, f"resized {n * 12} images\n".encode())])
    errors = ("exit code 1", "timed out after 5m (SIGTERM)", "exit code 2",
              "HTTP 502 from https://payments.internal/v2/settle: upstream connect error",
              "signal SIGKILL", "exit code 127: command not found")
    for n in range(1, 15):  # dead, each with its last error
        job_id = add(NewJob(command=f"./bin/settle --merchant m-{n:04d}", id=f"settle-{n:04d}",
                            max_retries=0), now - 300 + n * 5)
        job = store.claim(EXTERNAL[n % len(EXTERNAL)], now=now - 300 + n * 5, lease=15)
        assert job.id == job_id
        store.finish(job, Outcome(ok=False, exit_code=1, error=errors[n % len(errors)]),
                     now=now - 298 + n * 5, policy=POLICY)
    running = [NewJob(command="./etl/run --nightly --all-tables", id=LIVE, priority=9)]
    running += [NewJob(command=f"ffmpeg -i raw/{n:03d}.mov -c:v libx264 out/{n:03d}.mp4",
                       id=f"encode-{n:03d}", priority=8, queue="encode") for n in range(1, 7)]
    running += [NewJob(command=f"python train.py --fold {n} --device cuda:$QUEUECTL_SLOT",
                       id=f"train-fold-{n}", priority=8, queue="gpu") for n in range(1, 4)]
    running += [NewJob(command=f"./bin/backup --shard {n:02d} --to s3://backups/",
                       id=f"backup-{n:02d}", priority=8) for n in range(1, 10)]
    for job in running:
        add(job, now - 200)
    for n in range(15):  # encode runs 2 at a time: 4 of its jobs wait for a free slot
        claimed = store.claim((OWN + EXTERNAL)[n], now=now - 190 + n * 9, lease=1e9)
        output = _etl_output() if claimed.id == LIVE else [(1, LIVE_OUTPUT[claimed.queue])]
        store.renew(claimed, now=now - 1, lease=1e9, head=output)
    for n in range(1, 17):  # waiting: ready ones, then delayed ones
        delay = 0 if n < 11 else 600 * n
        add(NewJob(command=f"./bin/report --region r{n:02d} --format pdf", id=f"report-r{n:02d}",
                   delay=delay), now - 60 + n)
    # waits for the nightly ETL that is running
    add(NewJob(command="./bin/publish --site reports", id="publish-reports", after=(LIVE,)),
        now - 30)
    seed_schedules(store, now)
    for worker in OWN + EXTERNAL:
        store.heartbeat(worker, now - 1)


def seed_schedules(store: SQLiteStore, now: float) -> None:
    """A nightly report (cron, in Berlin), a sync every 15 minutes that ran at its last tick,
    and a paused weekly clean-up."""
    def schedule(name: str, command: str, at: float, **rule) -> None:
        store.add_schedule(name, make_rule(now=at, **{"cron": None, "every": None, "tz": None,
                                                      **rule}),
                           {"command": command}, "/srv/app", overlap="skip", catch_up="once",
                           now=at)

    schedule("nightly-report", "./bin/report --all --format pdf", now, cron="0 3 * * *",
             tz="Europe/Berlin")
    schedule("sync-assets", "rsync -a assets/ cdn:/assets/", now - 15 * 60 - 5, every="15m")
    schedule("weekly-vacuum", "./bin/vacuum --analyze", now, cron="0 4 * * 0")
    store.fire_schedules(now - 4, default_max_retries=2)
    store.pause_schedule("weekly-vacuum", paused=True, now=now)


async def _until(pilot, condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await pilot.pause(0.02)


def _app(path: str):
    return make_app(lambda: SQLiteStore(path, durability="normal"), pool=FakePool(),
                    clock=lambda: NOW, store_text=STORE_TEXT, watch=False)


async def shoot(path: str, out: str, size: tuple[int, int]) -> list[str]:
    app = _app(path)
    saved = []

    def save(name: str) -> None:
        saved.append(app.save_screenshot(f"{name}.svg", out))

    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: app.applied >= 1)
        await pilot.pause(0.2)
        save("main")
        await pilot.press("4")
        await pilot.pause()
        save("dead-letter")
        await pilot.press("2")
        table = app.main.table("running")
        table.move_cursor(row=table.get_row_index(LIVE), animate=False)
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, LogScreen)
                     and "[480/480]" in app.screen.query_one(OutputView).text())
        await pilot.pause(0.2)
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
        await pilot.press("escape", "Q")
        await _until(pilot, lambda: isinstance(app.screen, QueueScreen)
                     and app.screen.table.row_count == 4)
        await pilot.press("down", "down", "down")  # gpu
        await pilot.pause(0.2)
        save("queues")
        await pilot.press("escape", "S")
        await _until(pilot, lambda: isinstance(app.screen, ScheduleScreen)
                     and app.screen.table.row_count == 3)
        await pilot.pause(0.2)
        save("schedules")
    app = _app(path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(pilot, lambda: app.applied >= 1)
        await pilot.pause(1.0)  # the footer is laid out after the first refresh
        saved.append(app.save_screenshot("main-80x24.svg", out))
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
    parser.add_argument("--size", default="160x45")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "queuectl.db")
        store = SQLiteStore(path, durability="normal")
        seed_showcase(store, NOW)
        seed_busy(store, NOW)
        store.close()
        svgs = asyncio.run(shoot(path, out, (width, height)))
    for svg in svgs:
        png = to_png(svg)
        print(os.path.relpath(svg), "+ png" if png else "(no rsvg-convert: SVG only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
