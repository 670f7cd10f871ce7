"""Running jobs on SQLite: claims, renewals, finishes, give-backs and rescues (a part of
SQLiteStore). Every write is one BEGIN IMMEDIATE transaction, so a claim sees the slots of a
limited queue as they are and can never admit one job too many."""

from __future__ import annotations

import os
import sqlite3
import time
from functools import lru_cache
from typing import Sequence

from ...lifecycle import Outcome, RetryPolicy, finish_change, given_back_state
from ...models import Job
from .. import actions, deps, hooks as hook_ops, queues as queue_ops
from ..base import LOST, Chunks, Finished, Lease, Orders, Stop, Tail
from ..rows import job_from_row as _job, store_output
from ..sql import (APPLY_SQL, FINISH_SQL, FREE_SLOT_SQL, JOB_COLUMNS, RELEASE_RUN_SQL,
                   RELEASE_SQL, RUN_END_SQL, WORKER_STOP, change_params, run_end_params)

_CLAIM = f"""
UPDATE jobs SET state = 'running', attempts = attempts + 1, runs = runs + 1, worker_id = ?,
    token = ?, lease_until = ?, lease = ?, started_at = ?, updated_at = ?, finished_at = NULL,
    exit_code = NULL, cancel = 0, slot = ?
WHERE seq = ?
RETURNING {JOB_COLUMNS}
"""
# The next job of every open ungated queue: one walk of jobs_ready, as before queues.
_OPEN_HEAD = ("SELECT seq, queue, priority, run_at FROM jobs INDEXED BY jobs_ready "
              "WHERE state IN ('pending', 'failed') AND gated = 0 AND blocked = 0 AND run_at <= ? "
              "ORDER BY priority DESC, run_at, seq LIMIT 1")
# The next job of one queue (a gated one, or one a worker serves by name).
_QUEUE_HEAD = ("SELECT seq, queue, priority, run_at FROM jobs INDEXED BY jobs_queue_ready "
               "WHERE queue = ? AND state IN ('pending', 'failed') AND blocked = 0 AND run_at <= ? "
               "ORDER BY priority DESC, run_at, seq LIMIT 1")
# The gated queues (limited or paused), with how many of their slots are taken.
_GATES = ("SELECT q.name, q.concurrency, q.paused, "
          "(SELECT count(*) FROM slots s WHERE s.queue = q.name) FROM queues q "
          "WHERE q.concurrency IS NOT NULL OR q.paused > 0")
_HEADS_AT_ONCE = 200  # queue heads looked up in one statement (SQLite allows 500 terms)


@lru_cache(maxsize=64)
def _heads_sql(count: int) -> str:
    """One statement giving the head of each of `count` queues (one index seek each); built
    once per count, not on every claim."""
    return " UNION ALL ".join(["SELECT * FROM (" + _QUEUE_HEAD + ")"] * count)


# Whether a running job's queue was paused with --kill (its worker gives the job back).
_KILLING = (f"coalesce((SELECT q.paused = {queue_ops.KILLING} FROM queues q "
            "WHERE q.name = jobs.queue), 0)")
_RUNNING_ROW = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND state = 'running' AND token = ?"


