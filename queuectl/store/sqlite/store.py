"""The SQLite store: one file in WAL mode, every state change one short guarded transaction."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Iterable, Sequence

from ...errors import StoreUnusable
from ...lifecycle import Outcome, RetryPolicy, finish_change, given_back_state, rescue_change
from ...models import Job, JobState, NewJob
from ...sanitize import one_line
from .. import actions
from ..base import (Chunks, Finished, Lease, Orders, Status, Stop, Store, Tail,
                    WorkerInfo)
from ..reads import SharedReads
from ..rows import enqueue_rows, job_from_row as _job, like_pattern, list_groups, store_output
from ..sql import (FINISH_SQL, JOB_COLUMNS, ORDER_WAITING, RELEASE_RUN_SQL, RELEASE_SQL,
                   APPLY_SQL, RUN_END_SQL, WORKER_STOP, change_params, run_end_params)
from .conn import open_connection, translated, write
from .doorbell import ring

_CLAIM = f"""
UPDATE jobs SET state = 'running', attempts = attempts + 1, runs = runs + 1, worker_id = ?,
    token = ?, lease_until = ?, lease = ?, started_at = ?, updated_at = ?, finished_at = NULL,
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
_RUNNING_ROW = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND state = 'running' AND token = ?"


class SQLiteStore(SharedReads, Store):
    def __init__(self, path: str, *, durability: str = "full", create: bool = True) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.location = self.path
        self.bell_path = self.path + "-bell"
        self._conn = open_connection(self.path, durability=durability, create=create)

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

        return None if everything else Doorbell(self.bell_path)

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
        def insert(ids: list[str]) -> None:
            rows = enqueue_rows(ids, jobs, now=now, default_max_retries=default_max_retries,
                                default_cwd=default_cwd)
            with self._write() as c:
                c.executemany(
                    "INSERT INTO jobs (id, command, state, priority, max_retries, timeout, "
                    "cwd, run_at, created_at, updated_at) "
                    "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)", rows)
                c.execute("UPDATE counts SET n = n + ? WHERE state = 'pending'", (len(rows),))

        ids = actions.enqueue_with_fresh_ids(jobs, insert, self._existing, sqlite3.IntegrityError)
        self.ring()
        return ids

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
        out: list[Job] = []
        for group, order in list_groups(states):
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
    def retry_dead(self, ids: Sequence[str] | None, *, now: float) -> list[str]:
        with self._write() as c:
            done = actions.retry_dead(c, ids, now)
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
        with self._write() as c:
            result = actions.cancel(c, ids, now)
        self.ring()
        return result

    # -- workers
    def register_worker(self, worker_id: str, pid: int, host: str, now: float, *,
                        started_at: float | None = None) -> Stop:
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO workers (id, pid, host, started_at, heartbeat_at) "
                      "VALUES (?, ?, ?, ?, ?)", (worker_id, pid, host, started_at or now, now))
            row = c.execute(f"SELECT {WORKER_STOP} FROM workers w WHERE id = ?",
                            (worker_id,)).fetchone()
        return Stop(row[0])

    def unregister_worker(self, worker_id: str) -> None:
        with self._write() as c:
            c.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    def workers(self) -> list[WorkerInfo]:
        rows = self._read("SELECT id, pid, host, started_at, heartbeat_at, job_id, "
                          f"{WORKER_STOP} FROM workers w ORDER BY started_at, id")
        return [WorkerInfo(*r[:-1], Stop(r[-1])) for r in rows]

    def heartbeat(self, worker_id: str, now: float) -> Stop | None:
        with self._write() as c:
            c.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (now, worker_id))
            row = c.execute(f"SELECT {WORKER_STOP} FROM workers w WHERE id = ?",
                            (worker_id,)).fetchone()
        return None if row is None else Stop(row[0])

    def request_stop(self, mode: Stop, worker_ids: Sequence[str] | None = None, *,
                     now: float | None = None) -> int:
        with self._write() as c:
            if worker_ids is None:
                n = c.execute("UPDATE workers SET stop = max(stop, ?)", (int(mode),)).rowcount
                c.execute("INSERT INTO stops (mode, at) VALUES (?, ?) ON CONFLICT (mode) "
                          "DO UPDATE SET at = excluded.at",
                          (int(mode), self.now() if now is None else now))
            else:
                n = sum(c.execute("UPDATE workers SET stop = max(stop, ?) WHERE id = ?",
                                  (int(mode), w)).rowcount for w in worker_ids)
        self.ring()
        return n

    def remove_stale_workers(self, before: float) -> int:
        with self._write() as c:
            return c.execute("DELETE FROM workers WHERE heartbeat_at < ?", (before,)).rowcount

    # -- running jobs
    def _claim(self, c: sqlite3.Connection, worker_id: str, now: float, lease: float) -> Job | None:
        token = os.urandom(8).hex()
        row = c.execute(_CLAIM, (worker_id, token, now + lease, lease, now, now, now)).fetchone()
        if row is None:
            return None
        job = _job(row)
        c.execute("INSERT INTO runs (job_id, attempt, started_at, worker, host) "
                  "VALUES (?, ?, ?, ?, (SELECT host FROM workers WHERE id = ?))",
                  (job.id, job.attempt, now, worker_id, worker_id))
        c.execute("UPDATE workers SET job_id = ?, heartbeat_at = ? WHERE id = ?",
                  (job.id, now, worker_id))
        return job

    def claim(self, worker_id: str, *, now: float, lease: float) -> Job | None:
        with self._write() as c:
            return self._claim(c, worker_id, now, lease)

    def renew(self, job: Job, *, now: float, lease: float, head: Chunks = (),
              tail: Tail | None = None) -> Orders:
        with self._write() as c:
            row = c.execute("UPDATE jobs SET lease_until = ?, lease = ? "
                            "WHERE id = ? AND state = 'running' AND token = ? RETURNING cancel",
                            (now + lease, lease, job.id, job.token)).fetchone()
            if row is None:
                return Orders(lease_lost=True, cancel=False, stop=Stop.NONE)
            store_output(c, job, head, tail)
            c.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (now, job.worker_id))
            w = c.execute(f"SELECT {WORKER_STOP} FROM workers w WHERE id = ?",
                          (job.worker_id,)).fetchone()
        return Orders(lease_lost=False, cancel=bool(row[0]), stop=Stop(w[0] if w else 0))

    def orders(self, job: Job) -> Orders:
        rows = self._read(f"SELECT j.cancel, j.state = 'running' AND j.token IS ?, "
                          f"(SELECT {WORKER_STOP} FROM workers w WHERE w.id = ?) "
                          "FROM jobs j WHERE j.id = ?", (job.token, job.worker_id, job.id))
        if not rows or not rows[0][1]:
            return Orders(lease_lost=True, cancel=False, stop=Stop.NONE)
        return Orders(lease_lost=False, cancel=bool(rows[0][0]), stop=Stop(rows[0][2] or 0))

    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Chunks = (), tail: Tail | None = None, claim_next: str | None = None,
               lease: float = 0.0) -> Finished:
        change = finish_change(job, outcome, now=now, policy=policy,
                               cancel_requested=job.cancel_requested)
        with self._write() as c:
            guard = [job.id, job.token, int(job.cancel_requested)]
            if c.execute(FINISH_SQL, change_params(change, now) + guard).rowcount != 1:
                row = c.execute(_RUNNING_ROW, (job.id, job.token)).fetchone()
                if row is None:
                    return Finished(False, None, None)  # stale claim: nothing changed
                # Cancelled since the worker last looked: decide again with the row's flag.
                change = finish_change(job, outcome, now=now, policy=policy,
                                       cancel_requested=_job(row).cancel_requested)
                c.execute(APPLY_SQL, change_params(change, now) + guard[:2])
            store_output(c, job, head, tail)
            c.execute(RUN_END_SQL, run_end_params(job, change, now, outcome.signal))
            nxt = self._claim(c, claim_next, now, lease) if claim_next else None
            if nxt is None or claim_next != job.worker_id:  # else the claim updated the row
                c.execute("UPDATE workers SET job_id = NULL, heartbeat_at = ? WHERE id = ?",
                          (now, job.worker_id))
        if change.wakes_workers:
            self.ring()
        return Finished(True, change.state, nxt)

    def release(self, job: Job, *, now: float) -> bool:
        with self._write() as c:
            done = c.execute(RELEASE_SQL, (given_back_state(job).value, now, job.id,
                                           job.token)).rowcount == 1
            if done:
                c.execute(RELEASE_RUN_SQL, (job.id, job.attempt))
                c.execute("UPDATE workers SET job_id = NULL WHERE id = ? AND job_id = ?",
                          (job.worker_id, job.id))
        if done:
            self.ring()
        return done

    def _rescue_rows(self, c: sqlite3.Connection, rows: list, died: set[str], now: float,
                     policy: RetryPolicy) -> list[str]:
        rescued = []
        for row in rows:
            job = _job(row)
            change = rescue_change(job, died=job.worker_id in died, now=now, policy=policy,
                                   cancel_requested=job.cancel_requested)
            if c.execute(APPLY_SQL, change_params(change, now) + [job.id, job.token]).rowcount:
                c.execute(RUN_END_SQL, run_end_params(job, change, now))
                rescued.append(job.id)
        return rescued

    def rescue_dead_workers(self, worker_ids: Sequence[str], *, now: float,
                            policy: RetryPolicy) -> list[str]:
        dead = list(dict.fromkeys(worker_ids))
        if not dead:
            return []
        marks = ",".join("?" * len(dead))
        with self._write() as c:
            rows = c.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' "
                             f"AND worker_id IN ({marks}) ORDER BY seq", dead).fetchall()
            rescued = self._rescue_rows(c, rows, set(dead), now, policy)
            c.execute(f"DELETE FROM workers WHERE id IN ({marks})", dead)
        if rescued:
            self.ring()
        return rescued

    def rescue_lapsed(self, leases: Sequence[Lease], *, now: float, policy: RetryPolicy,
                      max_wait: float) -> list[str] | None:
        if not leases:
            return []
        asked = time.monotonic()
        with self._write() as c:
            if time.monotonic() - asked > max_wait:
                return None  # the write lock was held: renewals were waiting for it too
            rows = [row for lease in leases for row in c.execute(
                _RUNNING_ROW + " AND lease_until = ?",
                (lease.job_id, lease.token, lease.lease_until)).fetchall()]
            rescued = self._rescue_rows(c, rows, set(), now, policy)
        if rescued:
            self.ring()
        return rescued
