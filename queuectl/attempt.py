"""One attempt of a claimed job by a worker: run its command, keep its lease and output in the
store while it runs, learn of cancels and stops, and decide the run's outcome."""

from __future__ import annotations

import os
import time
from enum import Enum
from typing import TYPE_CHECKING

from .errors import StoreBusy, StoreIOError
from .lifecycle import Outcome
from .models import Job
from .output import OutputCapture
from .reaper import MARKER_VAR, WORKER_VAR
from .runner import RunResult, run_command
from .sanitize import one_line
from .store.base import Chunks, Stop, Tail

if TYPE_CHECKING:
    from .worker import Worker

RENEW_EVERY = 0.5  # seconds between output flushes / cancel checks of a running job
TICK = 0.1  # seconds between looks at the worker's flags while a job runs
ATTEMPT_VAR = "QUEUECTL_ATTEMPT"
QUEUE_VAR = "QUEUECTL_QUEUE"
SLOT_VAR = "QUEUECTL_SLOT"  # a job of a limited queue: its slot, 0..limit-1 (slot k = GPU k)


class Interrupt(Enum):
    """Why a worker stopped a job's command before it ended on its own."""

    LEASE_LOST = "lease lost"  # another worker took the job over: the result is discarded
    CANCELLED = "cancelled"  # someone cancelled the job
    COLD_STOP = "cold stop"  # the worker was told to stop now: the job goes back uncounted
    QUEUE_PAUSED = "its queue was paused with --kill"  # it goes back uncounted


def job_environment(base: dict[bytes, bytes], job: Job, worker_id: str) -> dict[bytes, bytes]:
    env = dict(base)
    for name, value in (job.env or {}).items():  # its own variables (never queuectl's)
        env[os.fsencode(name)] = os.fsencode(value)
    env[MARKER_VAR.encode()] = job.id.encode()
    env[WORKER_VAR.encode()] = worker_id.encode()
    env[ATTEMPT_VAR.encode()] = str(job.attempt).encode()
    env[QUEUE_VAR.encode()] = job.queue.encode()
    if job.slot is not None:
        env[SLOT_VAR.encode()] = str(job.slot).encode()
    else:
        env.pop(SLOT_VAR.encode(), None)
    return env


class Attempt:
    """Runs `job` for `worker` (which owns the store, the clock, the settings and the flags)."""

    def __init__(self, worker: "Worker", job: Job) -> None:
        self.worker = worker
        self.job = job
        self.capture = OutputCapture(worker.settings.output_limit)
        self._unsent: list[tuple[int, bytes]] = []  # head chunks not yet in the store
        self._tail_unsent = False  # the tail changed since the store last got it
        self._last_renew = self._last_lease = time.monotonic()

    def run(self, env: dict[bytes, bytes]) -> tuple[RunResult, Outcome | None]:
        """Run the command to its end; the outcome to record, or None when the lease was lost
        (then nothing may be recorded)."""
        settings = self.worker.settings
        timeout = self.job.timeout if self.job.timeout is not None else settings.job_timeout
        result = run_command(self.job.command, cwd=self.job.cwd, env=env, timeout=timeout,
                             capture=self.capture, tick=self.tick, tick_interval=TICK,
                             every_child=True)  # a worker starts nothing but jobs
        return result, outcome_of(result)

    def output(self) -> tuple[Chunks, Tail | None]:
        """The output not yet in the store: new head chunks, and the tail (with the count of
        bytes cut) if it changed; call `sent()` once the store has them."""
        self._unsent.extend(self.capture.take_head())
        self._tail_unsent = self._tail_unsent or self.capture.tail_dirty
        return list(self._unsent), self.capture.tail_snapshot() if self._tail_unsent else None

    def sent(self) -> None:
        self._unsent.clear()
        self._tail_unsent = False

    def tick(self) -> Interrupt | None:
        """Called by the runner every TICK while the command runs: an Interrupt stops it."""
        worker = self.worker
        worker.flush_log()  # the start line of a job that runs a while is not held back
        if worker.orphaned():  # nobody would watch or replace us: give the job back now
            worker.flags.cold_stop = True
        if worker.flags.cold_stop:
            return Interrupt.COLD_STOP
        mono = time.monotonic()
        if mono - self._last_renew < RENEW_EVERY:
            return None
        self._last_renew = mono
        try:
            orders = self._renew_or_ask(mono)
        except (StoreBusy, StoreIOError) as exc:
            worker.log(f"store unavailable while {one_line(self.job.id, 40)} runs: {exc}")
            return None
        if orders.lease_lost:
            return Interrupt.LEASE_LOST
        if orders.cancel:
            self.job = self.job._replace(cancel_requested=True)
            return Interrupt.CANCELLED
        if orders.give_back:
            return Interrupt.QUEUE_PAUSED
        if orders.stop is Stop.COLD:
            worker.flags.cold_stop = True
            return Interrupt.COLD_STOP
        if orders.stop is Stop.WARM:
            worker.flags.warm_stop = True
        return None

    def _renew_or_ask(self, mono: float):
        """Renew the lease (storing new output) when there is output to store or a third of the
        lease has passed; otherwise only read the orders, which writes nothing."""
        worker = self.worker
        head, tail = self.output()
        if head or tail is not None or mono - self._last_lease >= worker.settings.lease / 3:
            orders = worker.timed(lambda: worker.store.renew(
                self.job, now=worker.clock(), lease=worker.settings.lease, head=head, tail=tail))
            self.sent()
            self._last_lease = mono
            return orders
        return worker.timed(lambda: worker.store.orders(self.job))


def outcome_of(result: RunResult) -> Outcome | None:
    """What a run's result means for the job; None when the lease was lost."""
    if result.stopped is Interrupt.LEASE_LOST:
        return None
    if result.stopped is Interrupt.CANCELLED:
        return Outcome(ok=False, cancelled=True, exit_code=result.exit_code,
                       signal=result.signal, error="killed while running")
    if result.stopped is Interrupt.COLD_STOP:
        return Outcome(ok=False, give_back=True, error="interrupted by a cold stop")
    if result.stopped is Interrupt.QUEUE_PAUSED:
        return Outcome(ok=False, give_back=True, error="its queue was paused with --kill")
    if result.ok:
        return Outcome(ok=True, exit_code=0)
    return Outcome(ok=False, exit_code=result.exit_code, signal=result.signal,
                   error=result.describe())


def base_environment() -> dict[bytes, bytes]:
    """The jobs' environment, encoded once (the test-only fault hook is this process's own)."""
    return {k: v for k, v in os.environb.items() if k != b"QUEUECTL_FAULT"}

