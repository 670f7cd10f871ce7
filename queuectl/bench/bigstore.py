"""Figures that depend on how many jobs wait: one claim, `queuectl status`, one console refresh.

The stores are filled through the Store API in big batches (the same INSERT, indexes and count
triggers as any enqueue), so what is measured afterwards sees a store built the honest way.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Callable, Sequence

from ..config import resolve
from ..models import DEFAULT_QUEUE, NewJob
from ..store import open_store
from .procs import BenchError, child_env, queuectl_argv, timed_run

BATCH = 100_000
CLAIM_WORKER = "bench-claim"


def fill(db: str, jobs: int, cwd: str, progress: Callable[[str], None],
         queues: Sequence[str] = (DEFAULT_QUEUE,)) -> None:
    """Add `jobs` pending `true` jobs to the store at `db`, dealt over `queues` in turn."""
    store = open_store(db, durability="normal")
    try:
        done = 0
        while done < jobs:
            n = min(BATCH, jobs - done)
            store.enqueue([NewJob(command="true", queue=queues[(done + i) % len(queues)])
                           for i in range(n)], now=store.now(),
                          default_max_retries=0, default_cwd=cwd)
            done += n
            if jobs > BATCH:
                progress(f"filling a store: {done:,} of {jobs:,} jobs")
    finally:
        store.close()


def claim_times(db: str, claims: int, queues: Sequence[str] | None = None) -> list[float]:
    """Seconds of each of `claims` claims by one registered worker (serving `queues`, or all), at
    the workers' default durability (SQLite synchronous=NORMAL, PostgreSQL
    synchronous_commit=off); each claim is one write transaction."""
    store = open_store(db, durability="normal")
    try:
        store.register_worker(CLAIM_WORKER, os.getpid(), socket.gethostname(), store.now())
        times = []
        for _ in range(claims):
            now = store.now()
            start = time.perf_counter()
            job = store.claim(CLAIM_WORKER, now=now, lease=15.0, queues=queues)
            times.append(time.perf_counter() - start)
            if job is None:
                raise BenchError("the store ran out of jobs to claim")
        store.unregister_worker(CLAIM_WORKER)
        return times
    finally:
        store.close()


def status_times(db: str, runs: int) -> list[float]:
    """Wall seconds of `runs` `queuectl status` processes on the store at `db`."""
    env = child_env(db)
    return [timed_run(queuectl_argv() + ["status"], env=env) for _ in range(runs)]


def status_call_times(db: str, runs: int) -> list[float]:
    """Seconds of `runs` in-process Store.status() calls (what every status or refresh needs)."""
    store = open_store(db, durability="normal")
    try:
        settings = resolve(store.config_items(), environ={})[0]
        times = []
        for _ in range(runs):
            now = store.now()
            start = time.perf_counter()
            store.status(now, worker_timeout=settings.lease * 2)
            times.append(time.perf_counter() - start)
        return times
    finally:
        store.close()


def console_refresh_times(db: str, runs: int) -> tuple[list[float] | None, str]:
    """Seconds of `runs` console refreshes (`queuectl_tui.loader.Loader.load`, the call the
    console makes off its UI thread), after one untimed first load; or None and why not."""
    try:
        from queuectl_tui.loader import Loader
        from queuectl_tui.snapshot import Request
    except ImportError as exc:
        return None, f"console not available ({exc})"
    loader = Loader(lambda: open_store(db, durability="normal"), pool=None, clock=None)
    try:
        loader.load(Request(seq=0))
        times = []
        for seq in range(1, runs + 1):
            start = time.perf_counter()
            loader.load(Request(seq=seq))
            times.append(time.perf_counter() - start)
    finally:
        loader.close()
    return times, "queuectl_tui.loader.Loader.load"
