"""The PostgreSQL store: many hosts share one queue.

Claims take one row with `FOR UPDATE SKIP LOCKED` inside a materialised CTE, so concurrent
workers never wait on each other's rows and exactly one of them gets each job. Times (run_at,
leases, heartbeats) come from the server's clock (`now()`), since hosts' clocks may disagree.
Idle workers LISTEN on a channel that enqueue, retry, cancel and stop NOTIFY; consoles LISTEN on
a second channel that every change notifies.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Iterable, Sequence

from ...errors import Conflict, JobNotFound, QueueError
from ...models import Job, JobState, NewJob, new_job_id
from ..base import Control, Outcome, RetryPolicy, Status, Store, WorkerInfo
from .conn import PgConnection, Tx, driver, parse_location
from .schema import ensure_schema
from ..reads import SharedReads
from ..rows import (enqueue_rows, job_from_row as _job, job_ids_for, like_pattern, list_groups,
                   store_output)
from ..transitions import (CANCEL_RUNNING_SQL, CANCEL_WAITING_SQL, FINISH_SQL,
                          JOB_COLUMNS, RESCUE_RUN_SQL, RESCUE_SQL, RETRY_DEAD_RESET,
                          finish_step, rescue_params, rescue_step)

_CLAIM = f"""
WITH next AS MATERIALIZED (
    SELECT seq FROM jobs
    WHERE state IN ('pending', 'failed') AND run_at <= ?
    ORDER BY priority DESC, run_at, seq LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs SET state = 'running', attempts = attempts + 1, runs = runs + 1, worker_id = ?,
        token = ?, lease_until = ?, started_at = ?, updated_at = ?, finished_at = NULL,
        exit_code = NULL, cancel = 0
    FROM next WHERE jobs.seq = next.seq
    RETURNING {JOB_COLUMNS}
), run AS (
    INSERT INTO runs (job_id, attempt, started_at, worker, host)
    SELECT id, runs, ?, ?, (SELECT host FROM workers WHERE id = ?) FROM claimed
), busy AS (
    UPDATE workers SET job_id = (SELECT id FROM claimed), heartbeat_at = ?
    WHERE id = ? AND EXISTS (SELECT 1 FROM claimed)
)
SELECT claimed.*, pg_notify(?, '') FROM claimed
"""


@lru_cache(maxsize=32)
def _finish_sql(assignments: str, channels: int) -> str:
    """A finished run in one statement (one round trip): the job's guarded UPDATE
    (FINISH_SQL), its run's record (FINISH_RUN_SQL, only when the guard matched) and the
    notifications of `channels` channels; it returns one row when the guard matched, none for
    a stale claim (which then changes and announces nothing)."""
    notify = ", ".join(["pg_notify(?, '')"] * channels)
    return (f"WITH fin AS ({FINISH_SQL.format(assignments=assignments)} RETURNING id), "
            "run AS (UPDATE runs SET finished_at = ?, exit_code = ?, signal = ?, outcome = ?, "
            "error = ? WHERE job_id = (SELECT id FROM fin) AND attempt = ?) "
            f"SELECT {notify} FROM fin")


_COPY_JOBS = ("COPY jobs (id, command, state, priority, max_retries, timeout, cwd, run_at, "
              "created_at, updated_at) FROM STDIN")
COMPACT_AT = 1000  # delta rows in `counts` past which `status` folds them together
COPY_THRESHOLD = 64  # rows; smaller batches are inserted with one multi-row INSERT


class PostgresStore(SharedReads, Store):
    def __init__(self, url: str, *, durability: str = "full") -> None:
        self.url = url
        self.pg = parse_location(url)
        self.location = self.pg.display
        self.work_channel = f"{self.pg.schema}_work"
        self.change_channel = f"{self.pg.schema}_change"
        self._db = PgConnection(self.pg, synchronous=durability == "full")
        ensure_schema(self._db, self.pg.schema, self.location)

    # -- plumbing
    def close(self) -> None:
        self._db.close()

    def now(self) -> float:
        return self._db.now()

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
                default_cwd: str) -> list[str]:
        unique = driver().errors.UniqueViolation
        ids = job_ids_for(jobs)
        given = [j.id for j in jobs if j.id is not None]
        for _ in range(5):
            rows = enqueue_rows(ids, jobs, now=now, default_max_retries=default_max_retries,
                                default_cwd=default_cwd)

            def body(tx: Tx) -> None:
                if len(rows) >= COPY_THRESHOLD:
                    with tx.cur.copy(_COPY_JOBS) as copy:
                        for r in rows:
                            copy.write_row((r[0], r[1], "pending", *r[2:]))
                else:
                    marks = ",".join(["(?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
                    tx.execute("INSERT INTO jobs (id, command, state, priority, max_retries, "
                               "timeout, cwd, run_at, created_at, updated_at) VALUES " + marks,
                               [v for r in rows for v in r])
                self._changed(tx, wake_workers=True)

            first = ids[0] if ids else None
            try:
                if rows:
                    self._tx(body, passthrough=(unique,), landed=lambda tx: tx.one(
                        "SELECT 1 FROM jobs WHERE id = ? AND created_at = ?",
                        (first, now)) is not None)
            except unique:
                taken = self._existing(ids)
                clash = [i for i in given if i in taken]
                if clash:
                    raise Conflict(f"job id {clash[0]!r} already exists") from None
                ids = [new_job_id() if (j.id is None and i in taken) else i
                       for i, j in zip(ids, jobs)]
                continue
            return ids
        raise Conflict("could not generate unique job ids")  # pragma: no cover

    def _existing(self, ids: Sequence[str]) -> set[str]:
        return {r[0] for r in self._read("SELECT id FROM jobs WHERE id = ANY(?)", (list(ids),))}

    # -- reads
    def list_jobs(self, states: Iterable[JobState] | None = None, limit: int | None = 100,
                  text: str | None = None) -> list[Job]:
        where_text, params_text = "", []
        if text:
            # ILIKE: case-insensitive, as SQLite's LIKE is
            where_text = " AND (id ILIKE ? ESCAPE '\\' OR command ILIKE ? ESCAPE '\\')"
            params_text = [like_pattern(text)] * 2

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

    def compact_counts(self) -> None:
        """Fold the per-state delta rows into one row per state. Safe beside writers (their new
        rows are not taken) and beside another compaction (a row is deleted, and summed, once)."""
        self._tx(lambda tx: tx.execute(
            "WITH gone AS (DELETE FROM counts RETURNING state, n) "
            "INSERT INTO counts (state, n) SELECT state, sum(n) FROM gone GROUP BY state "
            "HAVING sum(n) <> 0"))

    def status(self, now: float, worker_timeout: float) -> Status:
        def body(tx: Tx):
            counts = {state: 0 for state in JobState}
            rows = 0
            for state, n, parts in tx.all("SELECT state, sum(n), count(*) FROM counts "
                                          "GROUP BY state"):
                counts[JobState(state)] = int(n)
                rows += parts
            workers = tx.one("SELECT count(*) FROM workers WHERE heartbeat_at >= ?",
                             (now - worker_timeout,))[0]
            recent = tx.one("SELECT count(*) FROM jobs WHERE state IN ('completed', 'dead') "
                            "AND updated_at >= ?", (now - 60,))[0]
            first = tx.one("SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed')")[0]
            later = tx.one("SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed') "
                           "AND run_at > ?", (now,))[0]
            return counts, workers, recent, first, later, rows
        counts, workers, recent, first, later, rows = self._tx(body)
        if rows > COMPACT_AT:  # nobody compacted lately (no workers are running)
            try:
                self.compact_counts()
            except QueueError:
                pass  # e.g. a read-only login: the sums are right all the same
        due = first is not None and first <= now
        return Status(counts=counts, workers=workers,
                      oldest_waiting_age=now - first if due else None,
                      finished_last_minute=recent, next_due=later if due else first)

    def next_due(self, now: float) -> float | None:
        return self._read("SELECT min(run_at) FROM jobs WHERE state IN ('pending', 'failed')")[0][0]

    # -- people's actions
    @staticmethod
    def _check_ids(tx: Tx, ids: Sequence[str]) -> dict[str, JobState]:
        found = dict(tx.all("SELECT id, state FROM jobs WHERE id = ANY(?) FOR UPDATE", (list(ids),)))
        for job_id in ids:
            if job_id not in found:
                raise JobNotFound(f"no job with id {job_id!r}")
        return {job_id: JobState(found[job_id]) for job_id in ids}

    def retry_dead(self, ids: Sequence[str] | None, *, now: float) -> list[str]:
        def body(tx: Tx) -> list[str]:
            if ids is None:
                done = [r[0] for r in tx.all(
                    f"UPDATE jobs SET {RETRY_DEAD_RESET} WHERE state = 'dead' RETURNING id",
                    (now, now))]
            else:
                wanted = list(dict.fromkeys(ids))
                for job_id, state in self._check_ids(tx, wanted).items():
                    if state is not JobState.DEAD:
                        raise Conflict(f"job {job_id!r} is {state.value}, not dead; only dead "
                                       "jobs can be retried")
                tx.execute(f"UPDATE jobs SET {RETRY_DEAD_RESET} WHERE id = ANY(?) "
                           "AND state = 'dead'", (now, now, wanted))
                done = wanted
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

    def cancel(self, ids: Sequence[str], *, now: float) -> dict[str, str]:
        def body(tx: Tx) -> dict[str, str]:
            result: dict[str, str] = {}
            wanted = list(dict.fromkeys(ids))
            for job_id, state in self._check_ids(tx, wanted).items():
                if state in (JobState.COMPLETED, JobState.DEAD):
                    raise Conflict(f"job {job_id!r} is already {state.value}; nothing to cancel")
            for job_id in wanted:
                if tx.execute(CANCEL_WAITING_SQL, (now, now, job_id)).rowcount:
                    result[job_id] = "cancelled"
                else:
                    tx.execute(CANCEL_RUNNING_SQL, (job_id,))
                    result[job_id] = "cancelling"
            self._changed(tx, wake_workers=True)
            return result
        return self._tx(body)

    # -- workers
    def register_worker(self, worker_id: str, pid: int, host: str, now: float) -> None:
        def body(tx: Tx) -> None:
            tx.execute("INSERT INTO workers (id, pid, host, started_at, heartbeat_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, "
                       "host = excluded.host, started_at = excluded.started_at, "
                       "heartbeat_at = excluded.heartbeat_at, job_id = NULL, stop = 0",
                       (worker_id, pid, host, now, now))
            self._changed(tx)
        self._tx(body)

    def unregister_worker(self, worker_id: str) -> None:
        def body(tx: Tx) -> None:
            tx.execute("DELETE FROM workers WHERE id = ?", (worker_id,))
            self._changed(tx)
        self._tx(body)

    def workers(self) -> list[WorkerInfo]:
        rows = self._read("SELECT id, pid, host, started_at, heartbeat_at, job_id, stop "
                          "FROM workers ORDER BY started_at, id")
        return [WorkerInfo(*r) for r in rows]

    def heartbeat(self, worker_id: str, now: float) -> int | None:
        row = self._tx(lambda tx: tx.one(
            "UPDATE workers SET heartbeat_at = ? WHERE id = ? RETURNING stop", (now, worker_id)))
        return None if row is None else row[0]

    def request_stop(self, mode: int, worker_ids: Sequence[str] | None = None) -> int:
        def body(tx: Tx) -> int:
            if worker_ids is None:
                n = tx.execute("UPDATE workers SET stop = greatest(stop, ?)", (mode,)).rowcount
            else:
                n = tx.execute("UPDATE workers SET stop = greatest(stop, ?) WHERE id = ANY(?)",
                               (mode, list(worker_ids))).rowcount
            self._changed(tx, wake_workers=True)
            return n
        return self._tx(body)

    def _claim(self, tx: Tx, worker_id: str, token: str, now: float, lease: float) -> Job | None:
        row = tx.one(_CLAIM, (now, worker_id, token, now + lease, now, now, now, worker_id,
                              worker_id, now, worker_id, self.change_channel))
        return None if row is None else _job(row[:-1])

    @staticmethod
    def _token_landed(token: str):
        return lambda tx: tx.one("SELECT 1 FROM jobs WHERE token = ?", (token,)) is not None

    def claim(self, worker_id: str, *, now: float, lease: float) -> Job | None:
        token = os.urandom(8).hex()
        return self._tx(lambda tx: self._claim(tx, worker_id, token, now, lease),
                        landed=self._token_landed(token))

    def renew(self, job: Job, *, now: float, lease: float,
              head: Sequence[tuple[int, bytes]] = (),
              tail: tuple[Sequence[tuple[int, bytes]], int] | None = None) -> Control:
        def body(tx: Tx) -> Control:
            row = tx.one("UPDATE jobs SET lease_until = ? "
                         "WHERE id = ? AND state = 'running' AND token = ? RETURNING cancel",
                         (now + lease, job.id, job.token))
            if row is None:
                return Control(lease_lost=True, cancel=False, stop=0)
            store_output(tx, job, head, tail)
            w = tx.one("UPDATE workers SET heartbeat_at = ? WHERE id = ? RETURNING stop",
                       (now, job.worker_id))
            if head or tail is not None:
                self._changed(tx)
            return Control(lease_lost=False, cancel=bool(row[0]), stop=w[0] if w else 0)

        def landed(tx: Tx) -> bool:
            # This renewal's lease is on the job: it landed, and the output it carried with it
            # (which must not be sent, and stored, again).
            return tx.one("SELECT 1 FROM jobs WHERE id = ? AND state = 'running' AND token = ? "
                          "AND lease_until = ?", (job.id, job.token, now + lease)) is not None

        return self._tx(body, landed=landed)

    def control(self, job: Job) -> Control:
        rows = self._read("SELECT j.cancel, j.state = 'running' AND j.token IS NOT DISTINCT FROM "
                          "?::text, (SELECT stop FROM workers WHERE id = ?) FROM jobs j "
                          "WHERE j.id = ?", (job.token, job.worker_id, job.id))
        if not rows or not rows[0][1]:
            return Control(lease_lost=True, cancel=False, stop=0)
        return Control(lease_lost=False, cancel=bool(rows[0][0]), stop=rows[0][2] or 0)

    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Sequence[tuple[int, bytes]] = (),
               tail: tuple[Sequence[tuple[int, bytes]], int] | None = None,
               claim_next: str | None = None, lease: float = 0.0) -> tuple[bool, Job | None]:
        step = finish_step(job, outcome, now, policy)
        token = os.urandom(8).hex()
        channels = [self.change_channel] + ([self.work_channel] if step.wakes_workers else [])
        sql = _finish_sql(step.assignments, len(channels))
        params = step.params + [now, job.id, job.token, now, outcome.exit_code, outcome.signal,
                                step.run_outcome, outcome.error, job.run_number, *channels]

        def body(tx: Tx) -> tuple[bool, Job | None]:
            if not tx.all(sql, params):
                return False, None  # stale claim: the guarded UPDATE changed nothing
            store_output(tx, job, head, tail)
            nxt = self._claim(tx, claim_next, token, now, lease) if claim_next else None
            if nxt is None or claim_next != job.worker_id:  # else the claim updated the row
                tx.execute("UPDATE workers SET job_id = NULL, heartbeat_at = ? WHERE id = ?",
                           (now, job.worker_id))
            return True, nxt

        def landed(tx: Tx) -> bool:
            row = tx.one("SELECT outcome FROM runs WHERE job_id = ? AND attempt = ?",
                         (job.id, job.run_number))
            return row is not None and row[0] == step.run_outcome

        return self._tx(body, landed=landed)

    def rescue(self, *, now: float, policy: RetryPolicy,
               worker_ids: Sequence[str] | None = None, stale_before: float | None = None,
               lapsed: Sequence[tuple[str, str]] | None = None) -> list[str]:
        dead_workers = list(worker_ids or ())
        lapsed_ids = [job_id for job_id, _ in lapsed or ()]
        lapsed_tokens = dict(lapsed or ())

        def body(tx: Tx) -> list[str]:
            by_lease = "lease_until < ?" if lapsed is None else "id = ANY(?)"
            first = now if lapsed is None else lapsed_ids
            # In seq order, so that racing rescuers lock rows in the same order (no deadlock).
            rows = tx.all(f"SELECT {JOB_COLUMNS}, rescues, cancel FROM jobs "
                          f"WHERE state = 'running' AND ({by_lease} OR worker_id = ANY(?)) "
                          "ORDER BY seq FOR UPDATE", (first, dead_workers))
            rescued: list[str] = []
            for row in rows:
                job, rescues, cancel = _job(row[:-2]), row[-2] + 1, bool(row[-1])
                if job.worker_id not in dead_workers and lapsed is not None \
                        and lapsed_tokens.get(job.id) != job.token:
                    continue  # renewed or re-claimed since the caller looked
                step = rescue_step(job, rescues, cancel, dead_workers, now, policy)
                if tx.execute(RESCUE_SQL, rescue_params(job, step, rescues, cancel, now)).rowcount:
                    tx.execute(RESCUE_RUN_SQL, (now, step.run_error, job.id, job.run_number))
                    rescued.append(job.id)
            if dead_workers:
                tx.execute("DELETE FROM workers WHERE id = ANY(?)", (dead_workers,))
            if stale_before is not None:
                tx.execute("DELETE FROM workers WHERE heartbeat_at < ?", (stale_before,))
            if rescued:
                self._changed(tx, wake_workers=True)
            return rescued
        rescued = self._tx(body)
        self.compact_counts()  # workers rescue every half lease: a good moment to tidy
        return rescued
