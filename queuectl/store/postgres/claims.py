"""Running jobs on PostgreSQL: claims, renewals, finishes, give-backs and rescues (a part of
PostgresStore). A claim or a finish is one statement where it can be, so a job costs few round
trips; every statement that may lose its COMMIT's answer has a `landed` check that tells, on a
new connection, whether it took effect."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Sequence

from ...lifecycle import Change, Outcome, RetryPolicy, finish_change, given_back_state, releases
from ...models import Job
from .. import actions, hooks as hook_ops
from ..queues import GATED_OF_JOB
from ..base import LOST, Chunks, Finished, Lease, Orders, Stop, Tail
from ..rows import job_from_row as _job, store_output
from ..sql import (APPLY_SQL, FINISH_SQL, FREE_SLOT_SQL, JOB_COLUMNS, RELEASE_RUN_SQL,
                   RELEASE_SQL, RUN_END_SQL, WORKER_STOP, change_params, run_end_params)
from .conn import Tx, driver

_WAITING = "state IN ('pending', 'failed') AND blocked = 0"
_ORDER = "ORDER BY priority DESC, run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED"
# The claim in one statement. The candidates are the next job of every open ungated queue (one
# walk of jobs_ready; for a worker serving some queues, the next job of each of those) and the
# next job of every open gated queue (not paused, a slot free); the best of them is claimed.
# A job of a limited queue takes a free slot with an INSERT that a racing claim of the same
# slot cannot pass (ON CONFLICT DO NOTHING): then nothing is claimed and `candidates` tells the
# caller to try again. $1 now, $2 the queues served (NULL: all).
_CLAIM = f"""
WITH served AS (SELECT ?::text[] AS names, ?::float8 AS now),
open_gated AS (
    SELECT q.name, q.concurrency FROM queues q, served
    WHERE (q.concurrency IS NOT NULL OR q.paused > 0) AND q.paused = 0
      AND (served.names IS NULL OR q.name = ANY(served.names))
      AND (SELECT count(*) FROM slots s WHERE s.queue = q.name) < q.concurrency
), heads AS MATERIALIZED (
    SELECT j.seq, j.queue, j.priority, j.run_at FROM served, LATERAL (
        SELECT seq, queue, priority, run_at FROM jobs
        WHERE {_WAITING} AND gated = 0 AND run_at <= served.now AND served.names IS NULL
        {_ORDER}) j
    UNION ALL
    SELECT j.seq, j.queue, j.priority, j.run_at FROM served, unnest(served.names) AS n(name),
    LATERAL (
        -- only the ungated ones: a full or paused queue's jobs are all gated, and walking
        -- them to find none would cost a scan of the queue
        SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM queues q WHERE q.name = n.name
                                   AND (q.concurrency IS NOT NULL OR q.paused > 0))) ungated,
    LATERAL (
        SELECT seq, queue, priority, run_at FROM jobs
        WHERE queue = n.name AND {_WAITING} AND gated = 0 AND run_at <= served.now
        {_ORDER}) j
    UNION ALL
    SELECT j.seq, j.queue, j.priority, j.run_at FROM served, open_gated g, LATERAL (
        SELECT seq, queue, priority, run_at FROM jobs
        WHERE queue = g.name AND {_WAITING} AND run_at <= served.now
        {_ORDER}) j
), best AS (
    SELECT h.seq, h.queue, g.concurrency FROM heads h LEFT JOIN open_gated g ON g.name = h.queue
    ORDER BY h.priority DESC, h.run_at, h.seq LIMIT 1
), slot AS (
    INSERT INTO slots (queue, slot, job_id)
    SELECT best.queue, free.slot, j.id FROM best JOIN jobs j ON j.seq = best.seq,
    LATERAL (SELECT min(k) AS slot FROM generate_series(0, best.concurrency - 1) k
             WHERE NOT EXISTS (SELECT 1 FROM slots s WHERE s.queue = best.queue
                               AND s.slot = k)) free
    WHERE best.concurrency IS NOT NULL AND free.slot IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING slot
), claimed AS (
    UPDATE jobs SET state = 'running', attempts = attempts + 1, runs = runs + 1, worker_id = ?,
        token = ?, lease_until = ?, lease = ?, started_at = ?, updated_at = ?, finished_at = NULL,
        exit_code = NULL, cancel = 0, slot = (SELECT slot FROM slot)
    FROM best WHERE jobs.seq = best.seq
      AND (best.concurrency IS NULL OR EXISTS (SELECT 1 FROM slot))
    RETURNING {", ".join("jobs." + c.strip() for c in JOB_COLUMNS.split(","))}
), run AS (
    INSERT INTO runs (job_id, attempt, started_at, worker, host, slot)
    SELECT id, runs, ?, ?, (SELECT host FROM workers WHERE id = ?), slot FROM claimed
), busy AS (
    UPDATE workers SET job_id = (SELECT id FROM claimed), heartbeat_at = ?
    WHERE id = ? AND EXISTS (SELECT 1 FROM claimed)
)
SELECT (SELECT count(*) FROM best), claimed.*,
    CASE WHEN claimed.id IS NOT NULL THEN pg_notify(?, '') END
