"""SQL that every store runs as it is (`?` placeholders; PostgreSQL's driver rewrites them), and
the mapping between the `jobs` and `runs` columns and the Job and Run fields."""

from __future__ import annotations

from ..lifecycle import Change
from ..models import Job, Run
from .queues import GATED_OF_JOB

# Job/Run fields whose column has another name; every other field is its own column.
_JOB_COLUMN = {"tries": "attempts", "attempt": "runs", "cancel_requested": "cancel"}
_RUN_COLUMN = {"dropped_bytes": "dropped"}
JOB_COLUMNS = ", ".join(_JOB_COLUMN.get(f, f) for f in Job._fields)
RUN_COLUMNS = ", ".join(_RUN_COLUMN.get(f, f) for f in Run._fields)

ORDER_WAITING = "ORDER BY priority DESC, run_at, seq"
ORDER_RECENT = "ORDER BY updated_at DESC, seq DESC"

# A running job's end (lifecycle.Change), guarded by its claim's token. FINISH_SQL is also
# guarded by the cancel flag the worker last saw, so that the change it applies was decided with
# the flag the row has; APPLY_SQL is for a row read in the same transaction.
APPLY_SQL = (
    "UPDATE jobs SET state = ?, run_at = coalesce(?, run_at), attempts = attempts + ?, "
    "rescues = rescues + ?, finished_at = ?, exit_code = ?, last_error = ?, cancelled = ?, "
    "updated_at = ?, worker_id = NULL, token = NULL, lease_until = NULL, lease = NULL, "
    f"slot = NULL, gated = {GATED_OF_JOB} "
    "WHERE id = ? AND state = 'running' AND token = ?")
FINISH_SQL = APPLY_SQL + " AND cancel = ?"
RUN_END_SQL = ("UPDATE runs SET finished_at = ?, exit_code = ?, signal = ?, outcome = ?, "
               "error = ? WHERE job_id = ? AND attempt = ? AND finished_at IS NULL")


def change_params(change: Change, now: float) -> list:
    """The SET values of APPLY_SQL for `change`, in order."""
    return [change.state.value, change.run_at, change.tries, change.rescues, change.finished_at,
            change.exit_code, change.error, int(change.cancelled), now]


def run_end_params(job: Job, change: Change, now: float, signal: str | None = None) -> tuple:
    return (now, change.exit_code, signal, change.run_outcome.value, change.run_error, job.id,
            job.attempt)


# A claimed job that never started goes back as it was: its try and its run undone.
RELEASE_SQL = (
    "UPDATE jobs SET state = ?, attempts = attempts - 1, runs = runs - 1, started_at = NULL, "
    "updated_at = ?, worker_id = NULL, token = NULL, lease_until = NULL, lease = NULL, "
    f"slot = NULL, gated = {GATED_OF_JOB} "
    "WHERE id = ? AND state = 'running' AND token = ?")
RELEASE_RUN_SQL = "DELETE FROM runs WHERE job_id = ? AND attempt = ?"

RETRY_DEAD_RESET = (
    "state = 'pending', attempts = 0, rescues = 0, cancel = 0, cancelled = 0, run_at = ?, "
    "updated_at = ?, finished_at = NULL, worker_id = NULL, token = NULL, lease_until = NULL, "
    f"lease = NULL, last_error = NULL, exit_code = NULL, slot = NULL, gated = {GATED_OF_JOB}")
CANCEL_WAITING_SQL = (
    "UPDATE jobs SET state = 'dead', cancelled = 1, last_error = 'cancelled', updated_at = ?, "
    "finished_at = ? WHERE id = ? AND state IN ('pending', 'failed')")
CANCEL_RUNNING_SQL = "UPDATE jobs SET cancel = 1 WHERE id = ? AND state = 'running'"
FREE_SLOT_SQL = "DELETE FROM slots WHERE job_id = ?"  # a job of a limited queue stopped running

# The stop request that applies to a worker: its own, or a store-wide one made since it started.
WORKER_STOP = ("(SELECT max(m) FROM (SELECT w.stop AS m UNION ALL SELECT s.mode FROM stops s "
               "WHERE s.at >= w.started_at) AS asked)")
