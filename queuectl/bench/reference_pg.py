"""References for a PostgreSQL store, measured in the same run: what plain psycopg and the same
server can do without queuectl.

The same honesty rules as `reference` (the SQLite ones): the bare loop claims with `FOR UPDATE
SKIP LOCKED` in an `UPDATE ... RETURNING` in its own transaction, runs the command with
`/bin/sh -c` in a new session with output on pipes read to the end, and marks the job done with
a guarded UPDATE in a second transaction, at the workers' `synchronous_commit = off`. Each runs
in a bare schema of its own (`PostgresPlace.bare()`), dropped afterwards.
"""

from __future__ import annotations

import multiprocessing
import select
import sys
import time

from ..models import new_job_id
from ..store.postgres.conn import driver
from .cpu import own_seconds
from .procs import timed_run
from .reference import (JOB_COLUMNS, Drained, default_max_retries, drained, job_insert, job_row,
                        race, run_shell, time_dispatches)

BARE_SCHEMA = """
CREATE TABLE jobs (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE,
    command text NOT NULL, state text NOT NULL, priority integer NOT NULL DEFAULT 0,
    run_at double precision NOT NULL, worker text, started_at double precision,
    finished_at double precision, exit_code integer
);
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, seq) WHERE state = 'pending';
"""
BARE_CLAIM = """
WITH next AS MATERIALIZED (
    SELECT seq FROM jobs WHERE state = 'pending' AND run_at <= %s
    ORDER BY priority DESC, run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED
)
UPDATE jobs SET state = 'running', worker = %s, started_at = %s FROM next
WHERE jobs.seq = next.seq RETURNING jobs.seq, jobs.command
"""
BARE_DONE = ("UPDATE jobs SET state = 'completed', finished_at = %s, exit_code = %s "
             "WHERE seq = %s AND state = 'running' AND worker = %s")


def connect(conninfo: str, schema: str, synchronous: bool, autocommit: bool = False):
    """A plain psycopg connection with `search_path` on `schema`; `synchronous` False is the
    workers' `synchronous_commit = off`."""
    psycopg = driver()
    conn = psycopg.connect(conninfo, autocommit=True, application_name="queuectl-bench-bare")
    conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
    if not synchronous:
        conn.execute("SET synchronous_commit = off")
    conn.autocommit = autocommit
    return conn


def bare_store(conninfo: str, schema: str, jobs: int, command: str = "true") -> None:
    """Create the bare loop's table in `schema` with `jobs` pending jobs."""
    conn = connect(conninfo, schema, synchronous=False)
    try:
        conn.execute(BARE_SCHEMA)
        now = time.time()
        with conn.cursor().copy("COPY jobs (id, command, state, run_at) FROM STDIN") as copy:
            for _ in range(jobs):
                copy.write_row((new_job_id(), command, "pending", now))
        conn.commit()
    finally:
        conn.close()


def _claim(conn, name: str):
    now = time.time()
    row = conn.execute(BARE_CLAIM, (now, name, now)).fetchone()
    conn.commit()
    return row


def _done(conn, seq: int, code: int, name: str) -> None:
    conn.execute(BARE_DONE, (time.time(), code, seq, name))
    conn.commit()


def _bare_worker(conninfo: str, schema: str, name: str, ready, go, results) -> None:
    conn = connect(conninfo, schema, synchronous=False)
    ready.put(name)
    go.wait()
    done, last, cpu = 0, time.time(), own_seconds()
    while True:
        row = _claim(conn, name)
        if row is None:
            break
        _done(conn, row[0], run_shell(row[1]), name)
        done, last = done + 1, time.time()
    results.put((name, done, last, own_seconds() - cpu))
    conn.close()


def bare_drain(conninfo: str, schema: str, jobs: int, workers: int) -> Drained:
    """`workers` bare processes draining `jobs` trivial jobs from a plain table."""
    bare_store(conninfo, schema, jobs)
    return drained(race(_bare_worker, [(conninfo, schema, f"bare-{i}") for i in range(workers)],
                        timeout=max(120.0, jobs / 20)), jobs)


