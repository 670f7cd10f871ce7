"""The job state machine as data: which state may follow which, and what the end of a run
does to its job. Pure: no I/O and no SQL. Each store renders a `Change` into its own guarded
UPDATE, so the backends cannot disagree about retries, the DLQ, cancellation or give-backs.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable, Mapping, NamedTuple

from .backoff import next_step, retry_delay
from .errors import Conflict, JobNotFound
from .models import Job, JobState
from .workflow import AFTER_ANY, AFTER_OK

RESCUE_LIMIT = 3  # a job whose runs keep killing their worker goes to the DLQ after this many

# Which state may follow which; every store call keeps to exactly these (a contract test
# records the states around each call). Jobs are born pending and only finished ones are
# deleted (prune, purge).
TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.DEAD}),
    JobState.FAILED: frozenset({JobState.RUNNING, JobState.DEAD}),
    JobState.RUNNING: frozenset(
        {JobState.COMPLETED, JobState.FAILED, JobState.DEAD, JobState.PENDING}
    ),
    JobState.COMPLETED: frozenset({JobState.PENDING}),  # restarted
    JobState.DEAD: frozenset({JobState.PENDING}),
}
BORN = frozenset({JobState.PENDING})
# Prune and purge delete finished jobs; `remove` deletes any job that is not running.
DELETABLE = frozenset({JobState.PENDING, JobState.FAILED, JobState.COMPLETED, JobState.DEAD})


class RetryPolicy(NamedTuple):
    base: float
    cap: float | None
    jitter: float


class Outcome(NamedTuple):
    """How a run ended, as its worker saw it."""

    ok: bool
    exit_code: int | None = None
    signal: str | None = None
    error: str | None = None  # a person's description, for last_error
    cancelled: bool = False  # killed because someone cancelled the job
    give_back: bool = False  # interrupted by a cold stop: return the job uncounted


class RunOutcome(str, Enum):
    """What a run's record says about how it ended."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # given back by a cold stop; it did not count
    LOST = "lost"  # its worker died or lost the lease


class Change(NamedTuple):
    """What the end of a running job's run does to the job and to the run's record."""

    state: JobState
    run_at: float | None  # None: unchanged
    tries: int  # added to the job's counted tries: -1 gives the try back
    rescues: int  # added to the job's count of lost runs
    finished_at: float | None
    exit_code: int | None
    error: str | None  # the job's last_error afterwards
    cancelled: bool
    run_outcome: RunOutcome
    run_error: str | None
    wakes_workers: bool  # the job waits again: idle workers should look


def finish_change(job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
                  cancel_requested: bool = False) -> Change:
    """What a run's end (`outcome`) does to `job`, running until now. `cancel_requested`:
    somebody cancelled the job while it ran (a run that completes first still completes)."""
    if job.state is not JobState.RUNNING:
        raise ValueError(f"job {job.id!r} is {job.state.value}, not running")
    if outcome.ok:
        return Change(JobState.COMPLETED, None, 0, 0, now, outcome.exit_code, None, False,
                      RunOutcome.COMPLETED, None, False)
    if outcome.cancelled or cancel_requested:
        detail = outcome.error if outcome.cancelled else None
        error = f"cancelled ({detail})" if detail else "cancelled"
        return Change(JobState.DEAD, None, 0, 0, now, outcome.exit_code, error, True,
                      RunOutcome.CANCELLED, outcome.error, False)
    if outcome.give_back:
        return Change(given_back_state(job), None, -1, 0, None, None, job.last_error, False,
                      RunOutcome.INTERRUPTED, outcome.error, True)
    return _failed(job, now, policy, outcome.exit_code, outcome.error, RunOutcome.FAILED, 0)


def given_back_state(job: Job) -> JobState:
    """Where a running job goes when its try is given back (a cold stop, or a claim released
    before it started): failed (waiting for a retry) if it failed before, else pending."""
    return JobState.FAILED if job.tries > 1 else JobState.PENDING


