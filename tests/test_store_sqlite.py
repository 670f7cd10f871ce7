"""SQLite-specific behaviour: files, permissions, refusing foreign files, locking, query plans."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from queuectl.errors import PermissionDenied, StoreBusy, StoreUnusable
from queuectl.models import JobState, NewJob
from queuectl.store import open_store
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.store.sqlite.schema import APPLICATION_ID, SCHEMA_VERSION
from queuectl.store.sqlite import SQLiteStore
from storehelp import expire

T = 1_700_000_000.0
POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)


def add(store: SQLiteStore, n: int, now: float = T, **spec) -> list[str]:
    return store.enqueue([NewJob(command=f"echo {i}", **spec) for i in range(n)], now=now,
                         default_max_retries=3, default_cwd="/")


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "queuectl.db"


# -- files ----------------------------------------------------------------------------------

def test_new_store_creates_private_dir_and_files(db):
    store = SQLiteStore(str(db), durability="normal")
    try:
        add(store, 3)
        assert mode(db.parent) == 0o700
        for suffix in ("", "-wal", "-shm"):
            path = Path(str(db) + suffix)
            assert path.exists(), suffix
            assert mode(path) == 0o600, suffix
    finally:
        store.close()


def test_store_is_wal_with_our_ids(db):
    SQLiteStore(str(db)).close()
    conn = raw(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


def test_reopening_keeps_jobs(db):
    store = SQLiteStore(str(db))
    [jid] = add(store, 1)
    store.close()
    again = open_store(str(db))
    try:
        assert again.get(jid).command == "echo 0"
    finally:
        again.close()


def test_two_stores_on_one_file_see_each_other(db):
    a, b = SQLiteStore(str(db)), SQLiteStore(str(db))
    try:
        [jid] = add(a, 1)
        assert b.get(jid).state is JobState.PENDING
    finally:
        a.close()
        b.close()


# -- refusing files that are not ours -------------------------------------------------------

def _not_a_database(path: Path) -> None:
    path.write_bytes(b"hello, this is a text file\n" * 200)


def _foreign_sqlite(path: Path) -> None:
    conn = raw(path)
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO notes (body) VALUES ('mine')")
    conn.close()


def _foreign_sqlite_with_version(path: Path) -> None:
    conn = raw(path)
    conn.execute("PRAGMA user_version = 7")
    conn.close()


def _other_application_id(path: Path) -> None:
    conn = raw(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE jobs (id TEXT)")
    conn.close()


def _newer_schema(path: Path) -> None:
    SQLiteStore(str(path)).close()
    conn = raw(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()


def _our_store_with_jobs(path: Path) -> bytes:
    store = SQLiteStore(str(path), durability="normal")
    store.enqueue([NewJob(command="x" * 400) for _ in range(300)], now=T,
                  default_max_retries=3, default_cwd="/")
    store.close()
    return path.read_bytes()


def _truncated(path: Path) -> None:
    data = _our_store_with_jobs(path)
    path.write_bytes(data[: len(data) // 2])


def _truncated_to_one_page(path: Path) -> None:
    data = _our_store_with_jobs(path)
    path.write_bytes(data[:4096])


def _schema_page_zeroed(path: Path) -> None:
    data = _our_store_with_jobs(path)
    path.write_bytes(data[:100] + b"\x00" * 3996 + data[4096:])


@pytest.mark.parametrize("make", [
    _not_a_database, _foreign_sqlite, _foreign_sqlite_with_version, _other_application_id,
    _newer_schema, _truncated, _truncated_to_one_page, _schema_page_zeroed,
], ids=lambda f: f.__name__.strip("_"))
def test_unusable_file_is_refused_and_left_untouched(tmp_path, make):
    path = tmp_path / "queuectl.db"
    make(path)
    for suffix in ("-wal", "-shm"):
        assert not Path(str(path) + suffix).exists()
    before = sha256(path)
    with pytest.raises(StoreUnusable) as info:
        SQLiteStore(str(path))
    assert info.value.exit_code == 69
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert sha256(path) == before
    with pytest.raises(StoreUnusable):
        open_store(str(path))  # a second attempt is refused the same way
    assert sha256(path) == before


def test_newer_schema_message_says_upgrade(tmp_path):
    path = tmp_path / "queuectl.db"
    _newer_schema(path)
    with pytest.raises(StoreUnusable, match="newer"):
        SQLiteStore(str(path))


def test_corrupt_pages_are_reported_as_unusable_and_left_untouched(tmp_path):
    path = tmp_path / "queuectl.db"
    data = _our_store_with_jobs(path)
    noise = random.Random(7).randbytes(len(data) - 8192)
    path.write_bytes(data[:8192] + noise)
    before = sha256(path)
    with pytest.raises(StoreUnusable):
        store = SQLiteStore(str(path))  # may open: the damage is past the first pages
        try:
            store.list_jobs(limit=None)
        finally:
            store.close()
    assert sha256(path) == before


def test_empty_file_becomes_a_new_store(tmp_path):
    path = tmp_path / "queuectl.db"
    path.write_bytes(b"")
    store = SQLiteStore(str(path))
    try:
        assert add(store, 1)
    finally:
        store.close()


# -- permissions ----------------------------------------------------------------------------

def test_new_store_in_a_read_only_place_is_permission_denied(tmp_path):
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        targets = [ro / "queuectl.db", ro / "sub" / "queuectl.db"]
    else:
        # Root ignores permission bits; sysfs refuses new files and directories even to root.
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("needs sysfs to make an uncreatable path while running as root")
        targets = [Path("/sys/queuectl-test.db"), Path("/sys/queuectl-test-dir/queuectl.db")]
    try:
        for target in targets:
            with pytest.raises(PermissionDenied) as info:
                SQLiteStore(str(target))
            assert info.value.exit_code == 77
            assert not target.exists()
    finally:
        if os.geteuid() != 0:
            (tmp_path / "ro").chmod(0o700)


# -- locking --------------------------------------------------------------------------------

def test_locked_store_is_busy_and_nothing_is_stored(db, monkeypatch):
    monkeypatch.setenv("QUEUECTL_BUSY_TIMEOUT_MS", "100")
    store = SQLiteStore(str(db))
    other = raw(db)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusy) as info:
            store.enqueue([NewJob(command="x", id="blocked")], now=T, default_max_retries=3,
                          default_cwd="/")
        assert info.value.exit_code == 75
        assert store.list_jobs() == []  # readers are not blocked by a writer in WAL mode
        other.execute("ROLLBACK")
        assert store.list_jobs() == []
        assert store.status(T, 30).counts[JobState.PENDING] == 0
        store.enqueue([NewJob(command="x", id="blocked")], now=T, default_max_retries=3,
                      default_cwd="/")
        assert [j.id for j in store.list_jobs()] == ["blocked"]
    finally:
        other.close()
        store.close()


def test_concurrent_claims_never_share_a_job(db):
    n_jobs, n_workers = 400, 4
    setup = SQLiteStore(str(db), durability="normal")
    job_ids = add(setup, n_jobs)
    setup.close()
    stores = [SQLiteStore(str(db), durability="normal") for _ in range(n_workers)]
    claimed: list[list[str]] = [[] for _ in range(n_workers)]
    errors: list[BaseException] = []
    start = threading.Barrier(n_workers, timeout=30)

    def work(k: int) -> None:
        try:
            start.wait()
            first = stores[k].claim(f"w{k}", now=T, lease=30)
            claimed[k].append(first.id)
            start.wait()  # every worker is live before the free-for-all
            while True:
                job = stores[k].claim(f"w{k}", now=T, lease=30)
                if job is None:
                    return
                claimed[k].append(job.id)
                if len(claimed[k]) % 2:
                    stores[k].finish(job, Outcome(ok=True, exit_code=0), now=T, policy=POLICY)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors, errors
        everything = [i for part in claimed for i in part]
        assert len(everything) == len(set(everything)) == n_jobs
        assert set(everything) == set(job_ids)
        assert all(len(part) >= 1 for part in claimed)
        counts = stores[0].status(T, 30).counts
        assert counts[JobState.PENDING] == 0
        assert counts[JobState.RUNNING] + counts[JobState.COMPLETED] == n_jobs
        assert all(len(stores[0].runs(i)) == 1 for i in job_ids[:50])
    finally:
        for s in stores:
            s.close()


# -- integrity ------------------------------------------------------------------------------

def _busy_history(store: SQLiteStore) -> None:
    now = T
    store.register_worker("w1", pid=1, host="h", now=now)
    add(store, 30, max_retries=1)
    add(store, 5, delay=3600)
    for i in range(40):
        now += 1
        job = store.claim("w1", now=now, lease=5)
        if job is None:
            break
        store.renew(job, now=now, lease=5, head=[(1, b"x" * 100)], tail=([(2, b"y" * 50)], 10))
        if i % 7 == 3:
            continue  # left running: rescued below
        outcome = Outcome(ok=i % 3 == 0, exit_code=0 if i % 3 == 0 else 1)
        store.finish(job, outcome, now=now, policy=POLICY)
    expire(store, now + 100)
    store.cancel([j.id for j in store.list_jobs([JobState.PENDING], limit=3)], now=now)
    store.retry_dead([j.id for j in store.list_jobs([JobState.DEAD], limit=2)], now=now)
    store.prune(before=now - 10, states=[JobState.COMPLETED])
    store.purge_dead()


def test_integrity_and_trigger_counts_after_a_busy_history(db):
    store = SQLiteStore(str(db))
    try:
        _busy_history(store)
        conn = raw(db)
        try:
            assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
            actual = dict(conn.execute("SELECT state, count(*) FROM jobs GROUP BY state"))
            stored = dict(conn.execute("SELECT state, n FROM counts"))
            assert stored == {s.value: actual.get(s.value, 0) for s in JobState}
            # No orphans: every run has its job, every output chunk has its run.
            assert conn.execute("SELECT count(*) FROM runs WHERE job_id NOT IN "
                                "(SELECT id FROM jobs)").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM output WHERE run_id NOT IN "
                                "(SELECT id FROM runs)").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM output").fetchone()[0] > 0
        finally:
            conn.close()
    finally:
        store.close()


def test_purge_removes_output_rows(db):
    store = SQLiteStore(str(db))
    try:
        [jid] = add(store, 1, max_retries=0)
        job = store.claim("w1", now=T, lease=5)
        store.finish(job, Outcome(ok=False, exit_code=1), now=T, policy=POLICY,
                     head=[(1, b"a")], tail=([(1, b"b")], 1))
        conn = raw(db)
        try:
            assert conn.execute("SELECT count(*) FROM output").fetchone()[0] == 2
            assert store.purge_dead() == 1
            assert conn.execute("SELECT count(*) FROM output").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        finally:
            conn.close()
    finally:
        store.close()


# -- query plans ----------------------------------------------------------------------------

def _plans_of(store: SQLiteStore, action) -> dict[str, list[str]]:
    """Run `action`, capture the SQL it issued, and explain each SELECT/UPDATE it ran."""
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        store._conn.set_trace_callback(None)
    plans = {}
    for sql in seen:
        head = sql.lstrip().split(None, 1)[0].upper()
        if head in ("SELECT", "UPDATE", "WITH"):
            rows = store._conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
            plans[sql] = [r[3] for r in rows]
    assert plans, "no statement captured"
    return plans


def _assert_indexed(plans: dict[str, list[str]]) -> None:
    for sql, plan in plans.items():
        for step in plan:
            assert not (step.startswith("SCAN jobs") and "INDEX" not in step), (sql, plan)
            assert "TEMP B-TREE" not in step, (sql, plan)


@pytest.fixture
def big(tmp_path) -> SQLiteStore:
    """A store with jobs in every state and no ANALYZE statistics, as in real use."""
    store = SQLiteStore(str(tmp_path / "plans.db"), durability="normal")
    add(store, 300, priority=1)
    add(store, 300, delay=60)
    for _ in range(100):
        job = store.claim("w1", now=T, lease=30)
        store.finish(job, Outcome(ok=True, exit_code=0), now=T, policy=POLICY)
    yield store
    store.close()


def test_claim_uses_an_index(big):
    _assert_indexed(_plans_of(big, lambda: big.claim("w1", now=T, lease=30)))


def test_next_due_and_status_use_an_index(big):
    _assert_indexed(_plans_of(big, lambda: big.next_due(T)))
    _assert_indexed(_plans_of(big, lambda: big.status(T, 30)))


@pytest.mark.parametrize("states", [
    [JobState.COMPLETED], [JobState.DEAD], [JobState.RUNNING], [JobState.PENDING],
    [JobState.FAILED], [JobState.PENDING, JobState.FAILED],
], ids=lambda s: "+".join(x.value for x in s))
def test_newest_n_per_state_uses_an_index(big, states):
    _assert_indexed(_plans_of(big, lambda: big.list_jobs(states, limit=50)))


def test_a_second_connection_in_one_process_keeps_the_first_ones_writes(tmp_path):
    """Opening and closing another store on the same file must not drop the first
    connection's POSIX locks (which would let another process delete the WAL under it)."""
    import subprocess
    import sys

    from queuectl.store.sqlite import SQLiteStore

    path = str(tmp_path / "q.db")
    first = SQLiteStore(path)
    SQLiteStore(path).close()
    probe = ("import sys; from queuectl.store.sqlite import SQLiteStore; "
             "s = SQLiteStore(sys.argv[1]); print(sorted(w.id for w in s.workers())); s.close()")
    subprocess.run([sys.executable, "-c", probe, path], check=True, capture_output=True)
    first.register_worker("w-after", 1, "h", 1.0)
    seen = subprocess.run([sys.executable, "-c", probe, path], check=True,
                          capture_output=True, text=True).stdout
    first.close()
    assert "w-after" in seen
    assert os.path.exists(path + "-wal") or "w-after" in seen
