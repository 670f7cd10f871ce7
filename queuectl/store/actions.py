"""People's actions on jobs, written once for every store: each runs inside the caller's write
transaction on `c` (an sqlite3 connection or a PostgreSQL Tx, both taking `?` SQL), and the
rules of what may be done come from lifecycle."""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import Conflict, InvalidInput, JobNotFound
from ..lifecycle import (check_cancellable, check_restartable, check_retryable, require_found,
                         rescue_change)
from ..models import Job, JobState, NewJob, new_job_id
from . import deps, hooks as hook_ops, queues as queue_ops
from .queues import GATED_OF_JOB
from .rows import job_from_row, job_ids_for
from .sql import (APPLY_SQL, CANCEL_RUNNING_SQL, CANCEL_WAITING_SQL, FREE_SLOT_SQL, JOB_COLUMNS,
                  RETRY_DEAD_RESET, RUN_END_SQL, change_params, run_end_params)


def job_states(c, ids: Sequence[str], *, lock: str = "") -> dict[str, JobState]:
    """The state of each of `ids` (JobNotFound for one that is not there); `lock` is appended
    to the query (PostgreSQL: FOR UPDATE)."""
    found = {}
    for job_id in ids:
        row = c.execute(f"SELECT state FROM jobs WHERE id = ?{lock}", (job_id,)).fetchone()
        if row is not None:
            found[job_id] = JobState(row[0])
    require_found(ids, found)
    return found


def retry_dead(c, ids: Sequence[str] | None, now: float, *, lock: str = "") -> list[str]:
    """Dead jobs back to pending with a fresh budget; None: every dead job."""
    if ids is None:
        return [r[0] for r in c.execute(
            f"UPDATE jobs SET {RETRY_DEAD_RESET} WHERE state = 'dead' RETURNING id",
            (now, now)).fetchall()]
    wanted = list(dict.fromkeys(ids))
    for job_id, state in job_states(c, wanted, lock=lock).items():
        check_retryable(job_id, state)
    for job_id in wanted:
        c.execute(f"UPDATE jobs SET {RETRY_DEAD_RESET} WHERE id = ? AND state = 'dead'",
                  (now, now, job_id))
    return wanted


def cancel(c, ids: Sequence[str], now: float, *, lock: str = "",
           with_dependents: bool = False, count_rows: bool) -> dict[str, str]:
    """Waiting jobs to the DLQ ("cancelled"); running ones flagged for their worker
    ("cancelling"); with `with_dependents`, the jobs waiting for them too. Nothing changes if
    any of `ids` cannot be cancelled."""
    wanted = list(dict.fromkeys(ids))
    for job_id, state in job_states(c, wanted, lock=lock).items():
        check_cancellable(job_id, state)
    if with_dependents:
        wanted += [j for j in deps.waiting_dependents(c, wanted) if j not in wanted]
    result: dict[str, str] = {}
    for job_id in wanted:
        if c.execute(CANCEL_WAITING_SQL, (now, now, job_id)).rowcount:
            result[job_id] = "cancelled"
            deps.release(c, job_id, JobState.DEAD)
            hook_ops.fire(c, job_id, JobState.DEAD, now=now, count_rows=count_rows)
        else:
            c.execute(CANCEL_RUNNING_SQL, (job_id,))
            result[job_id] = "cancelling"
    return result


def _one(c, job_id: str, lock: str) -> Job:
    row = c.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?{lock}", (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return job_from_row(row)


EDITABLE = ("command", "priority", "queue", "run_at", "timeout", "max_retries")


def edit(c, job_id: str, now: float, changes: dict, *, lock: str = "",
         count_rows: bool) -> Job:
    """Change a job that is not running (its queue: created if new, and its limit applies)."""
    job = _one(c, job_id, lock)
    if job.state is JobState.RUNNING:
        raise Conflict(f"job {job_id!r} is running; edit it once it ends (or cancel it)")
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot edit {sorted(unknown)[0]!r} (editable: {', '.join(EDITABLE)})")
    if not changes:
        return job
    if "queue" in changes:
        queue_ops.ensure(c, [changes["queue"]], now, count_rows=count_rows)
    sets = ", ".join(f"{column} = ?" for column in changes)
    c.execute(f"UPDATE jobs SET {sets}, updated_at = ? WHERE id = ?",
              (*changes.values(), now, job_id))
    # (apart: the SET of one statement sees the row's old queue)
    c.execute(f"UPDATE jobs SET gated = {GATED_OF_JOB} WHERE id = ?", (job_id,))
    return _one(c, job_id, "")


