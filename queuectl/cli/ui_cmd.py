"""`queuectl ui` and `queuectl demo`: the live console, with a worker pool of its own."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Optional

import typer

from ..errors import InvalidInput
from ..store import open_store
from .app import app, store
from .settings import settings


def run_console(loc: str, workers: int) -> None:
    """Open the console on `loc` with `workers` pool workers; stop them all when it closes."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise InvalidInput("the console needs a terminal (use the other commands in scripts)")
    from queuectl_tui.app import make_app

    from ..pool import Pool

    pool = Pool(loc, workers, quiet=True) if workers > 0 else None
    hangup = signal.getsignal(signal.SIGHUP)
    if pool is not None:
        pool.start()
        # A closed terminal must not leave workers behind: stop cold, giving running jobs back.
        signal.signal(signal.SIGHUP, lambda *_: pool.request_stop(cold=True))
    try:
        make_app(lambda: open_store(loc), pool=pool, location=loc).run()
    finally:
        if pool is not None:
            pool.stop(cold=pool.cold, timeout=30)
            signal.signal(signal.SIGHUP, hangup)


@app.command()
def ui(workers: Optional[int] = typer.Option(
        None, "--workers", "-w", min=0, max=256,
        help="Workers in the console's own pool (default: the `workers` setting; 0 = only watch).")) -> None:
    """The live console: pending, running, completed and dead jobs, and their output."""
    s = store()
    n = settings(s).workers if workers is None else workers
    loc = s.location
    s.close()
    run_console(loc, n)


@app.command()
def demo(workers: int = typer.Option(3, "--workers", "-w", min=0, max=64,
                                     help="Workers in the demo's pool.")) -> None:
    """The console on a throwaway queue seeded with quick, slow, failing and delayed jobs."""
    from queuectl_tui.demo import seed_demo

    folder = tempfile.mkdtemp(prefix="queuectl-demo-")
    loc = os.path.join(folder, "demo.db")
    try:
        s = open_store(loc)
        seed_demo(s, time.time())
        s.close()
        run_console(loc, workers)
    finally:
        shutil.rmtree(folder, ignore_errors=True)



