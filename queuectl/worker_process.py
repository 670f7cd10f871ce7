"""A worker child process: its entry point, its signals and descriptors, and its store."""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable

from .config import settings_of
from .errors import PermissionDenied, QueueError, StoreUnusable
from .reaper import become_subreaper
from .store import open_store
from .worker import Worker
from .worklog import LineLog


def _logger(worker_id: str, quiet: bool) -> Callable[[str], None]:
    if quiet:
        return lambda line: None
    return LineLog(sys.stderr, worker_id)


def _signal_pipe() -> int:
    """A pipe that signals write to (its read end, returned): a waiting worker wakes at once."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    return read_fd


def _open(location: str, log: Callable[[str], None]):
    try:
        store = open_store(location, durability="normal")
        settings = settings_of(store)
        if settings.durability == "full":
            store.close()
            store = open_store(location, durability="full")
        store.limit_stall(settings.lease)
        return store, settings
    except QueueError as exc:
        log(f"cannot open the store: {exc}")
        getattr(log, "flush", lambda: None)()
        sys.exit(exc.exit_code)


def worker_main(location: str, worker_id: str, *, burst: bool = False, quiet: bool = False,
                paused=None, busy=None, parent_pid: int | None = None,
                queues: list[str] | None = None) -> None:
    """Entry point of a worker child process (module level so `spawn` can import it).
    `paused` and `busy` are shared values of the pool: its pause switch, our busy flag."""
    if quiet:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C belongs to the supervisor
    wake_fd = _signal_pipe()
    log = _logger(worker_id, quiet)
    store, settings = _open(location, log)
    worker = Worker(
        store, worker_id, settings=settings, log=log,
        paused=(lambda: paused is not None and bool(paused.value)),
        set_busy=(lambda b: setattr(busy, "value", int(b)) if busy is not None else None),
        parent_pid=parent_pid, wake_fds=(wake_fd,), queues=queues,
    )
    flags = worker.flags
    signal.signal(signal.SIGTERM, lambda s, f: setattr(flags, "warm_stop", True))
    signal.signal(signal.SIGUSR1, lambda s, f: setattr(flags, "cold_stop", True))
    # The terminal closed: kill the job, give it back.
    signal.signal(signal.SIGHUP, lambda s, f: setattr(flags, "cold_stop", True))
    signal.signal(signal.SIGUSR2, lambda s, f: None)  # a nudge: look at the pause switch
    become_subreaper()
    try:
        worker.serve(burst=burst)
    except (StoreUnusable, PermissionDenied) as exc:  # a replacement would fail the same way
        log(f"stopping: {exc}")
        sys.exit(exc.exit_code)
    finally:
        worker.flush_log()
        store.close()
