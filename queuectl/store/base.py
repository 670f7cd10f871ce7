"""The Store interface: every state change of a job is one short, guarded transaction.

Implementations: `sqlite.SQLiteStore` (the default) and `postgres.PostgresStore`. The contract tests in tests/ run against
every implementation unchanged.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Iterable, NamedTuple, Sequence

from ..models import Job, JobState, NewJob, Run


class WorkerInfo(NamedTuple):
    id: str
    pid: int
    host: str
    started_at: float
    heartbeat_at: float
    job_id: str | None
    stop: int  # 0 none, 1 warm stop requested, 2 cold stop requested


class Status(NamedTuple):
    counts: dict[JobState, int]
    workers: int
    oldest_waiting_age: float | None  # seconds since the oldest eligible job became due
    finished_last_minute: int
    next_due: float | None  # run_at of the next delayed job


class Outcome(NamedTuple):
    """How a run ended, as recorded by a worker."""

    ok: bool
    exit_code: int | None = None
    signal: str | None = None
    error: str | None = None  # human description for last_error
    cancelled: bool = False
    give_back: bool = False  # cold stop: return the job without counting the attempt


class Output(NamedTuple):
    run: Run
    chunks: list[tuple[int, bytes]]  # (stream, data) in order; head then tail
    tail_start: int  # index in chunks of the first tail chunk (== len(chunks) when none)

    @property
    def cut_at(self) -> int | None:
        """Index in chunks where `run.dropped_bytes` were cut, if any were."""
        return self.tail_start if self.run.dropped_bytes else None


class Control(NamedTuple):
    """What a running job's worker learns when it renews its lease."""

    lease_lost: bool
    cancel: bool
    stop: int


class RetryPolicy(NamedTuple):
    base: float
    cap: float | None
    jitter: float


STOP_NONE, STOP_WARM, STOP_COLD = 0, 1, 2
RESCUE_LIMIT = 3  # a job whose runs keep killing their worker goes to the DLQ after this many


class Store(ABC):
    """A queue store. Methods take `now` (epoch seconds) so callers control the clock."""

    location: str

    @abstractmethod
    def close(self) -> None: ...

    def now(self) -> float:
        """The store's clock, in epoch seconds: what run_at, leases and heartbeats are written in.
        A shared server's clock for a server store (hosts' clocks may disagree)."""
        return time.time()

    def doorbell(self, everything: bool = False):
        """Something to wait on until work may be there: `wait(timeout, fds)` (True when rung),
        `clear()`, `close()`, and `mechanism` (how it is woken, e.g. "inotify", "listen";
        "poll" when it only sleeps). `everything`: wake on every change of the store (for a
        console), not only on new work; such a doorbell raises OSError or QueueError, saying
        why, when it cannot watch. None when the store has no way to notify. Implementations:
        store/sqlite/doorbell.py, store/postgres/doorbell.py."""
        return None

    def verify(self) -> None:
        """Check the whole store for damage (slow: reads every page); raise StoreUnusable."""

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
                default_cwd: str) -> list[str]:
        """Store all of `jobs` or none of them; return their ids."""
    @abstractmethod
    def get(self, job_id: str) -> Job: ...
    @abstractmethod
    def list_jobs(self, states: Iterable[JobState] | None = None, limit: int | None = 100,
                  text: str | None = None) -> list[Job]:
        """Waiting jobs in the order they will run; others newest first."""
    @abstractmethod
    def runs(self, job_id: str) -> list[Run]: ...
    @abstractmethod
    def output(self, job_id: str, attempt: int | None = None) -> Output: ...
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
    def cancel(self, ids: Sequence[str], *, now: float) -> dict[str, str]:
        """Waiting jobs go to the DLQ marked cancelled ("cancelled"); running ones are flagged
        for their worker to kill ("cancelling")."""

    # -- workers
    @abstractmethod
    def register_worker(self, worker_id: str, pid: int, host: str, now: float) -> None: ...
    @abstractmethod
    def unregister_worker(self, worker_id: str) -> None: ...
    @abstractmethod
    def workers(self) -> list[WorkerInfo]: ...
    @abstractmethod
    def heartbeat(self, worker_id: str, now: float) -> int:
        """Record that an idle worker is alive; return its stop request."""
    @abstractmethod
    def request_stop(self, mode: int, worker_ids: Sequence[str] | None = None) -> int: ...
    @abstractmethod
    def claim(self, worker_id: str, *, now: float, lease: float) -> Job | None: ...
    @abstractmethod
    def renew(self, job: Job, *, now: float, lease: float,
              head: Sequence[tuple[int, bytes]] = (),
              tail: tuple[Sequence[tuple[int, bytes]], int] | None = None) -> Control:
        """Extend a running job's lease and store its new output, in one transaction."""
    @abstractmethod
    def control(self, job: Job) -> Control:
        """Read (without writing) whether a running job was cancelled, lost, or its worker told to stop."""
    @abstractmethod
    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Sequence[tuple[int, bytes]] = (),
               tail: tuple[Sequence[tuple[int, bytes]], int] | None = None,
               claim_next: str | None = None, lease: float = 0.0) -> tuple[bool, Job | None]:
        """Record a run's end; returns (recorded, next job claimed by `claim_next` or None).

        `recorded` is False when the claim was stale (lease lost): nothing was changed.
        """
    @abstractmethod
    def rescue(self, *, now: float, policy: RetryPolicy,
               worker_ids: Sequence[str] | None = None, stale_before: float | None = None,
               lapsed: Sequence[tuple[str, str]] | None = None) -> list[str]:
        """Fail running jobs whose lease expired (or whose worker is among `worker_ids`, known
        dead) as lost attempts; remove those workers' rows, and the rows of workers whose
        heartbeat is older than `stale_before`. Returns the rescued job ids.

        A lease expired when lease_until < now, unless `lapsed` is given: then exactly those
        (job id, token) leases are expired, as the caller measured on its monotonic clock
        (a wall-clock step then neither rescues a healthy job nor delays a rescue)."""
    @abstractmethod
    def next_due(self, now: float) -> float | None:
        """When the earliest waiting job becomes eligible (<= now if one already is)."""
