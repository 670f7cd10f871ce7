"""PostgreSQL-specific behaviour: URLs, the namespace and its migrations, the server's clock,
reconnects, LISTEN/NOTIFY wake-ups, and the CLI end to end. The shared contract is in
test_store_contract.py; this file is what only a server store has. A real server, never a mock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psycopg
import pytest

from clihelp import assert_error, run_cli
from storehelp import expire
from queuectl.errors import InvalidInput, StoreUnusable
from queuectl.models import JobState, NewJob
from queuectl.store import display_location, open_store
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.store.postgres import PostgresStore
from queuectl.store.postgres.conn import parse_location
from queuectl.store.postgres.schema import SCHEMA_VERSION

POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)


def add(store, n: int, **spec) -> list[str]:
    return store.enqueue([NewJob(command=f"echo {i}", **spec) for i in range(n)], now=store.now(),
                         default_max_retries=3, default_cwd="/")


def admin(url: str) -> psycopg.Connection:
    """A plain connection to the test database (no schema of ours on the search path)."""
    return psycopg.connect(parse_location(url).conninfo, autocommit=True)


def schema_of(url: str) -> str:
    return parse_location(url).schema


@pytest.fixture
def pg(pg_url):
    s = PostgresStore(pg_url, durability="normal")
    yield s
    s.close()


# -- URLs -----------------------------------------------------------------------------------

def test_url_parts_and_display_hide_the_password():
    loc = parse_location("postgresql://ann:s3cret@db.example:5433/jobs?schema=team_a&sslmode=require")
    assert loc.schema == "team_a"
    assert "schema" not in loc.conninfo and "sslmode=require" in loc.conninfo
    assert "s3cret" not in loc.display and "ann:***@" in loc.display
    assert parse_location("postgresql://h/db").schema == "queuectl"
    assert "pw" not in display_location("postgresql://h/db?password=pw")


@pytest.mark.parametrize("schema", ["Bad", "a-b", "1abc", "x" * 49, ""])
def test_unusable_schema_names_are_refused(schema):
    with pytest.raises(InvalidInput):
        parse_location(f"postgresql://h/db?schema={schema}")


def test_missing_driver_says_how_to_install_it(pg_url):
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from queuectl.cli import main; sys.argv = ['queuectl', 'status']; sys.exit(main())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"QUEUECTL_DB": pg_url, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 69, done.stderr
    assert done.stderr.count("\n") == 1 and "pip install 'queuectl[postgres]'" in done.stderr


# -- the namespace --------------------------------------------------------------------------

def test_tables_live_in_their_own_schema_beside_an_application(pg_url):
    with admin(pg_url) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.jobs (app_column int)")
        try:
            s = PostgresStore(pg_url)
            add(s, 2)
            s.close()
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema_of(pg_url),))}
            assert {"jobs", "runs", "output", "workers", "config", "meta"} <= tables
            assert conn.execute("SELECT count(*) FROM public.jobs").fetchone()[0] == 0
        finally:
            conn.execute("DROP TABLE public.jobs")


def test_two_schemas_are_two_independent_queues(pg_url):
    other = pg_url.replace(f"schema={schema_of(pg_url)}", f"schema={schema_of(pg_url)}_b")
    a, b = PostgresStore(pg_url), PostgresStore(other)
    try:
        add(a, 3)
        assert b.status(b.now(), 10).counts[JobState.PENDING] == 0
        assert a.status(a.now(), 10).counts[JobState.PENDING] == 3
    finally:
        a.close()
        b.close()
        with admin(pg_url) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema_of(other)}" CASCADE')


def test_a_schema_of_another_program_is_refused_and_left_alone(pg_url):
    schema = schema_of(pg_url)
    with admin(pg_url) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".orders (id int)')
    with pytest.raises(StoreUnusable, match="another program"):
        PostgresStore(pg_url)
    with admin(pg_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
    assert tables == ["orders"]


def test_a_newer_schema_is_refused(pg_url):
    PostgresStore(pg_url).close()
    with admin(pg_url) as conn:
        conn.execute(f'UPDATE "{schema_of(pg_url)}".meta SET value = %s WHERE key = %s',
                     (str(SCHEMA_VERSION + 1), "version"))
    with pytest.raises(StoreUnusable, match="newer queuectl"):
        PostgresStore(pg_url)


def test_concurrent_first_opens_create_the_schema_once(pg_url):
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            PostgresStore(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with admin(pg_url) as conn:
        assert conn.execute(f'SELECT value FROM "{schema_of(pg_url)}".meta WHERE key = %s',
                            ("version",)).fetchone()[0] == str(SCHEMA_VERSION)


# -- the server's clock ---------------------------------------------------------------------

def test_now_is_the_servers_clock(pg):
    with admin(pg.url) as conn:
        server = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
    assert abs(pg.now() - server) < 0.5


def test_jobs_are_stamped_with_the_servers_clock_not_the_callers(pg):
    """The CLI passes store.now(): a host whose clock is an hour off still writes server time."""
    job_id = run_cli("enqueue", "--command", "true", db=pg.url).out.strip()
    with admin(pg.url) as conn:
        server = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()[0]
    assert abs(pg.get(job_id).created_at - server) < 5


# -- connections ----------------------------------------------------------------------------

def terminate(url: str, *connections) -> None:
    """Terminate these psycopg connections' server processes (only them: other tests may share
    the server)."""
    pids = [c.info.backend_pid for c in connections]
    with admin(url) as conn:
        done = conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                            (pids,)).fetchall()
    assert all(row[0] for row in done)


def test_a_dropped_connection_is_remade_and_the_write_happens_once(pg):
    ids = add(pg, 1)
    pg.register_worker("w1", 1, "h", pg.now())
    job = pg.claim("w1", now=pg.now(), lease=30)
    terminate(pg.url, pg._db.raw())
    control = pg.renew(job, now=pg.now(), lease=30, head=[(1, b"out\n")])
    assert not control.lease_lost
    terminate(pg.url, pg._db.raw())
    recorded, _, _ = pg.finish(job, Outcome(ok=True, exit_code=0), now=pg.now(), policy=POLICY)
    assert recorded
    assert pg.get(ids[0]).state is JobState.COMPLETED
    assert [r.outcome for r in pg.runs(ids[0])] == ["completed"]
    assert pg.output(ids[0]).chunks == [(1, b"out\n")]


def test_a_session_frozen_inside_a_transaction_gives_its_locks_up_after_the_stall_limit(pg_url):
    """A worker frozen (SIGSTOP, a suspended laptop) between two statements of a transaction
    holds that transaction's row locks. With limit_stall the server ends its session after the
    limit, so another worker's write goes through while it is still frozen; when it wakes, its
    transaction (never committed) runs again on a new connection."""
    frozen = PostgresStore(pg_url, durability="normal")
    other = PostgresStore(pg_url, durability="normal")
    try:
        frozen.register_worker("w-frozen", 1, "h", frozen.now())
        frozen.limit_stall(0.3)
        woke = threading.Event()
        attempts = []

        def body(tx):
            attempts.append(tx.one("SELECT pg_backend_pid()")[0])
            tx.execute("UPDATE workers SET heartbeat_at = heartbeat_at + 1 WHERE id = 'w-frozen'")
            if len(attempts) == 1:
                time.sleep(6)  # frozen with the row locked, idle in the transaction
                woke.set()
            tx.one("SELECT 1")

        thread = threading.Thread(target=frozen._db.transaction, args=(body,))
        before = frozen.workers()[0].heartbeat_at
        thread.start()
        while not attempts:
            time.sleep(0.01)
        # The row is free long before the frozen session wakes: the write does not wait on it.
        other._db.transaction(lambda tx: tx.execute(
            "UPDATE workers SET pid = 2 WHERE id = 'w-frozen'"))
        assert not woke.is_set()
        thread.join(30)
        assert not thread.is_alive()
        assert len(attempts) == 2 and attempts[0] != attempts[1]  # again, on a new session
        (row,) = frozen.workers()
        assert (row.pid, row.heartbeat_at) == (2, before + 1)  # both writes, each once
        # (the new session has the limit too)
        assert frozen._db.read("SHOW idle_in_transaction_session_timeout") == [("300ms",)]
    finally:
        frozen.close()
        other.close()


def test_removing_stale_workers_never_waits_on_a_row_a_frozen_worker_holds(pg):
    pg.register_worker("w-held", 1, "h", pg.now() - 1000)
    pg.register_worker("w-free", 1, "h", pg.now() - 1000)
    holder = admin(pg.url)
    holder.autocommit = False
    try:
        holder.execute(f"SET search_path = {schema_of(pg.url)}")
        holder.execute("SELECT 1 FROM workers WHERE id = 'w-held' FOR UPDATE")
        pg._db.transaction(lambda tx: tx.execute(  # (were it to wait: an error, not a hang)
            "SELECT set_config('lock_timeout', '5s', false)"))
        assert pg.remove_stale_workers(pg.now()) == 1
        assert [w.id for w in pg.workers()] == ["w-held"]
    finally:
        holder.rollback()
        holder.close()
    assert pg.remove_stale_workers(pg.now()) == 1
    assert pg.workers() == []


def test_an_unreachable_server_is_a_one_line_busy_error(pg_server):
    url = f"postgresql://postgres@127.0.0.1:{pg_server.port + 1 if pg_server.port else 1}/postgres"
    done = run_cli("status", db=url)
    assert_error(done, 75, "cannot reach PostgreSQL")


# -- wake-ups -------------------------------------------------------------------------------

def test_the_workers_doorbell_rings_on_enqueue_and_not_on_a_claim(pg):
    bell = pg.doorbell()
    try:
        assert bell.mechanism == "listen"
        assert not bell.wait(0.05)
        other = PostgresStore(pg.url)
        try:
            started = time.monotonic()
            timer = threading.Timer(0.2, lambda: add(other, 1))
            timer.start()
            assert bell.wait(5.0)
            assert time.monotonic() - started < 4.0
            timer.join()
            other.register_worker("w1", 1, "h", other.now())
            bell.clear()
            assert other.claim("w1", now=other.now(), lease=30) is not None
            assert not bell.wait(0.3)  # a claim is no news for idle workers
        finally:
            other.close()
    finally:
        bell.close()


def test_the_consoles_doorbell_rings_on_every_change(pg):
    add(pg, 1)
    pg.register_worker("w1", 1, "h", pg.now())
    bell = pg.doorbell(everything=True)
    try:
        bell.clear()
        job = pg.claim("w1", now=pg.now(), lease=30)
        assert bell.wait(5.0)
        bell.clear()
        pg.finish(job, Outcome(ok=True, exit_code=0), now=pg.now(), policy=POLICY)
        assert bell.wait(5.0)
    finally:
        bell.close()


def test_the_doorbell_reconnects_after_its_connection_drops(pg):
    bell = pg.doorbell()
    try:
        terminate(pg.url, bell._conn)
        deadline = time.monotonic() + 10
        # The drop itself counts as a ring (the caller re-checks the store); then it listens again.
        while time.monotonic() < deadline and not bell.wait(0.2):
            pass
        bell.wait(0.3)
        bell.clear()
        timer = threading.Timer(0.2, lambda: add(pg, 1))
        timer.start()
        assert bell.wait(5.0)
        timer.join()
    finally:
        bell.close()


# -- the CLI end to end ---------------------------------------------------------------------

def test_cli_round_trip_on_postgres(pg_url):
    run_cli("config", "set", "backoff-base", "1", db=pg_url)
    ok_id = run_cli("enqueue", "--command", "echo hello; echo oops >&2", db=pg_url).out.strip()
    bad = run_cli("enqueue", '{"id": "bad", "command": "exit 3", "max_retries": 0}', db=pg_url)
    assert bad.code == 0, bad.err
    burst = run_cli("worker", "start", "--count", "2", "--burst", db=pg_url)
    assert burst.code == 0, burst.err
    assert "hello" in run_cli("logs", ok_id, db=pg_url).out
    dead = run_cli("dlq", "list", "--json", db=pg_url).out
    assert '"bad"' in dead
    assert run_cli("dlq", "retry", "bad", db=pg_url).code == 0
    status = run_cli("status", "--json", db=pg_url).out
    assert '"pending": 1' in status and '"completed": 1' in status
    assert_error(run_cli("show", "nope", db=pg_url), 3, "no job with id")
    assert "***" not in status  # no password in this URL, nothing masked


def test_open_store_picks_postgres_for_a_url(pg_url):
    s = open_store(pg_url)
    try:
        assert isinstance(s, PostgresStore)
    finally:
        s.close()


# -- counts ---------------------------------------------------------------------------------

def true_counts(url: str) -> dict[JobState, int]:
    with admin(url) as conn:
        rows = conn.execute(f'SELECT state, count(*) FROM "{schema_of(url)}".jobs GROUP BY state')
        found = {JobState(s): n for s, n in rows}
    return {state: found.get(state, 0) for state in JobState}


def delta_rows(url: str) -> int:
    with admin(url) as conn:
        return conn.execute(f'SELECT count(*) FROM "{schema_of(url)}".counts').fetchone()[0]


def test_counts_follow_every_transition_and_survive_compaction(pg):
    ids = add(pg, 30)
    pg.register_worker("w1", 1, "h", pg.now())
    for i in range(12):
        job = pg.claim("w1", now=pg.now(), lease=30)
        outcome = Outcome(ok=i % 3 != 0, exit_code=0 if i % 3 else 1)
        pg.finish(job, outcome, now=pg.now(), policy=POLICY)
    pg.claim("w1", now=pg.now(), lease=30)
    pg.cancel(ids[-3:], now=pg.now())
    pg.retry_dead(None, now=pg.now())
    pg.prune(before=pg.now() + 1, states=[JobState.COMPLETED])
    assert pg.status(pg.now(), 10).counts == true_counts(pg.url)
    before = delta_rows(pg.url)
    pg.housekeeping()
    assert delta_rows(pg.url) <= len(JobState) < before
    assert pg.status(pg.now(), 10).counts == true_counts(pg.url)
    expire(pg, pg.now() + 100)  # the running job's lease is long gone
    assert pg.status(pg.now(), 10).counts == true_counts(pg.url)


def test_racing_compactions_and_writers_keep_the_counts_exact(pg):
    stop = threading.Event()
    errors: list[BaseException] = []

    def compact() -> None:
        s = PostgresStore(pg.url)
        try:
            while not stop.is_set():
                s.housekeeping()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=compact) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(40):
            add(pg, 5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert pg.status(pg.now(), 10).counts[JobState.PENDING] == 200 == true_counts(pg.url)[JobState.PENDING]


def test_housekeeping_folds_the_counts_and_status_is_exact_either_way(pg):
    for _ in range(1100):
        pg.enqueue([NewJob(command="true")], now=pg.now(), default_max_retries=0, default_cwd="/")
    assert delta_rows(pg.url) > 1000
    assert pg.status(pg.now(), 10).counts[JobState.PENDING] == 1100
    assert delta_rows(pg.url) > 1000  # status only reads
    pg.housekeeping()
    assert delta_rows(pg.url) <= len(JobState)
    assert pg.status(pg.now(), 10).counts[JobState.PENDING] == 1100
