"""Schedules, written once for every store: each function runs inside the caller's write
transaction on `c` (an sqlite3 connection or a PostgreSQL Tx, both taking `?` SQL).

Firing is exactly once per tick however many pools run: a pool's fire moves the schedule's
`next_at` with a compare-and-set (`WHERE next_at = ?`) in the transaction that enqueues the
tick's job, under the unique key `schedule:NAME:TICK`; a racing pool's move changes no row
and its transaction makes no job.
"""

from __future__ import annotations

import json
from typing import NamedTuple, Sequence

from ..errors import Conflict, InvalidInput, NotFound
from ..models import JobState, NewJob, new_job_ids, validate_spec
from ..ticks import Rule, due, next_after
from .inserts import insert_jobs

COLUMNS = ("name, cron, tz, every, anchor, spec, cwd, next_at, paused, overlap, catch_up, "
           "last_job, last_tick, skipped, missed, created_at")
ACTIVE = ("pending", "failed", "running")


class ScheduleInfo(NamedTuple):
    name: str
    rule: Rule
    spec: dict  # the job template (validated as `enqueue` validates a spec)
    cwd: str
    next_at: float
    paused: bool
    overlap: str
    catch_up: str
    last_job: str | None
    last_tick: float | None
    last_state: JobState | None  # the last job's state now (None: none, or deleted)
    skipped: int  # ticks skipped because the previous job still ran (overlap skip)
    missed: int  # ticks that passed while nothing ran (merged into one job, or none)
    created_at: float


class Fired(NamedTuple):
    schedule: str
    tick: float | None
    job_id: str | None  # None: the tick was skipped (overlap) or missed (catch-up none)
    why: str  # "fired", "skipped", "missed"


def _info(c, row: Sequence) -> ScheduleInfo:
    (name, cron, tz, every, anchor, spec, cwd, next_at, paused, overlap, catch_up, last_job,
     last_tick, skipped, missed, created) = row
    state = None
    if last_job is not None:
        found = c.execute("SELECT state FROM jobs WHERE id = ?", (last_job,)).fetchone()
        state = None if found is None else JobState(found[0])
    return ScheduleInfo(name, Rule(cron, tz, every, anchor), json.loads(spec), cwd, next_at,
                        bool(paused), overlap, catch_up, last_job, last_tick, state, skipped,
                        missed, created)


def get(c, name: str, lock: str = "") -> ScheduleInfo:
    row = c.execute(f"SELECT {COLUMNS} FROM schedules WHERE name = ?{lock}", (name,)).fetchone()
    if row is None:
        raise NotFound(f"no schedule named {name!r} (queuectl schedule list shows them)")
    return _info(c, row)


def listing(c) -> list[ScheduleInfo]:
    return [_info(c, r) for r in
            c.execute(f"SELECT {COLUMNS} FROM schedules ORDER BY name").fetchall()]


def add(c, name: str, rule: Rule, spec: dict, cwd: str, *, overlap: str, catch_up: str,
        now: float) -> ScheduleInfo:
    validate_spec(spec)  # the template makes valid jobs
    if c.execute("SELECT 1 FROM schedules WHERE name = ?", (name,)).fetchone():
        raise Conflict(f"a schedule named {name!r} exists (remove it first)")
    c.execute(f"INSERT INTO schedules ({COLUMNS}) VALUES "
              "(?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, NULL, 0, 0, ?)",
              (name, rule.cron, rule.tz, rule.every, rule.anchor, json.dumps(spec), cwd,
               next_after(rule, now), overlap, catch_up, now))
    return get(c, name)


def set_paused(c, name: str, paused: bool, now: float) -> ScheduleInfo:
    current = get(c, name)
    next_at = current.next_at if paused else next_after(current.rule, now)  # no catch-up
    c.execute("UPDATE schedules SET paused = ?, next_at = ? WHERE name = ?",
              (int(paused), next_at, name))
    return get(c, name)


def remove(c, name: str) -> None:
    get(c, name)
    c.execute("DELETE FROM schedules WHERE name = ?", (name,))


def next_tick(c) -> float | None:
    row = c.execute("SELECT min(next_at) FROM schedules WHERE paused = 0").fetchone()
    return None if row is None else row[0]


def _make_job(c, s: ScheduleInfo, key: str, *, now: float, default_max_retries: int,
              count_rows: bool) -> str:
    spec = dict(s.spec)
    job = validate_spec(spec)._replace(unique_key=key, origin=f"schedule:{s.name}")
    made = insert_jobs(c, new_job_ids(1), [job], now=now, default_max_retries=default_max_retries,
                       default_cwd=s.cwd, count_rows=count_rows)
    return made[0]


def fire(c, now: float, *, default_max_retries: int, count_rows: bool,
         lock: str = "") -> list[Fired]:
    """Every unpaused schedule whose tick has come: one job for it (ticks missed while nothing
    ran merge into it; catch-up none skips them), or a skip when the previous job still runs
    (overlap skip); then its next tick."""
    fired = []
    for row in c.execute(f"SELECT {COLUMNS} FROM schedules WHERE paused = 0 AND next_at <= ? "
                         f"ORDER BY next_at{lock}", (now,)).fetchall():
        s = _info(c, row)
        d = due(s.rule, s.next_at, now, s.catch_up)
        moved = c.execute("UPDATE schedules SET next_at = ?, missed = missed + ? "
                          "WHERE name = ? AND next_at = ?",
                          (d.next_at, d.missed, s.name, s.next_at)).rowcount
        if not moved:  # another pool fired this tick
            continue
        if d.tick is None:
            fired.append(Fired(s.name, None, None, "missed"))
            continue
        if s.overlap == "skip" and s.last_state is not None and s.last_state.value in ACTIVE:
            c.execute("UPDATE schedules SET skipped = skipped + 1 WHERE name = ?", (s.name,))
            fired.append(Fired(s.name, d.tick, None, "skipped"))
            continue
        job_id = _make_job(c, s, f"schedule:{s.name}:{d.tick:.3f}", now=now,
                           default_max_retries=default_max_retries, count_rows=count_rows)
        c.execute("UPDATE schedules SET last_job = ?, last_tick = ? WHERE name = ?",
                  (job_id, d.tick, s.name))
        fired.append(Fired(s.name, d.tick, job_id, "fired"))
    return fired


def run_now(c, name: str, now: float, *, default_max_retries: int, count_rows: bool) -> str:
    """A job of the schedule now, outside its ticks (its next tick stays)."""
    s = get(c, name)
    job_id = _make_job(c, s, f"schedule:{s.name}:now:{now:.6f}", now=now,
                       default_max_retries=default_max_retries, count_rows=count_rows)
    c.execute("UPDATE schedules SET last_job = ?, last_tick = ? WHERE name = ?",
              (job_id, now, name))
    return job_id


def template(command: str, spec: dict) -> dict:
    """A schedule's job template: `command` plus the job options given (as a spec)."""
    if "unique_key" in spec:
        raise InvalidInput("a schedule's jobs get unique keys of their own (schedule:NAME:TICK)")
    out = {"command": command, **spec}
    validate_spec(out)
    return out


def job_spec_of(schedule: ScheduleInfo) -> NewJob:
    return validate_spec(dict(schedule.spec))
