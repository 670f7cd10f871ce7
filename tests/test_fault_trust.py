"""No job stranded, killed by mistake or left running: the ways out of a worker's loop, leases
judged by the claim's own lease, a store held up, job processes that fork or escape.

Each scenario runs real pools (`queuectl worker start`) against real stores and ends with the
invariants (tests/invariants.py).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

import invariants
from invariants import check, jobs, runs, start_pool, stop_pool, worker_pids
from procs import cli, env_for, processes_with_env, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "q.db")


def cmdline_pids(needle: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ")
        except OSError:
            continue
        if needle.encode() in cmd and not invariants.proc_gone(int(name)):
            found.append(int(name))
    return found


def wait_exit(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"the pool did not exit within {timeout}s:\n"
                             + invariants.pool_log(proc))


def nothing_lost(db, ids) -> dict:
    """After a stop: nothing running, nothing counted against its budget (max_retries 0 would
    have buried it), nothing lost; every job completed or waiting untouched."""
    rows = check(db, ids, leases_rescued=False)
    states = {}
    for job_id, job in rows.items():
        states[job["state"]] = states.get(job["state"], 0) + 1
        assert job["state"] in ("completed", "pending"), (job_id, job)
        if job["state"] == "pending":
            assert job["attempts"] == 0 and job["token"] is None, (job_id, job)
    outcomes = {r["outcome"] for job_id in rows for r in runs(db, job_id)}
    assert outcomes <= {"completed", "interrupted"}, outcomes
    return states


# -- 1. every way out of the loop gives a claimed, unstarted job back at once ----------------

STOPS = ["worker stop", "worker stop --force", "SIGTERM", "SIGTERM twice", "SIGHUP",
         "supervisor killed"]


def _stop_pool(db, proc, how: str) -> None:
    if how.startswith("worker stop"):
        done = cli(db, *how.split())
        assert done.returncode == 0, done.stderr
    elif how == "SIGTERM":
        proc.send_signal(signal.SIGTERM)
    elif how == "SIGTERM twice":
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
    elif how == "SIGHUP":
        proc.send_signal(signal.SIGHUP)
    elif how == "supervisor killed":
        proc.send_signal(signal.SIGKILL)


@pytest.mark.parametrize("how", STOPS)
def test_a_stop_at_any_moment_of_a_drain_leaves_nothing_running_or_counted(db, tmp_path, how):
    if invariants.is_postgres(db) and how not in ("worker stop", "SIGTERM twice"):
        pytest.skip("the other stops take the same paths on PostgreSQL")  # (time)
    invariants.init_store(db, max_retries="0")
    rng = random.Random(how)
    for round_ in range(3):
        ids = invariants.enqueue_many(db, [{"command": "true"} for _ in range(3000)], tmp_path)
        proc = start_pool(db, "--count", "2")
        wait_for(lambda: invariants.jobs(db) and any(
            j["state"] == "completed" for j in invariants.jobs(db).values()),
            timeout=30, what="the drain going")
        time.sleep(rng.uniform(0.0, 0.6))
        _stop_pool(db, proc, how)
        code = wait_exit(proc)
        log = invariants.pool_log(proc, remove=True)
        if how == "supervisor killed":
            # Its workers notice, give their jobs back and exit.
            wait_for(lambda: not worker_pids(db), timeout=15, what="orphaned workers gone")
        else:
            assert code == 0, log
        wait_for(lambda: not [j for j in jobs(db).values() if j["state"] == "running"],
                 timeout=15, what="no job running")
        states = nothing_lost(db, ids)
        assert states.get("pending"), (round_, states)  # the stop came mid-drain
        cli(db, "prune", "--older-than", "0s")


def test_the_console_pool_quitting_mid_drain_leaves_nothing_running(tmp_path):
    """The console stops its pool in-process (Pool.stop), warm then at once cold."""
    from queuectl.pool import Pool

    db = str(tmp_path / "q.db")
    invariants.init_store(db, max_retries="0")
    for cold in (False, True):
        ids = invariants.enqueue_many(db, [{"command": "true"} for _ in range(2000)], tmp_path)
        pool = Pool(db, 2, quiet=True)
        pool.start()
        wait_for(lambda: any(j["state"] == "completed" for j in jobs(db).values()),
                 timeout=30, what="the drain going")
        pool.stop(cold=cold, timeout=30)
        assert not [j for j in jobs(db).values() if j["state"] == "running"]
        nothing_lost(db, ids)
        cli(db, "prune", "--older-than", "0s")


# -- 2. a job is judged by the lease its own claim renews by -----------------------------------

def test_a_pool_with_a_shorter_lease_leaves_another_pools_healthy_job_alone(db, tmp_path):
    invariants.init_store(db, lease="30s", max_retries="0")
    marks = tmp_path / "marks"
    [job_id] = invariants.enqueue_many(
        db, [{"command": f"echo $QUEUECTL_ATTEMPT >> {marks}; sleep 6"}], tmp_path)
    a = start_pool(db, "--count", "1", env=env_for(db, QUEUECTL_HOST="host-a"))
    try:
        wait_for(lambda: invariants.state_of(db, job_id) == "running", what="A runs the job")
        assert cli(db, "config", "set", "lease", "1s").returncode == 0
        b = start_pool(db, "--count", "1", env=env_for(db, QUEUECTL_HOST="host-b"))
        try:
            wait_for(lambda: invariants.state_of(db, job_id) == "completed", timeout=30,
                     what="A's job completes")
        finally:
            stop_pool(b)
    finally:
        stop_pool(a)
    assert [r["outcome"] for r in runs(db, job_id)] == ["completed"]
    assert marks.read_text().split() == ["1"]
    check(db, [job_id], leases_rescued=False)


# -- 3. a store held up for less than the busy timeout is not a dead worker ---------------------

def _hold_write_lock(db, seconds: float, started: threading.Event) -> None:
    if invariants.is_postgres(db):
        conn = invariants.pg_connect(db, snapshot=False)
        try:
            with conn.transaction():
                conn.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")  # writers wait, readers do not
                started.set()
                time.sleep(seconds)
        finally:
            conn.close()
        return
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN IMMEDIATE")  # as a big `enqueue --file` holds it
        started.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


def test_a_write_lock_held_for_less_than_the_busy_timeout_rescues_nothing(db, tmp_path):
    invariants.init_store(db, lease="2s", max_retries="0")
    marks = tmp_path / "marks"
    [job_id] = invariants.enqueue_many(
        db, [{"command": f"echo $QUEUECTL_ATTEMPT >> {marks}; sleep 16"}], tmp_path)
    # One worker runs the job; the four others are idle rescuers, racing its renewal for the
    # store each time the lock is let go.
    pool = start_pool(db, "--count", "5")
    try:
        wait_for(lambda: invariants.state_of(db, job_id) == "running", what="the job running")
        for _ in range(3):
            time.sleep(1.0)
            started = threading.Event()
            holder = threading.Thread(target=_hold_write_lock, args=(db, 3.5, started))
            holder.start()
            started.wait(10)
            holder.join(30)
        wait_for(lambda: invariants.state_of(db, job_id) == "completed", timeout=30,
                 what="the job completes")
    finally:
        log = stop_pool(pool)
    assert [r["outcome"] for r in runs(db, job_id)] == ["completed"], log
    assert marks.read_text().split() == ["1"]
    assert "rescued" not in log
    check(db, [job_id], leases_rescued=False)


# -- 4 and 5. what a killed worker's job left behind dies before the job runs again --------------

def _kill_the_worker_running(db, job_id) -> str:
    wait_for(lambda: invariants.worker_pid_of(db, job_id), what="the job running")
    worker = jobs(db)[job_id]["worker_id"]
    os.kill(invariants.worker_pid_of(db, job_id), signal.SIGKILL)
    return worker


def test_a_killed_workers_forking_job_leaves_no_process_behind(tmp_path):
    db = str(tmp_path / "q.db")
    invariants.init_store(db, max_retries="1")
    # A job that keeps forking, from an ever newer process (each forker starts the next one
    # and exits): one pass over /proc always finds the newest forker gone and a newer one alive.
    [job_id] = invariants.enqueue_many(db, [{"command": (
        'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then f() { sleep 30 & ( sleep 0.003; f ) & }; f; '
        'sleep 60; fi')}], tmp_path)
    pool = start_pool(db, "--count", "1")
    try:
        wait_for(lambda: len(processes_with_env("QUEUECTL_JOB_ID", job_id)) > 50,
                 what="the fork loop going")
        worker = _kill_the_worker_running(db, job_id)
        wait_for(lambda: invariants.state_of(db, job_id) == "completed", timeout=30,
                 what="rescued and run again")
        wait_for(lambda: not processes_with_env("QUEUECTL_WORKER_ID", worker), timeout=5,
                 what="no process of the killed worker's job left")
    finally:
        stop_pool(pool)
    check(db, [job_id])


def test_a_killed_workers_job_that_escaped_with_setsid_and_env_i_is_killed(tmp_path):
    db = str(tmp_path / "q.db")
    [job_id] = invariants.enqueue_many(db, [{"command": (
        "setsid env -i sleep 3017 & echo started; sleep 3018"), "max_retries": 0}], tmp_path)
    pool = start_pool(db, "--count", "1")
    try:
        wait_for(lambda: cmdline_pids("sleep 3017"), what="the escaped process")
        _kill_the_worker_running(db, job_id)
        wait_for(lambda: invariants.state_of(db, job_id) == "dead", timeout=15,
                 what="the job rescued")
        wait_for(lambda: not cmdline_pids("sleep 3017") and not cmdline_pids("sleep 3018"),
                 timeout=10, what="the escaped process killed")
    finally:
        stop_pool(pool)
    check(db, [job_id])


# -- 7. a stop request reaches a worker that was frozen past its lease ---------------------------

def test_a_stop_reaches_a_pool_that_was_frozen_past_its_lease(db, tmp_path):
    invariants.init_store(db, lease="1s")
    frozen = start_pool(db, "--count", "1", env=env_for(db, QUEUECTL_HOST="frozen-host"))
    other = start_pool(db, "--count", "1", env=env_for(db, QUEUECTL_HOST="other-host"))
    try:
        wait_for(lambda: len(worker_pids(db)) == 2, what="both pools' workers")
        os.killpg(frozen.pid, signal.SIGSTOP)
        # The other pool removes the frozen worker's row once it is four leases stale.
        wait_for(lambda: len(worker_pids(db)) == 1, timeout=20, what="the frozen row removed")
        done = cli(db, "worker", "stop", "--timeout", "30s")
        assert done.returncode == 0, done.stderr
        assert wait_exit(other, 30) == 0
        os.killpg(frozen.pid, signal.SIGCONT)
        assert wait_exit(frozen, 30) == 0, invariants.pool_log(frozen)
        assert "stopped on request" in invariants.pool_log(frozen)
    finally:
        for proc in (frozen, other):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
            stop_pool(proc)
    # A pool started after the stop is not stopped by it.
    later = start_pool(db, "--count", "1")
    try:
        wait_for(lambda: len(worker_pids(db)) == 1, what="a new pool's worker")
        time.sleep(1.5)
        assert later.poll() is None
    finally:
        stop_pool(later)
