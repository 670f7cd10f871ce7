"""Real `queuectl worker start` processes against real SQLite files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from queuectl.models import JobState, NewJob
from queuectl.store import open_store

from procs import (cli, enqueue, env_for, processes_with_env, start_workers, stop,
                   wait_for)


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    """The store every process of a test uses: an SQLite file, or a PostgreSQL schema."""
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "q.db")


def state(db, job_id):
    s = open_store(db)
    try:
        return s.get(job_id)
    finally:
        s.close()


def add_many(db, specs, cwd):
    s = open_store(db)
    try:
        return s.enqueue([NewJob(**spec) for spec in specs], now=time.time(),
                         default_max_retries=3, default_cwd=str(cwd))
    finally:
        s.close()


def test_seed_examples_success_and_dlq(db, tmp_path):
    ok = enqueue(db, {"id": "job1", "command": "echo Hello World"})
    bad = enqueue(db, {"id": "job2", "command": "exit 1", "max_retries": 1})
    done = cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert done.returncode == 0, done.stderr
    assert state(db, ok).state is JobState.COMPLETED
    assert cli(db, "logs", "job1").stdout == "Hello World\n"
    dead = state(db, bad)
    assert dead.state is JobState.DEAD and dead.tries == 2
    listed = json.loads(cli(db, "dlq", "list", "--json").stdout)
    assert [j["id"] for j in listed] == ["job2"]
    assert "start job1" in done.stderr and "completed job1" in done.stderr


def test_backoff_waits_one_then_two_seconds(db, tmp_path):
    log = tmp_path / "times"
    enqueue(db, {"id": "flaky", "command": f"date +%s.%N >> {log}; exit 1", "max_retries": 2})
    done = cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert done.returncode == 0, done.stderr
    times = [float(x) for x in log.read_text().split()]
    assert len(times) == 3
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert 0.9 <= gaps[0] <= 1.8, gaps
    assert 1.9 <= gaps[1] <= 2.8, gaps
    assert state(db, "flaky").state is JobState.DEAD


def test_exactly_once_across_separate_worker_processes(db, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    n = 300
    add_many(db, [{"command": f"echo x >> {marks}/{i}"} for i in range(n)], tmp_path)
    pools = [start_workers(db, "--count", "2", "--burst") for _ in range(3)]
    for p in pools:
        p.wait(timeout=120)
        assert p.returncode == 0, p.stderr.read()
    files = sorted(os.listdir(marks), key=int)
    assert len(files) == n
    assert all((marks / f).read_text() == "x\n" for f in files)
    s = open_store(db)
    assert s.status(time.time(), 30).counts[JobState.COMPLETED] == n
    s.close()


def test_warm_stop_by_sigterm_lets_the_running_job_finish(db, tmp_path):
    job_id = enqueue(db, {"command": "sleep 1; echo done"})
    proc = start_workers(db, "--count", "1")
    wait_for(lambda: state(db, job_id).state is JobState.RUNNING, what="job running")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    assert proc.returncode == 0
    assert state(db, job_id).state is JobState.COMPLETED
    assert not processes_with_env("QUEUECTL_JOB_ID", job_id)


def test_warm_stop_by_sigint_and_cold_stop_by_a_second(db, tmp_path):
    job_id = enqueue(db, {"command": "sleep 30"})
    proc = start_workers(db, "--count", "1")
    wait_for(lambda: state(db, job_id).state is JobState.RUNNING, what="job running")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    assert proc.poll() is None  # warm: still waiting for the job
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    assert proc.returncode == 0
    job = state(db, job_id)
    assert job.state is JobState.PENDING and job.tries == 0  # given back, not counted
    assert "Traceback" not in proc.stderr.read()
    assert not processes_with_env("QUEUECTL_JOB_ID", job_id)


def test_worker_stop_from_another_terminal(db, tmp_path):
    job_id = enqueue(db, {"command": "sleep 1"})
    proc = start_workers(db, "--count", "2")
    wait_for(lambda: state(db, job_id).state is JobState.RUNNING, what="job running")
    done = cli(db, "worker", "stop", "--timeout", "30s", timeout=40)
    assert done.returncode == 0, done.stderr
    proc.wait(timeout=20)
    assert proc.returncode == 0
    assert state(db, job_id).state is JobState.COMPLETED
    assert "no workers" in cli(db, "worker", "stop").stderr


def test_worker_stop_force_kills_and_gives_back(db, tmp_path):
    job_id = enqueue(db, {"command": "sleep 30"})
    proc = start_workers(db, "--count", "1")
    wait_for(lambda: state(db, job_id).state is JobState.RUNNING, what="job running")
    done = cli(db, "worker", "stop", "--force", "--timeout", "20s", timeout=40)
    assert done.returncode == 0, done.stderr
    proc.wait(timeout=20)
    job = state(db, job_id)
    assert job.state is JobState.PENDING and job.tries == 0
    assert not processes_with_env("QUEUECTL_JOB_ID", job_id)


def _worker_pid(db, job_id):
    s = open_store(db)
    try:
        job = s.get(job_id)
        return next((w.pid for w in s.workers() if w.id == job.worker_id), None)
    finally:
        s.close()


def test_kill_9_of_a_worker_mid_job_is_rescued(db, tmp_path):
    marker = tmp_path / "ran"
    job_id = enqueue(db, {"command": f"echo x >> {marker}; sleep 30", "max_retries": 1})
    proc = start_workers(db, "--count", "1")
    try:
        pid = wait_for(lambda: _worker_pid(db, job_id), what="worker pid")
        os.kill(pid, signal.SIGKILL)
        # The supervisor notices the death, rescues the job at once and the replacement reruns it.
        wait_for(lambda: marker.exists() and marker.read_text().count("x") == 2, timeout=20,
                 what="second attempt")
        job = state(db, job_id)
        assert job.tries == 2
        s = open_store(db)
        assert s.runs(job_id)[0].outcome == "lost"
        s.close()
    finally:
        stop(proc)


def test_kill_9_of_the_supervisor_workers_give_jobs_back_and_exit(db, tmp_path):
    job_id = enqueue(db, {"command": "sleep 60", "max_retries": 2})
    proc = start_workers(db, "--count", "1")
    pid = wait_for(lambda: _worker_pid(db, job_id), what="worker pid")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # The orphaned worker notices within ~2 s, kills its job, gives it back and exits.
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] == "Z",
             timeout=5, what="orphaned worker exit")
    job = state(db, job_id)
    assert job.state is JobState.PENDING and job.tries == 0
    assert not processes_with_env("QUEUECTL_JOB_ID", job_id)


def test_kill_9_of_everything_next_start_reclaims_without_waiting(db, tmp_path):
    marker = tmp_path / "ran"
    job_id = enqueue(db, {"command": f"echo x >> {marker}; sleep 30", "max_retries": 2})
    proc = start_workers(db, "--count", "1")
    wait_for(lambda: _worker_pid(db, job_id) and marker.exists(), what="job started")
    os.killpg(proc.pid, signal.SIGKILL)  # supervisor and worker; the job is in its own session
    proc.wait()
    for p in processes_with_env("QUEUECTL_JOB_ID", job_id):
        os.kill(p, signal.SIGKILL)
    assert state(db, job_id).state is JobState.RUNNING  # its lease (15 s) has not expired
    proc = start_workers(db, "--count", "1")
    try:
        wait_for(lambda: marker.read_text().count("x") == 2, timeout=10,
                 what="rerun long before the lease expires")
    finally:
        stop(proc)


def test_timeout_kills_grandchildren(db, tmp_path):
    job_id = enqueue(db, {"command": "sleep 300 & sleep 300; wait", "timeout": 0.5,
                          "max_retries": 0})
    done = cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert done.returncode == 0
    job = state(db, job_id)
    assert job.state is JobState.DEAD and job.last_error == "timed out after 0.5 s"
    assert not processes_with_env("QUEUECTL_JOB_ID", job_id)


def test_cancel_waiting_and_running_jobs(db, tmp_path):
    waiting = enqueue(db, {"command": "true", "delay": 600})
    running = enqueue(db, {"command": "sleep 60"})
    proc = start_workers(db, "--count", "1")
    try:
        wait_for(lambda: state(db, running).state is JobState.RUNNING, what="running")
        done = cli(db, "cancel", waiting, running)
        assert done.returncode == 0, done.stderr
        assert state(db, waiting).state is JobState.DEAD and state(db, waiting).cancelled
        started = time.monotonic()
        wait_for(lambda: state(db, running).state is JobState.DEAD, timeout=5, what="killed")
        assert time.monotonic() - started < 2.5
        assert state(db, running).cancelled
        assert not processes_with_env("QUEUECTL_JOB_ID", running)
        assert cli(db, "dlq", "retry", running).returncode == 0
        assert state(db, running).state in (JobState.PENDING, JobState.RUNNING)
    finally:
        stop(proc)


def test_output_per_attempt_and_follow(db, tmp_path):
    job_id = enqueue(db, {"command": 'echo "attempt $QUEUECTL_ATTEMPT"; echo oops >&2; '
                          'test "$QUEUECTL_ATTEMPT" = 2', "max_retries": 1})
    done = cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert done.returncode == 0
    first = cli(db, "logs", job_id, "--attempt", "1")
    assert first.stdout == "attempt 1\n" and first.stderr == "oops\n"
    assert cli(db, "logs", job_id).stdout == "attempt 2\n"

    follow_id = enqueue(db, {"command": "for i in 1 2 3; do echo line$i; sleep 0.4; done"})
    proc = start_workers(db, "--count", "1")
    try:
        wait_for(lambda: state(db, follow_id).state is JobState.RUNNING, what="running")
        done = cli(db, "logs", follow_id, "--follow", timeout=30)
        assert done.stdout == "line1\nline2\nline3\n"
        assert state(db, follow_id).state is JobState.COMPLETED
    finally:
        stop(proc)


def test_burst_drains_and_exits(db, tmp_path):
    add_many(db, [{"command": "true"} for _ in range(50)], tmp_path)
    delayed = enqueue(db, {"command": "true", "delay": 3600})
    done = cli(db, "worker", "start", "--count", "2", "--burst", timeout=60)
    assert done.returncode == 0
    s = open_store(db)
    counts = s.status(time.time(), 30).counts
    s.close()
    assert counts[JobState.COMPLETED] == 50 and counts[JobState.PENDING] == 1
    assert state(db, delayed).state is JobState.PENDING


def _start_delays(db, tmp_path, samples: int, gap: tuple[float, float]) -> list[float]:
    """Enqueue `samples` jobs one at a time, at random moments of an idle worker's wait, and
    return how long each waited to start (from its own clock, against the enqueue time)."""
    import random

    delays = []
    rng = random.Random(samples)
    for n in range(samples):
        time.sleep(rng.uniform(*gap))
        mark = tmp_path / f"started-{n}"
        s = open_store(db)
        try:
            before = time.time()
            [job_id] = s.enqueue([NewJob(command=f"date +%s.%N > {mark}")], now=s.now(),
                                 default_max_retries=0, default_cwd=str(tmp_path))
        finally:
            s.close()
        wait_for(lambda: state(db, job_id).state is JobState.COMPLETED, timeout=30,
                 what="the job to run")
        delays.append(float(mark.read_text()) - before)
    return delays


def test_idle_worker_wakes_on_enqueue(db, tmp_path):
    """The doorbell, not the poll: with a 60 s poll interval every job starts at once."""
    proc = start_workers(db, "--count", "1", env=env_for(db, QUEUECTL_POLL_INTERVAL="60s"))
    try:
        wait_for(lambda: cli(db, "worker", "list", "--json").stdout.strip() not in ("", "[]"),
                 what="worker registered")
        delays = _start_delays(db, tmp_path, 5, (0.2, 1.5))
    finally:
        stop(proc)
    assert max(delays) < 0.3, delays


@pytest.mark.slow
def test_without_a_doorbell_idle_workers_poll_at_the_poll_interval(tmp_path):
    """QUEUECTL_WAKE=poll: no watcher, so a job waits up to the poll interval (2 s here) for
    an idle worker's next look, and no longer (10 jobs at random moments: the chance that
    none waits over 1 s is 1 in 1,000)."""
    db = str(tmp_path / "q.db")
    proc = start_workers(db, "--count", "1", env=env_for(
        db, QUEUECTL_POLL_INTERVAL="2s", QUEUECTL_WAKE="poll"))
    try:
        wait_for(lambda: cli(db, "worker", "list", "--json").stdout.strip() not in ("", "[]"),
                 what="worker registered")
        delays = _start_delays(db, tmp_path, 10, (0.1, 2.0))
    finally:
        stop(proc)
    assert max(delays) < 2.6, delays
    assert max(delays) > 1.0, delays  # the interval is 2 s, not capped at 1 s or 50 ms


def test_worker_list_shows_live_workers(db):
    proc = start_workers(db, "--count", "2")
    try:
        rows = wait_for(lambda: (lambda r: r if len(r) == 2 else None)(
            json.loads(cli(db, "worker", "list", "--json").stdout or "[]")), what="2 workers")
        assert {r["host"] for r in rows} == {os.uname().nodename}
        assert all(r["pid"] for r in rows)
        status = json.loads(cli(db, "status", "--json").stdout)
        assert status["workers"] == 2
    finally:
        stop(proc)
    assert json.loads(cli(db, "worker", "list", "--json").stdout) == []


def test_no_traceback_on_ctrl_c_while_idle(db):
    proc = start_workers(db, "--count", "1")
    wait_for(lambda: cli(db, "worker", "list", "--json").stdout.strip() not in ("", "[]"),
             what="worker registered")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_job_exit_codes_and_signal_names_recorded(db, tmp_path):
    seg = enqueue(db, {"command": "kill -SEGV $$", "max_retries": 0})
    code = enqueue(db, {"command": "exit 42", "max_retries": 0})
    cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    runs = json.loads(cli(db, "show", seg, "--json").stdout)["runs"]
    assert runs[0]["signal"] == "SIGSEGV" and state(db, seg).last_error == "killed by SIGSEGV"
    assert state(db, code).exit_code == 42


def test_a_job_that_ignores_sigterm_still_dies_on_timeout(db):
    job_id = enqueue(db, {"command": "trap '' TERM; sleep 60", "timeout": 0.3, "max_retries": 0})
    cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert state(db, job_id).state is JobState.DEAD
    assert not processes_with_env("QUEUECTL_JOB_ID", job_id)


def test_poison_pill_ends_in_dlq_while_other_jobs_flow(db, tmp_path):
    pill = enqueue(db, {"command": "kill -9 $PPID; sleep 5", "max_retries": 10, "priority": 1})
    others = add_many(db, [{"command": "true"} for _ in range(20)], tmp_path)
    proc = start_workers(db, "--count", "1")
    try:
        wait_for(lambda: state(db, pill).state is JobState.DEAD, timeout=60, what="pill dead")
        wait_for(lambda: all(state(db, j).state is JobState.COMPLETED for j in others),
                 timeout=30, what="others done")
        assert "lost 3 times" in state(db, pill).last_error
    finally:
        stop(proc)


def test_job_processes_survive_nothing_after_worker_stop(db):
    job_id = enqueue(db, {"command": "sleep 300 & sleep 300 & wait"})
    proc = start_workers(db, "--count", "1")
    wait_for(lambda: state(db, job_id).state is JobState.RUNNING, what="running")
    wait_for(lambda: len(processes_with_env("QUEUECTL_JOB_ID", job_id)) >= 3, what="children")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    wait_for(lambda: not processes_with_env("QUEUECTL_JOB_ID", job_id), timeout=5,
             what="no leftovers")


def test_setsid_escape_is_killed_when_the_job_ends(db):
    job_id = enqueue(db, {"command": "setsid sleep 300 & sleep 0.2; exit 0"})
    cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert state(db, job_id).state is JobState.COMPLETED
    wait_for(lambda: not processes_with_env("QUEUECTL_JOB_ID", job_id), timeout=5,
             what="escaped process killed")




def test_one_number_per_run_in_the_log_the_environment_and_show(db, tmp_path):
    """After a DLQ retry the next run is attempt 3 everywhere: the worker's log, the
    command's QUEUECTL_ATTEMPT, `show` and `logs --attempt`."""
    marks = tmp_path / "attempts"
    job_id = enqueue(db, {"command": f"echo $QUEUECTL_ATTEMPT >> {marks}; test -e {marks}.ok",
                          "max_retries": 1, "id": "numbered"})
    done = cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "dead numbered (attempt 2)" in done.stderr
    (tmp_path / "attempts.ok").touch()
    assert cli(db, "dlq", "retry", job_id).returncode == 0
    done = cli(db, "worker", "start", "--count", "1", "--burst", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "start numbered (attempt 3)" in done.stderr
    assert "completed numbered (attempt 3)" in done.stderr
    assert marks.read_text().split() == ["1", "2", "3"]
    shown = json.loads(cli(db, "show", job_id, "--json").stdout)
    assert (shown["attempt"], shown["tries"]) == (3, 1)
    assert [r["attempt"] for r in shown["runs"]] == [1, 2, 3]
