"""Running jobs on PostgreSQL: claims, renewals, finishes, give-backs and rescues (a part of
PostgresStore). A claim or a finish is one statement where it can be, so a job costs few round
trips; every statement that may lose its COMMIT's answer has a `landed` check that tells, on a
new connection, whether it took effect."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Sequence

from ...lifecycle import (Change, Outcome, RetryPolicy, finish_change, given_back_state,
                          rescue_change)
from ...models import Job
from ..base import Chunks, Finished, Lease, Orders, Stop, Tail
from ..rows import job_from_row as _job, store_output
from ..sql import (APPLY_SQL, FINISH_SQL, JOB_COLUMNS, RELEASE_RUN_SQL, RELEASE_SQL,
                   RUN_END_SQL, WORKER_STOP, change_params, run_end_params)
from .conn import Tx, driver

_CLAIM = f"""
WITH next AS MATERIALIZED (
    SELECT seq FROM jobs
    WHERE state IN ('pending', 'failed') AND run_at <= ?
    ORDER BY priority DESC, run_at, seq LIMIT 1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE jobs SET state = 'running', attempts = attempts + 1, runs = runs + 1, worker_id = ?,
        token = ?, lease_until = ?, lease = ?, started_at = ?, updated_at = ?, finished_at = NULL,
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
_RUNNING_ROW = (f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND state = 'running' "
                "AND token = ?")


@lru_cache(maxsize=8)
def _end_sql(apply: str, channels: int) -> str:
    """A run's end in one statement (one round trip): the job's guarded UPDATE (`apply`), its
    run's record (only when the guard matched) and the notifications of `channels` channels.
    It returns one row when the guard matched, none otherwise (then nothing changed)."""
    notify = ", ".join(["pg_notify(?, '')"] * channels)
    run_end = RUN_END_SQL.replace("WHERE job_id = ?", "WHERE job_id = (SELECT id FROM fin)")
    return f"WITH fin AS ({apply} RETURNING id), run AS ({run_end}) SELECT {notify} FROM fin"


class _Waited(Exception):
    """The rescue's locks took longer than its caller allows."""


class Claims:
    """Needs PostgresStore's `_tx`, `_read`, `_changed`, `now`, and the channel names."""

    def _claim(self, tx: Tx, worker_id: str, token: str, now: float, lease: float) -> Job | None:
        row = tx.one(_CLAIM, (now, worker_id, token, now + lease, lease, now, now, now,
                              worker_id, worker_id, now, worker_id, self.change_channel))
        return None if row is None else _job(row)

    @staticmethod
    def _token_landed(token: str):
        return lambda tx: tx.one("SELECT 1 FROM jobs WHERE token = ?", (token,)) is not None

    def claim(self, worker_id: str, *, now: float, lease: float) -> Job | None:
        token = os.urandom(8).hex()
        return self._tx(lambda tx: self._claim(tx, worker_id, token, now, lease),
                        landed=self._token_landed(token))

    def renew(self, job: Job, *, now: float, lease: float, head: Chunks = (),
              tail: Tail | None = None) -> Orders:
        def body(tx: Tx) -> Orders:
            row = tx.one("UPDATE jobs SET lease_until = ?, lease = ? "
                         "WHERE id = ? AND state = 'running' AND token = ? RETURNING cancel",
                         (now + lease, lease, job.id, job.token))
            if row is None:
                return Orders(lease_lost=True, cancel=False, stop=Stop.NONE)
            store_output(tx, job, head, tail)
            w = tx.one(f"UPDATE workers w SET heartbeat_at = ? WHERE id = ? "
                       f"RETURNING {WORKER_STOP}", (now, job.worker_id))
            if head or tail is not None:
                self._changed(tx)
            return Orders(lease_lost=False, cancel=bool(row[0]), stop=Stop(w[0] if w else 0))

        def landed(tx: Tx) -> bool:
            # This renewal's lease is on the job: it landed, and the output it carried with it
            # (which must not be sent, and stored, again).
            return tx.one("SELECT 1 FROM jobs WHERE id = ? AND state = 'running' AND token = ? "
                          "AND lease_until = ?", (job.id, job.token, now + lease)) is not None

        return self._tx(body, landed=landed)

    def orders(self, job: Job) -> Orders:
        rows = self._read("SELECT j.cancel, j.state = 'running' AND j.token IS NOT DISTINCT FROM "
                          f"?::text, (SELECT {WORKER_STOP} FROM workers w WHERE w.id = ?) "
                          "FROM jobs j WHERE j.id = ?", (job.token, job.worker_id, job.id))
        if not rows or not rows[0][1]:
            return Orders(lease_lost=True, cancel=False, stop=Stop.NONE)
        return Orders(lease_lost=False, cancel=bool(rows[0][0]), stop=Stop(rows[0][2] or 0))

    def _channels(self, change: Change) -> list[str]:
        return [self.change_channel] + ([self.work_channel] if change.wakes_workers else [])

    def _end(self, tx: Tx, apply: str, guard: list, job: Job, change: Change, now: float,
             signal: str | None) -> bool:
        channels = self._channels(change)
        return bool(tx.all(_end_sql(apply, len(channels)),
                           change_params(change, now) + guard
                           + list(run_end_params(job, change, now, signal)[:-2])
                           + [job.attempt, *channels]))

    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Chunks = (), tail: Tail | None = None, claim_next: str | None = None,
               lease: float = 0.0) -> Finished:
        token = os.urandom(8).hex()
        first = finish_change(job, outcome, now=now, policy=policy,
                              cancel_requested=job.cancel_requested)
        decided = [first]

        def body(tx: Tx) -> Finished:
            change = first
            guard = [job.id, job.token, int(job.cancel_requested)]
            if not self._end(tx, FINISH_SQL, guard, job, change, now, outcome.signal):
                row = tx.one(_RUNNING_ROW + " FOR UPDATE", (job.id, job.token))
                if row is None:
                    return Finished(False, None, None)  # stale claim: nothing changed
                # Cancelled since the worker last looked: decide again with the row's flag.
                change = finish_change(job, outcome, now=now, policy=policy,
                                       cancel_requested=_job(row).cancel_requested)
                self._end(tx, APPLY_SQL, guard[:2], job, change, now, outcome.signal)
            decided[0] = change
            store_output(tx, job, head, tail)
            nxt = self._claim(tx, claim_next, token, now, lease) if claim_next else None
            if nxt is None or claim_next != job.worker_id:  # else the claim updated the row
                tx.execute("UPDATE workers SET job_id = NULL, heartbeat_at = ? WHERE id = ?",
                           (now, job.worker_id))
            return Finished(True, change.state, nxt)

        def landed(tx: Tx) -> bool:
            row = tx.one("SELECT outcome FROM runs WHERE job_id = ? AND attempt = ?",
                         (job.id, job.attempt))
            return row is not None and row[0] == decided[0].run_outcome.value

        return self._tx(body, landed=landed)

    def release(self, job: Job, *, now: float) -> bool:
        def body(tx: Tx) -> bool:
            done = tx.execute(RELEASE_SQL, (given_back_state(job).value, now, job.id,
                                            job.token)).rowcount == 1
            if done:
                tx.execute(RELEASE_RUN_SQL, (job.id, job.attempt))
                tx.execute("UPDATE workers SET job_id = NULL WHERE id = ? AND job_id = ?",
                           (job.worker_id, job.id))
                self._changed(tx, wake_workers=True)
            return done

        def landed(tx: Tx) -> bool:
            return tx.one("SELECT 1 FROM jobs WHERE token = ?", (job.token,)) is None

        return bool(self._tx(body, landed=landed))

    def _rescue_rows(self, tx: Tx, rows: list, died: set[str], now: float,
                     policy: RetryPolicy) -> list[str]:
        rescued = []
        for row in rows:
            job = _job(row)
            change = rescue_change(job, died=job.worker_id in died, now=now, policy=policy,
                                   cancel_requested=job.cancel_requested)
            if tx.execute(APPLY_SQL, change_params(change, now) + [job.id, job.token]).rowcount:
                tx.execute(RUN_END_SQL, run_end_params(job, change, now))
                rescued.append(job.id)
        if rescued:
            self._changed(tx, wake_workers=True)
        return rescued

    def rescue_dead_workers(self, worker_ids: Sequence[str], *, now: float,
                            policy: RetryPolicy) -> list[str]:
        dead = list(dict.fromkeys(worker_ids))
        if not dead:
            return []

        def body(tx: Tx) -> list[str]:
            # In seq order, so that racing rescuers lock rows in the same order (no deadlock).
            rows = tx.all(f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' "
                          "AND worker_id = ANY(?) ORDER BY seq FOR UPDATE", (dead,))
            rescued = self._rescue_rows(tx, rows, set(dead), now, policy)
            tx.execute("DELETE FROM workers WHERE id = ANY(?)", (dead,))
            return rescued
        return self._tx(body)

    def rescue_lapsed(self, leases: Sequence[Lease], *, now: float, policy: RetryPolicy,
                      max_wait: float) -> list[str] | None:
        if not leases:
            return []
        seen = {lease.job_id: lease for lease in leases}
        not_now = driver().errors.LockNotAvailable

        def body(tx: Tx) -> list[str]:
            asked = time.monotonic()
            tx.execute("SELECT set_config('lock_timeout', ?, true)",
                       (f"{max(1, int(max_wait * 1000))}ms",))
            rows = tx.all(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY(?) "
                          "AND state = 'running' ORDER BY seq FOR UPDATE", (list(seen),))
            if time.monotonic() - asked > max_wait:
                raise _Waited
            still = [r for r in rows if (_job(r).token, _job(r).lease_until) == seen[r[0]][1:]]
            return self._rescue_rows(tx, still, set(), now, policy)

        try:
            return self._tx(body, passthrough=(not_now,))
        except (_Waited, not_now):
            return None
