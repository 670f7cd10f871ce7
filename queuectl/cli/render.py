"""Printing results: plain aligned tables for people, JSON for scripts. No markup anywhere."""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any, Sequence

from ..durations import format_duration, iso, relative
from ..models import Job, JobState, QueueInfo, Run
from ..sanitize import one_line
from ..workflow import masked


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, flex: int | None = None) -> None:
    """An aligned table; column `flex` (usually the command) is clipped to the terminal width."""
    cells = [[one_line(str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    if flex is not None and sys.stdout.isatty():
        room = shutil.get_terminal_size((120, 24)).columns - sum(
            w + 2 for i, w in enumerate(widths) if i != flex)
        widths[flex] = max(len(headers[flex]), min(widths[flex], room))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths)).rstrip()]
    for row in cells:
        parts = []
        for i, (cell, w) in enumerate(zip(row, widths)):
            if len(cell) > w:
                cell = cell[: max(0, w - 1)] + "…"
            parts.append(cell.ljust(w))
        lines.append("  ".join(parts).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id, "command": job.command, "queue": job.queue, "state": job.state.value,
        "priority": job.priority, "tries": job.tries, "attempt": job.attempt, "max_retries": job.max_retries,
        "timeout": job.timeout, "cwd": job.cwd, "run_at": iso(job.run_at),
        "created_at": iso(job.created_at), "updated_at": iso(job.updated_at),
        "started_at": iso(job.started_at), "finished_at": iso(job.finished_at),
        "exit_code": job.exit_code, "last_error": job.last_error, "worker": job.worker_id,
        "slot": job.slot, "cancelled": job.cancelled, "blocked": job.blocked,
        "unique_key": job.unique_key, "env": masked(job.env), "on_lost": job.on_lost,
    }


def dependency_json(d) -> dict[str, Any]:
    """A lifecycle.Dependency: the other job, the kind, whether met, that job's state."""
    return {"id": d.after, "kind": d.kind, "met": d.met,
            "state": None if d.state is None else d.state.value}


def run_json(run: Run) -> dict[str, Any]:
    return {
        "attempt": run.attempt, "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at), "exit_code": run.exit_code, "signal": run.signal,
        "outcome": run.outcome or "running", "error": run.error, "worker": run.worker,
        "host": run.host, "slot": run.slot, "output_bytes": run.output_bytes,
        "dropped_bytes": run.dropped_bytes,
    }


def when(job: Job, now: float) -> str:
    """The time that matters for a job in its state, for people."""
    if job.state in (JobState.PENDING, JobState.FAILED):
        return "due now" if job.run_at <= now else relative(job.run_at, now)
    if job.state is JobState.RUNNING and job.started_at:
        return f"for {format_duration(now - job.started_at)}"
    return relative(job.finished_at or job.updated_at, now)


def jobs_table(jobs: Sequence[Job], now: float, waits: dict | None = None) -> None:
    """`waits`: the unmet dependencies of the blocked jobs among them (Store.waits_for)."""
    from ..lifecycle import why_blocked

    rows = []
    for job in jobs:
        note = job.last_error or ""
        if job.blocked and waits and job.id in waits:
            note = why_blocked(waits[job.id])
        if job.state is JobState.FAILED:
            note = f"retry {job.tries}/{job.max_retries}: {note}"
        state = "blocked" if job.blocked and job.state is JobState.PENDING else job.state.value
        rows.append([job.id, state, str(job.priority),
                     f"{job.tries}/{job.max_retries + 1}", when(job, now), job.command, note])
    table(["id", "state", "pri", "runs", "when", "command", "last error"], rows, flex=5)


def queue_json(queue: QueueInfo) -> dict[str, Any]:
    return {
        "name": queue.name, "concurrency": queue.concurrency, "paused": queue.paused,
        "kill": queue.kill, "counts": {s.value: queue.counts.get(s, 0) for s in JobState},
        "defaults": {"max_retries": queue.max_retries, "timeout": queue.timeout,
                     "backoff_base": queue.backoff_base, "priority": queue.priority},
        "created_at": iso(queue.created_at),
    }



def queues_table(queues: Sequence[QueueInfo]) -> None:
    rows = []
    for q in queues:
        state = ("paused, killing" if q.kill else "paused") if q.paused else "open"
        limit = "unlimited" if q.concurrency is None else str(q.concurrency)
        rows.append([q.name, limit, state, str(q.waiting), str(q.running),
                     str(q.counts.get(JobState.COMPLETED, 0)), str(q.counts.get(JobState.DEAD, 0)),
                     q.defaults_text()])
    table(["queue", "limit", "state", "waiting", "running", "completed", "dead", "defaults"],
          rows, flex=0)
