"""Rows in and out of every store: job/run tuples, enqueue rows, list groups, LIKE patterns,
and a running job's output."""

from __future__ import annotations

import json
from typing import Iterable, Mapping, Sequence

from ..errors import Conflict
from ..models import DEFAULT_QUEUE, WAITING, Job, JobState, NewJob, Run, new_job_ids
from .base import Chunks, Tail
from .queues import Defaults
from .sql import ORDER_RECENT, ORDER_WAITING

_JOB_SIZE = len(Job._fields)
_STATE = Job._fields.index("state")
_FLAGS = (Job._fields.index("cancelled"), Job._fields.index("cancel_requested"))
_ENV = Job._fields.index("env")


def job_from_row(row: Sequence) -> Job:
    """A Job from a row selected as sql.JOB_COLUMNS (extra columns after them are ignored)."""
    values = list(row[:_JOB_SIZE])
    values[_STATE] = JobState(values[_STATE])
    for index in _FLAGS:
        values[index] = bool(values[index])
    if values[_ENV] is not None:
        values[_ENV] = json.loads(values[_ENV])
    return Job._make(values)


def run_from_row(row: Sequence) -> Run:
    return Run._make(row)


def like_pattern(text: str) -> str:
    """A LIKE pattern that matches `text` literally anywhere (escape character: backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def job_ids_for(jobs: Sequence[NewJob]) -> list[str]:
    """The ids the jobs will get: their own, or fresh ones; refuse an id given twice."""
    given = [j.id for j in jobs if j.id is not None]
    if len(set(given)) != len(given):
        seen: set[str] = set()
        dup = next(i for i in given if i in seen or seen.add(i))
        raise Conflict(f"job id {dup!r} appears twice in the input")
    fresh = iter(new_job_ids(len(jobs) - len(given)))
    return [j.id or next(fresh) for j in jobs]


ENQUEUE_COLUMNS = ("id, command, queue, priority, max_retries, timeout, backoff_base, gated, "
                   "cwd, run_at, created_at, updated_at, blocked, unique_key, env, on_lost, origin")


def queues_of(jobs: Sequence[NewJob]) -> list[str]:
    """The queues a batch names, each once."""
    return list(dict.fromkeys(j.queue or DEFAULT_QUEUE for j in jobs))


# A job that sets nothing but its command, id and queue (the usual line of a bulk file): its
# row is the one of its queue's other such jobs but for its id and command, built once a queue.
_QUEUE = NewJob._fields.index("queue")
_UNSET = NewJob(command="")
_UNSET_HEAD, _UNSET_TAIL = _UNSET[2:_QUEUE], _UNSET[_QUEUE + 1:]
assert NewJob._fields[:2] == ("command", "id")


def enqueue_rows(ids: Sequence[str], jobs: Sequence[NewJob], *, now: float,
                 default_max_retries: int, default_cwd: str,
                 defaults: Mapping[str, Defaults], new: Sequence[int] | None = None,
                 blocked: Mapping[int, int] | None = None) -> list[tuple]:
    """The ENQUEUE_COLUMNS of each job (of the `new` indexes only, if given): what it says,
    else its queue's defaults, else the store's settings."""
    unmet = blocked or {}

    def row(jid: str, j: NewJob, i: int) -> tuple:
        queue = j.queue or DEFAULT_QUEUE
        d = defaults[queue]
        return (
            jid, j.command, queue,
            j.priority if j.priority is not None else (d.priority or 0),
            j.max_retries if j.max_retries is not None else (
                d.max_retries if d.max_retries is not None else default_max_retries),
            j.timeout if j.timeout is not None else d.timeout, d.backoff_base, int(d.gated),
            j.cwd or default_cwd, j.run_at if j.run_at is not None else now + (j.delay or 0.0),
            now, now, unmet.get(i, 0), j.unique_key,
            None if j.env is None else json.dumps(j.env, ensure_ascii=False), j.on_lost or "retry",
            j.origin)

    rows = []
    append = rows.append
    tails: dict[str | None, tuple] = {}  # the row after id and command, by queue
    for i in range(len(jobs)) if new is None else new:
        j = jobs[i]
        if j[2:_QUEUE] == _UNSET_HEAD and j[_QUEUE + 1:] == _UNSET_TAIL:  # no dependencies
            tail = tails.get(j.queue)
            if tail is None:
                tail = tails[j.queue] = row("", _UNSET._replace(queue=j.queue), -1)[2:]
            append((ids[i], j[0]) + tail)
        else:
            append(row(ids[i], j, i))
    return rows


def list_groups(states: Iterable[JobState] | None) -> list[tuple[list[JobState], str]]:
    """How `list_jobs` reads: running (newest first), waiting (in run order), completed, dead."""
    wanted = list(dict.fromkeys(states or JobState))
    groups: list[tuple[list[JobState], str]] = []
    if JobState.RUNNING in wanted:
        groups.append(([JobState.RUNNING], ORDER_RECENT))
    waiting = [s for s in wanted if s in WAITING]
    if waiting:
        groups.append((waiting, ORDER_WAITING))
    for state in (JobState.COMPLETED, JobState.DEAD):
        if state in wanted:
            groups.append(([state], ORDER_RECENT))
    return groups


def store_output(c, job: Job, head: Chunks, tail: Tail | None) -> None:
    """Append a running job's new head chunks and replace its tail, inside the caller's
    transaction. `c` is an sqlite3 connection or a PostgreSQL Tx: both take `?` SQL through
    `execute` (returning something with `fetchone`) and `executemany`."""
    if not head and tail is None:
        return
    run_id = c.execute("SELECT id FROM runs WHERE job_id = ? AND attempt = ?",
                       (job.id, job.attempt)).fetchone()[0]
    insert = "INSERT INTO output (run_id, part, seq, stream, data) VALUES (?, ?, ?, ?, ?)"
    if head:
        start = c.execute("SELECT coalesce(max(seq) + 1, 0) FROM output "
                          "WHERE run_id = ? AND part = 0", (run_id,)).fetchone()[0]
        c.executemany(insert, [(run_id, 0, start + i, s, d) for i, (s, d) in enumerate(head)])
    total = "(SELECT coalesce(sum(length(data)), 0) FROM output WHERE run_id = ?)"
    if tail is not None:
        c.execute("DELETE FROM output WHERE run_id = ? AND part = 1", (run_id,))
        if tail[0]:
            c.executemany(insert, [(run_id, 1, i, s, d) for i, (s, d) in enumerate(tail[0])])
        c.execute(f"UPDATE runs SET dropped = ?, output_bytes = {total} + ? WHERE id = ?",
                  (tail[1], run_id, tail[1], run_id))
    else:
        c.execute(f"UPDATE runs SET output_bytes = {total} + dropped WHERE id = ?",
                  (run_id, run_id))
