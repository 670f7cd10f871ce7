"""A worker child process: its entry point, signals, and the loop that sleeps until woken."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Callable

from .config import settings_of
from .errors import PermissionDenied, QueueError, StoreUnusable
from .models import JobState
from .reaper import become_subreaper
from .store import open_store
from .worker import PAUSE, Worker


def _logger(worker_id: str, quiet: bool) -> Callable[[str], None]:
    if quiet:
        return lambda line: None

    def log(line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        try:
            sys.stderr.write(f"{stamp} {worker_id} {line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return log


def serve(worker: Worker, *, burst: bool, wake_fd: int | None = None) -> None:
    """The worker loop: run jobs while there are any; otherwise sleep until woken."""
    bell = worker.store.doorbell()
    fds = (wake_fd,) if wake_fd is not None else ()
    try:
        while not worker.flags.cold_stop:
            now = worker.clock()
            worker.housekeeping(now)
            if worker.stopping:
                break
            if bell is not None:
                bell.clear()
            if worker.run_once(now) is not None:
                continue
            if burst and not worker.paused() and not _work_in_flight(worker):
                break
            due = worker._retry(lambda: worker.store.next_due(worker.clock()))
            wait = worker.settings.poll_interval
            if due is not None:
                wait = min(wait, max(0.0, due - worker.clock()))
            wait = min(wait, 1.0)
            if bell is not None:
                bell.wait(wait, fds)
            else:
                time.sleep(wait)
            _drain(wake_fd)
    finally:
        if bell is not None:
            bell.close()


def _work_in_flight(worker: Worker) -> bool:
    """Whether a job is running or waiting for a retry (a burst waits for those, not for
    jobs delayed into the future)."""
    counts = worker._retry(lambda: worker.store.status(worker.clock(), worker.settings.lease).counts)
    return bool(counts.get(JobState.RUNNING) or counts.get(JobState.FAILED))


def _drain(fd: int | None) -> None:
    if fd is None:
        return
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, OSError):
        pass


def worker_main(location: str, worker_id: str, *, burst: bool = False, quiet: bool = False,
                control=None, busy=None, parent_pid: int | None = None) -> None:
    """Entry point of a worker child process (module level so `spawn` can import it)."""
    if quiet:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C belongs to the supervisor
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    log = _logger(worker_id, quiet)
    try:
        store = open_store(location, durability="normal")
        settings = settings_of(store)
        if settings.durability == "full":
            store.close()
            store = open_store(location, durability="full")
    except QueueError as exc:
        log(f"cannot open the store: {exc}")
        sys.exit(exc.exit_code)
    worker = Worker(
        store, worker_id, settings=settings, log=log,
        paused=(lambda: control is not None and control.value == PAUSE),
        set_busy=(lambda b: setattr(busy, "value", int(b)) if busy is not None else None),
        parent_pid=parent_pid,
    )

    def on_term(signum, frame):
        worker.flags.warm_stop = True

    def on_cold(signum, frame):
        worker.flags.cold_stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_cold)
    signal.signal(signal.SIGHUP, on_cold)  # the terminal closed: kill the job, give it back
    signal.signal(signal.SIGUSR2, lambda s, f: None)  # a nudge: re-check the control cell
    become_subreaper()
    failure = 0
    try:
        worker._retry(lambda: worker.register(worker.clock()))
        worker.rescue(worker.clock())
        serve(worker, burst=burst, wake_fd=read_fd)
    except (StoreUnusable, PermissionDenied) as exc:  # a replacement would fail the same way
        log(f"stopping: {exc}")
        failure = exc.exit_code
    finally:
        if not failure:
            worker.unregister()
        store.close()
    if failure:
        sys.exit(failure)


