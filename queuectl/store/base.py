"""The Store interface: every state change of a job is one short, guarded transaction.

Implementations: `sqlite.SQLiteStore` (the default) and `postgres.PostgresStore`. The contract
tests in tests/ run against every implementation unchanged.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from enum import IntEnum
from typing import Iterable, NamedTuple, Sequence

from ..lifecycle import Outcome, RetryPolicy
from ..models import Job, JobState, NewJob, QueueInfo, Run

Chunks = Sequence[tuple[int, bytes]]  # (stream, data): 1 stdout, 2 stderr
Tail = tuple[Chunks, int]  # the tail's chunks, and the bytes cut between head and tail


class Stop(IntEnum):
    """A stop request for workers: warm lets the running job finish, cold gives it back."""

    NONE = 0
    WARM = 1
    COLD = 2


class WorkerInfo(NamedTuple):
    id: str
    pid: int
    host: str
    started_at: float
    heartbeat_at: float
    job_id: str | None
    stop: Stop


class Status(NamedTuple):
    counts: dict[JobState, int]
    workers: int
    oldest_waiting_age: float | None  # seconds since the oldest eligible job became due
    finished_last_minute: int
    next_due: float | None  # run_at of the next delayed job


class Output(NamedTuple):
    run: Run
    chunks: list[tuple[int, bytes]]  # (stream, data) in order; head then tail
    tail_start: int  # index in chunks of the first tail chunk (== len(chunks) when none)

    @property
    def cut_at(self) -> int | None:
        """Index in chunks where `run.dropped_bytes` were cut, if any were."""
        return self.tail_start if self.run.dropped_bytes else None


class Orders(NamedTuple):
    """What a running job's worker is told when it renews the lease or asks."""

    lease_lost: bool
    cancel: bool
    stop: Stop
    give_back: bool = False  # its queue was paused with --kill: stop it, give it back


LOST = Orders(lease_lost=True, cancel=False, stop=Stop.NONE)


class Finished(NamedTuple):
    """What `finish` did: whether it recorded the run (False: the claim was stale and nothing
    changed), the job's state afterwards, and the next job it claimed, if asked to."""

    recorded: bool
    state: JobState | None
    next: Job | None


class Enqueued(list):
    """The ids `enqueue` answers with, in input order; `existing` holds those of jobs that were
    there already (a unique key answered with its active job)."""

    def __init__(self, ids=(), existing: frozenset[str] = frozenset()) -> None:
        super().__init__(ids)
        self.existing = existing


class Lease(NamedTuple):
    """A running job's lease as a rescuer saw it."""

    job_id: str
    token: str
    lease_until: float


__all__ = ["Chunks", "Finished", "Lease", "Orders", "Outcome", "Output", "RetryPolicy", "Status",
           "Stop", "Store", "Tail", "WorkerInfo"]


