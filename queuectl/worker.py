"""One worker: claim a job, run it, record the result; between jobs, sleep until woken.

`Worker.work()` is the loop and owns every way out of it: a job it claimed and did not start is
given back, uncounted, however the loop ends. `Worker.run_once(now)` does one step and can be
driven by tests with their own clock. worker_process.py runs a Worker in a child process.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from .attempt import Attempt, base_environment, job_environment
from .config import Settings, live_window
from .durations import format_duration
from .errors import StoreBusy, StoreIOError
from .leases import LeaseWatch
from .lifecycle import Outcome, RetryPolicy
from .models import Job, JobState
from .reaper import kill_leftovers
from .sanitize import one_line
from .store.base import Finished, Stop, Store

STORE_RETRY_MAX = 2.0  # seconds: the longest pause between tries of a failing store call
# A store call that took this long was held up (a lock, a slow server): other workers'
# renewals were held up too, so waits for their leases start again (see leases.py).
STORE_SLOW = 0.25

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
                 monotonic: Callable[[], float] = time.monotonic,
                 wake_fds: tuple[int, ...] = (), queues: Sequence[str] | None = None) -> None:
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
        self._flush = getattr(log, "flush", None)  # a buffered log (worklog.LineLog)
        self._fault_point = os.environ.get("QUEUECTL_FAULT")  # test-only, see _fault
        self.paused = paused
        self.set_busy = set_busy
        self.parent_pid = parent_pid
        self.wake_fds = wake_fds  # readable when a signal arrived: stop waiting at once
        self.queues = None if queues is None else list(queues)  # the queues served (None: all)
        self.host = host_name()
        self.started_at: float | None = None  # store clock, at the first registration
        self.leases = LeaseWatch(settings.lease, monotonic)
        self._claimed: Job | None = None  # claimed with the last finish, not started yet
        self._env = base_environment()
        self._last_heartbeat = -math.inf  # monotonic
        self._last_rescue = -math.inf
        self._next_tick: float | None = -math.inf  # store clock: a schedule's next tick

    # -- lifecycle
    def register(self, now: float) -> None:
        stop = self.store.register_worker(self.id, os.getpid(), self.host, now,
                                          started_at=self.started_at)
        self.started_at = self.started_at or now
        self._obey(stop)

    def unregister(self) -> None:
        self._retry(lambda: self.store.unregister_worker(self.id))

    @property
    def stopping(self) -> bool:
        return self.flags.warm_stop or self.flags.cold_stop

    def orphaned(self) -> bool:
        return self.parent_pid is not None and os.getppid() != self.parent_pid

    def _obey(self, stop: Stop | None) -> None:
        if stop is Stop.WARM:
            self.flags.warm_stop = True
        elif stop is Stop.COLD:
            self.flags.cold_stop = True

    # -- the loop
    def serve(self, *, burst: bool = False) -> None:
        """A worker's whole life: register, rescue what dead workers left, work, unregister.
        A store error that ends it leaves the row behind: the pool rescues the worker's job
        and removes the row."""
        self._retry(lambda: self.register(self.clock()))
        self.rescue(self.clock())
        self.work(burst=burst)
        self.unregister()

    def work(self, *, burst: bool = False) -> None:
        """Run jobs while there are any, otherwise sleep until woken; return once told to stop
        (or, with `burst`, once nothing is left to do now)."""
        bell = self.store.doorbell()
        look = True  # whether to look for work on this pass
        next_look = -math.inf  # monotonic: when to look again without being woken
        try:
            while not self.flags.cold_stop:
                now = self.clock()
                self.housekeeping(now)
                if self.stopping:
                    break
                if look:
                    if bell is not None:
                        bell.clear()
                    looked = self.monotonic()
                    if self.run_once(now) is not None:
                        continue
                    if burst and not self.paused() and not self._work_in_flight():
                        break
                    next_look = self._next_look(looked)
                rang = self._wait(bell, min(next_look, self._next_housekeeping(),
                                            self._tick_mono()))
                look = rang or self.monotonic() >= next_look
        finally:
            self._give_back_claimed()
            if bell is not None:
                bell.close()
            self.flush_log()

    def flush_log(self) -> None:
        """Write the log lines still buffered (before a sleep, while a job runs, at the end)."""
        if self._flush is not None:
            self._flush()

    def _next_look(self, looked: float) -> float:
        """When to look for work without being woken (monotonic): a poll interval after the last
        look, or when the next delayed job is due if that is sooner."""
        at = looked + self.settings.poll_interval
        due = self._retry(lambda: self.store.next_due(self.clock()))
        if due is not None:
            at = min(at, self.monotonic() + max(0.0, due - self.clock()))
        return at

    def _wait(self, bell, until: float) -> bool:
        """Sleep until rung (True), a signal arrives, or `until` (monotonic)."""
        self.flush_log()
        timeout = max(0.0, until - self.monotonic())
        if bell is not None:
            rang = bell.wait(timeout, self.wake_fds)
        else:
            time.sleep(timeout)
            rang = False
        _drain(self.wake_fds)
        return rang

    def _work_in_flight(self) -> bool:
        """Whether a job of the queues served is running, or waiting for a retry in a queue
        that is not paused (a burst waits for those, not for jobs delayed into the future or
        held in a paused queue)."""
        served = self._retry(self.store.queues)
        return any(q.running or (q.counts.get(JobState.FAILED) and not q.paused)
                   for q in served if self.queues is None or q.name in self.queues)

    def _give_back_claimed(self) -> None:
        job, self._claimed = self._claimed, None
        if job is None:
            return
        try:
            self._retry(lambda: self.store.release(job, now=self.clock()))
        except (StoreBusy, StoreIOError) as exc:  # its lease lapses and it is rescued
            self.log(f"could not give back {one_line(job.id, 40)}: {exc}")
            return
        self.log(f"gave back {one_line(job.id, 40)} (claimed, not started)")
        self.set_busy(False)

    # -- one step
    def run_once(self, now: float | None = None) -> Job | None:
        """Run the job claimed with the last finish, or claim one and run it; return it, or None
        when there was nothing to do (or the worker is pausing or stopping)."""
        now = self.clock() if now is None else now
        if self.stopping or self.paused():
            self._give_back_claimed()
            return None
        job, self._claimed = self._claimed, None
        if job is None:
            job = self._retry(lambda: self.store.claim(self.id, now=now,
                                                       lease=self.settings.lease,
                                                       queues=self.queues))
            if job is None:
                return None
        self.execute(job)
        return job

    def execute(self, job: Job) -> Finished | None:
        """Run a claimed job and record how it ended (claiming the next one with it when the
        worker goes on); None when the lease was lost and nothing was recorded."""
        self.set_busy(True)
        started = time.monotonic()
        name = one_line(job.id, 40)
        self.log(f"start {name} (attempt {job.attempt}): {one_line(job.command, 60)}")
        self._fault("after_claim")
        attempt = Attempt(self, job)
        # The run kills every child this process has left when it ends, marked or not: this
        # process starts nothing but jobs (see reap_orphans).
        result, outcome = attempt.run(job_environment(self._env, job, self.id))
        self._fault("before_finish")
        if outcome is None:
            self.log(f"lost the lease of {name}; its result is discarded")
            self.set_busy(False)
            return None
        finished = self._record(attempt, outcome)
        self._fault("after_finish")
        if not finished.recorded:
            self.log(f"{name} was taken over by another worker; result discarded")
        else:
            took = format_duration(time.monotonic() - started)
            self.log(f"{_verb(outcome, finished.state)} {name} (attempt {job.attempt}) in {took}"
                     + ("" if outcome.ok else f": {one_line(outcome.error, 80)}"))
        self.set_busy(finished.next is not None)
        return finished

    def _fault(self, point: str) -> None:
        """Test-only crash points: QUEUECTL_FAULT=after_claim, before_finish or after_finish
        kills this worker there (its log written first)."""
        if self._fault_point == point:
            self.flush_log()
            os.kill(os.getpid(), signal.SIGKILL)

    def _record(self, attempt: Attempt, outcome: Outcome) -> Finished:
        go_on = not (self.stopping or self.paused() or self.orphaned())
        head, tail = attempt.output()
        finished = self._retry(lambda: self.store.finish(
            attempt.job, outcome, now=self.clock(), policy=self.policy, head=head, tail=tail,
            claim_next=self.id if go_on else None, lease=self.settings.lease,
            queues=self.queues))
        self._claimed = finished.next
        return finished

    # -- between jobs
    def _tick_mono(self) -> float:
        """The next schedule tick on the monotonic clock (inf: none)."""
        if self._next_tick is None:
            return math.inf
        return self.monotonic() + max(0.0, self._next_tick - self.clock())

    def _next_housekeeping(self) -> float:
        return min(self._last_heartbeat + self._heartbeat_every(),
                   self._last_rescue + self.settings.lease / 2)

    def _heartbeat_every(self) -> float:
        return min(self.settings.lease / 3, 2.0)

    def housekeeping(self, now: float) -> None:
        """Notice a vanished supervisor, heartbeat (learning of stop requests), and now and then
        rescue the jobs of dead workers and tidy the store."""
        if self.orphaned():
            if not self.flags.cold_stop:
                self.log("supervisor is gone; stopping")
            self.flags.cold_stop = True
            return
        mono = self.monotonic()
        if mono - self._last_heartbeat >= self._heartbeat_every():
            stop = self._retry(lambda: self.store.heartbeat(self.id, now))
            if stop is None:  # our row was removed while we were frozen: come back
                self._retry(lambda: self.register(now))
            self._obey(stop)
            self._last_heartbeat = mono
            self._next_tick = self._retry(self.store.next_tick)  # (a schedule added meanwhile)
        if mono - self._last_rescue >= self.settings.lease / 2:
            self.rescue(now)
            self._retry(self.store.housekeeping)
        if self._next_tick is not None and now >= self._next_tick and not self.stopping:
            self.fire_schedules(now)

    def fire_schedules(self, now: float) -> None:
        """Make the jobs of the schedules whose tick has come (any pool does this; the store
        makes each tick's job exactly once), and learn when the next tick is."""
        for fired in self._retry(lambda: self.store.fire_schedules(
                now, default_max_retries=self.settings.max_retries)):
            what = {"fired": f"enqueued {one_line(fired.job_id or '', 40)}",
                    "skipped": "skipped (its last job still runs)",
                    "missed": "missed (catch-up none)"}[fired.why]
            self.log(f"schedule {one_line(fired.schedule, 40)}: {what}")
        self._next_tick = self._retry(self.store.next_tick)

    def rescue(self, now: float) -> list[str]:
        """Rescue the jobs of dead workers of this host (killing what is left of them first),
        and those whose lease lapsed; remove the rows of workers long gone."""
        rescued = []
        dead = self._retry(lambda: dead_local_workers(self.store, self.host))
        if dead:
            kill_leftovers(dead)
            rescued += self._retry(lambda: self.store.rescue_dead_workers(
                dead, now=now, policy=self.policy))
        running = self._retry(lambda: self.store.list_jobs([JobState.RUNNING], limit=None))
        lapsed = self.leases.lapsed(running)
        if lapsed:
            got = self._retry(lambda: self.store.rescue_lapsed(
                lapsed, now=now, policy=self.policy, max_wait=STORE_SLOW))
            if got is None:
                self.leases.held_up()
            rescued += got or []
        self._retry(lambda: self.store.remove_stale_workers(now - 2 * live_window(self.settings)))
        for job_id in rescued:
            self.log(f"rescued job {one_line(job_id, 40)} (its worker was lost)")
        self._last_rescue = self.monotonic()
        return rescued

    # -- talking to the store
    def timed(self, action):
        """Run one store call; a call that fails or is held up restarts the waits for other
        workers' leases (their renewals were held up too)."""
        started = self.monotonic()
        try:
            return action()
        except (StoreBusy, StoreIOError):
            self.leases.held_up()
            raise
        finally:
            if self.monotonic() - started > STORE_SLOW:
                self.leases.held_up()

    def _retry(self, action):
        """Run a store call, waiting out a busy or briefly failing store instead of crashing.
        It tries again at least four times a lease: once the store is back, this worker must
        renew or record its job well before other workers, whose waits for its lease start
        again then (see leases.py), could take the job from it."""
        delay = 0.05
        longest = min(STORE_RETRY_MAX, self.settings.lease / 4)
        while True:
            try:
                return self.timed(action)
            except (StoreBusy, StoreIOError) as exc:
                if self.flags.cold_stop and delay >= longest:
                    raise
                self.log(f"store unavailable, retrying in {delay:.1f}s: {exc}")
                time.sleep(delay)
                delay = min(delay * 2, longest)


def _verb(outcome: Outcome, state: JobState | None) -> str:
    """How a person reads a recorded run's end in the worker's log."""
    if outcome.give_back:
        return "gave back"
    if outcome.cancelled:
        return "cancelled"
    return {JobState.COMPLETED: "completed", JobState.FAILED: "failed",
            JobState.DEAD: "dead"}.get(state, "finished")


def _drain(fds: tuple[int, ...]) -> None:
    for fd in fds:
        try:
            while os.read(fd, 512):
                pass
        except (BlockingIOError, OSError):
            pass
