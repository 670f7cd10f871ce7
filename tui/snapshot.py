"""Immutable snapshots of the queue for the console, and the plain-text rows of each pane.

Built off the UI thread by `loader.Loader`; widgets only apply them. Cells are plain strings
already made inert with `sanitize`; the widgets wrap them in Rich `Text` (never markup).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from queuectl.durations import format_duration, relative
from queuectl.lifecycle import Dependency, never_runs, why_blocked
from queuectl.logview import Piece
from queuectl.models import Job, JobState, QueueInfo, Run
from queuectl.sanitize import one_line

PANES: tuple[str, ...] = ("pending", "running", "completed", "dead")
PANE_STATES: Mapping[str, tuple[JobState, ...]] = MappingProxyType({
    "pending": (JobState.PENDING, JobState.FAILED),
    "running": (JobState.RUNNING,),
    "completed": (JobState.COMPLETED,),
    "dead": (JobState.DEAD,),
})
PANE_TITLES: Mapping[str, str] = MappingProxyType({
    "pending": "Pending", "running": "Running", "completed": "Completed", "dead": "Dead",
})
CELL_LIMIT = 200  # characters kept per cell; the table crops to the column width
PANE_LIMIT = 200  # rows read per pane: the SQL LIMIT, so a refresh costs the same at any size


@dataclass(frozen=True)
class Row:
    """One job as the plain strings of its pane's columns; `tone` picks a style."""

    key: str
    cells: tuple[str, ...]
    tone: str = ""


@dataclass(frozen=True)
class PaneData:
    name: str
    total: int  # jobs in these states in the whole store
    rows: tuple[Row, ...]  # at most the request's limit, in display order


@dataclass(frozen=True)
class LogRequest:
    """What the log viewer shows: a job, an attempt (None = latest), bytes already shown."""

    job_id: str
    attempt: int | None = None
    offset: int = 0


@dataclass(frozen=True)
class LogData:
    job_id: str
    job: Job | None  # None when the job no longer exists
    runs: tuple[Run, ...]
    attempt: int  # 0 = has not run yet
    start: int  # byte offset the pieces start at (the request's offset)
    end: int  # byte offset to continue from
    pieces: tuple[Piece, ...]
    requested: int | None = None  # the attempt the request named
    deps: tuple[Dependency, ...] = ()  # what the job waits or waited for


@dataclass(frozen=True)
class Request:
    seq: int
    text: str | None = None
    limit: int = PANE_LIMIT
    log: LogRequest | None = None
    queue: str | None = None  # only this queue's jobs: list_jobs(queue=...), in the store
    schedules: bool = False  # read the schedules too (the schedule view is open)


@dataclass(frozen=True)
class WorkersView:
    own: int = 0
    external: int = 0
    busy: int = 0
    target: int | None = None  # the pool's size; None = watch-only console
    paused: bool = False


@dataclass(frozen=True)
class QueueRow:
    """One queue as the queue view shows it: its name (the key the keys act on, raw), its
    state, and the plain strings of columns.QUEUE_COLUMNS."""

    name: str
    paused: bool
    kill: bool
    running: int
    cells: tuple[str, ...]

    @property
    def state(self) -> str:
        return queue_state(self.paused, self.kill)


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule as the schedule view shows it: its name (the key the keys act on, raw),
    whether it is paused, and the plain strings of columns.SCHEDULE_COLUMNS."""

    name: str
    paused: bool
    cells: tuple[str, ...]

    @property
    def state(self) -> str:
        return "paused" if self.paused else "active"


def queue_state(paused: bool, kill: bool) -> str:
    return ("paused+kill" if kill else "paused") if paused else "open"


@dataclass(frozen=True)
class Snapshot:
    seq: int
    taken_at: float
    counts: Mapping[JobState, int]
    workers: WorkersView
    rate: float  # jobs finished per second, averaged over the last minute
    spark: str
    panes: Mapping[str, PaneData]
    log: LogData | None = None
    text: str | None = None
    queues: tuple[QueueRow, ...] = ()  # every queue, by name
    queue: str | None = None  # the queue the panes are filtered to
    schedules: tuple[ScheduleRow, ...] | None = None  # None: not read (the view is closed)

    @property
    def paused_queues(self) -> list[str]:
        return [q.name for q in self.queues if q.paused]


def _cell(text: str | None) -> str:
    return one_line(text, CELL_LIMIT)


def _tries(job: Job) -> str:
    return f"{job.tries}/{job.max_retries + 1}"


def _queue(job: Job) -> str:
    """The job's queue; running in a limited queue, with its slot (`gpu#2`: QUEUECTL_SLOT=2)."""
    return _cell(job.queue if job.slot is None else f"{job.queue}#{job.slot}")


