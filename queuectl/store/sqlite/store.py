"""The SQLite store: one file in WAL mode, every state change one short guarded transaction."""

from __future__ import annotations

import os
import sqlite3
from typing import Iterable, Sequence

from ...errors import Conflict, JobNotFound, StoreUnusable
from ...models import Job, JobState, NewJob, new_job_id
from ...sanitize import one_line
from ..base import Control, Outcome, RetryPolicy, Status, Store, WorkerInfo
from .doorbell import ring
from ..reads import SharedReads
from ..rows import (enqueue_rows, job_from_row as _job, job_ids_for, like_pattern, list_groups,
                   store_output)
from .conn import open_connection, translated, write
from ..transitions import (CANCEL_RUNNING_SQL, CANCEL_WAITING_SQL, FINISH_RUN_SQL, FINISH_SQL,
                          JOB_COLUMNS, ORDER_WAITING, RESCUE_RUN_SQL, RESCUE_SQL,
                          RETRY_DEAD_RESET, finish_step, rescue_params, rescue_step)

_CLAIM = f"""
UPDATE jobs SET state = 'running', attempts = attempts + 1, runs = runs + 1, worker_id = ?,
    token = ?, lease_until = ?, started_at = ?, updated_at = ?, finished_at = NULL,
    exit_code = NULL, cancel = 0
WHERE seq = (
    SELECT seq FROM jobs INDEXED BY jobs_ready
    WHERE state IN ('pending', 'failed') AND run_at <= ?
    ORDER BY priority DESC, run_at, seq LIMIT 1
)
RETURNING {JOB_COLUMNS}
"""
# Waiting jobs are read through their partial indexes, named explicitly: without ANALYZE
# statistics the planner prefers (state, updated_at) and then sorts every waiting job.
_FROM_WAITING = "jobs INDEXED BY jobs_ready WHERE state IN ('pending', 'failed') AND"