def restart(c, job_id: str, now: float, *, lock: str = "") -> Job:
    job = _one(c, job_id, lock)
    check_restartable(job_id, job.state)
    c.execute(f"UPDATE jobs SET {RETRY_DEAD_RESET} WHERE id = ?", (now, now, job_id))
    return _one(c, job_id, "")


def run_now(c, job_id: str, now: float, *, lock: str = "") -> Job:
    job = _one(c, job_id, lock)
    if job.state not in (JobState.PENDING, JobState.FAILED) or job.run_at <= now:
        what = "waiting and due already" if job.state in (JobState.PENDING, JobState.FAILED) \
            else job.state.value
        raise Conflict(f"job {job_id!r} is {what}; run-now makes a delayed job, or one "
                       "waiting for its retry, due now")
    c.execute("UPDATE jobs SET run_at = ?, updated_at = ? WHERE id = ?", (now, now, job_id))
    return _one(c, job_id, "")


def remove(c, job_id: str, *, lock: str = "") -> Job:
    """Check that `job_id` may be removed; the caller deletes it (and its runs and output)."""
    job = _one(c, job_id, lock)
    if job.state is JobState.RUNNING:
        raise Conflict(f"job {job_id!r} is running; cancel it first")
    waiting = deps.waiting_dependents(c, [job_id])
    if waiting:
        raise Conflict(f"{len(waiting)} job{'s wait' if len(waiting) != 1 else ' waits'} for "
                       f"{job_id!r} (e.g. {waiting[0]!r}); cancel them first "
                       "(queuectl cancel --with-dependents)")
    c.execute("DELETE FROM deps WHERE job_id = ?", (job_id,))
    return job


def enqueue_with_fresh_ids(jobs: Sequence[NewJob], insert: Callable[[list[str]], list[str]],
                           existing: Callable[[list[str]], set[str]],
                           duplicate: type[Exception]) -> list[str]:
    """Insert `jobs` with their ids (`insert` returns the ids that answer for them, and raises
    `duplicate` when one is taken): an id the caller gave that is taken is a Conflict; a
    generated one that collides is drawn again. (A unique key taken by a racing enqueue raises
    `duplicate` too: the next try finds that job and answers with it.)"""
    ids = job_ids_for(jobs)
    given = {j.id for j in jobs if j.id is not None}
    for _ in range(5):
        try:
            return insert(ids)
        except duplicate:
            taken = existing(ids)
            clash = [i for i in ids if i in given and i in taken]
            if clash:
                raise Conflict(f"job id {clash[0]!r} already exists") from None
            ids = [new_job_id() if (j.id is None and i in taken) else i
                   for i, j in zip(ids, jobs)]
    raise Conflict("could not generate unique job ids")  # pragma: no cover


def rescue_rows(c, rows: Sequence, died: set[str], now: float, policy, *,
                count_rows: bool) -> list[str]:
    """Rescue the running jobs of `rows` (read in this transaction; their workers `died`, or
    their leases lapsed): lifecycle.rescue_change, the run's record, the slot, dependents and
    hooks. Returns the ids rescued."""
    rescued = []
    for row in rows:
        job = job_from_row(row)
        change = rescue_change(job, died=job.worker_id in died, now=now, policy=policy,
                               cancel_requested=job.cancel_requested)
        if c.execute(APPLY_SQL, change_params(change, now) + [job.id, job.token]).rowcount:
            c.execute(RUN_END_SQL, run_end_params(job, change, now))
            c.execute(FREE_SLOT_SQL, (job.id,))
            deps.release(c, job.id, change.state)
            hook_ops.fire(c, job.id, change.state, now=now, count_rows=count_rows)
            rescued.append(job.id)
    return rescued
