"""`queuectl ui` and `queuectl demo`: the live console, with a worker pool of its own."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
from typing import Callable, Optional

import typer

from ..errors import InvalidInput, QueueError
from ..store import display_location, open_store
from .app import app, location, store
from ..config import settings_of as settings


def _trickle(loc: str, stop: threading.Event, every: float = 3.0) -> None:
    """Keep the demo alive: enqueue a new job every few seconds until the console closes."""
    from ..demo import trickle_job

    s = open_store(loc)
    try:
        n = 1
        while not stop.wait(every):
            s.enqueue([trickle_job(n)], now=s.now(), default_max_retries=3,
                      default_cwd=os.path.dirname(loc))
            n += 1
    except QueueError:
        pass  # the demo store went away with the console
    finally:
        s.close()


def run_console(loc: str, workers: int, cleanup: Callable[[], None] = lambda: None) -> None:
    """Open the console on `loc` with `workers` pool workers; stop them all when it closes.

    A closed terminal (SIGHUP) stops the pool cold — running jobs are killed and given back —
    and ends the process at once: there is no terminal left to restore or to ask anything.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InvalidInput("the console needs a terminal (use the other commands in scripts)")
    from queuectl_tui.app import make_app

    from ..pool import Pool

    pool = Pool(loc, workers, quiet=True) if workers > 0 else None

    def hangup(signum, frame) -> None:
        try:
            if pool is not None:
                pool.stop(cold=True, timeout=10)
            cleanup()
        finally:
            os._exit(128 + signum)

    previous = signal.signal(signal.SIGHUP, hangup)
    try:
        if pool is not None:
            pool.start()
        make_app(lambda: open_store(loc), pool=pool, store_text=display_location(loc)).run()
    finally:
        if pool is not None:
            pool.stop(cold=pool.cold, timeout=30)
        signal.signal(signal.SIGHUP, previous)
        cleanup()


@app.command()
def ui(workers: Optional[int] = typer.Option(
        None, "--workers", "-w", min=0, max=256,
        help="Workers in the console's own pool (default: the `workers` setting; 0 = only watch).")) -> None:
    """The live console: pending, running, completed and dead jobs, and their output."""
    s = store(create=workers != 0)
    n = settings(s).workers if workers is None else workers
    s.close()
    run_console(location(), n)


@app.command()
def demo(workers: int = typer.Option(3, "--workers", "-w", min=0, max=64,
                                     help="Workers in the demo's pool.")) -> None:
    """The console on a throwaway queue seeded with quick, slow, failing and delayed jobs."""
    from ..demo import seed_demo

    folder = tempfile.mkdtemp(prefix="queuectl-demo-")
    loc = os.path.join(folder, "demo.db")
    stop = threading.Event()
    feeder = threading.Thread(target=_trickle, args=(loc, stop), daemon=True)

    def cleanup() -> None:
        stop.set()
        if feeder.is_alive():
            feeder.join(5)
        shutil.rmtree(folder, ignore_errors=True)

    try:
        s = open_store(loc)
        seed_demo(s, s.now())
        s.close()
        feeder.start()
        run_console(loc, workers, cleanup)
    finally:
        cleanup()