FROM (SELECT 1) one LEFT JOIN claimed ON true
"""
CLAIM_TRIES = 20  # claims that lose the race for a slot look again, at most this often
# Whether a running job's queue was paused with --kill (its worker gives the job back).
_KILLING = ("coalesce((SELECT q.paused = 2 FROM queues q WHERE q.name = jobs.queue), false)")
_RUNNING_ROW = (f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND state = 'running' "
                "AND token = ?")


@lru_cache(maxsize=8)
def _end_sql(apply: str, channels: int) -> str:
    """A run's end in one statement (one round trip): the job's guarded UPDATE (`apply`), its
    run's record (only when the guard matched), the dependencies it meets (the kinds in the
    last parameter: lifecycle.releases) with their dependents' counts, and the notifications
    of `channels` channels, the work channel's also when a dependent became ready. It returns
    one row when the guard matched, none otherwise (then nothing changed)."""
    notify = ", ".join(["pg_notify(?, '')"] * channels)
    run_end = RUN_END_SQL.replace("WHERE job_id = ?", "WHERE job_id = (SELECT id FROM fin)")
    return (f"WITH fin AS ({apply} RETURNING id), run AS ({run_end}), "
            "met AS (UPDATE deps SET met = 1 WHERE after = (SELECT id FROM fin) AND met = 0 "
            "AND kind = ANY(?::text[]) RETURNING job_id), "
            f"freed AS (UPDATE jobs SET blocked = blocked - 1, gated = {GATED_OF_JOB} "
            "FROM met WHERE jobs.id = met.job_id AND jobs.blocked > 0 RETURNING jobs.blocked) "
            f"SELECT {notify}, CASE WHEN EXISTS (SELECT 1 FROM freed WHERE blocked = 0) "
            "THEN pg_notify(?, '') END, EXISTS (SELECT 1 FROM hooks WHERE event = ?) FROM fin")


class _Waited(Exception):
    """The rescue's locks took longer than its caller allows."""