class Store(ABC):
    """A queue store. Methods take `now` (the store's clock, epoch seconds) so callers and
    tests control time."""

    location: str  # where the store is, as shown to people (a URL without its password)

    @abstractmethod
    def close(self) -> None: ...

    def now(self) -> float:
        """The store's clock, in epoch seconds: what run_at, leases and heartbeats are written in.
        A shared server's clock for a server store (hosts' clocks may disagree)."""
        return time.time()

    @abstractmethod
    def doorbell(self, everything: bool = False):
        """Something to wait on until work may be there: `wait(timeout, fds)` (True when rung),
        `clear()`, `close()`, and `mechanism` (how it is woken, e.g. "inotify", "listen";
        "poll" when it only sleeps). `everything`: wake on every change of the store (for a
        console), not only on new work; such a doorbell raises OSError or QueueError, saying
        why, when it cannot watch. None when the store has no way to notify. Implementations:
        store/sqlite/doorbell.py, store/postgres/doorbell.py."""

    def verify(self) -> None:
        """Check the whole store for damage (slow: reads every page); raise StoreUnusable."""

    def limit_stall(self, seconds: float) -> None:
        """Let a transaction of ours that stalls (this process frozen or suspended between two
        of its statements) hold its locks for at most `seconds`: the server ends the session and
        the transaction is retried when we wake. A worker sets its lease: others treat it as lost
        after that anyway, and must not wait on its locks for longer. Nothing for an embedded
        store (a process frozen inside SQLite's short write transaction keeps the lock)."""

    def housekeeping(self) -> None:
        """Tidy what the store keeps for speed (e.g. folding count deltas); workers call it now
        and then. Cheap, and safe beside any other call."""

    # -- config
    @abstractmethod
    def config_items(self) -> dict[str, str]: ...
    @abstractmethod
    def config_set(self, key: str, value: str) -> None: ...
    @abstractmethod
    def config_unset(self, key: str) -> bool: ...

    # -- producers and people
    @abstractmethod
    def enqueue(self, jobs: Sequence[NewJob], *, now: float, default_max_retries: int,
                default_cwd: str, unique_for: float | None = None,
                on_conflict: str = "existing") -> Enqueued:
        """Store all of `jobs` or none of them; return their ids. A job whose unique key an
        active job holds (or one completed within `unique_for` seconds) is not stored again:
        its id is that job's (`on_conflict="error"`: Conflict instead). A job may depend on
        jobs in the store or on earlier jobs of the batch (JobNotFound, InvalidInput else)."""
    @abstractmethod
    def get(self, job_id: str) -> Job: ...
    @abstractmethod
    def list_jobs(self, states: Iterable[JobState] | None = None, limit: int | None = 100,
                  text: str | None = None, queue: str | None = None) -> list[Job]:
        """Waiting jobs in the order they will run; others newest first."""
    @abstractmethod
    def runs(self, job_id: str) -> list[Run]: ...
    @abstractmethod
    def output(self, job_id: str, attempt: int | None = None) -> Output | None: ...
    @abstractmethod
    def status(self, now: float, worker_timeout: float) -> Status: ...
    @abstractmethod
    def retry_dead(self, ids: Sequence[str] | None, *, now: float) -> list[str]:
        """Move dead jobs back to pending with a fresh budget; None = every dead job."""
    @abstractmethod
    def purge_dead(self) -> int: ...
    @abstractmethod
    def prune(self, *, before: float, states: Sequence[JobState]) -> int: ...
    @abstractmethod
    def cancel(self, ids: Sequence[str], *, now: float,
               with_dependents: bool = False) -> dict[str, str]:
        """Waiting jobs go to the DLQ marked cancelled ("cancelled"); running ones are flagged
        for their worker to kill ("cancelling"). `with_dependents`: also every waiting job
        that waits, directly or not, for one of them."""

    # -- one job at a time
    @abstractmethod
    def edit_job(self, job_id: str, *, now: float, **changes) -> Job:
        """Change a job that is not running: `command`, `priority`, `queue`, `run_at`,
        `timeout`, `max_retries` (Conflict while it runs)."""
    @abstractmethod
    def restart(self, job_id: str, *, now: float) -> Job:
        """Run a completed or dead job again, as a new attempt with a fresh budget."""
    @abstractmethod
    def run_now(self, job_id: str, *, now: float) -> Job:
        """Make a delayed job, or one waiting for its retry, due now."""
    @abstractmethod
    def remove_job(self, job_id: str) -> None:
        """Delete a job that is not running, with its runs and output (Conflict while it
        runs, or while jobs wait for it)."""
    @abstractmethod
    def dependencies(self, job_id: str) -> list:
        """What `job_id` waits for or waited for (lifecycle.Dependency each)."""
    @abstractmethod
    def dependents(self, job_id: str) -> list:
        """The jobs that wait, or waited, for `job_id` (lifecycle.Dependency, `after` being the
        dependent and `state` its state)."""
    @abstractmethod
    def waits_for(self, job_ids: Sequence[str]) -> dict[str, list]:
        """The unmet dependencies of each of `job_ids` that has some."""

    # -- queues
    @abstractmethod
    def queues(self) -> list[QueueInfo]:
        """Every queue, by name, with its jobs counted per state."""
    @abstractmethod
    def queue(self, name: str) -> QueueInfo:
        """One queue (QueueNotFound when no job or `set_queue` named it)."""
    @abstractmethod
    def set_queue(self, name: str, *, now: float, **settings) -> QueueInfo:
        """Create or change a queue: `concurrency`, `max_retries`, `timeout`, `backoff_base`,
        `priority` (None: unlimited / no default of its own); settings not given stay."""
    @abstractmethod
    def pause_queue(self, name: str, *, kill: bool = False) -> QueueInfo:
        """Start no more of its jobs (on every host, until resumed); with `kill`, also stop
        its running jobs and give them back uncounted."""
    @abstractmethod
    def resume_queue(self, name: str) -> QueueInfo: ...
    @abstractmethod
    def remove_queue(self, name: str) -> None:
        """Forget an empty queue (Conflict while it holds jobs)."""

    # -- schedules and hooks (store/schedules.py, store/hooks.py)
    @abstractmethod
    def add_schedule(self, name: str, rule, spec: dict, cwd: str, *, overlap: str,
                     catch_up: str, now: float): ...
    @abstractmethod
    def schedules(self) -> list: ...
    @abstractmethod
    def schedule(self, name: str): ...
    @abstractmethod
    def pause_schedule(self, name: str, *, paused: bool, now: float): ...
    @abstractmethod
    def remove_schedule(self, name: str) -> None: ...
    @abstractmethod
    def run_schedule_now(self, name: str, *, now: float, default_max_retries: int) -> str: ...
    @abstractmethod
    def fire_schedules(self, now: float, *, default_max_retries: int) -> list:
        """Make the jobs of every schedule whose tick has come, exactly once per tick however
        many pools call this (store/schedules.py); what each did."""
    @abstractmethod
    def next_tick(self) -> float | None:
        """When the next unpaused schedule's tick comes."""
    @abstractmethod
    def add_hook(self, event: str, command: str, *, queue: str | None, cwd: str,
                 now: float): ...
    @abstractmethod
    def hooks(self) -> list: ...
    @abstractmethod
    def remove_hook(self, hook_id: int) -> None: ...
    @abstractmethod
    def test_hook(self, hook_id: int, *, now: float) -> str: ...

    # -- workers
    @abstractmethod
    def register_worker(self, worker_id: str, pid: int, host: str, now: float, *,
                        started_at: float | None = None) -> Stop:
        """Record a live worker (again, after its row was removed: `started_at` is when it
        first started). Returns the stop request that applies to it."""
    @abstractmethod
    def unregister_worker(self, worker_id: str) -> None: ...
    @abstractmethod
    def workers(self) -> list[WorkerInfo]: ...
    @abstractmethod
    def heartbeat(self, worker_id: str, now: float) -> Stop | None:
        """Record that an idle worker is alive; return the stop request that applies to it
        (None: it has no row, e.g. removed as stale while it was frozen)."""
    @abstractmethod
    def request_stop(self, mode: Stop, worker_ids: Sequence[str] | None = None, *,
                     now: float | None = None) -> int:
        """Ask workers to stop; returns how many live rows were told. Without `worker_ids`
        the request also holds for every worker started before `now` that has no row now
        (frozen past its lease, its row removed): it stops when it comes back."""
    @abstractmethod
    def claim(self, worker_id: str, *, now: float, lease: float,
              queues: Sequence[str] | None = None) -> Job | None:
        """Take the next job (of `queues` only, if given) for `worker_id`: the highest priority,
        then the earliest due, then the oldest, from every queue that is not paused and not at
        its limit (a job of a limited queue gets a free slot)."""
    @abstractmethod
    def renew(self, job: Job, *, now: float, lease: float, head: Chunks = (),
              tail: Tail | None = None) -> Orders:
        """Extend a running job's lease and store its new output, in one transaction."""
    @abstractmethod
    def orders(self, job: Job) -> Orders:
        """Read (without writing) whether a running job was cancelled, lost, or its worker
        told to stop."""
    @abstractmethod
    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Chunks = (), tail: Tail | None = None, claim_next: str | None = None,
               lease: float = 0.0, queues: Sequence[str] | None = None) -> Finished:
        """Record a run's end (lifecycle.finish_change) and, with `claim_next`, claim that
        worker's next job (of `queues`) in the same transaction."""
    @abstractmethod
    def release(self, job: Job, *, now: float) -> bool:
        """Give back a claimed job that never started: as if it had not been claimed (its try
        and its run record undone). False when the claim was stale."""
    @abstractmethod
    def rescue_dead_workers(self, worker_ids: Sequence[str], *, now: float,
                            policy: RetryPolicy) -> list[str]:
        """Rescue (lifecycle.rescue_change) the running jobs of workers known to be dead, and
        remove those workers' rows. Returns the rescued job ids."""
    @abstractmethod
    def rescue_lapsed(self, leases: Sequence[Lease], *, now: float, policy: RetryPolicy,
                      max_wait: float) -> list[str] | None:
        """Rescue the jobs whose lease is still exactly as the caller saw it go unrenewed.
        None, rescuing nothing, when the store could not be written within `max_wait`
        seconds: whatever kept the caller waiting kept those jobs' renewals waiting too."""
    @abstractmethod
    def remove_stale_workers(self, before: float) -> int:
        """Remove the rows of workers whose last heartbeat is older than `before`."""
    @abstractmethod
    def next_due(self, now: float) -> float | None:
        """When the next waiting job that is not due yet becomes due (after `now`). Jobs that
        are due but cannot start (a paused or full queue) are no reason to wake up: what lets
        them start (a resume, a freed slot) rings the doorbell."""
