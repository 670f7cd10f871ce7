"""People's actions on jobs, written once for every store: each runs inside the caller's write
transaction on `c` (an sqlite3 connection or a PostgreSQL Tx, both taking `?` SQL), and the
rules of what may be done come from lifecycle."""

from __future__ import annotations

from typing import Callable, Sequence

from ..errors import Conflict
from ..lifecycle import check_cancellable, check_retryable, require_found
from ..models import JobState, NewJob, new_job_id
from .rows import job_ids_for
from .sql import CANCEL_RUNNING_SQL, CANCEL_WAITING_SQL, RETRY_DEAD_RESET


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


def cancel(c, ids: Sequence[str], now: float, *, lock: str = "") -> dict[str, str]:
    """Waiting jobs to the DLQ ("cancelled"); running ones flagged for their worker
    ("cancelling"). Nothing changes if any of `ids` cannot be cancelled."""
    wanted = list(dict.fromkeys(ids))
    for job_id, state in job_states(c, wanted, lock=lock).items():
        check_cancellable(job_id, state)
    result: dict[str, str] = {}
    for job_id in wanted:
        if c.execute(CANCEL_WAITING_SQL, (now, now, job_id)).rowcount:
            result[job_id] = "cancelled"
        else:
            c.execute(CANCEL_RUNNING_SQL, (job_id,))
            result[job_id] = "cancelling"
    return result


def enqueue_with_fresh_ids(jobs: Sequence[NewJob], insert: Callable[[list[str]], None],
                           existing: Callable[[list[str]], set[str]],
                           duplicate: type[Exception]) -> list[str]:
    """Insert `jobs` with their ids (`insert` raises `duplicate` when one is taken): an id the
    caller gave that is taken is a Conflict; a generated one that collides is drawn again."""
    ids = job_ids_for(jobs)
    given = {j.id for j in jobs if j.id is not None}
    for _ in range(5):
        try:
            insert(ids)
        except duplicate:
            taken = existing(ids)
            clash = [i for i in ids if i in given and i in taken]
            if clash:
                raise Conflict(f"job id {clash[0]!r} already exists") from None
            ids = [new_job_id() if (j.id is None and i in taken) else i
                   for i, j in zip(ids, jobs)]
            continue
        return ids
    raise Conflict("could not generate unique job ids")  # pragma: no cover