class SQLiteStore(SharedReads, Store):
    def __init__(self, path: str, *, durability: str = "full") -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.location = self.path
        self.bell_path = self.path + "-bell"
        self._conn = open_connection(self.path, durability=durability)

    # -- plumbing
    def close(self) -> None:
        self._conn.close()

    def verify(self) -> None:
        problems = [r[0] for r in self._read("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise StoreUnusable(f"store {self.path} is corrupt or not a database "
                                f"({one_line(problems[0], 80)})")

    def _write(self):
        return write(self._conn, self.path)

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        with translated(self.path):
            return self._conn.execute(sql, params).fetchall()

    def doorbell(self, everything: bool = False):
        from .doorbell import Doorbell

        if everything:  # a console: any change of the database, its WAL or the bell
            return Doorbell(self.bell_path, also=(self.path, self.path + "-wal"), required=True)
        return Doorbell(self.bell_path)

    def ring(self) -> None:
        """Touch the doorbell file so idle workers wake (see doorbell.py)."""
        ring(self.bell_path)

    # -- config
    def config_items(self) -> dict[str, str]:
        return dict(self._read("SELECT key, value FROM config ORDER BY key"))

    def config_set(self, key: str, value: str) -> None:
        with self._write() as c:
            c.execute("INSERT INTO config (key, value) VALUES (?, ?) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
        self.ring()

    def config_unset(self, key: str) -> bool:
        with self._write() as c:
            changed = c.execute("DELETE FROM config WHERE key = ?", (key,)).rowcount
        return bool(changed)

    # -- enqueue
    def enqueue(self, jobs: Sequence[NewJob], *, now: float, default_max_retries: int,
                default_cwd: str) -> list[str]:
        ids = job_ids_for(jobs)
        given = [j.id for j in jobs if j.id is not None]
        for _ in range(5):
            rows = enqueue_rows(ids, jobs, now=now, default_max_retries=default_max_retries,
                                default_cwd=default_cwd)
            try:
                with self._write() as c:
                    c.executemany(
                        "INSERT INTO jobs (id, command, state, priority, max_retries, timeout, "
                        "cwd, run_at, created_at, updated_at) "
                        "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)", rows)
                    c.execute("UPDATE counts SET n = n + ? WHERE state = 'pending'", (len(rows),))
            except sqlite3.IntegrityError:
                taken = self._existing(ids)
                clash = [i for i in given if i in taken]
                if clash:
                    raise Conflict(f"job id {clash[0]!r} already exists") from None
                ids = [new_job_id() if (j.id is None and i in taken) else i
                       for i, j in zip(ids, jobs)]
                continue
            self.ring()
            return ids
        raise Conflict("could not generate unique job ids")  # pragma: no cover

    def _existing(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            found.update(r[0] for r in self._read(f"SELECT id FROM jobs WHERE id IN ({marks})", part))
        return found

    # -- reads
    def list_jobs(self, states: Iterable[JobState] | None = None, limit: int | None = 100,
                  text: str | None = None) -> list[Job]:
        where_text, params_text = "", []
        if text:
            where_text = " AND (id LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\')"
            params_text = [like_pattern(text)] * 2
        groups = list_groups(states)
        out: list[Job] = []
        for group, order in groups:
            remaining = -1 if limit is None else limit - len(out)
            if remaining == 0:
                break
            marks = ",".join("?" * len(group))
            source = _FROM_WAITING if order == ORDER_WAITING else "jobs WHERE"
            rows = self._read(
                f"SELECT {JOB_COLUMNS} FROM {source} state IN ({marks}){where_text} "
                f"{order} LIMIT ?", [s.value for s in group] + params_text + [remaining])
            out.extend(_job(r) for r in rows)
        return out

    def status(self, now: float, worker_timeout: float) -> Status:
        counts = {JobState(s): n for s, n in self._read("SELECT state, n FROM counts")}
        workers = self._read("SELECT count(*) FROM workers WHERE heartbeat_at >= ?",
                             (now - worker_timeout,))[0][0]
        first = self.next_due(now)
        recent = self._read(
            "SELECT count(*) FROM jobs WHERE state IN ('completed', 'dead') AND updated_at >= ?",
            (now - 60,))[0][0]
        oldest = now - first if first is not None and first <= now else None
        if first is not None and first <= now:
            later = self._read("SELECT run_at FROM jobs INDEXED BY jobs_due "
                               "WHERE state IN ('pending', 'failed') AND run_at > ? "
                               "ORDER BY run_at LIMIT 1", (now,))
            nxt = later[0][0] if later else None
        else:
            nxt = first
        return Status(counts=counts, workers=workers, oldest_waiting_age=oldest,
                      finished_last_minute=recent, next_due=nxt)

    def next_due(self, now: float) -> float | None:
        rows = self._read("SELECT run_at FROM jobs INDEXED BY jobs_due "
                          "WHERE state IN ('pending', 'failed') ORDER BY run_at LIMIT 1")
        return rows[0][0] if rows else None

    # -- people's actions
    def _check_ids(self, c: sqlite3.Connection, ids: Sequence[str]) -> dict[str, JobState]:
        states: dict[str, JobState] = {}
        for job_id in ids:
            row = c.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise JobNotFound(f"no job with id {job_id!r}")
            states[job_id] = JobState(row[0])
        return states

    def retry_dead(self, ids: Sequence[str] | None, *, now: float) -> list[str]:
        reset = RETRY_DEAD_RESET
        with self._write() as c:
            if ids is None:
                done = [r[0] for r in c.execute(
                    f"UPDATE jobs SET {reset} WHERE state = 'dead' RETURNING id", (now, now))]
            else:
                ids = list(dict.fromkeys(ids))
                for job_id, state in self._check_ids(c, ids).items():
                    if state is not JobState.DEAD:
                        raise Conflict(f"job {job_id!r} is {state.value}, not dead; only dead jobs can be retried")
                for job_id in ids:
                    c.execute(f"UPDATE jobs SET {reset} WHERE id = ? AND state = 'dead'",
                              (now, now, job_id))
                done = list(ids)
        if done:
            self.ring()
        return done

    def _delete_jobs(self, c: sqlite3.Connection, where: str, params: Sequence) -> int:
        c.execute("CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY)")
        c.execute("DELETE FROM doomed")
        c.execute(f"INSERT INTO doomed SELECT id FROM jobs WHERE {where}", params)
        c.execute("DELETE FROM output WHERE run_id IN "
                  "(SELECT r.id FROM runs r JOIN doomed d ON r.job_id = d.id)")
        c.execute("DELETE FROM runs WHERE job_id IN (SELECT id FROM doomed)")
        n = c.execute("DELETE FROM jobs WHERE id IN (SELECT id FROM doomed)").rowcount
        c.execute("DELETE FROM doomed")
        return n

    def purge_dead(self) -> int:
        with self._write() as c:
            return self._delete_jobs(c, "state = 'dead'", ())

    def prune(self, *, before: float, states: Sequence[JobState]) -> int:
        marks = ",".join("?" * len(states))
        with self._write() as c:
            return self._delete_jobs(c, f"state IN ({marks}) AND updated_at < ?",
                                     [s.value for s in states] + [before])

    def cancel(self, ids: Sequence[str], *, now: float) -> dict[str, str]:
        result: dict[str, str] = {}
        with self._write() as c:
            ids = list(dict.fromkeys(ids))
            for job_id, state in self._check_ids(c, ids).items():
                if state in (JobState.COMPLETED, JobState.DEAD):
                    raise Conflict(f"job {job_id!r} is already {state.value}; nothing to cancel")
            for job_id in ids:
                cur = c.execute(CANCEL_WAITING_SQL, (now, now, job_id))
                if cur.rowcount:
                    result[job_id] = "cancelled"
                else:
                    c.execute(CANCEL_RUNNING_SQL, (job_id,))
                    result[job_id] = "cancelling"
        self.ring()
        return result

    # -- workers
    def register_worker(self, worker_id: str, pid: int, host: str, now: float) -> None:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO workers (id, pid, host, started_at, heartbeat_at) "
                      "VALUES (?, ?, ?, ?, ?)", (worker_id, pid, host, now, now))

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def workers(self) -> list[WorkerInfo]:
        rows = self._read("SELECT id, pid, host, started_at, heartbeat_at, job_id, stop "
                          "FROM workers ORDER BY started_at, id")
        return [WorkerInfo(*r) for r in rows]

    def heartbeat(self, worker_id: str, now: float) -> int | None:
        with self._write() as c:
            row = c.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ? RETURNING stop",
                            (now, worker_id)).fetchone()
        return None if row is None else row[0]

    def request_stop(self, mode: int, worker_ids: Sequence[str] | None = None) -> int:
        with self._write() as c:
            if worker_ids is None:
                n = c.execute("UPDATE workers SET stop = max(stop, ?)", (mode,)).rowcount
            else:
                n = sum(c.execute("UPDATE workers SET stop = max(stop, ?) WHERE id = ?",
                                  (mode, w)).rowcount for w in worker_ids)
        self.ring()
        return n

    def _claim(self, c: sqlite3.Connection, worker_id: str, now: float, lease: float) -> Job | None:
        token = os.urandom(8).hex()
        row = c.execute(_CLAIM, (worker_id, token, now + lease, now, now, now)).fetchone()
        if row is None:
            return None
        job = _job(row)
        c.execute("INSERT INTO runs (job_id, attempt, started_at, worker, host) "
                  "VALUES (?, ?, ?, ?, (SELECT host FROM workers WHERE id = ?))",
                  (job.id, job.run_number, now, worker_id, worker_id))
        c.execute("UPDATE workers SET job_id = ?, heartbeat_at = ? WHERE id = ?",
                  (job.id, now, worker_id))
        return job

    def claim(self, worker_id: str, *, now: float, lease: float) -> Job | None:
        with self._write() as c:
            return self._claim(c, worker_id, now, lease)

    def renew(self, job: Job, *, now: float, lease: float,
              head: Sequence[tuple[int, bytes]] = (),
              tail: tuple[Sequence[tuple[int, bytes]], int] | None = None) -> Control:
        with self._write() as c:
            row = c.execute("UPDATE jobs SET lease_until = ? "
                            "WHERE id = ? AND state = 'running' AND token = ? RETURNING cancel",
                            (now + lease, job.id, job.token)).fetchone()
            if row is None:
                return Control(lease_lost=True, cancel=False, stop=0)
            store_output(c, job, head, tail)
            w = c.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ? RETURNING stop",
                          (now, job.worker_id)).fetchone()
        return Control(lease_lost=False, cancel=bool(row[0]), stop=w[0] if w else 0)

    def control(self, job: Job) -> Control:
        rows = self._read("SELECT j.cancel, j.state = 'running' AND j.token IS ?, "
                          "(SELECT stop FROM workers WHERE id = ?) FROM jobs j WHERE j.id = ?",
                          (job.token, job.worker_id, job.id))
        if not rows or not rows[0][1]:
            return Control(lease_lost=True, cancel=False, stop=0)
        return Control(lease_lost=False, cancel=bool(rows[0][0]), stop=rows[0][2] or 0)

    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Sequence[tuple[int, bytes]] = (),
               tail: tuple[Sequence[tuple[int, bytes]], int] | None = None,
               claim_next: str | None = None, lease: float = 0.0) -> tuple[bool, Job | None]:
        step = finish_step(job, outcome, now, policy)
        with self._write() as c:
            cur = c.execute(FINISH_SQL.format(assignments=step.assignments),
                            step.params + [now, job.id, job.token])
            if cur.rowcount != 1:
                return False, None  # stale claim: the guarded UPDATE changed nothing
            store_output(c, job, head, tail)
            c.execute(FINISH_RUN_SQL, (now, outcome.exit_code, outcome.signal, step.run_outcome,
                                       outcome.error, job.id, job.run_number))
            nxt = self._claim(c, claim_next, now, lease) if claim_next else None
            if nxt is None or claim_next != job.worker_id:  # else the claim updated the row
                c.execute("UPDATE workers SET job_id = NULL, heartbeat_at = ? WHERE id = ?",
                          (now, job.worker_id))
        if step.wakes_workers:
            self.ring()
        return True, nxt

    def rescue(self, *, now: float, policy: RetryPolicy,
               worker_ids: Sequence[str] | None = None, stale_before: float | None = None,
               lapsed: Sequence[tuple[str, str]] | None = None) -> list[str]:
        dead_workers = list(worker_ids or ())
        rescued: list[str] = []
        with self._write() as c:
            marks = ",".join("?" * len(dead_workers))
            by_worker = f" OR worker_id IN ({marks})" if dead_workers else ""
            by_lease, params = ("lease_until < ?", [now]) if lapsed is None else ("0", [])
            rows = c.execute(
                f"SELECT {JOB_COLUMNS}, rescues, cancel FROM jobs WHERE state = 'running' "
                f"AND ({by_lease}{by_worker})", params + dead_workers).fetchall()
            found = {row[0] for row in rows}
            for job_id, token in lapsed or ():
                row = c.execute(f"SELECT {JOB_COLUMNS}, rescues, cancel FROM jobs "
                                "WHERE id = ? AND state = 'running' AND token = ?",
                                (job_id, token)).fetchone()
                if row is not None and row[0] not in found:
                    rows.append(row)
                    found.add(row[0])
            for row in rows:
                job, rescues, cancel = _job(row[:-2]), row[-2] + 1, bool(row[-1])
                step = rescue_step(job, rescues, cancel, dead_workers, now, policy)
                c.execute(RESCUE_SQL, rescue_params(job, step, rescues, cancel, now))
                c.execute(RESCUE_RUN_SQL, (now, step.run_error, job.id, job.run_number))
                rescued.append(job.id)
            if dead_workers:
                c.execute(f"DELETE FROM workers WHERE id IN ({marks})", dead_workers)
            if stale_before is not None:
                c.execute("DELETE FROM workers WHERE heartbeat_at < ?",
                          (stale_before,))
        if rescued:
            self.ring()
        return rescued
