"""Workflows with real processes: a DAG run in dependency order exactly once, `wait`'s exit codes,
50 enqueuers racing for one unique key, and edit / restart / run-now / remove on every state."""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time

import pytest

import invariants
from invariants import check, jobs, runs, start_pool, stop_pool
from procs import QUEUECTL, cli, env_for, wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "q.db")


def enqueue(db, *args, cwd=None) -> subprocess.CompletedProcess:
    return cli(db, "enqueue", *args, cwd=cwd)


@pytest.mark.slow
def test_a_200_job_dag_runs_each_job_once_in_dependency_order(db, tmp_path):
    """Fan-out, fan-in, and a failing middle node retried from the DLQ: each job checks, as it
    starts, that every one of its dependencies left its mark, then leaves its own."""
    marks = tmp_path / "marks"
    marks.mkdir()
    rng = random.Random(200)
    specs = []
    names = []
    for i in range(200):
        name = f"n{i:03d}"
        before = rng.sample(names[-30:], k=min(len(names), rng.choice((0, 1, 2, 3)))) if names else []
        if i == 199:
            before = names[-40:]  # fan-in
        checks = " && ".join(f"test -e {marks}/{b}" for b in before) or "true"
        fail = f"test -e {tmp_path}/fixed && " if name == "n100" else ""
        specs.append({"id": name, "max_retries": 0, "after": before, "command": (
            f"{checks} || {{ echo 'ran before a dependency' >&2; exit 9; }}; {fail}"
            f"echo $QUEUECTL_ATTEMPT >> {marks}/{name}")})
        names.append(name)
    lines = "".join(json.dumps(s) + "\n" for s in specs)
    done = cli(db, "enqueue", "--file", "-", input=lines)
    assert done.returncode == 0, done.stderr
    pool = start_pool(db, "--count", "4")
    try:
        wait_for(lambda: invariants.state_of(db, "n100") == "dead", timeout=120,
                 what="the middle node dead")
        time.sleep(1.0)
        waiting = {i for i, j in jobs(db).items() if j["state"] == "pending"}
        assert waiting  # its dependents wait
        done = cli(db, "wait", "--all", "--timeout", "5s")
        assert done.returncode == 5 and "can never run" in done.stderr, done.stderr
        (tmp_path / "fixed").touch()
        assert cli(db, "dlq", "retry", "n100").returncode == 0
        done = cli(db, "wait", *names, "--timeout", "180s", timeout=200)
        assert done.returncode == 0, done.stderr
    finally:
        stop_pool(pool)
    for name in names:
        expected = ["2"] if name == "n100" else ["1"]
        assert (marks / name).read_text().split() == expected, name  # once, in order
    assert all(j["state"] == "completed" for j in jobs(db).values())
    check(db, names)


def test_wait_exit_codes_and_json(db, tmp_path):
    ok = enqueue(db, "-c", "true", "--id", "ok").stdout.strip()
    bad = enqueue(db, "-c", "exit 3", "--id", "bad", "--max-retries", "0").stdout.strip()
    after_bad = enqueue(db, "-c", "true", "--id", "after-bad", "--after", "bad").stdout.strip()
    later = enqueue(db, "-c", "true", "--id", "later", "--delay", "1h").stdout.strip()
    done = cli(db, "worker", "start", "--burst", "--count", "1")
    assert done.returncode == 0, done.stderr
    assert cli(db, "wait", ok).returncode == 0
    done = cli(db, "wait", ok, bad, after_bad, "--json")
    assert done.returncode == 5
    assert "bad (dead)" in done.stderr and "after-bad (can never run" in done.stderr
    states = {j["id"]: (j["state"], j["never_runs"]) for j in json.loads(done.stdout)}
    assert states == {"ok": ("completed", False), "bad": ("dead", False),
                      "after-bad": ("pending", True)}
    started = time.monotonic()
    done = cli(db, "wait", later, "--timeout", "1s")
    assert done.returncode == 6 and "still waiting after 1s" in done.stderr
    assert time.monotonic() - started < 10
    done = cli(db, "wait", "ghost")
    assert done.returncode == 3 and done.stderr.startswith("error: ")
    done = cli(db, "wait")
    assert done.returncode == 2