def rescue_change(job: Job, *, died: bool, now: float, policy: RetryPolicy,
                  cancel_requested: bool = False) -> Change:
    """What rescuing `job` does: its worker `died` (known dead on its host), or it stopped
    renewing the lease. The lost run counts, and after RESCUE_LIMIT lost runs the job is
    buried: a job whose runs keep killing their worker must not take down worker after worker."""
    if job.state is not JobState.RUNNING:
        raise ValueError(f"job {job.id!r} is {job.state.value}, not running")
    how = "died" if died else "lost (lease expired)"
    error = f"worker {job.worker_id} {how}"
    if cancel_requested:
        return Change(JobState.DEAD, None, 0, 1, now, None, "cancelled", True, RunOutcome.LOST,
                      error, False)
    if job.on_lost == "fail":  # a command that must not run twice
        return Change(JobState.DEAD, None, 0, 1, now, None,
                      f"{error} mid-run; not run again (on-lost fail)", False, RunOutcome.LOST,
                      error, False)
    if job.rescues + 1 >= RESCUE_LIMIT:
        buried = f"{error}; its runs were lost {job.rescues + 1} times, moved to the DLQ"
        return Change(JobState.DEAD, None, 0, 1, now, None, buried, False, RunOutcome.LOST,
                      error, False)
    return _failed(job, now, policy, None, error, RunOutcome.LOST, 1)


def _failed(job: Job, now: float, policy: RetryPolicy, exit_code: int | None,
            error: str | None, run_outcome: RunOutcome, rescues: int) -> Change:
    if next_step(job.tries, job.max_retries) == "retry":
        base = policy.base if job.backoff_base is None else job.backoff_base
        delay = retry_delay(job.tries, base, policy.cap, policy.jitter)
        return Change(JobState.FAILED, now + delay, 0, rescues, None, exit_code, error, False,
                      run_outcome, error, True)
    return Change(JobState.DEAD, None, 0, rescues, now, exit_code, error, False, run_outcome,
                  error, False)


# -- what people may do to a job in a given state


def require_found(ids, found: Mapping[str, JobState]) -> None:
    for job_id in ids:
        if job_id not in found:
            raise JobNotFound(f"no job with id {job_id!r}")


def check_retryable(job_id: str, state: JobState) -> None:
    if state is not JobState.DEAD:
        raise Conflict(f"job {job_id!r} is {state.value}, not dead; only dead jobs can be retried")


def check_restartable(job_id: str, state: JobState) -> None:
    if state not in (JobState.COMPLETED, JobState.DEAD):
        raise Conflict(f"job {job_id!r} is {state.value}; only completed or dead jobs can be "
                       "restarted")


def check_cancellable(job_id: str, state: JobState) -> None:
    if state in (JobState.COMPLETED, JobState.DEAD):
        raise Conflict(f"job {job_id!r} is already {state.value}; nothing to cancel")


# -- dependencies


class Dependency(NamedTuple):
    """One dependency of a job, as `show` and `wait` see it."""

    after: str  # the job waited for
    kind: str  # AFTER_OK or AFTER_ANY
    met: bool
    state: JobState | None  # the dependency's state now; None when it no longer exists


def met_by(kind: str, state: JobState | None) -> bool:
    """Whether a dependency of `kind` on a job in `state` is met."""
    if state is JobState.COMPLETED:
        return True
    return kind == AFTER_ANY and state is JobState.DEAD


def releases(state: JobState) -> tuple[str, ...]:
    """The kinds of dependency a job reaching `state` meets."""
    if state is JobState.COMPLETED:
        return (AFTER_OK, AFTER_ANY)
    if state is JobState.DEAD:
        return (AFTER_ANY,)
    return ()


def never_runs(dependency: Dependency) -> bool:
    """An unmet dependency that nothing will meet by itself: a dead job (a DLQ retry would
    meet it), or one that was deleted."""
    return not dependency.met and dependency.kind == AFTER_OK and (
        dependency.state in (JobState.DEAD, None))


def why_blocked(deps: Iterable[Dependency]) -> str:
    """What a blocked job waits for, for people: "waits for a, b (dead)"."""
    parts = []
    for d in deps:
        if d.met:
            continue
        note = ("gone" if d.state is None else "dead" if d.state is JobState.DEAD and
                d.kind == AFTER_OK else None)
        parts.append(f"{d.after} ({note})" if note else d.after)
    return "waits for " + ", ".join(parts) if parts else ""