def depends_text(deps: tuple[Dependency, ...] | list[Dependency]) -> str:
    """What a job's dependencies are, for people: "waits for a, b (dead)" while some are
    unmet, else "after a, b"; empty without dependencies."""
    return why_blocked(deps) or ("after " + ", ".join(d.after for d in deps) if deps else "")


def job_row(pane: str, job: Job, now: float, waits: list[Dependency] | None = None) -> Row:
    """The cells of `job` in `pane` at time `now`, in the order of columns.COLUMNS[pane].

    `waits`: the unmet dependencies of a blocked job (Store.waits_for); its command cell
    starts with what it waits for, and its `when` says "blocked" (or "never runs" while a
    dependency is dead or gone)."""
    jid, queue, command = _cell(job.id), _queue(job), _cell(job.command)
    if pane == "pending":
        if job.blocked and job.state is JobState.PENDING:
            stuck = any(never_runs(d) for d in waits or ())
            when, tone = ("never runs", "stuck") if stuck else ("blocked", "blocked")
            if waits:
                command = _cell(f"{why_blocked(waits)} · {job.command}")
        elif job.state is JobState.FAILED:
            due = job.run_at - now
            when = f"retry in {format_duration(due)}" if due >= 0.5 else "retry now"
            tone = "retry"
        elif job.run_at - now >= 0.5:
            when, tone = relative(job.run_at, now), "delayed"
        else:
            when, tone = "ready", ""
        return Row(job.id, (jid, queue, str(job.priority), when, _tries(job), command), tone)
    if pane == "running":
        elapsed = format_duration(now - job.started_at) if job.started_at else "-"
        return Row(job.id, (jid, queue, elapsed, _cell(job.worker_id or "-"), _tries(job),
                            command))
    if pane == "completed":
        took = (format_duration(job.finished_at - job.started_at)
                if job.finished_at and job.started_at else "-")
        exit_code = "-" if job.exit_code is None else str(job.exit_code)
        return Row(job.id, (jid, queue, took, relative(job.finished_at, now), exit_code, command))
    died = relative(job.finished_at or job.updated_at, now)
    tone = "cancelled" if job.cancelled else ""
    return Row(job.id, (jid, queue, _tries(job), died, _cell(job.last_error or "-"), command),
               tone)



def queue_row(queue: QueueInfo) -> QueueRow:
    """`queue` as the queue view's cells, in the order of columns.QUEUE_COLUMNS."""
    limit = "unlimited" if queue.concurrency is None else f"{queue.concurrency:,}"
    counts = (queue.waiting, queue.running, queue.counts.get(JobState.COMPLETED, 0),
              queue.counts.get(JobState.DEAD, 0))
    cells = (_cell(queue.name), limit, queue_state(queue.paused, queue.kill),
             *(f"{n:,}" for n in counts), queue.defaults_text() or "-")
    return QueueRow(queue.name, queue.paused, queue.kill, queue.running, cells)


def schedule_row(schedule, now: float) -> ScheduleRow:
    """`schedule` (a ScheduleInfo) as the schedule view's cells, in the order of
    columns.SCHEDULE_COLUMNS."""
    state = "paused" if schedule.paused else "active"
    nxt = "-" if schedule.paused else relative(schedule.next_at, now)
    last = "-" if schedule.last_job is None else _cell(schedule.last_job)
    last_state = ("-" if schedule.last_job is None else
                  "gone" if schedule.last_state is None else schedule.last_state.value)
    cells = (_cell(schedule.name), _cell(schedule.rule.describe()), state, nxt, last, last_state,
             _cell(str(schedule.spec.get("command", ""))))
    return ScheduleRow(schedule.name, schedule.paused, cells)


def header_counts(counts: Mapping[JobState, int]) -> list[tuple[str, int]]:
    """(label, number) pairs for the header, in pane order; failed ones are shown apart."""
    return [
        ("pending", counts.get(JobState.PENDING, 0)),
        ("retrying", counts.get(JobState.FAILED, 0)),
        ("running", counts.get(JobState.RUNNING, 0)),
        ("completed", counts.get(JobState.COMPLETED, 0)),
        ("dead", counts.get(JobState.DEAD, 0)),
    ]
