"""References measured in the same run: what the machine and plain `sqlite3` can do without
queuectl.

Honest by construction: the bare loop takes no shortcut our worker could not take. It claims
with `BEGIN IMMEDIATE` + `UPDATE ... RETURNING` in its own transaction, runs the command with
`/bin/sh -c` in a new session with stdout and stderr on pipes that it reads to the end, and marks
the job done with a guarded UPDATE in a second transaction, at the same `synchronous` setting.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sqlite3
import subprocess
import sys
import time
from typing import Callable, Sequence

from ..models import new_job_id
from ..store.sqlite import schema
from .procs import BenchError

SHELL = "/bin/sh"

BARE_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, command TEXT NOT NULL,
    state TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0, run_at REAL NOT NULL,
    worker TEXT, started_at REAL, finished_at REAL, exit_code INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (priority DESC, run_at, seq)
    WHERE state = 'pending';
"""
BARE_CLAIM = """
UPDATE jobs SET state = 'running', worker = ?, started_at = ?
WHERE seq = (SELECT seq FROM jobs WHERE state = 'pending' AND run_at <= ?
             ORDER BY priority DESC, run_at, seq LIMIT 1)
RETURNING seq, command
"""
BARE_DONE = ("UPDATE jobs SET state = 'completed', finished_at = ?, exit_code = ? "
             "WHERE seq = ? AND state = 'running' AND worker = ?")


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    """A plain autocommit connection in WAL mode at `synchronous` ("NORMAL" or "FULL")."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def bare_store(path: str, jobs: int, command: str = "true") -> None:
    """Create the bare loop's table with `jobs` pending jobs."""
    conn = connect(path, "NORMAL")
    try:
        conn.executescript(BARE_SCHEMA)
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO jobs (id, command, state, run_at) VALUES (?, ?, 'pending', ?)",
                         ((new_job_id(), command, now) for _ in range(jobs)))
        conn.execute("COMMIT")
    finally:
        conn.close()


