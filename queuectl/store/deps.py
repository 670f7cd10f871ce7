"""Dependencies and unique keys, written once for every store: each function runs inside the
caller's write transaction on `c` (an sqlite3 connection or a PostgreSQL Tx, both taking `?`
SQL); the rules come from lifecycle and workflow."""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..errors import Conflict, InvalidInput
from ..lifecycle import Dependency, met_by, releases
from ..models import JobState, NewJob
from ..workflow import AFTER_ANY, AFTER_OK
from .queues import GATED_OF_JOB

ACTIVE = "('pending', 'failed', 'running')"


class Planned(NamedTuple):
    """What an enqueue of a batch does, decided inside its transaction."""

    ids: list[str]  # each job's id, in input order: a duplicate's is its existing job's
    new: list[int]  # the indexes of the jobs to insert
    existing: frozenset[str]  # ids that answered for a duplicate (an existing active job)
    blocked: dict[int, int]  # index -> dependencies not met yet
    deps: list[tuple[str, str, str, int]]  # (job id, after, kind, met) rows to insert


def plan(c, ids: Sequence[str], jobs: Sequence[NewJob], *, now: float,
         unique_for: float | None, on_conflict: str) -> Planned:
    """Decide a batch: which jobs a unique key answers with an existing job (or refuse them,
    `on_conflict="error"`), and each new job's dependencies, met or not. A dependency is on a
    job in the store or on an earlier job of the batch."""
    if not any(job.unique_key is not None or job.after or job.after_any for job in jobs):
        return Planned(list(ids), list(range(len(jobs))), frozenset(), {}, [])
    final = list(ids)
    existing: set[str] = set()
    keys: dict[str, int] = {}
    new = []
    for i, job in enumerate(jobs):
        found = None
        if job.unique_key is not None:
            if job.unique_key in keys:
                found = final[keys[job.unique_key]]
            else:
                found = _holder(c, job.unique_key, now, unique_for)
                keys[job.unique_key] = i
            if found is not None and on_conflict == "error":
                raise Conflict(f"a job with unique key {job.unique_key!r} is already there: "
                               f"{found}")
        if found is not None:
            final[i] = found
            existing.add(found)
        else:
            new.append(i)
    position = {final[i]: i for i in new}
    blocked: dict[int, int] = {}
    rows = []
    for i in new:
        job, job_id = jobs[i], final[i]
        unmet = 0
        for kind, afters in ((AFTER_OK, job.after), (AFTER_ANY, job.after_any)):
            for after in afters:
                if after == job_id:
                    raise InvalidInput(f"job {job_id!r} cannot depend on itself")
                if after in position:
                    if position[after] > i:
                        raise InvalidInput(
                            f"job {job_id!r} depends on {after!r}, which comes later in the "
                            "batch: a job may depend only on earlier ones (so no cycle forms)")
                    met = False
                else:
                    state = _state(c, after)
                    if state is None:
                        from ..errors import JobNotFound

                        raise JobNotFound(f"job {job_id!r} depends on {after!r}, which does "
                                          "not exist")
                    met = met_by(kind, state)
                unmet += not met
                rows.append((job_id, after, kind, int(met)))
        blocked[i] = unmet
    return Planned(final, new, frozenset(existing), blocked, rows)


def _holder(c, key: str, now: float, unique_for: float | None) -> str | None:
    """The job holding `key`: an active one, or one completed within `unique_for` seconds."""
    row = c.execute(f"SELECT id FROM jobs WHERE unique_key = ? AND state IN {ACTIVE}",
                    (key,)).fetchone()
    if row is None and unique_for is not None:
        row = c.execute("SELECT id FROM jobs WHERE unique_key = ? AND state = 'completed' "
                        "AND finished_at >= ? ORDER BY finished_at DESC LIMIT 1",
                        (key, now - unique_for)).fetchone()
    return None if row is None else row[0]


def _state(c, job_id: str) -> JobState | None:
    row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else JobState(row[0])


def insert(c, rows: Sequence[tuple]) -> None:
    if rows:
        c.executemany("INSERT INTO deps (job_id, after, kind, met) VALUES (?, ?, ?, ?)", rows)


def release(c, job_id: str, state: JobState) -> int:
    """`job_id` reached `state`: meet the dependencies on it that this meets; return how many
    of its dependents became ready."""
    kinds = releases(state)
    if not kinds:
        return 0
    marks = ",".join("?" * len(kinds))
    waiting = [r[0] for r in c.execute(
        f"UPDATE deps SET met = 1 WHERE after = ? AND met = 0 AND kind IN ({marks}) "
        "RETURNING job_id", (job_id, *kinds)).fetchall()]
    ready = 0
    for dependent in waiting:
        row = c.execute(f"UPDATE jobs SET blocked = blocked - 1, gated = {GATED_OF_JOB} "
                        "WHERE id = ? AND blocked > 0 RETURNING blocked",
                        (dependent,)).fetchone()
        ready += row is not None and row[0] == 0
    return ready


def dependencies(c, job_id: str) -> list[Dependency]:
    rows = c.execute("SELECT d.after, d.kind, d.met, j.state FROM deps d LEFT JOIN jobs j "
                     "ON j.id = d.after WHERE d.job_id = ? ORDER BY d.after",
                     (job_id,)).fetchall()
    return [Dependency(a, k, bool(m), None if s is None else JobState(s)) for a, k, m, s in rows]


def dependents(c, job_id: str) -> list[Dependency]:
    """The jobs waiting on `job_id` (or that waited), each with its own state."""
    rows = c.execute("SELECT d.job_id, d.kind, d.met, j.state FROM deps d LEFT JOIN jobs j "
                     "ON j.id = d.job_id WHERE d.after = ? ORDER BY d.job_id",
                     (job_id,)).fetchall()
    return [Dependency(a, k, bool(m), None if s is None else JobState(s)) for a, k, m, s in rows]


def waits_for(c, ids: Sequence[str]) -> dict[str, list[Dependency]]:
    """The unmet dependencies of each of `ids` that has some."""
    out: dict[str, list[Dependency]] = {}
    for start in range(0, len(ids), 500):
        part = list(ids[start:start + 500])
        marks = ",".join("?" * len(part))
        for job_id, after, kind, state in c.execute(
                "SELECT d.job_id, d.after, d.kind, j.state FROM deps d LEFT JOIN jobs j "
                f"ON j.id = d.after WHERE d.met = 0 AND d.job_id IN ({marks}) "
                "ORDER BY d.job_id, d.after", part).fetchall():
            out.setdefault(job_id, []).append(
                Dependency(after, kind, False, None if state is None else JobState(state)))
    return out


def waiting_dependents(c, job_ids: Sequence[str]) -> list[str]:
    """Every job that waits, directly or through others, on one of `job_ids` (not finished)."""
    found: list[str] = []
    seen = set(job_ids)
    todo = list(job_ids)
    while todo:
        after = todo.pop()
        for (job_id,) in c.execute(
                "SELECT d.job_id FROM deps d JOIN jobs j ON j.id = d.job_id WHERE d.after = ? "
                "AND d.met = 0 AND j.state IN ('pending', 'failed')", (after,)).fetchall():
            if job_id not in seen:
                seen.add(job_id)
                found.append(job_id)
                todo.append(job_id)
    return found
