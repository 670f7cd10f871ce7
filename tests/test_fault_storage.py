"""Storage faults: a full disk (enqueue, claim, output), files that are not our store, a
read-only store, a newer schema, and a migration that fails or crashes half-way.

Disk full: a private tmpfs a few MiB large holds the store (this needs root, as CI and the
developers' machines have; the tests skip with the reason elsewhere). The store's WAL is
checkpointed to zero length first, so that the next commit has to grow a file; then the file
system is filled to the last byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

import invariants
from invariants import check, fill, one_line_error, runs, state_of, tmpfs, worker_pids
from procs import cli, env_for, wait_for


def truncate_wal(db) -> None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()
    assert os.path.getsize(db + "-wal") == 0


@pytest.fixture
def small_fs(tmp_path):
    with tmpfs(tmp_path / "fs", "4m") as path:
        yield path


def digest(path) -> tuple[str, float]:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime


def test_disk_full_during_enqueue_is_one_clear_error_and_stores_nothing(small_fs, tmp_path):
    db = os.path.join(small_fs, "q.db")
    kept = invariants.enqueue_many(db, [{"command": "true"} for _ in range(5)], tmp_path)
    conn = sqlite3.connect(db)  # held open, so the WAL file stays while we fill the disk
    conn.execute("SELECT count(*) FROM jobs").fetchone()
    truncate_wal(db)
    filler = fill(small_fs)
    try:
        jsonl = tmp_path / "jobs.jsonl"
        jsonl.write_text("".join(json.dumps({"id": f"full-{i}", "command": "true"}) + "\n"
                                 for i in range(200)))
        one_line_error(cli(db, "enqueue", "--file", str(jsonl)), 74, contains=f"store {db}")
        one_line_error(cli(db, "enqueue", "--id", "single", "-c", "true"), 74,
                       contains="disk full")
        one_line_error(cli(db, "config", "set", "lease", "5s"), 74, contains="disk full")
        listed = cli(db, "list", "--json")  # reading needs no space
        assert listed.returncode == 0, listed.stderr
        assert sorted(j["id"] for j in json.loads(listed.stdout)) == sorted(kept)
    finally:
        os.unlink(filler)
    jobs = check(db, kept)
    assert set(jobs) == set(kept)  # no partial rows from the failed enqueues
    again = cli(db, "enqueue", "--file", str(jsonl))
    assert again.returncode == 0, again.stderr
    check(db, kept + again.stdout.split())
    conn.close()


def test_disk_full_at_claim_time_workers_back_off_and_resume(small_fs, tmp_path):
    db = os.path.join(small_fs, "q.db")
    invariants.init_store(db)
    pool = invariants.start_pool(db, "--count", "2")
    filler = None
    try:
        wait_for(lambda: len(worker_pids(db)) == 2, what="workers registered")
        pids = set(worker_pids(db).values())
        job_id = invariants.enqueue_many(db, [{"command": "echo ran", "delay": 1.5}],
                                         tmp_path)[0]
        truncate_wal(db)
        filler = fill(small_fs)
        time.sleep(4)  # due after 1.5 s; every claim (and heartbeat) meanwhile hits a full disk
        assert state_of(db, job_id) == "pending"
        assert all(not invariants.proc_gone(p) for p in pids)
        assert pool.poll() is None
        os.unlink(filler)
        filler = None
        wait_for(lambda: state_of(db, job_id) == "completed", timeout=10, what="claimed later")
        assert set(worker_pids(db).values()) == pids  # the same workers: none crashed
        check(db, [job_id], expected_output={job_id: b"ran\n"})
    finally:
        if filler:
            os.unlink(filler)
        log = invariants.stop_pool(pool)
    assert "disk full" in log and "retrying" in log
    assert "died" not in log and "Traceback" not in log


def test_disk_full_while_storing_output_keeps_it_pending_then_stores_it_exactly(small_fs,
                                                                                 tmp_path):
    db = os.path.join(small_fs, "q.db")
    go, copy = tmp_path / "go", tmp_path / "out.bin"
    invariants.init_store(db)
    job_id = invariants.enqueue_many(db, [{"command": (
        f"while [ ! -e {go} ]; do sleep 0.05; done; "
        f"head -c 300000 /dev/urandom | tee {copy}; sleep 0.6; echo end >&2")}], tmp_path)[0]
    pool = invariants.start_pool(db, "--count", "1")
    filler = None
    try:
        wait_for(lambda: state_of(db, job_id) == "running", what="job running")
        truncate_wal(db)
        filler = fill(small_fs)
        go.touch()
        wait_for(lambda: copy.exists() and copy.stat().st_size == 300000, what="output written")
        time.sleep(2.5)  # the renewals and the finish fail meanwhile
        assert state_of(db, job_id) == "running"
        conn = invariants.connect(db)
        assert conn.execute("SELECT count(*) FROM output").fetchone()[0] == 0  # nothing partial
        conn.close()
        os.unlink(filler)
        filler = None
        wait_for(lambda: state_of(db, job_id) == "completed", timeout=15, what="recorded")
        jobs = check(db, [job_id], expected_output={job_id: copy.read_bytes()})
        stored = invariants.stored_output(db, job_id)
        assert stored.stderr == b"end\n" and stored.dropped == 0
        assert stored.output_bytes == 300004
        assert jobs[job_id]["attempts"] == 1
    finally:
        if filler:
            os.unlink(filler)
        log = invariants.stop_pool(pool)
    assert "disk full" in log and "Traceback" not in log and "died" not in log


def _store_with_jobs(path, tmp_path, n=300) -> None:
    invariants.enqueue_many(path, [{"command": "echo " + "x" * 300} for _ in range(n)], tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)


def _make(kind: str, path: str, tmp_path) -> None:
    if kind == "text":
        with open(path, "w") as f:
            f.write("this is my shopping list\n" * 100)
    elif kind == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
        conn.commit()
        conn.close()
    elif kind == "corrupt":
        _store_with_jobs(path, tmp_path)
        with open(path, "r+b") as f:
            f.seek(4096 * 2)
            f.write(os.urandom(4096 * 6))
    elif kind == "truncated":
        _store_with_jobs(path, tmp_path)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    elif kind == "newer":
        _store_with_jobs(path, tmp_path, n=3)
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version = 99")
        conn.close()


@pytest.mark.parametrize("kind, says", [
    ("text", "not a queuectl store"),
    ("foreign", "another program"),
    ("corrupt", "corrupt"),
    ("truncated", "corrupt"),
    ("newer", "newer queuectl"),
])
def test_a_file_that_is_not_our_store_is_refused_and_never_modified(tmp_path, kind, says):
    db = str(tmp_path / "q.db")
    _make(kind, db, tmp_path)
    before = digest(db)
    commands = [["status"], ["list", "-n", "500"], ["enqueue", "-c", "true"], ["init"],
                ["config", "set", "lease", "5s"], ["worker", "start", "--count", "1", "--burst"]]
    if kind == "newer":
        commands.append(["show", "anything"])
    if kind == "corrupt":
        # Damaged pages are found when read: opening a store does not read every page (that
        # costs O(size) on each command), so a write that touches no damaged page (e.g. to the
        # config table) cannot notice. `init` checks every page (quick_check) and refuses.
        commands.remove(["config", "set", "lease", "5s"])
    for args in commands:
        done = cli(db, *args)
        if args[0] == "worker" and kind == "corrupt":
            # Opening does not read the damaged pages; the pool checks every page before its
            # workers write anything. Its "starting" log line precedes the error.
            assert done.returncode == 69 and "Traceback" not in done.stderr, done.stderr
            assert done.stderr.splitlines()[-1].startswith("error: store ")
            assert "corrupt" in done.stderr.splitlines()[-1]
        else:
            one_line_error(done, 69, contains=says)
        assert digest(db) == before, args
    for suffix in ("-wal", "-journal"):
        assert not os.path.exists(db + suffix) or os.path.getsize(db + suffix) == 0


def test_a_read_only_store_is_refused_with_one_line_and_left_as_it_was(tmp_path):
    with tmpfs(tmp_path / "fs", "4m") as fs:
        db = os.path.join(fs, "q.db")
        kept = invariants.enqueue_many(db, [{"command": "true"}], tmp_path)
        before = digest(db)
        done = subprocess.run(["mount", "-o", "remount,ro", fs], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
        for args in (["status"], ["list"], ["enqueue", "-c", "true"], ["config", "set", "lease", "5s"],
                     ["worker", "start", "--count", "1", "--burst"], ["cancel", kept[0]]):
            one_line_error(cli(db, *args), 77, contains=db)
        assert digest(db) == before
        subprocess.run(["mount", "-o", "remount,rw", fs], check=True)
        check(db, kept)


MIGRATE = textwrap.dedent("""
    import os, signal, sys
    import queuectl.store.sqlite.schema as schema
    mode, db, *args = sys.argv[1:]
    if mode != "current":
        schema.SCHEMA_VERSION += 1
        schema.MIGRATIONS[schema.SCHEMA_VERSION] = '''
            CREATE TABLE extra (x INTEGER);
            ALTER TABLE jobs ADD COLUMN note TEXT;
            UPDATE jobs SET note = 'migrated';
        ''' + ("INSERT INTO no_such_table VALUES (1);" if mode == "fail" else "")
    if mode.startswith("crash"):
        after = int(mode[len("crash"):])
        real = schema._statements

        def dying(script):
            statements = real(script)
            class Dying(list):
                def __iter__(self):
                    for i, s in enumerate(statements):
                        if i == after:
                            os.kill(os.getpid(), signal.SIGKILL)
                        yield s
            return Dying(statements)
        schema._statements = dying
    from queuectl.cli import main
    sys.exit(main(["--db", db, *args]))
