"""Schedules and hooks with real pools: exactly one job per tick from three pools (two hosts on
PostgreSQL), a pool killed at a tick neither loses nor doubles it, and a hook of a job whose
worker was killed right after the job died runs exactly once."""

from __future__ import annotations

import os
import signal
import time

import pytest

import invariants
from invariants import check, jobs, start_pool, stop_pool, worker_pids
from procs import cli, env_for, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "q.db")


def ticks_of(db, name: str) -> list[float]:
    keys = [j["unique_key"] for j in jobs(db).values() if j["origin"] == f"schedule:{name}"]
    return sorted(float(k.rsplit(":", 1)[1]) for k in keys)


def test_three_pools_make_exactly_one_job_per_tick_even_when_one_is_killed(db, tmp_path):
    hosts = ["host-a", "host-b", "host-a"] if invariants.is_postgres(db) else [None] * 3
    invariants.init_store(db)
    pools = [start_pool(db, "--count", "2", env=env_for(db, **({"QUEUECTL_HOST": h} if h else {})))
             for h in hosts]
    try:
        wait_for(lambda: len(worker_pids(db)) == 6, timeout=30, what="every worker")
        done = cli(db, "schedule", "add", "beat", "--every", "1s", "--", "true")
        assert done.returncode == 0, done.stderr
        started = time.time()
        time.sleep(10)
        # Kill one whole pool at a tick (the kill lands a few milliseconds either side of it).
        from datetime import datetime

        tick = datetime.fromisoformat(
            invariants.show_schedule(db, "beat")["next_at"].replace("Z", "+00:00")).timestamp()
        time.sleep(max(0.0, tick - time.time() - 0.002))
        os.killpg(pools[0].pid, signal.SIGKILL)
        time.sleep(12)
        done = cli(db, "schedule", "pause", "beat")
        assert done.returncode == 0
        ended = time.time()
        time.sleep(2)
    finally:
        for pool in pools:
            if pool.poll() is None:
                stop_pool(pool)
    ticks = ticks_of(db, "beat")
    assert len(ticks) == len(set(ticks))  # never twice
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert all(abs(g - 1.0) < 1e-6 for g in gaps), gaps  # never a tick lost
    assert len(ticks) >= (ended - started) - 3, (len(ticks), ended - started)
    check(db, leases_rescued=False)


def test_a_hook_runs_exactly_once_when_the_worker_dies_right_after_the_job_did(db, tmp_path):
    marks = tmp_path / "told"
    done = cli(db, "hook", "add", "on-dead", "--", "sh", "-c",
               f'echo "$QUEUECTL_HOOK_JOB_ID $QUEUECTL_HOOK_ERROR" >> {marks}')
    assert done.returncode == 0, done.stderr
    [job_id] = invariants.enqueue_many(db, [{"command": "exit 7", "max_retries": 0}], tmp_path)
    # This pool's worker dies right after recording the job's death (and the hook's job).
    doomed = start_pool(db, "--count", "1", env=env_for(db, QUEUECTL_FAULT="after_finish"))
    try:
        wait_for(lambda: invariants.state_of(db, job_id) == "dead", timeout=30, what="death")
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        invariants.pool_log(doomed, remove=True)
    healthy = start_pool(db, "--count", "1")
    try:
        wait_for(lambda: marks.exists() and marks.read_text().strip(), timeout=30,
                 what="the hook run")
        time.sleep(2)
    finally:
        stop_pool(healthy)
    assert marks.read_text().splitlines() == [f"{job_id} exit code 7"]
    hooks = [j for j in jobs(db).values() if (j["origin"] or "").startswith("hook:")]
    assert len(hooks) == 1 and hooks[0]["state"] == "completed"
