"""Process death and signals: real `queuectl worker start` pools killed and signalled mid-job.

Already covered in test_worker_processes.py (not repeated here): one worker killed with SIGKILL
mid-job, the supervisor alone killed with one busy worker, everything killed with one busy
worker, SIGINT twice, SIGSEGV and exit 42 recorded, a TERM-ignoring job with a timeout,
`setsid` escaping the group. Here: the crash points, several workers at once, leftovers of
killed workers, the stop variants, hung jobs with retries, background children.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest

import invariants
from invariants import check, runs, state_of, worker_pid_of, worker_pids

from procs import cli, env_for, start_workers, stop, wait_for


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "q.db")


def lines(path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def cmdline_pids(needle: str) -> list[int]:
    """Live processes whose command line contains `needle` (for processes that scrubbed their
    environment, so QUEUECTL_JOB_ID cannot find them)."""
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


@pytest.mark.parametrize("point", ["after_claim", "before_finish"])
def test_crash_at_a_fixed_point_is_rescued_then_buried_then_runs_once_healthy(db, tmp_path, point):
    marks = tmp_path / "marks"
    job_id = invariants.enqueue_many(
        db, [{"command": f"echo $QUEUECTL_ATTEMPT >> {marks}", "max_retries": 5}], tmp_path)[0]
    # Every worker of this pool (replacements too) dies at `point`: the job is a poison pill.
    proc = start_workers(db, "--count", "1", env=env_for(db, QUEUECTL_FAULT=point))
    try:
        wait_for(lambda: state_of(db, job_id) == "dead", timeout=30, what="buried after 3 losses")
    finally:
        out, err = stop(proc)
    assert "died (signal 9)" in err and "Traceback" not in err
    history = runs(db, job_id)
    assert [r["outcome"] for r in history] == ["lost"] * 3
    assert "lost 3 times" in invariants.jobs(db)[job_id]["last_error"]
    # after_claim: the command never started; before_finish: it ran, its result was never recorded.
    assert lines(marks) == ([] if point == "after_claim" else ["1", "2", "3"])
    check(db, [job_id])

    assert cli(db, "dlq", "retry", job_id).returncode == 0
    done = cli(db, "worker", "start", "--count", "1", "--burst")
    assert done.returncode == 0, done.stderr
    job = invariants.jobs(db)[job_id]
    assert job["state"] == "completed" and job["attempts"] == 1
    assert [r["outcome"] for r in runs(db, job_id)] == ["lost"] * 3 + ["completed"]
    check(db, [job_id])


@pytest.mark.slow
def test_workers_killed_at_random_mid_stream_lose_nothing_and_never_overlap(db, tmp_path):
    log = tmp_path / "log"
    n = 120
    ids = invariants.enqueue_many(db, [
        {"command": f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT >> {log}; sleep 0.1",
         "max_retries": 5} for _ in range(n)], tmp_path)
    proc = start_workers(db, "--count", "3")
    killed = 0
    try:
        rng = random.Random(6)
        deadline = time.monotonic() + 60
        while killed < 8 and time.monotonic() < deadline:
            time.sleep(0.3)
            conn = invariants.connect(db)
            busy = [p for (p,) in conn.execute(
                "SELECT w.pid FROM workers w JOIN jobs j ON j.worker_id = w.id "
                "WHERE j.state = 'running'")]
            conn.close()
            if busy:
                try:
                    os.kill(rng.choice(busy), signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        wait_for(lambda: all(j["state"] == "completed" for j in invariants.jobs(db).values()),
                 timeout=90, what="every job completed")
    finally:
        out, err = stop(proc)
    assert killed == 8
    jobs = check(db, ids)
    seen = lines(log)
    for job_id in ids:
        history = runs(db, job_id)
        assert [r["outcome"] for r in history][-1] == "completed"
        assert all(r["outcome"] == "lost" for r in history[:-1])
        ran = [s for s in seen if s.split(".")[0] == job_id]
        # At least once: the completed attempt ran; a lost attempt ran at most once.
        assert f"{job_id}.{jobs[job_id]['runs']}" in ran
        assert len(ran) == len(set(ran)) <= len(history)
    assert sum(len(runs(db, j)) for j in ids) > n  # some runs were really lost and rerun


def test_kill_9_of_a_worker_kills_its_job_before_the_rerun(db, tmp_path):
    marks = tmp_path / "marks"
    job_id = invariants.enqueue_many(db, [{
        "command": f"echo start$QUEUECTL_ATTEMPT >> {marks}; sleep 30 & sleep 30; "
                   f"echo end$QUEUECTL_ATTEMPT >> {marks}",
        "max_retries": 2}], tmp_path)[0]
    proc = start_workers(db, "--count", "1")
    try:
        pid = wait_for(lambda: lines(marks) and worker_pid_of(db, job_id), what="job running")
        first = invariants._leftovers(db, [job_id])
        assert len(first) >= 3  # sh and its two sleeps
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: lines(marks) == ["start1", "start2"], timeout=20, what="rerun")
        # The first run's processes were killed before the second could start.
        assert all(invariants.proc_gone(p) for p in first)
        live = invariants._leftovers(db, [job_id])
        attempts = set()
        for p in live:
            with open(f"/proc/{p}/environ", "rb") as f:
                attempts |= {e for e in f.read().split(b"\0") if e.startswith(b"QUEUECTL_ATTEMPT=")}
        assert attempts == {b"QUEUECTL_ATTEMPT=2"}
    finally:
        stop(proc)
    check(db, [job_id])


def test_kill_9_of_the_whole_pool_next_start_kills_leftovers_and_reclaims_at_once(db, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    ids = invariants.enqueue_many(db, [
        {"command": f"echo x >> {marks}/$QUEUECTL_JOB_ID; sleep 60", "max_retries": 2}
        for _ in range(3)], tmp_path)
    proc = start_workers(db, "--count", "3")
    wait_for(lambda: len(os.listdir(marks)) == 3 and
             all(state_of(db, i) == "running" for i in ids), what="3 jobs running")
    os.killpg(proc.pid, signal.SIGKILL)  # supervisor and workers; the jobs are in their own sessions
    proc.wait()
    orphans = invariants._leftovers(db, ids)
    assert len(orphans) >= 6  # sh + sleep of each job, still running, their leases (15 s) valid
    started = time.monotonic()
    proc = start_workers(db, "--count", "3")
    try:
        wait_for(lambda: all((marks / i).read_text() == "x\nx\n" for i in ids), timeout=10,
                 what="every job rerun")
        assert time.monotonic() - started < 10  # long before their leases expired
        assert all(invariants.proc_gone(p) for p in orphans)
        for job_id in ids:
            assert [r["outcome"] for r in runs(db, job_id)] == ["lost", None]
        check(db, ids)
    finally:
        stop(proc)
    check(db, ids)


def test_kill_9_of_the_supervisor_stops_idle_and_busy_workers_within_seconds(db, tmp_path):
    job_id = invariants.enqueue_many(db, [{"command": "sleep 60"}], tmp_path)[0]
    proc = start_workers(db, "--count", "3")
    wait_for(lambda: len(worker_pids(db)) == 3 and state_of(db, job_id) == "running",
             what="3 workers, one busy")
    pids = list(worker_pids(db).values())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    started = time.monotonic()
    wait_for(lambda: all(invariants.proc_gone(p) for p in pids), timeout=8,
             what="every orphaned worker gone")
    assert time.monotonic() - started < 5  # the issue asks for ~2 s; slack for a loaded CI
    job = invariants.jobs(db)[job_id]
    assert job["state"] == "pending" and job["attempts"] == 0  # given back, not counted
    assert runs(db, job_id)[0]["outcome"] == "interrupted"
    assert worker_pids(db) == {}  # they unregistered
    check(db, [job_id])


def test_warm_stop_lets_short_and_long_jobs_finish_and_claims_nothing_new(db, tmp_path):
    short, long_, waiting = invariants.enqueue_many(db, [
        {"command": "sleep 0.3; echo short", "priority": 2},
        {"command": "sleep 3; echo long", "priority": 1},
        {"command": "echo never"}], tmp_path)
    proc = start_workers(db, "--count", "2")
    wait_for(lambda: state_of(db, short) == "running" and state_of(db, long_) == "running",
             what="both running")
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert 2 <= time.monotonic() - started < 8  # it waited for the long job, then exited
    jobs = check(db, [short, long_, waiting])
    assert jobs[short]["state"] == jobs[long_]["state"] == "completed"
    assert jobs[waiting]["state"] == "pending" and jobs[waiting]["runs"] == 0
    assert "warm stop" in err and "Traceback" not in err


def test_double_sigterm_kills_jobs_and_one_ignoring_term_dies_after_the_grace(db, tmp_path):
    polite, stubborn = invariants.enqueue_many(db, [
        {"command": "trap 'exit 3' TERM; sleep 60 & wait"},
        {"command": "trap '' TERM; sleep 60"}], tmp_path)
    proc = invariants.start_pool(db, "--count", "2")
    wait_for(lambda: state_of(db, polite) == "running" and state_of(db, stubborn) == "running",
             what="both running")
    wait_for(lambda: len(invariants._leftovers(db, [polite, stubborn])) >= 3, what="processes")
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    # The second as soon as the first was handled (two signals sent back to back are one signal
    # to a process: the kernel and Python both merge a pending repeat).
    wait_for(lambda: "warm stop" in invariants.pool_log(proc), what="first signal handled")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    took = time.monotonic() - started
    err = invariants.pool_log(proc, remove=True)
    assert proc.returncode == 0, err
    assert took < 8, took  # the TERM-ignoring job got SIGKILL after the 2 s grace
    jobs = check(db, [polite, stubborn])
    for job_id in (polite, stubborn):
        assert jobs[job_id]["state"] == "pending" and jobs[job_id]["attempts"] == 0
        assert runs(db, job_id)[0]["outcome"] == "interrupted"
    assert "cold stop" in err and "Traceback" not in err


def test_hung_job_times_out_on_every_retry_then_is_dead(db, tmp_path):
    invariants.init_store(db, backoff_max="0")
    job_id = invariants.enqueue_many(db, [
        {"command": "echo try; sleep 60", "timeout": 0.5, "max_retries": 2}], tmp_path)[0]
    started = time.monotonic()
    done = cli(db, "worker", "start", "--count", "1", "--burst")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 15
    job = check(db, [job_id])[job_id]
    assert job["state"] == "dead" and job["attempts"] == 3
    history = runs(db, job_id)
    assert [(r["outcome"], r["signal"], r["error"]) for r in history] == \
        [("failed", "SIGTERM", "timed out after 0.5 s")] * 3
    for attempt in (1, 2, 3):
        assert invariants.stored_output(db, job_id, attempt).stdout == b"try\n"


@pytest.mark.parametrize("command", [
    "sleep 300 & echo started",  # the child keeps the output pipes open
    "sleep 300 >/dev/null 2>&1 </dev/null & echo started",
    "(sleep 300 &) ; echo started",  # a grandchild, re-parented at once
    "nohup sleep 300 >/dev/null 2>&1 & echo started",
])
def test_a_background_child_neither_holds_the_job_nor_survives_it(db, tmp_path, command):
    job_id = invariants.enqueue_many(db, [{"command": command}], tmp_path)[0]
    started = time.monotonic()
    done = cli(db, "worker", "start", "--count", "1", "--burst")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    jobs = check(db, [job_id], expected_output={job_id: b"started\n"})
    assert jobs[job_id]["state"] == "completed"


def test_setsid_escape_with_a_scrubbed_environment_is_killed(db, tmp_path):
    # setsid leaves the process group and `env -i` drops QUEUECTL_JOB_ID: only the worker being
    # the child subreaper can still find it.
    needle = f"sleep 3{random.randrange(10**6):06d}"
    job_id = invariants.enqueue_many(db, [
        {"command": f"env -i setsid {needle} >/dev/null 2>&1 & sleep 0.3; echo done"}],
        tmp_path)[0]
    try:
        done = cli(db, "worker", "start", "--count", "1", "--burst")
        assert done.returncode == 0, done.stderr
        assert state_of(db, job_id) == "completed"
        wait_for(lambda: not cmdline_pids(needle), timeout=5, what="escaped process killed")
    finally:
        for pid in cmdline_pids(needle):
            os.kill(pid, signal.SIGKILL)
    check(db, [job_id])


def test_exit_codes_and_signal_names_are_recorded(db, tmp_path):
    table = {
        "exit 1": (1, None), "exit 255": (255, None), "exit 139": (139, None),
        "kill -ABRT $$": (None, "SIGABRT"), "kill -KILL $$": (None, "SIGKILL"),
        "kill -TERM $$": (None, "SIGTERM"), "kill -USR1 $$": (None, "SIGUSR1"),
        "kill -HUP $$": (None, "SIGHUP"),
    }
    ids = invariants.enqueue_many(db, [{"command": c, "max_retries": 0} for c in table], tmp_path)
    done = cli(db, "worker", "start", "--count", "2", "--burst")
    assert done.returncode == 0, done.stderr
    check(db, ids)
    for job_id, (command, (code, sig)) in zip(ids, table.items()):
        run = runs(db, job_id)[0]
        assert (run["exit_code"], run["signal"], run["outcome"]) == (code, sig, "failed"), command
        shown = invariants.show(db, job_id)["runs"][0]
        assert (shown["exit_code"], shown["signal"]) == (code, sig)