def bare_claim_times(conninfo: str, schema: str, waiting: int, claims: int) -> list[float]:
    """Seconds of each of `claims` bare claim transactions with about `waiting` jobs waiting."""
    bare_store(conninfo, schema, waiting + claims)
    conn = connect(conninfo, schema, synchronous=False)
    try:
        conn.execute("ANALYZE jobs")
        conn.commit()
        times = []
        for _ in range(claims):
            start = time.perf_counter()
            _claim(conn, "bare")
            times.append(time.perf_counter() - start)
        return times
    finally:
        conn.close()


def raw_copy_rate(conninfo: str, schema: str, jobs: int, cwd: str) -> float:
    """Jobs/s of one COPY of prepared rows (`reference.job_row`: the columns and values our
    enqueue writes, with COPY as it writes big batches) into queuectl's own schema (created
    beforehand by opening a store on it: indexes included), in one transaction at
    synchronous_commit = on, as the CLI's enqueue commits."""
    conn = connect(conninfo, schema, synchronous=True)
    try:
        rows = [job_row(cwd, time.time(), default_max_retries()) for _ in range(jobs)]
        start = time.perf_counter()
        with conn.cursor().copy(f"COPY jobs ({JOB_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return jobs / (time.perf_counter() - start)
    finally:
        conn.close()


CONNINFO_VARIABLE = "QUEUECTL_BENCH_CONNINFO"  # not in argv: it may hold a password
ONE_SHOT = """import os, sys, psycopg
conn = psycopg.connect(os.environ[{variable!r}])
conn.execute("SELECT set_config('search_path', %s, false)", (sys.argv[1],))
conn.execute({insert!r}, {row!r})
conn.commit()
conn.close()
"""


def one_shot_seconds(conninfo: str, schema: str, cwd: str, env: dict[str, str]) -> float:
    """Wall seconds of one `python -c` (this interpreter, site enabled, as queuectl runs) that
    imports psycopg, connects, sets `search_path` to `schema` (a store made by queuectl),
    inserts one `reference.job_row` and commits at synchronous_commit = on."""
    code = ONE_SHOT.format(variable=CONNINFO_VARIABLE, insert=job_insert("%s"),
                           row=job_row(cwd, time.time(), default_max_retries()))
    return timed_run([sys.executable, "-c", code, schema],
                     env={**env, CONNINFO_VARIABLE: conninfo}, cwd=cwd)


def _bare_dispatcher(conninfo: str, schema: str, answer) -> None:
    """LISTEN on a channel of its own connection and block in select(); on each notification
    claim one job, run it, mark it done, and answer on the pipe. A message on the pipe ends it."""
    listen = connect(conninfo, schema, synchronous=False, autocommit=True)
    listen.execute(f'LISTEN "{schema}_work"')
    conn = connect(conninfo, schema, synchronous=False)
    _claim(conn, "dispatcher")  # finds nothing; its first run warms the session, as a worker's has
    answer.send("ready")
    fd = listen.fileno()
    while True:
        ready, _, _ = select.select([fd, answer.fileno()], [], [])
        if answer.fileno() in ready:
            break
        pgconn = listen.pgconn
        pgconn.consume_input()
        rung = False
        while pgconn.notifies() is not None:
            rung = True
        if not rung:
            continue
        row = _claim(conn, "dispatcher")
        if row is not None:
            _done(conn, row[0], run_shell(row[1]), "dispatcher")
        answer.send("done")
    listen.close()
    conn.close()


def bare_dispatch_ms(conninfo: str, schema: str, stamp_dir: str, samples: int,
                     idle: float) -> list[float]:
    """Milliseconds from the commit of a job `date +%s%N > file` (plain psycopg, INSERT and
    NOTIFY in one transaction at synchronous_commit = on) to its timestamp, on a bare dispatcher
    process woken by LISTEN after `idle` seconds: the floor under our dispatch latency on this
    server (same claim, spawn, output pipes and wake-up path; no queuectl)."""
    bare_store(conninfo, schema, 0)
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=_bare_dispatcher, args=(conninfo, schema, theirs), daemon=True)
    proc.start()
    writer = connect(conninfo, schema, synchronous=True)

    def add_job(command: str) -> None:
        writer.execute("INSERT INTO jobs (id, command, state, run_at) "
                       "VALUES (%s, %s, 'pending', %s)", (new_job_id(), command, time.time()))
        writer.execute(f'NOTIFY "{schema}_work"')
        writer.commit()

    try:
        return time_dispatches(proc, ours, stamp_dir, samples, idle, add_job)
    finally:
        writer.close()