def run_shell(command: str) -> int:
    """`/bin/sh -c command` in a new session, output on pipes read to the end; its exit code."""
    proc = subprocess.Popen([SHELL, "-c", command], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    proc.communicate()
    return proc.returncode


def _bare_worker(path: str, synchronous: str, name: str, ready, go, results) -> None:
    conn = connect(path, synchronous)
    ready.put(name)
    go.wait()
    done, last = 0, time.time()
    while True:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(BARE_CLAIM, (name, now, now)).fetchone()
        conn.execute("COMMIT")
        if row is None:
            break
        code = run_shell(row[1])
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(BARE_DONE, (time.time(), code, row[0], name))
        conn.execute("COMMIT")
        done, last = done + 1, time.time()
    conn.close()
    results.put((name, done, last))


def _spawner(count: int, name: str, ready, go, results) -> None:
    ready.put(name)
    go.wait()
    for _ in range(count):
        run_shell("true")
    results.put((name, count, time.time()))


def _collect(q, procs, timeout: float, what: str):
    """The next item of `q`; a BenchError if a process died without reporting or time ran out
    (rather than waiting the whole timeout for a process that is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=0.2)
        except queue.Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise BenchError(f"a reference process failed (exit {dead[0].exitcode}) while "
                                 f"waiting for {what}") from None
            if time.monotonic() > deadline:
                raise BenchError(f"timed out after {timeout:g} s waiting for {what}") from None


def race(target, per_worker_args: Sequence[tuple], timeout: float) -> tuple[float, int]:
    """Start one `spawn` process per args tuple, release them together once all are ready;
    return (seconds from the release to the last one's end, total count they report)."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, ready, go, results), daemon=True)
             for args in per_worker_args]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            _collect(ready, procs, 60, "a reference process to start")
        start = time.time()
        go.set()
        reports = [_collect(results, procs, timeout, "a reference process to finish")
                   for _ in procs]
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    end = max(r[2] for r in reports)
    return end - start, sum(r[1] for r in reports)


def bare_drain(path: str, jobs: int, workers: int, synchronous: str = "NORMAL") -> float:
    """Jobs/s of `workers` bare processes draining `jobs` trivial jobs from a plain table."""
    bare_store(path, jobs)
    seconds, done = race(_bare_worker, [(path, synchronous, f"bare-{i}") for i in range(workers)],
                          timeout=max(120.0, jobs / 20))
    if done != jobs:
        raise BenchError(f"the bare loop finished {done} of {jobs} jobs")
    return jobs / seconds


def spawn_rate(jobs: int, workers: int) -> float:
    """Commands/s of `workers` processes spawning `sh -c true` (new session, output on pipes)."""
    shares = [jobs // workers + (1 if i < jobs % workers else 0) for i in range(workers)]
    seconds, done = race(_spawner, [(n, f"spawn-{i}") for i, n in enumerate(shares)],
                          timeout=max(120.0, jobs / 20))
    return done / seconds


def bare_claim_times(path: str, waiting: int, claims: int) -> list[float]:
    """Seconds of each of `claims` bare claim transactions with about `waiting` jobs waiting."""
    bare_store(path, waiting + claims)
    conn = connect(path, "NORMAL")
    try:
        times = []
        for _ in range(claims):
            start = time.perf_counter()
            now = time.time()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(BARE_CLAIM, ("bare", now, now)).fetchone()
            conn.execute("COMMIT")
            times.append(time.perf_counter() - start)
        return times
    finally:
        conn.close()


def raw_insert_rate(path: str, jobs: int, cwd: str) -> float:
    """Jobs/s of one executemany INSERT of prepared rows into queuectl's own schema (indexes and
    count triggers included), in one transaction at synchronous=FULL as the CLI commits."""
    conn = connect(path, "FULL")
    try:
        schema.migrate(conn, 0)
        now = time.time()
        rows = [(new_job_id(), "true", 0, 3, None, cwd, now, now, now) for _ in range(jobs)]
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO jobs (id, command, state, priority, max_retries, timeout, cwd, run_at, "
            "created_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        return jobs / (time.perf_counter() - start)
    finally:
        conn.close()


def read_stamp(path: str) -> int | None:
    """The nanosecond timestamp `date +%s%N > path` wrote, once it is complete."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _bare_dispatcher(path: str, wake) -> None:
    """Block on a pipe; on each wake-up claim one job, run it, mark it done, answer."""
    conn = connect(path, "NORMAL")
    wake.send("ready")
    while wake.recv() is not None:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(BARE_CLAIM, ("dispatcher", now, now)).fetchone()
        conn.execute("COMMIT")
        if row is not None:
            code = run_shell(row[1])
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(BARE_DONE, (time.time(), code, row[0], "dispatcher"))
            conn.execute("COMMIT")
        wake.send("done")
    conn.close()


def bare_dispatch_ms(path: str, stamp_dir: str, samples: int, idle: float) -> list[float]:
    """Milliseconds from the commit of a job `date +%s%N > file` (plain sqlite3, FULL) to its
    timestamp, on a bare dispatcher process woken through a pipe after `idle` seconds: the
    floor under our dispatch latency (same claim, spawn and output pipes; no queuectl)."""
    bare_store(path, 0)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_bare_dispatcher, args=(path, theirs), daemon=True)
    proc.start()
    writer = connect(path, "FULL")

    def add_job(command: str) -> None:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO jobs (id, command, state, run_at) VALUES (?, ?, 'pending', ?)",
                       (new_job_id(), command, time.time()))
        writer.execute("COMMIT")

    try:
        return time_dispatches(proc, ours, stamp_dir, samples, idle, add_job,
                               nudge=lambda: ours.send("go"))
    finally:
        writer.close()


def time_dispatches(proc, ours, stamp_dir: str, samples: int, idle: float,
                    add_job: Callable[[str], None],
                    nudge: Callable[[], None] | None = None) -> list[float]:
    """Drive a started bare dispatcher `proc` (which says "ready", then answers each dispatch on
    the pipe `ours`): `samples` times, wait `idle`, commit a job `date +%s%N > STAMP` with
    `add_job`, wake the dispatcher with `nudge` (if it is not woken by the commit itself), and
    take the milliseconds from the commit to the stamp. Stops the dispatcher."""
    from .procs import wait_until

    found = []
    try:
        wait_until(lambda: ours.poll() or not proc.is_alive(), 60, "the bare dispatcher to start")
        if not ours.poll():
            raise BenchError(f"the bare dispatcher exited ({proc.exitcode}) before it started")
        ours.recv()
        for i in range(samples):
            stamp = os.path.join(stamp_dir, f"bare-stamp-{i}")
            time.sleep(idle)
            add_job(f"date +%s%N > {stamp}")
            committed = time.time_ns()
            if nudge is not None:
                nudge()
            started = wait_until(lambda: read_stamp(stamp), 30, "a bare dispatch", 0.002)
            if not ours.poll(30):
                raise BenchError("the bare dispatcher stopped answering")
            ours.recv()
            found.append((started - committed) / 1e6)
        ours.send(None)
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return found


def python_import_seconds(module: str = "typer") -> float:
    """Wall seconds of `python -c "import MODULE"` with this interpreter."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", f"import {module}"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"python -c 'import {module}' failed")
    return took
