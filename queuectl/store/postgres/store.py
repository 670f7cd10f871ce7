"""The PostgreSQL store: many hosts share one queue.

Claims take one row with `FOR UPDATE SKIP LOCKED` inside a materialised CTE, so concurrent
workers never wait on each other's rows and exactly one of them gets each job. Times (run_at,
leases, heartbeats) come from the server's clock (`now()`), since hosts' clocks may disagree.
Idle workers LISTEN on a channel that enqueue, retry, cancel and stop NOTIFY; consoles LISTEN on
a second channel that every change notifies.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ...models import Job, JobState, NewJob, QueueInfo
from .. import actions, deps, hooks as hook_ops, inserts, queues as queue_ops
from .. import schedules as schedule_ops
from ..base import Enqueued, Status, Stop, Store, WorkerInfo
from ..reads import SharedReads
from ..rows import ENQUEUE_COLUMNS, job_from_row as _job, like_pattern, list_groups
from ..sql import JOB_COLUMNS, WORKER_STOP
from .claims import Claims
from .conn import PgConnection, Tx, driver, parse_location
from .copytext import copy_blocks
from .schema import ensure_schema

_COPY_JOBS = f"COPY jobs ({ENQUEUE_COLUMNS}, state) FROM STDIN"
COPY_THRESHOLD = 64  # rows; smaller batches are inserted with one multi-row INSERT


class PostgresStore(Claims, SharedReads, Store):
    def __init__(self, url: str, *, durability: str = "full", create: bool = True) -> None:
        self.url = url
        self.pg = parse_location(url)
        self.location = self.pg.display
        self.work_channel = f"{self.pg.schema}_work"
        self.change_channel = f"{self.pg.schema}_change"
        self._db = PgConnection(self.pg, synchronous=durability == "full")
        try:
            ensure_schema(self._db, self.pg.schema, self.location, create=create)
        except BaseException:
            self._db.close()
            raise

    # -- plumbing
    def close(self) -> None:
        self._db.close()

    def now(self) -> float:
        return self._db.now()

    def limit_stall(self, seconds: float) -> None:
        self._db.limit_stall(seconds)

    def doorbell(self, everything: bool = False):
        from .doorbell import PgDoorbell

        return PgDoorbell(self.pg, self.change_channel if everything else self.work_channel)

    def _tx(self, body, **kw):
        return self._db.transaction(body, **kw)

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._db.read(sql, params)

    def _changed(self, tx: Tx, wake_workers: bool = False) -> None:
        tx.notify(self.change_channel)
        if wake_workers:
            tx.notify(self.work_channel)

    # -- config
    def config_items(self) -> dict[str, str]:
        return dict(self._read("SELECT key, value FROM config ORDER BY key"))

    def config_set(self, key: str, value: str) -> None:
        def body(tx: Tx) -> None:
            tx.execute("INSERT INTO config (key, value) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
            self._changed(tx, wake_workers=True)
        self._tx(body)

    def config_unset(self, key: str) -> bool:
        def body(tx: Tx) -> bool:
            gone = tx.execute("DELETE FROM config WHERE key = ?", (key,)).rowcount
            self._changed(tx, wake_workers=True)
            return bool(gone)
        return self._tx(body)

    # -- enqueue
    def enqueue(self, jobs: Sequence[NewJob], *, now: float, default_max_retries: int,
                default_cwd: str, unique_for: float | None = None,
                on_conflict: str = "existing") -> Enqueued:
        if not jobs:
            return Enqueued()
        answered: list[Enqueued] = []

        def insert(ids: list[str]) -> list[str]:
            def body(tx: Tx) -> Enqueued:
                planned, rows = inserts.plan_rows(
                    tx, ids, jobs, now=now, default_max_retries=default_max_retries,
                    default_cwd=default_cwd, unique_for=unique_for, on_conflict=on_conflict,
                    count_rows=False)
                if len(rows) >= COPY_THRESHOLD:
                    with tx.cur.copy(_COPY_JOBS) as copy:
                        for block in copy_blocks(rows, ("pending",)):
                            copy.write(block)
                elif rows:
                    tx.executemany(inserts._INSERT, rows)
                if rows:
                    self._changed(tx, wake_workers=True)
                return inserts.finish_batch(tx, planned, rows, count_rows=False)

            first = ids[0]
            result = self._tx(body, passthrough=(unique,), landed=lambda tx: tx.one(
                "SELECT 1 FROM jobs WHERE id = ? AND created_at = ?", (first, now)) is not None)
            answered.append(result)
            return list(result)

        unique = driver().errors.UniqueViolation
        actions.enqueue_with_fresh_ids(jobs, insert, self._existing, unique)
        return answered[-1]

    def _existing(self, ids: Sequence[str]) -> set[str]:
        return {r[0] for r in self._read("SELECT id FROM jobs WHERE id = ANY(?)", (list(ids),))}

    # -- reads
    def list_jobs(self, states: Iterable[JobState] | None = None, limit: int | None = 100,
                  text: str | None = None, queue: str | None = None) -> list[Job]:
        where_text, params_text = "", []
        if text:
            # ILIKE: case-insensitive, as SQLite's LIKE is
            where_text = " AND (id ILIKE ? ESCAPE '\\' OR command ILIKE ? ESCAPE '\\')"
            params_text = [like_pattern(text)] * 2
        if queue is not None:
            where_text += " AND queue = ?"
            params_text.append(queue)

        def body(tx: Tx) -> list[Job]:
            out: list[Job] = []
            for group, order in list_groups(states):
                remaining = None if limit is None else limit - len(out)
                if remaining == 0:
                    break
                rows = tx.all(f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = ANY(?){where_text} "
                              f"{order} LIMIT ?", [[s.value for s in group]] + params_text
                              + [remaining])
                out.extend(_job(r) for r in rows)
            return out
        return self._tx(body)

    def housekeeping(self) -> None:
        """Fold the per-state count deltas into one row per state. Safe beside writers (their
        new rows are not taken) and beside another fold (a row is deleted, and summed, once)."""
        self._tx(lambda tx: tx.execute(
            "WITH gone AS (DELETE FROM counts RETURNING state, n) "
            "INSERT INTO counts (state, n) SELECT state, sum(n) FROM gone GROUP BY state "
            "HAVING sum(n) <> 0"))

    def status(self, now: float, worker_timeout: float) -> Status:
        def body(tx: Tx):
            counts = {state: 0 for state in JobState}
            for state, n in tx.all("SELECT state, sum(n) FROM counts GROUP BY state"):
                counts[JobState(state)] = int(n)
            workers = tx.one("SELECT count(*) FROM workers WHERE heartbeat_at >= ?",
                             (now - worker_timeout,))[0]
            recent = tx.one("SELECT count(*) FROM jobs WHERE state IN ('completed', 'dead') "
                            "AND updated_at >= ?", (now - 60,))[0]
            first = tx.one("SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed')")[0]
            later = tx.one("SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed') "
                           "AND run_at > ?", (now,))[0]
            return counts, workers, recent, first, later
        counts, workers, recent, first, later = self._tx(body)
        due = first is not None and first <= now
        return Status(counts=counts, workers=workers,
                      oldest_waiting_age=now - first if due else None,
                      finished_last_minute=recent, next_due=later if due else first)

    def next_due(self, now: float) -> float | None:
        return self._read("SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed') "
                          "AND run_at > ?", (now,))[0][0]

    # -- people's actions
    def retry_dead(self, ids: Sequence[str] | None, *, now: float) -> list[str]:
        def body(tx: Tx) -> list[str]:
            done = actions.retry_dead(tx, ids, now, lock=" FOR UPDATE")
            if done:
                self._changed(tx, wake_workers=True)
            return done
        return self._tx(body)

    def _delete_jobs(self, where: str, params: Sequence) -> int:
        def body(tx: Tx) -> int:
            n = tx.one(
                f"WITH gone AS (DELETE FROM jobs WHERE {where} RETURNING id), "
                "gone_runs AS (DELETE FROM runs WHERE job_id IN (SELECT id FROM gone) "
                "RETURNING id), "
                "gone_output AS (DELETE FROM output WHERE run_id IN (SELECT id FROM gone_runs)) "
                "SELECT count(*) FROM gone", params)[0]
            if n:
                self._changed(tx)
            return n
        return self._tx(body)

    def purge_dead(self) -> int:
        return self._delete_jobs("state = 'dead'", ())

    def prune(self, *, before: float, states: Sequence[JobState]) -> int:
        return self._delete_jobs("state = ANY(?) AND updated_at < ?",
                                 ([s.value for s in states], before))

    def cancel(self, ids: Sequence[str], *, now: float,
               with_dependents: bool = False) -> dict[str, str]:
        def body(tx: Tx) -> dict[str, str]:
            result = actions.cancel(tx, ids, now, lock=" FOR UPDATE",
                                    with_dependents=with_dependents, count_rows=False)
            self._changed(tx, wake_workers=True)
            return result
        return self._tx(body)

    # -- one job at a time
    def _job_change(self, change) -> Job:
        def body(tx: Tx) -> Job:
            job = change(tx)
            self._changed(tx, wake_workers=True)
            return job
        return self._tx(body)

    def edit_job(self, job_id: str, *, now: float, **changes) -> Job:
        return self._job_change(lambda tx: actions.edit(tx, job_id, now, changes,
                                                        lock=" FOR UPDATE", count_rows=False))

    def restart(self, job_id: str, *, now: float) -> Job:
        return self._job_change(lambda tx: actions.restart(tx, job_id, now, lock=" FOR UPDATE"))

    def run_now(self, job_id: str, *, now: float) -> Job:
        return self._job_change(lambda tx: actions.run_now(tx, job_id, now, lock=" FOR UPDATE"))

    def remove_job(self, job_id: str) -> None:
        def body(tx: Tx) -> None:
            actions.remove(tx, job_id, lock=" FOR UPDATE")
            tx.execute("WITH gone_runs AS (DELETE FROM runs WHERE job_id = ? RETURNING id), "
                       "gone_output AS (DELETE FROM output WHERE run_id IN "
                       "(SELECT id FROM gone_runs)) DELETE FROM jobs WHERE id = ?",
                       (job_id, job_id))
            self._changed(tx)
        self._tx(body)

    def dependencies(self, job_id: str) -> list:
        self.get(job_id)
        return self._tx(lambda tx: deps.dependencies(tx, job_id))

    def dependents(self, job_id: str) -> list:
        self.get(job_id)
        return self._tx(lambda tx: deps.dependents(tx, job_id))

    def waits_for(self, job_ids: Sequence[str]) -> dict[str, list]:
        return self._tx(lambda tx: deps.waits_for(tx, job_ids))

    # -- queues
    def queues(self) -> list[QueueInfo]:
        return self._tx(queue_ops.listing)

    def queue(self, name: str) -> QueueInfo:
        return self._tx(lambda tx: queue_ops.get(tx, name))

    def _queue_change(self, name: str, change, wake: bool) -> QueueInfo:
        def body(tx: Tx) -> QueueInfo:
            change(tx)
            self._changed(tx, wake_workers=wake)
            return queue_ops.get(tx, name)
        return self._tx(body)

    def set_queue(self, name: str, *, now: float, **settings) -> QueueInfo:
        return self._queue_change(name, lambda tx: queue_ops.configure(
            tx, name, now, count_rows=False, **settings), wake=True)

    def pause_queue(self, name: str, *, kill: bool = False) -> QueueInfo:
        return self._queue_change(name, lambda tx: queue_ops.pause(tx, name, kill=kill), False)

    def resume_queue(self, name: str) -> QueueInfo:
        return self._queue_change(name, lambda tx: queue_ops.resume(tx, name), wake=True)

    def remove_queue(self, name: str) -> None:
        def body(tx: Tx) -> None:
            queue_ops.remove(tx, name, lock=" FOR UPDATE")
            self._changed(tx)
        self._tx(body)

    # -- schedules and hooks
    def _in_tx(self, fn, wake: bool = False):
        def body(tx: Tx):
            result = fn(tx)
            self._changed(tx, wake_workers=wake)
            return result
        return self._tx(body)

    def add_schedule(self, name: str, rule, spec: dict, cwd: str, *, overlap: str,
                     catch_up: str, now: float):
        return self._in_tx(lambda tx: schedule_ops.add(
            tx, name, rule, spec, cwd, overlap=overlap, catch_up=catch_up, now=now), wake=True)

    def schedules(self) -> list:
        return self._tx(schedule_ops.listing)

    def schedule(self, name: str):
        return self._tx(lambda tx: schedule_ops.get(tx, name))

    def pause_schedule(self, name: str, *, paused: bool, now: float):
        return self._in_tx(lambda tx: schedule_ops.set_paused(tx, name, paused, now), wake=True)

    def remove_schedule(self, name: str) -> None:
        self._in_tx(lambda tx: schedule_ops.remove(tx, name))

    def run_schedule_now(self, name: str, *, now: float, default_max_retries: int) -> str:
        return self._in_tx(lambda tx: schedule_ops.run_now(
            tx, name, now, default_max_retries=default_max_retries, count_rows=False), wake=True)

    def fire_schedules(self, now: float, *, default_max_retries: int) -> list:
        def body(tx: Tx) -> list:
            fired = schedule_ops.fire(tx, now, default_max_retries=default_max_retries,
                                      count_rows=False, lock=" FOR UPDATE SKIP LOCKED")
            if fired:
                self._changed(tx, wake_workers=any(f.job_id for f in fired))
            return fired
        return self._tx(body)

    def next_tick(self) -> float | None:
        return self._tx(schedule_ops.next_tick)

    def add_hook(self, event: str, command: str, *, queue: str | None, cwd: str, now: float):
        return self._in_tx(lambda tx: hook_ops.add(tx, event, command, queue, cwd, now))

    def hooks(self) -> list:
        return self._tx(hook_ops.listing)

    def remove_hook(self, hook_id: int) -> None:
        self._in_tx(lambda tx: hook_ops.remove(tx, hook_id))

    def test_hook(self, hook_id: int, *, now: float) -> str:
        return self._in_tx(lambda tx: hook_ops.test(tx, hook_id, now=now, count_rows=False),
                           wake=True)

    # -- workers
    def register_worker(self, worker_id: str, pid: int, host: str, now: float, *,
                        started_at: float | None = None) -> Stop:
        def body(tx: Tx) -> Stop:
            tx.execute("INSERT INTO workers (id, pid, host, started_at, heartbeat_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, "
                       "host = excluded.host, started_at = excluded.started_at, "
                       "heartbeat_at = excluded.heartbeat_at, job_id = NULL, stop = 0",
                       (worker_id, pid, host, started_at or now, now))
            self._changed(tx)
            return Stop(tx.one(f"SELECT {WORKER_STOP} FROM workers w WHERE id = ?",
                               (worker_id,))[0])
        return self._tx(body)

    def unregister_worker(self, worker_id: str) -> None:
        def body(tx: Tx) -> None:
            tx.execute("DELETE FROM workers WHERE id = ?", (worker_id,))
            self._changed(tx)
        self._tx(body)

    def workers(self) -> list[WorkerInfo]:
        rows = self._read("SELECT id, pid, host, started_at, heartbeat_at, job_id, "
                          f"{WORKER_STOP} FROM workers w ORDER BY started_at, id")
        return [WorkerInfo(*r[:-1], Stop(r[-1])) for r in rows]

    def heartbeat(self, worker_id: str, now: float) -> Stop | None:
        row = self._tx(lambda tx: tx.one(
            f"UPDATE workers w SET heartbeat_at = ? WHERE id = ? RETURNING {WORKER_STOP}",
            (now, worker_id)))
        return None if row is None else Stop(row[0])

    def request_stop(self, mode: Stop, worker_ids: Sequence[str] | None = None, *,
                     now: float | None = None) -> int:
        def body(tx: Tx) -> int:
            if worker_ids is None:
                n = tx.execute("UPDATE workers SET stop = greatest(stop, ?)", (int(mode),)).rowcount
                tx.execute("INSERT INTO stops (mode, at) VALUES (?, ?) ON CONFLICT (mode) "
                           "DO UPDATE SET at = excluded.at",
                           (int(mode), self.now() if now is None else now))
            else:
                n = tx.execute("UPDATE workers SET stop = greatest(stop, ?) WHERE id = ANY(?)",
                               (int(mode), list(worker_ids))).rowcount
            self._changed(tx, wake_workers=True)
            return n
        return self._tx(body)

    def remove_stale_workers(self, before: float) -> int:
        def body(tx: Tx) -> int:
            # (SKIP LOCKED: a frozen worker inside its heartbeat holds its row; never wait on it)
            n = tx.execute("DELETE FROM workers WHERE id IN (SELECT id FROM workers "
                           "WHERE heartbeat_at < ? FOR UPDATE SKIP LOCKED)", (before,)).rowcount
            if n:
                self._changed(tx)
            return n
        return self._tx(body)
