"""One worker: claim a job, run it, record the result.

`Worker.run_once(now)` does one step and can be driven by tests with their own clock;
worker_process.py runs it in a child process of the pool.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable

from .config import Settings
from .durations import format_duration
from .errors import StoreBusy, StoreIOError
from .models import Job, JobState
from .output import OutputCapture
from .reaper import MARKER_VAR, WORKER_VAR, kill_leftovers, reap_orphans
from .runner import run_command
from .sanitize import one_line
from .store.base import (STOP_COLD, STOP_WARM, Outcome, RetryPolicy,
                         Store)

RENEW_EVERY = 0.5  # seconds between output flushes / cancel checks of a running job
TICK = 0.1
STORE_RETRY_MAX = 2.0

# Control values a pool writes into a worker's shared control cell.
RUN, PAUSE = 0, 1


HOST_VAR = "QUEUECTL_HOST"


def host_name() -> str:
    """This host's name as workers record it: QUEUECTL_HOST, else the system's host name.
    Workers rescue the jobs of dead workers of the same host at once (by pid), and those of
    other hosts only after their lease, so two hosts must not share a name."""
    return os.environ.get(HOST_VAR) or socket.gethostname()


def pid_alive(pid: int) -> bool:
    """True when `pid` is a live queuectl worker process on this host."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in (b"Z", b"X") and (b"multiprocessing" in cmdline or b"queuectl" in cmdline)


def dead_local_workers(store: Store, host: str) -> list[str]:
    """Ids of worker rows from this host whose process is gone (found without waiting for leases)."""
    return [w.id for w in store.workers() if w.host == host and not pid_alive(w.pid)]


def policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(base=settings.backoff_base, cap=settings.backoff_max,
                       jitter=settings.backoff_jitter)


@dataclass
class Flags:
    """Set by signal handlers and the pool; read by the loop."""

    warm_stop: bool = False
    cold_stop: bool = False