class Claims:
    """Needs PostgresStore's `_tx`, `_read`, `_changed`, `now`, and the channel names."""

    def _claim(self, tx: Tx, worker_id: str, token: str, now: float, lease: float,
               queues: Sequence[str] | None = None) -> Job | None:
        served = None if queues is None else list(queues)
        for _ in range(CLAIM_TRIES):
            row = tx.one(_CLAIM, (served, now, worker_id, token, now + lease, lease, now, now,
                                  now, worker_id, worker_id, now, worker_id,
                                  self.change_channel))
            if row[1] is not None:
                return _job(row[1:-1])
            if not row[0]:
                return None  # nothing to claim
            # Another claim took the slot this one chose: look again (it sees that now).
        return None

    @staticmethod
    def _token_landed(token: str):
        return lambda tx: tx.one("SELECT 1 FROM jobs WHERE token = ?", (token,)) is not None

    def claim(self, worker_id: str, *, now: float, lease: float,
              queues: Sequence[str] | None = None) -> Job | None:
        token = os.urandom(8).hex()
        return self._tx(lambda tx: self._claim(tx, worker_id, token, now, lease, queues),
                        landed=self._token_landed(token))

    def renew(self, job: Job, *, now: float, lease: float, head: Chunks = (),
              tail: Tail | None = None) -> Orders:
        def body(tx: Tx) -> Orders:
            row = tx.one("UPDATE jobs SET lease_until = ?, lease = ? "
                         f"WHERE id = ? AND state = 'running' AND token = ? "
                         f"RETURNING cancel, {_KILLING}", (now + lease, lease, job.id, job.token))
            if row is None:
                return LOST
            store_output(tx, job, head, tail)
            w = tx.one(f"UPDATE workers w SET heartbeat_at = ? WHERE id = ? "
                       f"RETURNING {WORKER_STOP}", (now, job.worker_id))
            if head or tail is not None:
                self._changed(tx)
            return Orders(lease_lost=False, cancel=bool(row[0]), stop=Stop(w[0] if w else 0),
                          give_back=bool(row[1]))

        def landed(tx: Tx) -> bool:
            # This renewal's lease is on the job: it landed, and the output it carried with it
            # (which must not be sent, and stored, again).
            return tx.one("SELECT 1 FROM jobs WHERE id = ? AND state = 'running' AND token = ? "
                          "AND lease_until = ?", (job.id, job.token, now + lease)) is not None

        return self._tx(body, landed=landed)

    def orders(self, job: Job) -> Orders:
        rows = self._read("SELECT jobs.cancel, jobs.state = 'running' AND jobs.token IS NOT "
                          f"DISTINCT FROM ?::text, (SELECT {WORKER_STOP} FROM workers w "
                          f"WHERE w.id = ?), {_KILLING} FROM jobs WHERE jobs.id = ?",
                          (job.token, job.worker_id, job.id))
        if not rows or not rows[0][1]:
            return LOST
        return Orders(lease_lost=False, cancel=bool(rows[0][0]), stop=Stop(rows[0][2] or 0),
                      give_back=bool(rows[0][3]))

    def _end(self, tx: Tx, apply: str, guard: list, job: Job, change: Change, now: float,
             signal: str | None) -> tuple[bool, bool]:
        """Apply `change` (one statement): (whether the guard matched, whether hooks wait for
        the job's new state)."""
        wake = change.wakes_workers or job.slot is not None  # (a freed slot: others may start)
        channels = [self.change_channel] + ([self.work_channel] if wake else [])
        rows = tx.all(_end_sql(apply, len(channels)),
                      change_params(change, now) + guard
                      + list(run_end_params(job, change, now, signal)[:-2])
                      + [job.attempt, list(releases(change.state)), *channels,
                         self.work_channel, hook_ops.EVENT_OF.get(change.state, "")])
        return bool(rows), bool(rows and rows[0][-1])

    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Chunks = (), tail: Tail | None = None, claim_next: str | None = None,
               lease: float = 0.0, queues: Sequence[str] | None = None) -> Finished:
        token = os.urandom(8).hex()
        first = finish_change(job, outcome, now=now, policy=policy,
                              cancel_requested=job.cancel_requested)
        decided = [first]

        def body(tx: Tx) -> Finished:
            change = first
            guard = [job.id, job.token, int(job.cancel_requested)]
            matched, hooked = self._end(tx, FINISH_SQL, guard, job, change, now, outcome.signal)
            if not matched:
                row = tx.one(_RUNNING_ROW + " FOR UPDATE", (job.id, job.token))
                if row is None:
                    return Finished(False, None, None)  # stale claim: nothing changed
                # Cancelled since the worker last looked: decide again with the row's flag.
                change = finish_change(job, outcome, now=now, policy=policy,
                                       cancel_requested=_job(row).cancel_requested)
                _, hooked = self._end(tx, APPLY_SQL, guard[:2], job, change, now, outcome.signal)
            decided[0] = change
            if job.slot is not None:
                tx.execute(FREE_SLOT_SQL, (job.id,))
            store_output(tx, job, head, tail)
            if hooked and hook_ops.fire(tx, job.id, change.state, now=now, count_rows=False):
                self._changed(tx, wake_workers=True)  # (with the output, for the hook's tail)
            nxt = self._claim(tx, claim_next, token, now, lease, queues) if claim_next else None
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
                tx.execute(FREE_SLOT_SQL, (job.id,))
                tx.execute("UPDATE workers SET job_id = NULL WHERE id = ? AND job_id = ?",
                           (job.worker_id, job.id))
                self._changed(tx, wake_workers=True)
            return done

        def landed(tx: Tx) -> bool:
            return tx.one("SELECT 1 FROM jobs WHERE token = ?", (job.token,)) is None

        return bool(self._tx(body, landed=landed))

    def _rescue_rows(self, tx: Tx, rows: list, died: set[str], now: float,
                     policy: RetryPolicy) -> list[str]:
        rescued = actions.rescue_rows(tx, rows, died, now, policy, count_rows=False)
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
