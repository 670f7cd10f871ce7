"""Stores written by a released queuectl upgrade in place, with every job, run and output.

The fixtures in tests/fixtures/ were written by queuectl 0.1.0 itself (see their README): an
SQLite file, and a pg_dump of the same store made on PostgreSQL. Each test reads what the old
store holds with plain SQL first, opens it with this version (which migrates it), and checks
that everything is still there and that the store works on.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

import invariants
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.models import DEFAULT_QUEUE, JobState, NewJob
from queuectl.store import open_store

FIXTURES = Path(__file__).parent / "fixtures"
POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)
OLD_JOBS = "SELECT id, command, state, priority, attempts, max_retries, runs, last_error FROM jobs"
OLD_RUNS = ("SELECT job_id, attempt, started_at, finished_at, exit_code, outcome, error, "
            "output_bytes, dropped FROM runs")
OLD_OUTPUT = ("SELECT r.job_id, r.attempt, o.part, o.seq, o.stream, o.data FROM output o "
              "JOIN runs r ON r.id = o.run_id")


def _restore_dump(pg_server, schema: str) -> str:
    """The 0.1.0 dump restored into `schema` (its schema name replaced); the store's URL."""
    dump = (FIXTURES / "release-0.1.0.pgdump.sql").read_text()
    dump = re.sub(r"\bqueuectl\.", f"{schema}.", dump)
    dump = dump.replace("SCHEMA queuectl;", f"SCHEMA {schema};")
    dump = dump.replace("Schema: queuectl;", f"Schema: {schema};")
    dump = dump.replace("search_path TO 'queuectl'", f"search_path TO '{schema}'")
    psql = shutil.which("psql") or "/usr/bin/psql"
    done = subprocess.run([psql, "-v", "ON_ERROR_STOP=1", "-q", "-d", pg_server.url()],
                          input=dump, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return pg_server.url(schema=schema)


@pytest.fixture(params=["sqlite", "postgres"])
def old_store(request, tmp_path):
    """The location of a store exactly as queuectl 0.1.0 left it."""
    if request.param == "sqlite":
        path = tmp_path / "old.db"
        shutil.copy(FIXTURES / "release-0.1.0.db", path)
        yield str(path)
        return
    schema = f"m_{uuid.uuid4().hex[:12]}"
    server = request.getfixturevalue("pg_server")
    url = _restore_dump(server, schema)
    yield url
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def raw(location: str, sql: str) -> list[tuple]:
    if invariants.is_postgres(location):
        conn = invariants.pg_connect(location)
        try:
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    conn = sqlite3.connect(location)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_the_fixtures_are_what_0_1_0_wrote(old_store):
    if invariants.is_postgres(old_store):
        version = raw(old_store, "SELECT value FROM meta WHERE key = 'version'")[0][0]
    else:
        version = raw(old_store, "PRAGMA user_version")[0][0]
    assert int(version) == 1
    states = {r[0] for r in raw(old_store, "SELECT state FROM jobs")}
    assert states == {"pending", "running", "completed", "failed", "dead"}
    assert raw(old_store, "SELECT count(*) FROM runs WHERE dropped > 0")[0][0] == 1


def test_a_0_1_0_store_upgrades_in_place_with_every_job_run_and_output(old_store):
    jobs = {r[0]: r for r in raw(old_store, OLD_JOBS)}
    runs = sorted(raw(old_store, OLD_RUNS))
    output = sorted(raw(old_store, OLD_OUTPUT))
    config = dict(raw(old_store, "SELECT key, value FROM config"))
    workers = sorted(raw(old_store, "SELECT id, pid, host FROM workers"))

    store = open_store(old_store)
    try:
        for job_id, (_, command, state, priority, tries, max_retries, attempt, error) in jobs.items():
            job = store.get(job_id)
            assert (job.command, job.state.value, job.priority, job.tries, job.max_retries,
                    job.attempt, job.last_error) == (command, state, priority, tries,
                                                     max_retries, attempt, error)
            assert (job.queue, job.slot) == (DEFAULT_QUEUE, None)
            for run in store.runs(job_id):
                assert run.slot is None
        assert sorted(raw(old_store, OLD_RUNS)) == runs
        assert sorted(raw(old_store, OLD_OUTPUT)) == output
        assert store.config_items() == config
        assert sorted((w.id, w.pid, w.host) for w in store.workers()) == workers
        big = store.output("big-output")
        assert big.run.dropped_bytes == 2999000 and big.chunks[-1] == (2, b"done\n")
        # Counts per state and per queue agree with the rows.
        by_state: dict[JobState, int] = {}
        for row in jobs.values():
            by_state[JobState(row[2])] = by_state.get(JobState(row[2]), 0) + 1
        status = store.status(store.now(), 30)
        assert {s: n for s, n in status.counts.items() if n} == by_state
        [queue] = store.queues()
        assert (queue.name, queue.concurrency, queue.paused) == (DEFAULT_QUEUE, None, False)
        assert {s: n for s, n in queue.counts.items() if n} == by_state
    finally:
        store.close()
    invariants.check(old_store, jobs, leases_rescued=False, leftover_wait=0)


def test_an_upgraded_store_works_on(old_store):
    store = open_store(old_store)
    try:
        now = store.now()
        store.register_worker("w-new", 1, "h", now)
        # The running jobs of 0.1.0's workers are rescued (their claims recorded no lease).
        running = store.list_jobs([JobState.RUNNING], limit=None)
        assert running and all(j.lease is None for j in running)
        assert store.rescue_dead_workers(["w-3f9a1c", "w-7b2e04"], now=now, policy=POLICY)
        assert not store.list_jobs([JobState.RUNNING], limit=None)
        [new] = store.enqueue([NewJob(command="true", queue="fresh")], now=now,
                              default_max_retries=0, default_cwd="/")
        store.set_queue("fresh", now=now, concurrency=1)
        seen = []
        while (job := store.claim("w-new", now=now + 10_000, lease=10,
                                  queues=["fresh", DEFAULT_QUEUE])) is not None:
            seen.append(job.id)
            store.finish(job, Outcome(ok=True, exit_code=0), now=now + 10_000, policy=POLICY)
        assert new in seen and store.get(new).state is JobState.COMPLETED
        assert store.retry_dead(None, now=now)
    finally:
        store.close()