class Worker:
    """Claims and runs jobs one at a time for one worker id."""

    def __init__(self, store: Store, worker_id: str, *, settings: Settings,
                 log: Callable[[str], None] | None = None,
                 paused: Callable[[], bool] = lambda: False,
                 set_busy: Callable[[bool], None] = lambda busy: None,
                 parent_pid: int | None = None, clock: Callable[[], float] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        # The store's clock (a server's for a server store): what run_at, lease_until and
        # heartbeats are written in.
        self.clock = clock or store.now
        self.monotonic = monotonic  # durations: intervals, and how long a lease went unrenewed
        self.id = worker_id
        self.settings = settings
        self.policy = policy_of(settings)
        self.flags = Flags()
        self.log = log or (lambda line: None)
        self.paused = paused
        self.set_busy = set_busy
        self.parent_pid = parent_pid
        self.host = host_name()
        self._next_job: Job | None = None
        # The jobs' environment, encoded once (the fault hook is for this process only).
        self._base_env = {k: v for k, v in os.environb.items() if k != b"QUEUECTL_FAULT"}
        self.last_heartbeat = -math.inf  # monotonic
        self.last_rescue = -math.inf
        # job id -> ((token, lease_until) last seen, monotonic time it was first seen)
        self._leases: dict[str, tuple[tuple[str | None, float | None], float]] = {}
        self._store_failed_at = -math.inf  # monotonic: when a store call of ours last failed

    # -- lifecycle
    def register(self, now: float) -> None:
        self.store.register_worker(self.id, os.getpid(), self.host, now)

    def unregister(self) -> None:
        self._retry(lambda: self.store.unregister_worker(self.id))

    @property
    def stopping(self) -> bool:
        return self.flags.warm_stop or self.flags.cold_stop

    def orphaned(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    # -- one step
    def run_once(self, now: float | None = None) -> Job | None:
        """Claim (or take the already-claimed next) job and run it; return it, or None if idle."""
        now = self.clock() if now is None else now
        job, self._next_job = self._next_job, None
        if job is None:
            if self.stopping or self.paused():
                return None
            job = self._retry(lambda: self.store.claim(self.id, now=now, lease=self.settings.lease))
            if job is None:
                return None
        self._run(job)
        return job

    def housekeeping(self, now: float) -> None:
        """Heartbeat, notice stop requests, and rescue jobs of dead workers."""
        mono = self.monotonic()
        if mono - self.last_heartbeat >= min(self.settings.lease / 3, 2.0):
            stop = self._retry(lambda: self.store.heartbeat(self.id, now))
            if stop is None:  # our row was cleaned up while we were frozen: come back
                self.register(now)
            elif stop == STOP_WARM:
                self.flags.warm_stop = True
            elif stop == STOP_COLD:
                self.flags.cold_stop = True
            self.last_heartbeat = mono
        if mono - self.last_rescue >= self.settings.lease / 2:
            self.rescue(now)
        if self.orphaned():
            self.log("supervisor is gone; stopping")
            self.flags.cold_stop = True

    def rescue(self, now: float) -> list[str]:
        """Rescue the jobs of dead local workers, and those whose lease lapsed."""
        dead = self._retry(lambda: dead_local_workers(self.store, self.host))
        kill_leftovers(dead)
        lapsed = self._retry(self._lapsed)
        rescued = self._retry(lambda: self.store.rescue(
            now=now, policy=self.policy, worker_ids=dead, lapsed=lapsed,
            stale_before=now - 4 * self.settings.lease))
        for job_id in rescued:
            self.log(f"rescued job {one_line(job_id, 40)} (its worker was lost)")
        self.last_rescue = self.monotonic()
        return rescued

    def _lapsed(self) -> list[tuple[str, str]]:
        """(id, token) of running jobs whose lease nobody renewed for a whole lease, as measured
        on this worker's monotonic clock. Comparing lease_until with this worker's wall clock
        instead would rescue healthy jobs after a forward clock step, and no job for an hour
        after a step back of an hour."""
        mono = self.monotonic()
        seen: dict[str, tuple[tuple[str | None, float | None], float]] = {}
        lapsed = []
        for job in self.store.list_jobs([JobState.RUNNING], limit=None):
            lease = (job.token, job.lease_until)
            before = self._leases.get(job.id)
            # Only time in which this worker could reach the store counts: while it could not
            # (a server outage), nobody could renew a lease, so the wait starts again.
            since = before[1] if (before is not None and before[0] == lease
                                  and before[1] > self._store_failed_at) else mono
            seen[job.id] = (lease, since)
            if mono - since >= self.settings.lease and job.token is not None:
                lapsed.append((job.id, job.token))
        self._leases = seen
        return lapsed

    # -- running one job
    def _run(self, job: Job) -> None:
        self.set_busy(True)
        started = time.monotonic()
        self.log(f"start {one_line(job.id, 40)} (attempt {job.attempts}): {one_line(job.command, 60)}")
        _fault("after_claim")
        capture = OutputCapture(self.settings.output_limit)
        pending_head: list[tuple[int, bytes]] = []
        last_renew = time.monotonic()
        last_lease = time.monotonic()

        def take_output(force_tail: bool = False):
            pending_head.extend(capture.take_head())
            tail = capture.tail_snapshot() if (capture.tail_dirty or force_tail) else None
            return list(pending_head), tail

        def tick() -> str | None:
            nonlocal last_renew, last_lease
            if self.orphaned():  # nobody would watch or replace us: give the job back now
                self.flags.cold_stop = True
            if self.flags.cold_stop:
                return "worker stopped (cold stop)"
            mono = time.monotonic()
            if mono - last_renew < RENEW_EVERY:
                return None
            last_renew = mono
            try:
                head, tail = take_output()
                if head or tail is not None or mono - last_lease >= self.settings.lease / 3:
                    control = self.store.renew(job, now=self.clock(), lease=self.settings.lease,
                                               head=head, tail=tail)
                    pending_head.clear()
                    last_lease = mono
                else:
                    control = self.store.control(job)
            except (StoreBusy, StoreIOError) as exc:
                self._store_failed_at = self.monotonic()
                self.log(f"store unavailable while {one_line(job.id, 40)} runs: {exc}")
                return None
            if control.lease_lost:
                return "lease lost"
            if control.cancel:
                return "cancelled"
            if control.stop == STOP_COLD:
                self.flags.cold_stop = True
                return "worker stopped (cold stop)"
            if control.stop == STOP_WARM:
                self.flags.warm_stop = True
            return None

        env = dict(self._base_env)
        env[MARKER_VAR.encode()] = job.id.encode()
        env[WORKER_VAR.encode()] = self.id.encode()
        env[b"QUEUECTL_ATTEMPT"] = str(job.run_number).encode()
        timeout = job.timeout if job.timeout is not None else self.settings.job_timeout
        result = run_command(job.command, cwd=job.cwd, env=env, timeout=timeout,
                             capture=capture, tick=tick, tick_interval=TICK)
        reap_orphans(job.id, every_child=True)  # this process starts nothing but jobs
        _fault("before_finish")
        if result.stopped == "lease lost":
            self.log(f"lost the lease of {one_line(job.id, 40)}; its result is discarded")
            self.set_busy(False)
            return
        if result.stopped == "cancelled":
            outcome = Outcome(ok=False, cancelled=True, exit_code=result.exit_code,
                              signal=result.signal, error="killed while running")
        elif result.stopped is not None:
            outcome = Outcome(ok=False, give_back=True, error="interrupted by a cold stop")
        elif result.ok:
            outcome = Outcome(ok=True, exit_code=0)
        else:
            outcome = Outcome(ok=False, exit_code=result.exit_code, signal=result.signal,
                              error=result.describe())
        head, tail = take_output(force_tail=capture.dropped > 0)
        more = not (self.stopping or self.paused() or self.orphaned())
        recorded, nxt = self._retry(lambda: self.store.finish(
            job, outcome, now=self.clock(), policy=self.policy, head=head, tail=tail,
            claim_next=self.id if more else None, lease=self.settings.lease))
        self._next_job = nxt
        took = format_duration(time.monotonic() - started)
        if not recorded:
            self.log(f"{one_line(job.id, 40)} was taken over by another worker; result discarded")
        else:
            self.log(f"{self._describe(job, outcome)} {one_line(job.id, 40)} in {took}"
                     + ("" if outcome.ok else f": {one_line(outcome.error, 80)}"))
        self.set_busy(nxt is not None)

    def _describe(self, job: Job, outcome: Outcome) -> str:
        if outcome.ok:
            return "completed"
        if outcome.cancelled:
            return "cancelled"
        if outcome.give_back:
            return "gave back"
        return "failed" if job.attempts <= job.max_retries else "dead"

    def _retry(self, action):
        """Run a store action, waiting out a busy or briefly failing store instead of crashing.
        It tries again at least four times a lease: once the store is back, this worker must
        renew or record its job well before other workers, whose waits for its lease start
        again then (see _lapsed), could take the job from it."""
        delay = 0.05
        longest = min(STORE_RETRY_MAX, self.settings.lease / 4)
        while True:
            try:
                return action()
            except (StoreBusy, StoreIOError) as exc:
                self._store_failed_at = self.monotonic()
                if self.flags.cold_stop and delay >= longest:
                    raise
                self.log(f"store unavailable, retrying in {delay:.1f}s: {exc}")
                time.sleep(delay)
                delay = min(delay * 2, longest)


def _fault(point: str) -> None:
    """Test-only crash points: QUEUECTL_FAULT=after_claim or before_finish kills this worker."""
    if os.environ.get("QUEUECTL_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