""")


from queuectl.store.sqlite.schema import SCHEMA_VERSION as CURRENT  # noqa: E402


def migrate(db, mode, *args):
    return subprocess.run([sys.executable, "-c", MIGRATE, mode, db, *args],
                          capture_output=True, text=True, timeout=60)


def schema_of(db) -> tuple[int, set[str], set[str]]:
    conn = invariants.connect(db)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    finally:
        conn.close()
    return version, tables, columns


@pytest.mark.parametrize("mode", ["fail", "crash2"])
def test_a_migration_that_fails_or_crashes_half_way_is_rolled_back_and_retried(tmp_path, mode):
    db = str(tmp_path / "q.db")
    kept = invariants.enqueue_many(db, [{"command": "true"} for _ in range(10)], tmp_path)
    done = migrate(db, mode, "status")
    if mode == "fail":
        one_line_error(done, 1, contains="no_such_table")
    else:
        assert done.returncode == -9  # killed between two statements of the migration
    version, tables, columns = schema_of(db)
    assert version == CURRENT and "extra" not in tables and "note" not in columns
    check(db, kept)
    # This version still opens it, and works with it.
    assert cli(db, "status").returncode == 0
    assert cli(db, "enqueue", "-c", "true").returncode == 0
    # The next start of the newer version migrates it, all steps at once.
    done = migrate(db, "ok", "status")
    assert done.returncode == 0, done.stderr
    version, tables, columns = schema_of(db)
    assert version == CURRENT + 1 and "extra" in tables and "note" in columns
    conn = invariants.connect(db)
    assert {r[0] for r in conn.execute("SELECT note FROM jobs")} == {"migrated"}
    conn.close()
    check(db, kept)


def test_a_crash_while_creating_a_new_store_leaves_a_file_the_next_start_completes(tmp_path):
    db = str(tmp_path / "new" / "q.db")
    done = migrate(db, "current", "init")
    assert done.returncode == 0  # a baseline: the script itself works
    shutil.rmtree(tmp_path / "new")
    crash = textwrap.dedent("""
        import os, signal, sys
        import queuectl.store.sqlite.schema as schema
        real = schema._statements
        def dying(script):
            out = real(script)
            class Dying(list):
                def __iter__(self):
                    for i, s in enumerate(out):
                        if i == 5:
                            os.kill(os.getpid(), signal.SIGKILL)
                        yield s
            return Dying(out)
        schema._statements = dying
        from queuectl.cli import main
        sys.exit(main(["--db", sys.argv[1], "init"]))
    """)
    done = subprocess.run([sys.executable, "-c", crash, db], capture_output=True, text=True)
    assert done.returncode == -9
    assert schema_of(db)[0] == 0  # nothing of the half-made schema was committed
    done = cli(db, "init")
    assert done.returncode == 0, done.stderr
    job = cli(db, "enqueue", "-c", "true")
    assert job.returncode == 0, job.stderr
    assert schema_of(db)[0] == CURRENT
    check(db, job.stdout.split())


def test_store_directory_and_every_file_are_private_while_workers_run(tmp_path):
    db = str(tmp_path / "new-dir" / "q.db")
    job = cli(db, "enqueue", "-c", "sleep 30")
    assert job.returncode == 0, job.stderr
    pool = invariants.start_pool(db, "--count", "1")
    try:
        wait_for(lambda: state_of(db, job.stdout.strip()) == "running", what="running")
        assert os.stat(os.path.dirname(db)).st_mode & 0o777 == 0o700
        for suffix in ("", "-wal", "-shm", "-bell"):
            assert os.stat(db + suffix).st_mode & 0o777 == 0o600, suffix
    finally:
        invariants.stop_pool(pool)
    check(db, job.stdout.split())
