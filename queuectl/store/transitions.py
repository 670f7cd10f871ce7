"""What a finished or rescued run does to its job: shared by every store, so the backends
cannot disagree about retries, the DLQ or cancellation. SQL fragments use `?` placeholders."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..backoff import next_step, retry_delay
from ..models import Job
from .base import RESCUE_LIMIT, Outcome, RetryPolicy


class Finish(NamedTuple):
    assignments: str  # "col = ?, ..." for the job's row
    params: list
    run_outcome: str  # the runs.outcome recorded
    wakes_workers: bool  # the job will be waiting again: idle workers should look


def finish_step(job: Job, outcome: Outcome, now: float, policy: RetryPolicy) -> Finish:
    if outcome.give_back:
        return Finish("state = 'pending', attempts = attempts - 1, run_at = ?", [now],
                      "interrupted", True)
    if outcome.ok:
        return Finish("state = 'completed', finished_at = ?, exit_code = ?, last_error = NULL",
                      [now, outcome.exit_code], "completed", False)
    if outcome.cancelled:
        error = f"cancelled ({outcome.error})" if outcome.error else "cancelled"
        return Finish("state = 'dead', cancelled = 1, finished_at = ?, exit_code = ?, "
                      "last_error = ?", [now, outcome.exit_code, error], "cancelled", False)
    if next_step(job.attempts, job.max_retries) == "retry":
        delay = retry_delay(job.attempts, policy.base, policy.cap, policy.jitter)
        return Finish("state = 'failed', run_at = ?, exit_code = ?, last_error = ?",
                      [now + delay, outcome.exit_code, outcome.error], "failed", True)
    return Finish("state = 'dead', finished_at = ?, exit_code = ?, last_error = ?",
                  [now, outcome.exit_code, outcome.error], "failed", False)


FINISH_SQL = ("UPDATE jobs SET {assignments}, updated_at = ?, worker_id = NULL, token = NULL, "
              "lease_until = NULL WHERE id = ? AND state = 'running' AND token = ?")
FINISH_RUN_SQL = ("UPDATE runs SET finished_at = ?, exit_code = ?, signal = ?, outcome = ?, "
                  "error = ? WHERE job_id = ? AND attempt = ?")


class Rescue(NamedTuple):
    state: str
    run_at: float | None  # None: keep
    last_error: str
    run_error: str  # what the lost run records


def rescue_step(job: Job, rescues: int, cancel: bool, dead_workers: Sequence[str], now: float,
                policy: RetryPolicy) -> Rescue:
    """`rescues` counts this rescue too."""
    error = f"worker {job.worker_id} lost (lease expired)"
    if job.worker_id in dead_workers:
        error = f"worker {job.worker_id} died"
    if cancel:
        return Rescue("dead", None, "cancelled", error)
    if rescues >= RESCUE_LIMIT:
        return Rescue("dead", None,
                      f"{error}; its runs were lost {rescues} times, moved to the DLQ", error)
    if next_step(job.attempts, job.max_retries) == "retry":
        delay = retry_delay(job.attempts, policy.base, policy.cap, policy.jitter)
        return Rescue("failed", now + delay, error, error)
    return Rescue("dead", None, error, error)


RESCUE_SQL = (
    "UPDATE jobs SET state = ?, run_at = coalesce(?, run_at), last_error = ?, rescues = ?, "
    "cancelled = ?, updated_at = ?, finished_at = CASE WHEN ? = 'dead' THEN ? END, "
    "worker_id = NULL, token = NULL, lease_until = NULL "
    "WHERE id = ? AND state = 'running' AND token = ?")
RESCUE_RUN_SQL = ("UPDATE runs SET finished_at = ?, outcome = 'lost', error = ? "
                  "WHERE job_id = ? AND attempt = ? AND finished_at IS NULL")


def rescue_params(job: Job, step: Rescue, rescues: int, cancel: bool, now: float) -> tuple:
    return (step.state, step.run_at, step.last_error, rescues, int(cancel), now, step.state, now,
            job.id, job.token)


RETRY_DEAD_RESET = (
    "state = 'pending', attempts = 0, rescues = 0, cancel = 0, cancelled = 0, run_at = ?, "
    "updated_at = ?, finished_at = NULL, worker_id = NULL, token = NULL, lease_until = NULL, "
    "last_error = NULL, exit_code = NULL")
CANCEL_WAITING_SQL = (
    "UPDATE jobs SET state = 'dead', cancelled = 1, last_error = 'cancelled', updated_at = ?, "
    "finished_at = ? WHERE id = ? AND state IN ('pending', 'failed')")
CANCEL_RUNNING_SQL = "UPDATE jobs SET cancel = 1 WHERE id = ? AND state = 'running'"

JOB_COLUMNS = (
    "id, command, state, priority, attempts, max_retries, timeout, cwd, run_at, created_at, "
    "updated_at, started_at, finished_at, exit_code, last_error, worker_id, lease_until, "
    "cancelled, token, runs"
)
RUN_COLUMNS = (
    "job_id, attempt, started_at, finished_at, exit_code, signal, outcome, error, worker, host, "
    "output_bytes, dropped"
)
ORDER_WAITING = "ORDER BY priority DESC, run_at, seq"
ORDER_RECENT = "ORDER BY updated_at DESC, seq DESC"
