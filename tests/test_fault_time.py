"""Time: durations (timeouts, leases, the intervals of a worker's housekeeping) use the monotonic
clock, so a wall-clock jump neither kills nor rescues a healthy job; delayed jobs never run early.

How the jump is made: the machine's clock must not be changed by a test, so the workers' wall
clock is shifted instead. A `sitecustomize` module on PYTHONPATH (inherited by the pool and the
worker processes it spawns) replaces `time.time` with the real time plus an offset read from a
file the test writes: all of a pool's processes jump together, as on a real clock step, while
`time.monotonic` keeps running. (libfaketime was tried: with its monotonic clock left real,
Python's `time.sleep` fails with EINVAL under it, so it cannot shift the wall clock alone.)

Not testable here, and why:
- a jump of the kernel's clock itself (settimeofday, NTP steps): it would disturb the machine
  and every other test; what queuectl sees of it is `time.time()`, which the shim shifts;
- C code reading the wall clock (SQLite has no say in our times: every timestamp it stores
  comes from Python);
- clocks that differ between hosts sharing a store (needs a second host): the rescue rule
  tested here (no renewal observed for a lease, measured on the rescuer's monotonic clock) does
  not compare clocks of different processes, which is what makes it hold across hosts too.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time

import pytest

import invariants
from invariants import check, runs, state_of, worker_pids
from procs import cli, env_for, wait_for

SHIM = textwrap.dedent("""
    import os, time
    _path = os.environ.get("QUEUECTL_TEST_CLOCK_OFFSET_FILE")
    if _path:
        _real = time.time

        def _shifted():
            try:
                with open(_path) as f:
                    return _real() + float(f.read().strip() or 0)
            except (OSError, ValueError):
                return _real()

        time.time = _shifted
