"""The bodies of the hot commands, `enqueue` and `status`, free of Typer: the Typer app
(jobs.py) and the lean command line (lean.py) both run them, so both give the same results,
errors and exit codes. `open_store(create=...)` opens the store the invocation names; the
keyword arguments are the commands' options, by the names jobs.py gives them."""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence

from ..errors import InvalidInput

ON_CONFLICT = ("existing", "error")


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:
        raise InvalidInput("the current directory no longer exists; jobs run where they were enqueued") from None


def _store(open_store: Callable[..., object], jobs: list, *, queue: str | None,
           unique_for: str | None, on_conflict: str, progress) -> Sequence[str]:
    """Store `jobs` (into `queue` when they name none) as enqueue's options say."""
    from ..config import settings_of
    from ..models import validate_queue

    if queue is not None:  # the queue of every job that does not name its own
        queue = validate_queue(queue)
        jobs = [j if j.queue is not None else j._replace(queue=queue) for j in jobs]
    if on_conflict not in ON_CONFLICT:
        raise InvalidInput("--on-conflict must be 'existing' or 'error'")
    window = None
    if unique_for is not None:
        from ..durations import parse_duration

        window = parse_duration(unique_for, "--unique-for")
    s = open_store(create=True)
    defaults = settings_of(s)
    if progress is not None:
        progress.storing(len(jobs))
    return s.enqueue(jobs, now=s.now(), default_max_retries=defaults.max_retries,
                     default_cwd=_cwd(), unique_for=window, on_conflict=on_conflict)


def enqueue(open_store: Callable[..., object], *, spec: str | None = None,
            command: str | None = None, job_id: str | None = None, queue: str | None = None,
            priority: int | None = None, max_retries: int | None = None,
            timeout: str | None = None, delay: str | None = None, run_at: str | None = None,
            file: str | None = None, after: Sequence[str] | None = None,
            after_any: Sequence[str] | None = None, unique_key: str | None = None,
            unique_for: str | None = None, on_conflict: str = "existing",
            env: Sequence[str] | None = None, cwd: str | None = None,
            on_lost: str | None = None) -> None:
    """Add jobs; print their ids, one per line."""
    from ..models import parse_spec_json, validate_spec

    flags = {"command": command, "id": job_id, "priority": priority, "max_retries": max_retries,
             "timeout": timeout, "delay": delay, "run_at": run_at,
             "after": ",".join(after) if after else None,
             "after_any": ",".join(after_any) if after_any else None,
             "unique_key": unique_key, "env": list(env) if env else None,
             "cwd": None if cwd is None else os.path.abspath(cwd), "on_lost": on_lost}
    given = {k: v for k, v in flags.items() if v is not None}
    sources = sum(x is not None for x in (spec, file)) + (1 if given else 0)
    if sources != 1:
        raise InvalidInput("give a JSON SPEC, or --command and its flags, or --file (exactly one)")
    if file is not None:
        from .jobfile import read_jobs

        jobs, progress = read_jobs(file)
    else:
        jobs, progress = [parse_spec_json(spec) if spec is not None else validate_spec(given)], None
    try:
        ids = _store(open_store, jobs, queue=queue, unique_for=unique_for, on_conflict=on_conflict,
                     progress=progress)
    except BaseException:
        if progress is not None:
            progress.abandon()
        raise
    if progress is not None:
        progress.done(len(ids))
    for existing in sorted(getattr(ids, "existing", ())):
        print(f"job {existing} holds that unique key already: not enqueued again",
              file=sys.stderr)
    sys.stdout.write("".join(i + "\n" for i in ids))


def status(open_store: Callable[..., object], *, as_json: bool = False) -> None:
    """Counts per state, live workers, the oldest waiting job's age, recent throughput."""
    from ..config import live_window, settings_of
    from ..durations import format_duration, iso, relative
    from ..models import JobState

    s = open_store(create=False)
    cfg = settings_of(s)
    now = s.now()
    st = s.status(now, worker_timeout=live_window(cfg))
    counts = {state.value: st.counts.get(state, 0) for state in JobState}
    queues = s.queues()
    tick = s.next_tick()
    if as_json:
        from .render import emit_json, queue_json

        emit_json({"store": s.location, "counts": counts, "workers": st.workers,
                   "oldest_waiting_seconds": st.oldest_waiting_age,
                   "finished_last_minute": st.finished_last_minute,
                   "next_due": iso(st.next_due), "next_schedule_tick": iso(tick),
                   "queues": [queue_json(q) for q in queues]})
        return
    rows = [[k, str(v)] for k, v in counts.items()]
    rows[3][1] += "  (waiting to retry)" if counts["failed"] else ""
    rows += [
        ["workers", f"{st.workers} live"],
        ["oldest waiting", format_duration(st.oldest_waiting_age) if st.oldest_waiting_age is not None else "-"],
        ["next delayed", relative(st.next_due, now)],
        ["next schedule", relative(tick, now)],
        ["finished/min", str(st.finished_last_minute)],
        ["store", s.location],
    ]
    width = max(len(r[0]) for r in rows)
    sys.stdout.write("".join(f"{k.ljust(width)}  {v}\n" for k, v in rows))
    if len(queues) > 1 or any(q.paused or q.concurrency is not None for q in queues):
        from .render import queues_table

        print()
        queues_table(queues)
