"""The worker loop stepped in-process with an injected clock: claim → run → record."""

from __future__ import annotations

import os
import secrets
import threading
import time

import pytest

from queuectl.config import resolve
from queuectl.models import JobState, NewJob
from queuectl.store import open_store
from queuectl.worker import Worker
from storehelp import expire

NOW = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "q.db"))
    yield s
    s.close()


def make_worker(store, clock, **overrides):
    settings = resolve(store.config_items(), environ={}, overrides=overrides)[0]
    # An id of its own: a rescue on this host kills the job processes of the worker ids it
    # rescues, so tests running side by side must not share one.
    w = Worker(store, "w-" + secrets.token_hex(4), settings=settings, clock=clock)
    w.register(clock())
    return w


def add(store, clock, tmp_path, **spec):
    spec.setdefault("cwd", str(tmp_path))
    return store.enqueue([NewJob(**spec)], now=clock(), default_max_retries=3,
                         default_cwd=str(tmp_path))[0]


def test_success_is_recorded_with_output(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    job_id = add(store, clock, tmp_path, command="echo Hello World")
    assert w.run_once().id == job_id
    job = store.get(job_id)
    assert job.state is JobState.COMPLETED and job.exit_code == 0 and job.tries == 1
    out = store.output(job_id)
    assert b"".join(d for s, d in out.chunks if s == 1) == b"Hello World\n"
    assert w.run_once() is None


def test_retries_follow_the_backoff_rule_then_dead(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    job_id = add(store, clock, tmp_path, command="echo try >&2; exit 3", max_retries=2)
    w.run_once()
    job = store.get(job_id)
    assert job.state is JobState.FAILED and job.run_at == pytest.approx(clock.now + 1)
    assert w.run_once() is None  # not due yet
    clock.now += 1.0
    w.run_once()
    job = store.get(job_id)
    assert job.state is JobState.FAILED and job.run_at == pytest.approx(clock.now + 2)
    clock.now += 1.9
    assert w.run_once() is None
    clock.now += 0.1
    w.run_once()
    job = store.get(job_id)
    assert job.state is JobState.DEAD and job.tries == 3
    assert job.last_error == "exit code 3"
    runs = store.runs(job_id)
    assert [r.outcome for r in runs] == ["failed"] * 3
    assert all(b"try" in d for _, d in store.output(job_id, 2).chunks)


def test_dead_job_retried_from_dlq_runs_again_with_fresh_budget(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    marker = tmp_path / "ok"
    job_id = add(store, clock, tmp_path, command=f"test -e {marker}", max_retries=0)
    w.run_once()
    assert store.get(job_id).state is JobState.DEAD
    marker.touch()
    store.retry_dead([job_id], now=clock())
    job = store.get(job_id)
    assert job.state is JobState.PENDING and job.tries == 0
    w.run_once()
    assert store.get(job_id).state is JobState.COMPLETED
    assert [r.attempt for r in store.runs(job_id)] == [1, 2]


def test_invalid_command_goes_dead_and_worker_keeps_going(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    bad = add(store, clock, tmp_path, command="no_such_command_xyz", max_retries=0, priority=5)
    good = add(store, clock, tmp_path, command="true")
    w.run_once()
    w.run_once()
    assert store.get(bad).state is JobState.DEAD
    assert store.get(bad).last_error == "command not found (exit 127)"
    assert store.get(good).state is JobState.COMPLETED


def test_missing_working_directory_is_a_failed_attempt(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    gone = tmp_path / "gone"
    job_id = store.enqueue([NewJob(command="true")], now=clock(), default_max_retries=0,
                           default_cwd=str(gone))[0]
    w.run_once()
    job = store.get(job_id)
    assert job.state is JobState.DEAD and "does not exist" in job.last_error


def test_priority_then_age_and_delayed_jobs_wait(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    low = add(store, clock, tmp_path, command="true")
    later = add(store, clock, tmp_path, command="true", priority=9, delay=60)
    high = add(store, clock, tmp_path, command="true", priority=5)
    order = [w.run_once().id, w.run_once().id]
    assert order == [high, low]
    assert w.run_once() is None
    clock.now += 60
    assert w.run_once().id == later


def test_finish_claims_the_next_job_in_the_same_step(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    first = add(store, clock, tmp_path, command="true")
    second = add(store, clock, tmp_path, command="true")
    w.run_once()
    assert store.get(second).state is JobState.RUNNING  # claimed with the first's result
    assert w.run_once().id == second
    assert store.get(first).state is JobState.COMPLETED


def test_timeout_is_recorded(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    job_id = add(store, clock, tmp_path, command="sleep 30", timeout=0.3, max_retries=0)
    w.run_once()
    job = store.get(job_id)
    assert job.state is JobState.DEAD and job.last_error == "timed out after 0.3 s"


def test_output_cap_keeps_head_and_tail(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock, **{"output-limit": "1000"})
    job_id = add(store, clock, tmp_path,
                 command="i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done")
    w.run_once()
    out = store.output(job_id)
    data = b"".join(d for _, d in out.chunks)
    full = b"".join(f"line{i}\n".encode() for i in range(2000))
    assert len(data) == 1000
    assert data[:500] == full[:500] and data[500:] == full[-500:]
    assert out.run.dropped_bytes == len(full) - 1000
    assert out.run.output_bytes == len(full)


def test_a_stale_worker_cannot_record_over_a_rescue(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock, lease="1s")
    job_id = add(store, clock, tmp_path, command="true", max_retries=1)
    job = store.claim(w.id, now=clock(), lease=1)
    clock.now += 5
    assert expire(store, clock(), w.policy) == [job_id]
    from queuectl.lifecycle import Outcome

    recorded, _, _ = store.finish(job, Outcome(ok=True, exit_code=0), now=clock(), policy=w.policy)
    assert not recorded
    assert store.get(job_id).state is JobState.FAILED
    assert store.runs(job_id)[0].outcome == "lost"


def test_job_environment_marks_the_job(store, tmp_path):
    clock = Clock()
    w = make_worker(store, clock)
    job_id = add(store, clock, tmp_path, command='echo "$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT"; pwd')
    w.run_once()
    out = b"".join(d for _, d in store.output(job_id).chunks).decode()
    assert out.splitlines() == [f"{job_id} 1", os.path.realpath(tmp_path)]


def _hold_the_store(store, seconds: float, held) -> None:
    """Hold what the worker's heartbeat needs for `seconds`: SQLite's write lock, or on
    PostgreSQL the workers table."""
    if hasattr(store, "path"):
        import sqlite3

        conn = sqlite3.connect(store.path, isolation_level=None, timeout=10)
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()
        return
    import psycopg

    from queuectl.store.postgres.conn import parse_location

    pg = parse_location(store.url)
    with psycopg.connect(pg.conninfo, options=f"-c search_path={pg.schema}") as conn:
        with conn.transaction():
            conn.execute("LOCK TABLE workers IN EXCLUSIVE MODE")
            held.set()
            time.sleep(seconds)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_time_the_store_held_a_rescuer_up_does_not_count_toward_a_lease(tmp_path, request,
                                                                         backend):
    """A store that kept this worker waiting (a write lock held by a big enqueue) kept the
    running job's renewals waiting too: that time must not make the job look abandoned."""
    if backend == "postgres":
        store = open_store(request.getfixturevalue("pg_url"))
    else:
        store = open_store(str(tmp_path / "q.db"))
    try:
        clock = Clock()
        rescuer = make_worker(store, clock, lease="2s")
        job_id = add(store, clock, tmp_path, command="true")
        store.register_worker("w-other", 1, "elsewhere", clock())
        assert store.claim("w-other", now=clock(), lease=2).id == job_id
        rescuer.rescue(clock())  # first sight of the lease
        time.sleep(1.1)  # a heartbeat and a rescue are due
        held = threading.Event()
        holder = threading.Thread(target=_hold_the_store, args=(store, 3.0, held))
        holder.start()
        held.wait(10)
        rescuer.housekeeping(clock())  # its heartbeat waits ~3 s for the store
        holder.join()
        rescuer.housekeeping(clock())
        assert store.get(job_id).state is JobState.RUNNING
    finally:
        store.close()
