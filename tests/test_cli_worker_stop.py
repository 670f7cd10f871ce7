"""`queuectl worker stop`: says what it waits for, shows progress on a terminal, `--timeout`
running out is exit 75 (the stop goes on), `--no-wait` returns at once. Real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
from contextlib import contextmanager
from typing import Iterator

import pytest

from clihelp import assert_error, cli_env, command, run_cli, run_on_tty, seed, stored, wait_for


@contextmanager
def worker_running(db, job_id: str, seconds: float) -> Iterator[subprocess.Popen]:
    """One worker process running job `job_id` (`sleep SECONDS`); killed afterwards if the
    test did not stop it."""
    seed(db, {"id": job_id, "command": f"sleep {seconds}"})
    worker = subprocess.Popen(command("worker", "start", "--count", "1", db=db), env=cli_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_for(lambda: stored(db)[job_id].state.value == "running", timeout=20,
                 what="the job to start")
        yield worker
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=20)


def test_stop_says_what_it_waits_for_in_two_lines_when_not_on_a_terminal(tmp_path):
    db = tmp_path / "queuectl.db"
    with worker_running(db, "long1", 2) as worker:
        code, out, err = run_cli("worker", "stop", db=db)
        assert (code, out) == (0, "")
        first, last = err.splitlines()  # nothing in between: stderr is not a terminal
        assert err.count("\r") == 0
        assert first.startswith("asked 1 worker to stop (warm: running jobs finish first)")
        assert "waiting for 1 worker (1 running job: long1)" in first
        assert last.startswith("all workers stopped after ")
        assert worker.wait(timeout=20) == 0
    assert stored(db)["long1"].state.value == "completed"


def test_stop_on_a_terminal_shows_progress_on_one_line(tmp_path):
    db = tmp_path / "queuectl.db"
    with worker_running(db, "long2", 2.5):
        code, out, err = run_on_tty(["worker", "stop"], db=db)
    assert (code, out) == (0, b"")
    text = err.decode("utf-8")
    lines = text.split("\n")
    assert lines[0].startswith("asked 1 worker to stop") and lines[-1] == ""
    progress = lines[1].split("\r")  # one line, rewritten in place
    assert len(progress) >= 3, text
    # (the job may end before its worker does: the worker is then idle for a moment)
    assert all(p.startswith(("waiting for 1 worker (1 running job: long2)",
                             "waiting for 1 worker (idle)")) or p.strip() == ""
               or p.startswith("all workers stopped") for p in progress), progress
    assert any(p.rstrip().endswith(("1s", "2s")) for p in progress), progress
    assert progress[-1].startswith("all workers stopped after ")
    assert len(lines) == 3


def test_timeout_running_out_is_exit_75_and_the_stop_goes_on(tmp_path):
    db = tmp_path / "queuectl.db"
    with worker_running(db, "long3", 4) as worker:
        code, out, err = run_cli("worker", "stop", "--timeout", "0.5s", db=db)
        assert (code, out) == (75, "")
        first, last = err.splitlines()
        assert first.startswith("asked 1 worker to stop")
        assert last.startswith("error: 1 worker still running after 0.5s (1 running job: long3)")
        assert "Traceback" not in err
        assert worker.wait(timeout=20) == 0  # it stopped once its job ended
    assert stored(db)["long3"].state.value == "completed"


def test_no_wait_returns_at_once(tmp_path):
    db = tmp_path / "queuectl.db"
    with worker_running(db, "long4", 2) as worker:
        code, out, err = run_cli("worker", "stop", "--no-wait", db=db)
        assert (code, out) == (0, "")
        assert err.startswith("asked 1 worker to stop") and err.count("\n") == 1
        assert "not waiting" in err
        assert worker.poll() is None  # still finishing its job
        assert worker.wait(timeout=20) == 0
    assert stored(db)["long4"].state.value == "completed"


def test_force_waits_for_the_kill(tmp_path):
    db = tmp_path / "queuectl.db"
    with worker_running(db, "long5", 60) as worker:
        code, out, err = run_cli("worker", "stop", "--force", "--timeout", "30s", db=db)
        assert (code, out) == (0, ""), err
        first, last = err.splitlines()
        assert "cold: running jobs are killed and given back" in first
        assert last.startswith("all workers stopped after ")
        assert worker.wait(timeout=20) == 0
    assert stored(db)["long5"].state.value == "pending"


def test_no_wait_and_timeout_together_is_a_usage_error(tmp_path):
    db = tmp_path / "queuectl.db"
    seed(db, {"id": "x", "command": "true"})
    assert_error(run_cli("worker", "stop", "--no-wait", "--timeout", "5s", db=db), 2,
                 "--no-wait", "--timeout")
