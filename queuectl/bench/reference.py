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
from typing import Callable, NamedTuple, Sequence

from ..config import resolve
from ..models import DEFAULT_QUEUE, new_job_id
from ..store import open_store
from ..store.rows import ENQUEUE_COLUMNS
from .cpu import own_seconds
from .procs import BenchError, timed_run, wait_until

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
    done, last, cpu = 0, time.time(), own_seconds()
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
    results.put((name, done, last, own_seconds() - cpu))
    conn.close()


def _spawner(count: int, name: str, ready, go, results) -> None:
    ready.put(name)
    go.wait()
    cpu = own_seconds()
    for _ in range(count):
        run_shell("true")
    results.put((name, count, time.time(), own_seconds() - cpu))


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


class Raced(NamedTuple):
    seconds: float  # from the release to the last one's end
    done: int  # the total count they report
    cpu: float  # CPU seconds they report using after the release (their own, not children's)


def race(target, per_worker_args: Sequence[tuple], timeout: float) -> Raced:
    """Start one `spawn` process per args tuple, release them together once all are ready, and
    collect what each reports: (name, count, end time, CPU seconds since the release)."""
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
    return Raced(end - start, sum(r[1] for r in reports), sum(r[3] for r in reports))


class Drained(NamedTuple):
    rate: float  # jobs/s
    cpu_per_job: float  # CPU seconds of the draining processes themselves, per job


def drained(raced: Raced, jobs: int) -> Drained:
    """A bare drain's figures, once it is sure every job was done."""
    if raced.done != jobs:
        raise BenchError(f"the bare loop finished {raced.done} of {jobs} jobs")
    return Drained(jobs / raced.seconds, raced.cpu / jobs)


def bare_drain(path: str, jobs: int, workers: int, synchronous: str = "NORMAL") -> Drained:
    """`workers` bare processes draining `jobs` trivial jobs from a plain table."""
    bare_store(path, jobs)
    return drained(race(_bare_worker, [(path, synchronous, f"bare-{i}") for i in range(workers)],
                        timeout=max(120.0, jobs / 20)), jobs)


def spawn_rate(jobs: int, workers: int) -> float:
    """Commands/s of `workers` processes spawning `sh -c true` (new session, output on pipes)."""
    shares = [jobs // workers + (1 if i < jobs % workers else 0) for i in range(workers)]
    raced = race(_spawner, [(n, f"spawn-{i}") for i, n in enumerate(shares)],
                 timeout=max(120.0, jobs / 20))
    return raced.done / raced.seconds


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


JOB_COLUMNS = f"{ENQUEUE_COLUMNS}, state"
COUNT_PENDING = "UPDATE counts SET n = n + ? WHERE queue = ? AND state = 'pending'"


def job_insert(mark: str = "?") -> str:
    """INSERT of one JOB_COLUMNS row, with `mark` as the placeholder ("?", or "%s")."""
    return (f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES "
            f"({', '.join([mark] * len(JOB_COLUMNS.split(',')))})")


def default_max_retries() -> int:
    """The retries a job gets from the settings when neither it nor its queue says."""
    return resolve({}, environ={})[0].max_retries


def job_row(cwd: str, now: float, max_retries: int) -> tuple:
    """The JOB_COLUMNS row queuectl's enqueue writes for `{"command": "true"}` in the default
    queue (no settings of its own) with no other setting: every column it sets, the same
    values, a fresh id."""
    return (new_job_id(), "true", DEFAULT_QUEUE, 0, max_retries, None, None, 0, cwd, now, now,
            now, 0, None, None, "retry", None, "pending")


def store_like_ours(location: str) -> None:
    """An empty store at `location` (a file, or a URL naming a schema) made by queuectl: its
    schema, indexes and triggers, and the default queue (with SQLite's count rows) that an
    enqueue creates; for a bare writer to fill."""
    store = open_store(location)
    try:
        store.set_queue(DEFAULT_QUEUE, now=store.now())
    finally:
        store.close()


def raw_insert_rate(path: str, jobs: int, cwd: str) -> float:
    """Jobs/s of one executemany INSERT of prepared rows (`job_row`: the columns and values our
    enqueue writes) into queuectl's own schema, plus the default queue's pending count as our
    enqueue keeps it, in one transaction at synchronous=FULL as the CLI commits."""
    store_like_ours(path)
    conn = connect(path, "FULL")
    try:
        rows = [job_row(cwd, time.time(), default_max_retries()) for _ in range(jobs)]
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(job_insert(), rows)
        conn.execute(COUNT_PENDING, (jobs, DEFAULT_QUEUE))
        conn.execute("COMMIT")
        return jobs / (time.perf_counter() - start)
    finally:
        conn.close()


ONE_SHOT = """import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5.0)
conn.execute("PRAGMA synchronous = FULL")
conn.execute("BEGIN IMMEDIATE")
conn.execute({insert!r}, {row!r})
conn.execute({count!r}, (1, {queue!r}))
conn.execute("COMMIT")
conn.close()
"""


def one_shot_seconds(path: str, cwd: str, env: dict[str, str]) -> float:
    """Wall seconds of one `python -c` (this interpreter, site enabled, as queuectl runs) that
    imports sqlite3, connects to the store at `path` (made by `store_like_ours`), inserts one
    `job_row` and counts it as our enqueue does, and commits at synchronous=FULL."""
    code = ONE_SHOT.format(insert=job_insert(), row=job_row(cwd, time.time(),
                                                             default_max_retries()),
                           count=COUNT_PENDING, queue=DEFAULT_QUEUE)
    return timed_run([sys.executable, "-c", code, path], env=env, cwd=cwd)


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
