"""The SQLite store: one file in WAL mode, every state change one short guarded transaction."""

from __future__ import annotations

import os
import sqlite3
from typing import Iterable, Sequence

from ...errors import StoreUnusable
from ...models import Job, JobState, NewJob, QueueInfo
from ...sanitize import one_line
from .. import actions, deps, hooks as hook_ops, inserts, queues as queue_ops
from .. import schedules as schedule_ops
from ..base import Enqueued, Status, Stop, Store, WorkerInfo
from ..reads import SharedReads
from ..rows import job_from_row as _job, like_pattern, list_groups
from ..sql import JOB_COLUMNS, ORDER_WAITING, WORKER_STOP
from .bulk import insert_rows, page_cache_for
from .claims import Claims
from .conn import open_connection, translated, write
from .doorbell import ring, wake_mechanisms

# Waiting jobs are read through their partial indexes, named explicitly: without ANALYZE
# statistics the planner prefers (state, updated_at) and then sorts every waiting job.
_FROM_WAITING = "jobs INDEXED BY jobs_waiting WHERE state IN ('pending', 'failed') AND"
_FROM_QUEUE_WAITING = ("jobs INDEXED BY jobs_queue_waiting WHERE state IN ('pending', 'failed') "
                       "AND")
class SQLiteStore(Claims, SharedReads, Store):
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

        if everything:  # a console: any change of the database, its WAL or the bell
            return Doorbell(self.bell_path, also=(self.path, self.path + "-wal"), required=True)
        return Doorbell(self.bell_path, mechanisms=wake_mechanisms())

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
                default_cwd: str, unique_for: float | None = None,
                on_conflict: str = "existing") -> Enqueued:
        answered: list[Enqueued] = []

        def insert(ids: list[str]) -> list[str]:
            with self._write() as c:
                planned, rows = inserts.plan_rows(
                    c, ids, jobs, now=now, default_max_retries=default_max_retries,
                    default_cwd=default_cwd, unique_for=unique_for, on_conflict=on_conflict,
                    count_rows=True)
                insert_rows(c, "jobs", inserts.INSERT_COLUMNS, rows, "'pending'")
                done = inserts.finish_batch(c, planned, rows, count_rows=True)
            answered.append(done)
            return list(done)

        with translated(self.path), page_cache_for(self._conn, len(jobs)):
            actions.enqueue_with_fresh_ids(jobs, insert, self._existing, sqlite3.IntegrityError)
        self.ring()
        return answered[-1]

    def _existing(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            found.update(r[0] for r in self._read(f"SELECT id FROM jobs WHERE id IN ({marks})", part))
        return found

    # -- reads
    def list_jobs(self, states: Iterable[JobState] | None = None, limit: int | None = 100,
                  text: str | None = None, queue: str | None = None) -> list[Job]:
        where_text, params_text = "", []
        if text:
            where_text = " AND (id LIKE ? ESCAPE '\\' OR command LIKE ? ESCAPE '\\')"
            params_text = [like_pattern(text)] * 2
        if queue is not None:
            where_text += " AND queue = ?"
            params_text.append(queue)
        out: list[Job] = []
        for group, order in list_groups(states):
            remaining = -1 if limit is None else limit - len(out)
            if remaining == 0:
                break
            marks = ",".join("?" * len(group))
            source = ("jobs WHERE" if order != ORDER_WAITING else _FROM_QUEUE_WAITING
                      if queue is not None else _FROM_WAITING)
            rows = self._read(
                f"SELECT {JOB_COLUMNS} FROM {source} state IN ({marks}){where_text} "
                f"{order} LIMIT ?", [s.value for s in group] + params_text + [remaining])
            out.extend(_job(r) for r in rows)
        return out

    def status(self, now: float, worker_timeout: float) -> Status:
        counts = {state: 0 for state in JobState}
        for state, n in self._read("SELECT state, n FROM counts"):  # (one row per queue)
            counts[JobState(state)] += n
        workers = self._read("SELECT count(*) FROM workers WHERE heartbeat_at >= ?",
                             (now - worker_timeout,))[0][0]
        first = self._read("SELECT run_at FROM jobs INDEXED BY jobs_due "
                           "WHERE state IN ('pending', 'failed') ORDER BY run_at LIMIT 1")
        recent = self._read(
            "SELECT count(*) FROM jobs WHERE state IN ('completed', 'dead') AND updated_at >= ?",
            (now - 60,))[0][0]
        first_at = first[0][0] if first else None
        oldest = now - first_at if first_at is not None and first_at <= now else None
        return Status(counts=counts, workers=workers, oldest_waiting_age=oldest,
                      finished_last_minute=recent, next_due=self.next_due(now))

    def next_due(self, now: float) -> float | None:
        rows = self._read("SELECT run_at FROM jobs INDEXED BY jobs_due "
                          "WHERE state IN ('pending', 'failed') AND run_at > ? "
                          "ORDER BY run_at LIMIT 1", (now,))
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

    def cancel(self, ids: Sequence[str], *, now: float,
               with_dependents: bool = False) -> dict[str, str]:
        with self._write() as c:
            result = actions.cancel(c, ids, now, with_dependents=with_dependents,
                                    count_rows=True)
        self.ring()
        return result

    # -- one job at a time
    def edit_job(self, job_id: str, *, now: float, **changes) -> Job:
        with self._write() as c:
            job = actions.edit(c, job_id, now, changes, count_rows=True)
        self.ring()
        return job

    def restart(self, job_id: str, *, now: float) -> Job:
        with self._write() as c:
            job = actions.restart(c, job_id, now)
        self.ring()
        return job

    def run_now(self, job_id: str, *, now: float) -> Job:
        with self._write() as c:
            job = actions.run_now(c, job_id, now)
        self.ring()
        return job

    def remove_job(self, job_id: str) -> None:
        with self._write() as c:
            actions.remove(c, job_id)
            self._delete_jobs(c, "id = ?", (job_id,))

    def dependencies(self, job_id: str) -> list:
        self.get(job_id)
        with translated(self.path):
            return deps.dependencies(self._conn, job_id)

    def dependents(self, job_id: str) -> list:
        self.get(job_id)
        with translated(self.path):
            return deps.dependents(self._conn, job_id)

    def waits_for(self, job_ids: Sequence[str]) -> dict[str, list]:
        with translated(self.path):
            return deps.waits_for(self._conn, job_ids)

    # -- queues
    def queues(self) -> list[QueueInfo]:
        with translated(self.path):
            return queue_ops.listing(self._conn)

    def queue(self, name: str) -> QueueInfo:
        with translated(self.path):
            return queue_ops.get(self._conn, name)

    def set_queue(self, name: str, *, now: float, **settings) -> QueueInfo:
        with self._write() as c:
            queue_ops.configure(c, name, now, count_rows=True, **settings)
            info = queue_ops.get(c, name)
        self.ring()  # a higher limit may let waiting jobs start
        return info

    def pause_queue(self, name: str, *, kill: bool = False) -> QueueInfo:
        with self._write() as c:
            queue_ops.pause(c, name, kill=kill)
            return queue_ops.get(c, name)

    def resume_queue(self, name: str) -> QueueInfo:
        with self._write() as c:
            queue_ops.resume(c, name)
            info = queue_ops.get(c, name)
        self.ring()
        return info

    def remove_queue(self, name: str) -> None:
        with self._write() as c:
            queue_ops.remove(c, name)

    # -- schedules and hooks
    def _in_write(self, fn, ring: bool = False):
        with self._write() as c:
            result = fn(c)
        if ring:
            self.ring()
        return result

    def add_schedule(self, name: str, rule, spec: dict, cwd: str, *, overlap: str,
                     catch_up: str, now: float):
        return self._in_write(lambda c: schedule_ops.add(
            c, name, rule, spec, cwd, overlap=overlap, catch_up=catch_up, now=now), ring=True)

    def schedules(self) -> list:
        with translated(self.path):
            return schedule_ops.listing(self._conn)

    def schedule(self, name: str):
        with translated(self.path):
            return schedule_ops.get(self._conn, name)

    def pause_schedule(self, name: str, *, paused: bool, now: float):
        return self._in_write(lambda c: schedule_ops.set_paused(c, name, paused, now), ring=True)

    def remove_schedule(self, name: str) -> None:
        self._in_write(lambda c: schedule_ops.remove(c, name))

    def run_schedule_now(self, name: str, *, now: float, default_max_retries: int) -> str:
        return self._in_write(lambda c: schedule_ops.run_now(
            c, name, now, default_max_retries=default_max_retries, count_rows=True), ring=True)

    def fire_schedules(self, now: float, *, default_max_retries: int) -> list:
        fired = self._in_write(lambda c: schedule_ops.fire(
            c, now, default_max_retries=default_max_retries, count_rows=True))
        if any(f.job_id for f in fired):
            self.ring()
        return fired

    def next_tick(self) -> float | None:
        with translated(self.path):
            return schedule_ops.next_tick(self._conn)

    def add_hook(self, event: str, command: str, *, queue: str | None, cwd: str, now: float):
        return self._in_write(lambda c: hook_ops.add(c, event, command, queue, cwd, now))

    def hooks(self) -> list:
        with translated(self.path):
            return hook_ops.listing(self._conn)

    def remove_hook(self, hook_id: int) -> None:
        self._in_write(lambda c: hook_ops.remove(c, hook_id))

    def test_hook(self, hook_id: int, *, now: float) -> str:
        return self._in_write(lambda c: hook_ops.test(c, hook_id, now=now, count_rows=True),
                              ring=True)

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