""")


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "q.db")


@pytest.fixture
def shifted(tmp_path, db):
    """(env for a pool whose wall clock follows the offset file, a function to set the offset)"""
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    (shim_dir / "sitecustomize.py").write_text(SHIM)
    offset = tmp_path / "offset"
    offset.write_text("0")
    env = env_for(db, QUEUECTL_TEST_CLOCK_OFFSET_FILE=str(offset),
                  PYTHONPATH=os.pathsep.join(filter(None, [str(shim_dir),
                                                            os.environ.get("PYTHONPATH")])))

    def jump(seconds: float) -> None:
        tmp = offset.with_suffix(".tmp")
        tmp.write_text(repr(seconds))
        os.replace(tmp, offset)
    return env, jump


def test_the_shim_shifts_wall_time_but_not_monotonic_time(db, shifted):
    env, jump = shifted
    probe = "import time; print(time.time(), time.monotonic())"
    import subprocess
    import sys

    jump(3600)
    wall, mono = map(float, subprocess.run([sys.executable, "-c", probe], env=env,
                                           capture_output=True, text=True).stdout.split())
    assert 3590 < wall - time.time() < 3610
    assert abs(mono - time.monotonic()) < 5


@pytest.mark.parametrize("seconds", [3600, -3600])
def test_a_wall_clock_jump_neither_kills_nor_rescues_a_healthy_job(db, tmp_path, shifted, seconds):
    env, jump = shifted
    invariants.init_store(db, lease="3s")
    job_id = invariants.enqueue_many(db, [
        {"command": "sleep 5; echo survived", "timeout": 8}], tmp_path)[0]
    pool = invariants.start_pool(db, "--count", "3", env=env)  # two idle workers rescue
    try:
        wait_for(lambda: state_of(db, job_id) == "running", what="running")
        jump(seconds)
        wait_for(lambda: state_of(db, job_id) != "running", timeout=20, what="job ended")
        assert state_of(db, job_id) == "completed"
        assert [r["outcome"] for r in runs(db, job_id)] == ["completed"]
        check(db, [job_id], expected_output={job_id: b"survived\n"}, leases_rescued=False,
              steady_clock=False)
    finally:
        log = invariants.stop_pool(pool)
    assert "rescued" not in log and "lost the lease" not in log, log


def test_a_frozen_worker_is_still_rescued_after_a_backward_jump(db, tmp_path, shifted):
    env, jump = shifted
    invariants.init_store(db, lease="1s", backoff_max="0")
    job_id = invariants.enqueue_many(db, [{
        "command": "if [ $QUEUECTL_ATTEMPT = 1 ]; then sleep 60; fi; echo ok"}], tmp_path)[0]
    pool = invariants.start_pool(db, "--count", "2", env=env)
    frozen = None
    try:
        frozen = wait_for(lambda: invariants.worker_pid_of(db, job_id), what="running")
        jump(-3600)  # every lease now looks an hour away from expiring
        os.kill(frozen, signal.SIGSTOP)
        wait_for(lambda: state_of(db, job_id) == "completed", timeout=15,
                 what="rescued and rerun by the other worker")
        assert [r["outcome"] for r in runs(db, job_id)] == ["lost", "completed"]
    finally:
        if frozen:
            os.kill(frozen, signal.SIGCONT)
        log = invariants.stop_pool(pool)
    check(db, [job_id], steady_clock=False)
    assert "Traceback" not in log


def test_after_a_backward_jump_idle_workers_still_heartbeat_and_stop_on_request(db, shifted):
    env, jump = shifted
    invariants.init_store(db, lease="3s")
    pool = invariants.start_pool(db, "--count", "2", env=env)
    try:
        wait_for(lambda: len(worker_pids(db)) == 2, what="workers registered")
        jump(-3600)
        time.sleep(1.5)
        before = {w: hb for w, hb in invariants.connect(db).execute(
            "SELECT id, heartbeat_at FROM workers")}
        time.sleep(2.5)  # a heartbeat is due every lease/3 = 1 s, by the monotonic clock
        after = {w: hb for w, hb in invariants.connect(db).execute(
            "SELECT id, heartbeat_at FROM workers")}
        assert set(after) == set(before) and all(after[w] != before[w] for w in after)
        stop_env = dict(env)
        done = cli(db, "worker", "stop", "--timeout", "10s", env=stop_env, timeout=30)
        assert done.returncode == 0, done.stderr
        pool.wait(timeout=10)
        assert pool.returncode == 0
    finally:
        log = invariants.stop_pool(pool)
    assert "Traceback" not in log


def test_a_timeout_is_measured_on_the_monotonic_clock(db, tmp_path, shifted):
    env, jump = shifted
    job_id = invariants.enqueue_many(db, [
        {"command": "sleep 1.5; echo ok", "timeout": 4, "max_retries": 0}], tmp_path)[0]
    pool = invariants.start_pool(db, "--count", "1", env=env)
    try:
        wait_for(lambda: state_of(db, job_id) == "running", what="running")
        jump(7200)  # past the timeout by the wall clock
        wait_for(lambda: state_of(db, job_id) == "completed", timeout=10, what="completed")
        hung = invariants.enqueue_many(db, [
            {"command": "sleep 30", "timeout": 1, "max_retries": 0}], tmp_path)[0]
        wait_for(lambda: state_of(db, hung) == "running", what="hung job running")
        started = time.monotonic()
        jump(0)  # two hours back: that does not extend a timeout either
        wait_for(lambda: state_of(db, hung) == "dead", timeout=10, what="timed out")
        assert time.monotonic() - started < 5
    finally:
        invariants.stop_pool(pool)
    check(db, [job_id, hung], expected_output={job_id: b"ok\n"}, steady_clock=False)
    assert invariants.jobs(db)[hung]["last_error"] == "timed out after 1 s"


def test_delayed_jobs_never_run_early_even_after_a_backward_jump(db, tmp_path, shifted):
    env, jump = shifted
    marks = tmp_path / "marks"
    enqueued = time.time()
    soon, later = invariants.enqueue_many(db, [
        {"command": f"date +%s.%N >> {marks}", "delay": 2},
        {"command": "true", "delay": 3600}], tmp_path)
    pool = invariants.start_pool(db, "--count", "2", env=env)
    try:
        wait_for(lambda: state_of(db, soon) == "completed", timeout=15, what="delayed job ran")
        ran_at = float(marks.read_text().split()[0])
        assert ran_at >= enqueued + 2  # not early (and by the real clock, as `date` sees it)
        assert ran_at < enqueued + 8
        # Workers whose clock went back an hour: a job due in 2 s now looks 1 h away. It waits
        # (late, never early); once the clock is back it runs.
        jump(-3600)
        back = invariants.enqueue_many(db, [{"command": "true", "delay": 2}], tmp_path)[0]
        time.sleep(4)
        assert state_of(db, back) == "pending" and state_of(db, later) == "pending"
        jump(0)
        wait_for(lambda: state_of(db, back) == "completed", timeout=10, what="ran once due")
        assert state_of(db, later) == "pending"
    finally:
        invariants.stop_pool(pool)
    check(db, [soon, later, back])
