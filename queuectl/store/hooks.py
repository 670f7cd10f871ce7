"""Hooks, written once for every store: when a job reaches a state, each matching hook's
command is enqueued as a job of its own (in the `hooks` queue), in the transaction that moved
the job — so a crash between the two loses nothing, and the hook is persisted, retried, and its
output kept. A hook's own job never fires hooks (no loops). Functions run inside the caller's
write transaction on `c` (an sqlite3 connection or a PostgreSQL Tx, both taking `?` SQL)."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import InvalidInput, NotFound
from ..models import Job, JobState, NewJob, new_job_ids
from .inserts import insert_jobs

EVENTS = {"on-dead": JobState.DEAD, "on-complete": JobState.COMPLETED,
          "on-retry": JobState.FAILED}
EVENT_OF = {state: event for event, state in EVENTS.items()}
HOOKS_QUEUE = "hooks"
OUTPUT_TAIL = 4096  # bytes of the job's output a hook gets (the end of it)
PREFIX = "QUEUECTL_HOOK_"


class Hook(NamedTuple):
    id: int
    event: str
    queue: str | None  # None: every queue
    command: str
    cwd: str
    created_at: float


def listing(c) -> list[Hook]:
    return [Hook(*r) for r in c.execute(
        "SELECT id, event, queue, command, cwd, created_at FROM hooks ORDER BY id").fetchall()]


def get(c, hook_id: int) -> Hook:
    row = c.execute("SELECT id, event, queue, command, cwd, created_at FROM hooks WHERE id = ?",
                    (hook_id,)).fetchone()
    if row is None:
        raise NotFound(f"no hook {hook_id} (queuectl hook list shows them)")
    return Hook(*row)


def add(c, event: str, command: str, queue: str | None, cwd: str, now: float) -> Hook:
    if event not in EVENTS:
        raise InvalidInput(f"unknown hook event {event[:30]!r} (choose from {', '.join(EVENTS)})")
    row = c.execute("INSERT INTO hooks (event, queue, command, cwd, created_at) "
                    "VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (event, queue, command, cwd, now)).fetchone()
    return get(c, row[0])


def remove(c, hook_id: int) -> None:
    get(c, hook_id)
    c.execute("DELETE FROM hooks WHERE id = ?", (hook_id,))


def _tail(c, job: Job) -> str:
    """The last OUTPUT_TAIL bytes of the job's latest run, as text (stdout and stderr as they
    came)."""
    rows = c.execute("SELECT o.data FROM output o JOIN runs r ON r.id = o.run_id "
                     "WHERE r.job_id = ? AND r.attempt = ? ORDER BY o.part DESC, o.seq DESC",
                     (job.id, job.attempt)).fetchall()
    kept = []
    size = 0
    for (data,) in rows:
        kept.append(bytes(data))
        size += len(data)
        if size >= OUTPUT_TAIL:
            break
    return b"".join(reversed(kept))[-OUTPUT_TAIL:].decode("utf-8", "replace")


def environment(job: Job, state: JobState, tail: str) -> dict[str, str]:
    """What a hook's command learns of the job, in QUEUECTL_HOOK_* variables."""
    values = {"EVENT": EVENT_OF.get(state, state.value), "JOB_ID": job.id,
              "COMMAND": job.command, "QUEUE": job.queue, "STATE": state.value,
              "EXIT_CODE": "" if job.exit_code is None else str(job.exit_code),
              "ERROR": job.last_error or "", "ATTEMPT": str(job.attempt), "OUTPUT": tail}
    return {PREFIX + k: v.replace("\x00", "") for k, v in values.items()}


def _max_retries(c) -> int:
    """The max-retries a hook's job takes: the store's setting (or its environment's)."""
    from ..config import resolve

    return resolve(dict(c.execute("SELECT key, value FROM config").fetchall()))[0].max_retries


def fire(c, job_id: str, state: JobState, *, now: float, count_rows: bool) -> list[str]:
    """`job_id` just reached `state` (in this transaction): enqueue the hooks that apply."""
    event = EVENT_OF.get(state)
    if event is None:
        return []
    from .rows import job_from_row
    from .sql import JOB_COLUMNS

    matching = c.execute("SELECT id, event, queue, command, cwd, created_at FROM hooks "
                         "WHERE event = ?", (event,)).fetchall()
    if not matching:
        return []
    job = job_from_row(c.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?",
                                 (job_id,)).fetchone())
    if job.origin is not None and job.origin.startswith("hook:"):
        return []  # a hook's own failure fires nothing
    hooks = [Hook(*r) for r in matching if r[2] is None or r[2] == job.queue]
    if not hooks:
        return []
    env = environment(job, state, _tail(c, job))
    return _enqueue(c, hooks, env, now=now, default_max_retries=_max_retries(c),
                    count_rows=count_rows)


def _enqueue(c, hooks: list[Hook], env: dict, *, now: float, default_max_retries: int,
             count_rows: bool) -> list[str]:
    made = []
    for hook in hooks:
        new = NewJob(command=hook.command, queue=HOOKS_QUEUE, env=env, cwd=hook.cwd,
                     origin=f"hook:{hook.id}")
        made += insert_jobs(c, new_job_ids(1), [new], now=now,
                            default_max_retries=default_max_retries, default_cwd=hook.cwd,
                            count_rows=count_rows)
    return made


def sample_environment(now: float) -> dict[str, str]:
    """The variables of `hook test`: a made-up dead job."""
    job = Job(id="sample-job", command="echo sample; exit 3", state=JobState.DEAD, priority=0,
              tries=1, max_retries=0, timeout=None, cwd="/", run_at=now, created_at=now,
              updated_at=now, exit_code=3, last_error="exit code 3", attempt=1)
    return environment(job, JobState.DEAD, "sample\n")


def test(c, hook_id: int, *, now: float, count_rows: bool) -> str:
    """Enqueue the hook once against a made-up dead job; its job's id."""
    hook = get(c, hook_id)
    return _enqueue(c, [hook], sample_environment(now), now=now,
                    default_max_retries=_max_retries(c), count_rows=count_rows)[0]