def test_wait_is_woken_by_the_store_not_a_sleep_loop(db, tmp_path):
    """On a terminal `wait` rewrites its progress line: the line saying the job is done comes
    milliseconds after the job finished (a look every FALLBACK = 0.5 s would take longer on
    average, and up to 0.5 s)."""
    import os
    import pty

    from queuectl.lifecycle import Outcome, RetryPolicy
    from queuectl.store import open_store

    [job_id] = invariants.enqueue_many(db, [{"command": "true"}], tmp_path)
    master, slave = pty.openpty()
    waiter = subprocess.Popen(QUEUECTL + ["wait", job_id], env=env_for(db),
                              stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen: list[tuple[float, bytes]] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            seen.append((time.monotonic(), data))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_for(lambda: any(b"0 of 1 done" in d for _, d in seen), timeout=30,
             what="the waiter waiting")
    s = open_store(db)
    try:
        job = s.claim("w-test", now=s.now(), lease=30)
        finished = time.monotonic()
        s.finish(job, Outcome(ok=True, exit_code=0), now=s.now(), policy=RetryPolicy(2, None, 0))
    finally:
        s.close()
    assert waiter.wait(timeout=30) == 0
    reader.join(5)
    os.close(master)
    [done_at] = [t for t, d in seen if b"1 of 1 done" in d][:1]
    assert done_at - finished < 0.25, done_at - finished


def test_fifty_enqueuers_racing_for_one_unique_key_make_one_job(db, tmp_path):
    results: list[subprocess.CompletedProcess] = []
    go = threading.Event()

    def one():
        go.wait()
        results.append(cli(db, "enqueue", "-c", "nightly-export", "--unique-key", "nightly"))

    # No store yet: they race to create it too (a read such as `status` creates none).
    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(120)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    ids = {r.stdout.strip() for r in results}
    assert len(ids) == 1 and len(jobs(db)) == 1
    assert sum("holds that unique key already" in r.stderr for r in results) == 49
    done = cli(db, "enqueue", "-c", "again", "--unique-key", "nightly", "--on-conflict", "error")
    assert done.returncode == 4 and "unique key 'nightly'" in done.stderr


def _job_in(db, tmp_path, state: str) -> str:
    """A job in `state`: pending (delayed), running, completed, dead or failed (retrying)."""
    command = {"running": "sleep 60", "completed": "true", "dead": "exit 1",
               "failed": "exit 1", "pending": "true"}[state]
    spec = {"command": command, "id": f"in-{state}",
            "max_retries": 3 if state == "failed" else 0}
    if state == "pending":
        spec["delay"] = 3600
    [job_id] = invariants.enqueue_many(db, [spec], tmp_path)
    return job_id


def test_edit_restart_run_now_and_remove_on_every_state(db, tmp_path):
    invariants.init_store(db, backoff_base="1000")  # a failed job waits long for its retry
    ids = {state: _job_in(db, tmp_path, state)
           for state in ("pending", "completed", "dead", "failed", "running")}
    pool = start_pool(db, "--count", "2")
    try:
        wait_for(lambda: {s: invariants.state_of(db, i) for s, i in ids.items()} == {
            s: s for s in ids}, timeout=30, what="a job in each state")
        # edit: any state but running
        for state, job_id in ids.items():
            done = cli(db, "edit", job_id, "--priority", "7")
            if state == "running":
                assert done.returncode == 4 and "running" in done.stderr, done.stderr
            else:
                assert done.returncode == 0, done.stderr
                assert invariants.show(db, job_id)["priority"] == 7
        # restart: completed or dead
        for state, job_id in ids.items():
            done = cli(db, "restart", job_id)
            assert done.returncode == (0 if state in ("completed", "dead") else 4), (state, done.stderr)
            if done.returncode:
                assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
        wait_for(lambda: invariants.state_of(db, ids["completed"]) == "completed"
                 and len(runs(db, ids["completed"])) == 2, timeout=30, what="restarted and run")
        # run-now: delayed or retrying
        for state, job_id in ids.items():
            done = cli(db, "run-now", job_id)
            assert done.returncode == (0 if state in ("pending", "failed") else 4), (state, done.stderr)
        # remove: anything not running
        done = cli(db, "remove", "--yes", ids["running"])
        assert done.returncode == 4 and "running" in done.stderr
        done = cli(db, "remove", "--yes", ids["completed"], ids["dead"])
        assert done.returncode == 0, done.stderr
        assert ids["completed"] not in jobs(db) and ids["dead"] not in jobs(db)
        assert cli(db, "edit", "ghost", "--priority", "1").returncode == 3
        assert cli(db, "edit", ids["pending"], "--timeout", "soon").returncode == 2
    finally:
        stop_pool(pool)


def test_env_and_cwd_reach_the_command_and_show_masks_secrets(db, tmp_path):
    here = tmp_path / "work dir"
    here.mkdir()
    job_id = enqueue(db, "-c", 'echo "$GREETING $QUEUECTL_JOB_ID"; pwd', "--env", "GREETING=hi",
                     "--env", "API_TOKEN=s3cr3t", "--cwd", str(here)).stdout.strip()
    done = cli(db, "worker", "start", "--burst", "--count", "1")
    assert done.returncode == 0, done.stderr
    assert cli(db, "logs", job_id).stdout.splitlines() == [f"hi {job_id}", str(here)]
    shown = cli(db, "show", job_id).stdout
    assert "API_TOKEN=***" in shown and "s3cr3t" not in shown
    assert json.loads(cli(db, "show", job_id, "--json").stdout)["env"]["API_TOKEN"] == "***"
    bad = enqueue(db, "-c", "true", "--env", "NO EQUALS")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    bad = enqueue(db, "-c", "true", "--env", "QUEUECTL_JOB_ID=x")
    assert bad.returncode == 2 and "set by queuectl" in bad.stderr


def test_an_on_lost_fail_job_whose_worker_dies_goes_to_the_dlq(db, tmp_path):
    marks = tmp_path / "marks"
    job_id = enqueue(db, "-c", f"echo run >> {marks}; sleep 60", "--on-lost", "fail",
                     "--max-retries", "5").stdout.strip()
    pool = start_pool(db, "--count", "1")
    try:
        wait_for(lambda: invariants.worker_pid_of(db, job_id), what="the job running")
        import os
        import signal

        os.kill(invariants.worker_pid_of(db, job_id), signal.SIGKILL)
        wait_for(lambda: invariants.state_of(db, job_id) == "dead", timeout=30,
                 what="buried as lost")
        time.sleep(1.0)
    finally:
        stop_pool(pool)
    assert marks.read_text().split() == ["run"]  # never run again
    assert "on-lost fail" in jobs(db)[job_id]["last_error"]
    check(db, [job_id])


def test_bad_dependencies_are_one_line_errors(db, tmp_path):
    enqueue(db, "-c", "true", "--id", "known")
    cases = [
        (["-c", "true", "--after", "ghost"], 3, "'ghost', which does not exist"),
        (["-c", "true", "--id", "me", "--after", "me"], 2, "itself"),
        (["-c", "true", "--after", "known", "--after-any", "known"], 2, "both after and after_any"),
    ]
    for args, code, fragment in cases:
        done = enqueue(db, *args)
        assert done.returncode == code and fragment in done.stderr, (args, done.stderr)
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    lines = (json.dumps({"id": "x", "command": "true", "after": ["y"]}) + "\n"
             + json.dumps({"id": "y", "command": "true"}) + "\n")
    done = cli(db, "enqueue", "--file", "-", input=lines)
    assert done.returncode == 2 and "comes later in the batch" in done.stderr
    assert set(jobs(db)) == {"known"}