class Claims:
    """Needs SQLiteStore's `_write` and `ring`."""

    def _claim(self, c: sqlite3.Connection, worker_id: str, now: float, lease: float,
               only: Sequence[str] | None = None) -> Job | None:
        picked = self._pick(c, now, only)
        if picked is None:
            return None
        seq, queue, slot = picked
        token = os.urandom(8).hex()
        job = _job(c.execute(_CLAIM, (worker_id, token, now + lease, lease, now, now, slot,
                                      seq)).fetchone())
        if slot is not None:
            c.execute("INSERT INTO slots (queue, slot, job_id) VALUES (?, ?, ?)",
                      (queue, slot, job.id))
        c.execute("INSERT INTO runs (job_id, attempt, started_at, worker, host, slot) "
                  "VALUES (?, ?, ?, ?, (SELECT host FROM workers WHERE id = ?), ?)",
                  (job.id, job.attempt, now, worker_id, worker_id, slot))
        c.execute("UPDATE workers SET job_id = ?, heartbeat_at = ? WHERE id = ?",
                  (job.id, now, worker_id))
        return job

    def _pick(self, c: sqlite3.Connection, now: float,
              only: Sequence[str] | None) -> tuple[int, str, int | None] | None:
        """(seq, queue, slot) of the job to claim: the best head among the open ungated queues
        (one walk of jobs_ready) and each open gated queue (or, for a worker serving some
        queues, each of those). Inside the write transaction, so the slot is still free."""
        gates = {name: (limit, paused, taken) for name, limit, paused, taken in c.execute(_GATES)}
        heads = []
        if only is None:
            row = c.execute(_OPEN_HEAD, (now,)).fetchone()
            if row is not None:
                heads.append(row)
            probe = [name for name, (_, paused, _) in gates.items() if not paused]
        else:
            probe = [name for name in only if not gates.get(name, (None, 0, 0))[1]]
        # At or above its limit (it may have been lowered): not a candidate.
        probe = [name for name in probe
                 if name not in gates or gates[name][0] is None or gates[name][2] < gates[name][0]]
        for start in range(0, len(probe), _HEADS_AT_ONCE):
            part = probe[start:start + _HEADS_AT_ONCE]
            heads += c.execute(_heads_sql(len(part)),
                               [v for name in part for v in (name, now)]).fetchall()
        if not heads:
            return None
        seq, queue, _, _ = min(heads, key=lambda h: (-h[2], h[3], h[0]))
        limit = gates.get(queue, (None, 0, 0))[0]
        if limit is None:
            return seq, queue, None
        taken = {r[0] for r in c.execute("SELECT slot FROM slots WHERE queue = ?", (queue,))}
        return seq, queue, next(k for k in range(limit) if k not in taken)

    def claim(self, worker_id: str, *, now: float, lease: float,
              queues: Sequence[str] | None = None) -> Job | None:
        with self._write() as c:
            return self._claim(c, worker_id, now, lease, queues)

    def renew(self, job: Job, *, now: float, lease: float, head: Chunks = (),
              tail: Tail | None = None) -> Orders:
        with self._write() as c:
            row = c.execute(f"UPDATE jobs SET lease_until = ?, lease = ? "
                            "WHERE id = ? AND state = 'running' AND token = ? "
                            f"RETURNING cancel, {_KILLING}", (now + lease, lease, job.id,
                                                              job.token)).fetchone()
            if row is None:
                return LOST
            store_output(c, job, head, tail)
            c.execute("UPDATE workers SET heartbeat_at = ? WHERE id = ?", (now, job.worker_id))
            w = c.execute(f"SELECT {WORKER_STOP} FROM workers w WHERE id = ?",
                          (job.worker_id,)).fetchone()
        return Orders(lease_lost=False, cancel=bool(row[0]), stop=Stop(w[0] if w else 0),
                      give_back=bool(row[1]))

    def orders(self, job: Job) -> Orders:
        rows = self._read(f"SELECT jobs.cancel, jobs.state = 'running' AND jobs.token IS ?, "
                          f"(SELECT {WORKER_STOP} FROM workers w WHERE w.id = ?), {_KILLING} "
                          "FROM jobs WHERE jobs.id = ?", (job.token, job.worker_id, job.id))
        if not rows or not rows[0][1]:
            return LOST
        return Orders(lease_lost=False, cancel=bool(rows[0][0]), stop=Stop(rows[0][2] or 0),
                      give_back=bool(rows[0][3]))

    def finish(self, job: Job, outcome: Outcome, *, now: float, policy: RetryPolicy,
               head: Chunks = (), tail: Tail | None = None, claim_next: str | None = None,
               lease: float = 0.0, queues: Sequence[str] | None = None) -> Finished:
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
            if job.slot is not None:
                c.execute(FREE_SLOT_SQL, (job.id,))
            store_output(c, job, head, tail)
            freed = deps.release(c, job.id, change.state)
            freed += len(hook_ops.fire(c, job.id, change.state, now=now, count_rows=True))
            c.execute(RUN_END_SQL, run_end_params(job, change, now, outcome.signal))
            nxt = self._claim(c, claim_next, now, lease, queues) if claim_next else None
            if nxt is None or claim_next != job.worker_id:  # else the claim updated the row
                c.execute("UPDATE workers SET job_id = NULL, heartbeat_at = ? WHERE id = ?",
                          (now, job.worker_id))
        if change.wakes_workers or job.slot is not None or freed:  # (others may start now)
            self.ring()
        return Finished(True, change.state, nxt)

    def release(self, job: Job, *, now: float) -> bool:
        with self._write() as c:
            done = c.execute(RELEASE_SQL, (given_back_state(job).value, now, job.id,
                                           job.token)).rowcount == 1
            if done:
                c.execute(RELEASE_RUN_SQL, (job.id, job.attempt))
                c.execute(FREE_SLOT_SQL, (job.id,))
                c.execute("UPDATE workers SET job_id = NULL WHERE id = ? AND job_id = ?",
                          (job.worker_id, job.id))
        if done:
            self.ring()
        return done

    def _rescue_rows(self, c: sqlite3.Connection, rows: list, died: set[str], now: float,
                     policy: RetryPolicy) -> list[str]:
        rescued = actions.rescue_rows(c, rows, died, now, policy, count_rows=True)
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
