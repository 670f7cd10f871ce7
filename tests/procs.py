"""Helpers for tests that run real `queuectl` processes: start them, wait on conditions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Callable

QUEUECTL = [sys.executable, "-m", "queuectl"]


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.02,
             what: str = "condition") -> object:
    """Poll until predicate() is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def env_for(db: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["QUEUECTL_DB"] = str(db)
    env.update(extra)
    return env


def cli(db, *args: str, input: str | None = None, env: dict | None = None,
        cwd: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(QUEUECTL + list(args), input=input, capture_output=True, text=True,
                          env=env or env_for(db), cwd=cwd, timeout=timeout)


def enqueue(db, spec: dict, cwd: str | None = None) -> str:
    done = cli(db, "enqueue", json.dumps(spec), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def start_workers(db, *args: str, env: dict | None = None, cwd: str | None = None) -> subprocess.Popen:
    """`queuectl worker start ARGS` in the background, in its own process group."""
    return subprocess.Popen(QUEUECTL + ["worker", "start", *args], env=env or env_for(db),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 20) -> tuple[str, str]:
    """Stop a background `worker start` and collect its output: warm (SIGTERM), then cold (a
    second SIGTERM) if jobs are still running after a moment."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=1.5)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
    return out, err


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in (b"Z", b"X"):
                found.append(int(entry))
    return found


def processes_with_env(name: str, value: str | None = None) -> list[int]:
    """Live processes whose environment carries NAME (=VALUE)."""
    needle = f"{name}=".encode() if value is None else f"{name}={value}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state in (b"Z", b"X"):
            continue
        if any(item.startswith(needle) if value is None else item == needle for item in env):
            found.append(int(entry))
    return found


def job(db, job_id: str) -> dict:
    done = cli(db, "show", job_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
