"""The reliability invariants of issue 6, checked against a real store after a scenario.

`check(db, acknowledged)` asserts invariants 1, 3, 4, 5 and 7 on the store (2 is a property of a
scenario's history: the run rows it leaves, checked by the scenario itself); `one_line_error`
asserts invariant 6 on a finished CLI process. Plus the helpers the fault tests share: a private
tmpfs (for disk-full and read-only stores), worker pids, stored output per stream.

`db` is a SQLite file's path or a PostgreSQL store's URL (`postgresql://...?schema=NAME`): the
readers here open the tests' own connection to either (a read-only SQLite connection to the
file; a psycopg connection in one read-only snapshot for PostgreSQL), never queuectl's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from procs import processes_with_env, stop, wait_for

STATES = {"pending", "running", "completed", "failed", "dead"}
OUTCOMES = {"completed", "failed", "cancelled", "lost", "interrupted"}
SIGNAL_NAME = re.compile(r"^SIG[A-Z0-9+]+$")


@dataclass(frozen=True)
class Stored:
    """One attempt's stored output, split per stream."""

    stdout: bytes
    stderr: bytes
    chunks: list[tuple[int, bytes]]
    output_bytes: int
    dropped: int


def is_postgres(db) -> bool:
    return str(db).startswith(("postgresql://", "postgres://"))


def connect(db) -> sqlite3.Connection:
    """A plain read connection to the store file (the tests' own, not queuectl's). SQLite only;
    `reader(db)` reads either backend."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


# The application name of the tests' own PostgreSQL connections: not "queuectl…", so a test that
# terminates queuectl's backends by name leaves its own alone.
PG_APPLICATION = "tests-invariants"


def pg_connect(db, *, snapshot: bool = True):
    """A psycopg connection to the store's schema. With `snapshot`, every read until close() sees
    one consistent, read-only snapshot (REPEATABLE READ); else autocommit."""
    import psycopg

    from queuectl.store.postgres.conn import parse_location

    location = parse_location(str(db))
    conn = psycopg.connect(location.conninfo, autocommit=not snapshot, connect_timeout=10,
                           application_name=PG_APPLICATION,
                           options=f"-c search_path={location.schema}")
    if snapshot:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
    return conn


class Reader:
    """Reads of one store, SQLite or PostgreSQL, with `?` placeholders."""

    def __init__(self, db) -> None:
        self.postgres = is_postgres(db)
        self.conn = pg_connect(db) if self.postgres else connect(db)

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return [tuple(r) for r in self.conn.execute(sql, params).fetchall()]

    def dicts(self, sql: str, params: tuple = ()) -> list[dict]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def reader(db) -> Reader:
    return Reader(db)


def stored_output(db, job_id: str, attempt: int | None = None) -> Stored:
    with reader(db) as r:
        if attempt is None:
            attempt = r.one("SELECT runs FROM jobs WHERE id = ?", (job_id,))[0]
        run_id, total, dropped = r.one(
            "SELECT id, output_bytes, dropped FROM runs WHERE job_id = ? AND attempt = ?",
            (job_id, attempt))
        chunks = [(s, bytes(d)) for s, d in r.all(
            "SELECT stream, data FROM output WHERE run_id = ? ORDER BY part, seq", (run_id,))]
    return Stored(stdout=b"".join(d for s, d in chunks if s == 1),
                  stderr=b"".join(d for s, d in chunks if s == 2),
                  chunks=chunks, output_bytes=total, dropped=dropped)


def jobs(db) -> dict[str, dict]:
    with reader(db) as r:
        return {row["id"]: row for row in r.dicts("SELECT * FROM jobs")}


def runs(db, job_id: str) -> list[dict]:
    with reader(db) as r:
        return r.dicts("SELECT * FROM runs WHERE job_id = ? ORDER BY attempt", (job_id,))


def all_runs(db) -> dict[str, list[dict]]:
    """Every job's runs, by job id, each job's in attempt order."""
    found: dict[str, list[dict]] = {}
    with reader(db) as r:
        for row in r.dicts("SELECT * FROM runs ORDER BY job_id, attempt"):
            found.setdefault(row["job_id"], []).append(row)
    return found


def lease_setting(db) -> float:
    with reader(db) as r:
        return _lease(dict(r.all("SELECT key, value FROM config")))


def _lease(stored: dict[str, str]) -> float:
    from queuectl.config import resolve

    return resolve(stored, environ={})[0].lease


def _leftovers(db, ids: Iterable[str]) -> list[int]:
    """Live processes carrying QUEUECTL_JOB_ID of one of `ids` (and, when they carry a
    QUEUECTL_DB, this store's)."""
    wanted = {f"QUEUECTL_JOB_ID={i}".encode() for i in ids}
    found = []
    for pid in processes_with_env("QUEUECTL_JOB_ID"):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        dbs = [e for e in env if e.startswith(b"QUEUECTL_DB=")]
        if dbs and dbs[0] != f"QUEUECTL_DB={db}".encode():
            continue
        if wanted.intersection(env):
            found.append(pid)
    return found


def check(db, acknowledged: Iterable[str] = (), *, expected_output: Mapping[str, bytes] | None = None,
          leases_rescued: bool = True, steady_clock: bool = True,
          leftover_wait: float = 5.0) -> dict[str, dict]:
    """Assert the invariants on the store at `db`; return its jobs by id.

    - 1: every acknowledged id is a row, in exactly one known state;
    - 2: each run of a job ended before its next one started (by the wall clock: pass
      `steady_clock=False` after a clock step);
    - 3: attempts within the budget; one history row per run (attempt 1..runs), each with a start,
      worker and host, finished ones with an end and an outcome, signals by name;
      only a running job has an unfinished run (its latest);
    - 4: the store is sound — SQLite: `PRAGMA quick_check` is ok and the trigger-kept `counts`
      table agrees with the rows; PostgreSQL: the schema's owner and version are queuectl's
      current ones, every index agrees with its table (amcheck, where the extension can be
      had) and `Store.status()` counts what the rows hold; with `leases_rescued` (workers are
      running), no running job's lease expired longer ago than rescuing it takes (about a
      lease, by the store's clock);
    - 5: no live process carries QUEUECTL_JOB_ID of a job that is not running;
    - 7: with `expected_output` ({id: stdout bytes}), the latest run stored exactly those bytes.
    """
    acknowledged = list(acknowledged)
    with reader(db) as r:  # for PostgreSQL: one snapshot of everything read here
        if r.postgres:
            _check_postgres_schema(r, db)
            now = r.one("SELECT extract(epoch FROM clock_timestamp())::float8")[0]
            counts = None
        else:
            assert r.all("PRAGMA quick_check") == [("ok",)]
            now = time.time()
            counts = dict(r.all("SELECT state, sum(n) FROM counts GROUP BY state"))
        rows = {row["id"]: row for row in r.dicts("SELECT * FROM jobs")}
        all_runs: dict[str, list[dict]] = {}
        for row in r.dicts("SELECT * FROM runs ORDER BY job_id, attempt"):
            all_runs.setdefault(row["job_id"], []).append(row)
        lease = _lease(dict(r.all("SELECT key, value FROM config")))

    missing = [i for i in acknowledged if i not in rows]
    assert not missing, f"{len(missing)} acknowledged job(s) vanished, e.g. {missing[:3]}"
    by_state: dict[str, int] = {}
    for job_id, job in rows.items():
        assert job["state"] in STATES, (job_id, job["state"])
        by_state[job["state"]] = by_state.get(job["state"], 0) + 1
    if counts is not None:
        assert {s: n for s, n in counts.items() if n} == by_state, (counts, by_state)
    else:
        _check_postgres_status(db, rows)
    for job_id, job in rows.items():
        history = all_runs.pop(job_id, [])
        where = f"job {job_id!r}"
        assert 0 <= job["attempts"] <= job["max_retries"] + 1, (where, job)
        assert [r["attempt"] for r in history] == list(range(1, job["runs"] + 1)), (where, history)
        if steady_clock:  # invariant 2 as the history shows it: one run ended before the next
            for before, after in zip(history, history[1:]):
                assert before["finished_at"] is not None, (where, before)
                assert before["finished_at"] <= after["started_at"], (where, before, after)
        for run in history:
            assert run["started_at"] is not None and run["worker"] and run["host"], (where, run)
            if run["signal"] is not None:
                assert SIGNAL_NAME.match(run["signal"]), (where, run)
            if run["finished_at"] is None:
                assert job["state"] == "running" and run["attempt"] == job["runs"], (where, run)
                assert run["outcome"] is None, (where, run)
            else:
                assert run["outcome"] in OUTCOMES, (where, run)
                if steady_clock:  # (a wall-clock step back makes a run end "before" it began)
                    assert run["finished_at"] >= run["started_at"], (where, run)
        if job["state"] == "running":
            assert job["token"] and job["worker_id"] and job["lease_until"], (where, job)
            assert history and history[-1]["finished_at"] is None, (where, history)
            if leases_rescued:
                # An idle worker looks every lease/2 and rescues a lease it saw unrenewed for a
                # whole lease: one expires at most about a lease before it is rescued.
                assert job["lease_until"] >= now - lease - 2, (where, job["lease_until"], now)
        else:
            assert job["token"] is None and job["lease_until"] is None, (where, job)
    assert not all_runs, f"run rows without a job: {list(all_runs)[:3]}"

    for job_id, expected in (expected_output or {}).items():
        got = stored_output(db, job_id).stdout
        assert got == expected, (job_id, len(got), len(expected), got[:80], expected[:80])

    idle = [i for i, j in rows.items() if j["state"] != "running"]
    if idle:
        wait_for(lambda: not _leftovers(db, idle), timeout=leftover_wait, interval=0.05,
                 what=f"no job process left behind ({_leftovers(db, idle)})")
    return rows


def _check_postgres_schema(r: Reader, db) -> None:
    """Invariant 4 for PostgreSQL, inside the check's snapshot: queuectl's schema at its current
    version, and (where amcheck can be had) every B-tree index of it consistent with its table."""
    from queuectl.store.postgres.conn import parse_location
    from queuectl.store.postgres.schema import OWNER, SCHEMA_VERSION

    meta = dict(r.all("SELECT key, value FROM meta"))
    assert meta == {"owner": OWNER, "version": str(SCHEMA_VERSION)}, meta
    schema = parse_location(str(db)).schema
    if _amcheck_schema(db) is None:
        return
    indexes = [i for (i,) in r.all(
        "SELECT c.oid::regclass::text FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a ON a.oid = c.relam "
        "WHERE n.nspname = ? AND a.amname = 'btree'", (schema,))]
    assert len(indexes) >= 8, indexes  # the primary keys, uniques and the jobs indexes
    where = _amcheck_schema(db)
    for index in indexes:
        # heapallindexed: every row of the table is found in the index, not only the index's
        # own structure; raises (failing the test) on any inconsistency.
        r.all(f'SELECT "{where}".bt_index_check(?::regclass, true)', (index,))


_AMCHECK: dict[str, str | None] = {}


def _amcheck_schema(db) -> str | None:
    """The schema holding the amcheck extension in the store's database, creating it when it is
    missing and this login may; None where it cannot be had (then that part is not checked)."""
    import psycopg

    from queuectl.store.postgres.conn import parse_location

    conninfo = parse_location(str(db)).conninfo
    if conninfo in _AMCHECK:
        return _AMCHECK[conninfo]
    found = None
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10,
                             application_name=PG_APPLICATION) as conn:
            row = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                               "ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'").fetchone()
            if row is None:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA public")
                except psycopg.Error:
                    pass  # not installed on this server, or not ours to create
                row = conn.execute("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                                   "ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'"
                                   ).fetchone()
            found = row[0] if row else None
    except psycopg.Error:
        found = None
    _AMCHECK[conninfo] = found
    return found


def _check_postgres_status(db, rows: dict[str, dict]) -> None:
    """What people are shown (`Store.status()`, through queuectl's own store) counts what the
    rows hold. Workers may still be changing the store between the two reads: then both are
    read again, for a while."""
    from queuectl.store import open_store

    def by_state(jobs_by_id: dict[str, dict]) -> dict[str, int]:
        found: dict[str, int] = {}
        for job in jobs_by_id.values():
            found[job["state"]] = found.get(job["state"], 0) + 1
        return found

    expected = by_state(rows)
    store = open_store(str(db), durability="normal")
    try:
        for _ in range(50):
            shown = {s.value: n for s, n in store.status(store.now(), 15.0).counts.items() if n}
            if shown == expected:
                return
            time.sleep(0.1)
            expected = by_state(jobs(db))
        assert shown == expected, (shown, expected)
    finally:
        store.close()


def one_line_error(done: subprocess.CompletedProcess, code: int, *, contains: str = "",
                   stdout_empty: bool = True) -> str:
    """Invariant 6: exit `code`, exactly one `error: …` line on stderr, no traceback."""
    err = done.stderr if isinstance(done.stderr, str) else done.stderr.decode("utf-8", "replace")
    out = done.stdout if isinstance(done.stdout, str) else done.stdout.decode("utf-8", "replace")
    assert done.returncode == code, (done.args[-4:] if isinstance(done.args, list) else done.args,
                                     done.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    assert contains.lower() in lines[0].lower(), (contains, lines[0])
    if stdout_empty:
        assert out == "", out[:500]
    return lines[0]


def worker_pids(db) -> dict[str, int]:
    with reader(db) as r:
        return dict(r.all("SELECT id, pid FROM workers"))


def worker_pid_of(db, job_id: str) -> int | None:
    with reader(db) as r:
        row = r.one("SELECT w.pid FROM jobs j JOIN workers w ON w.id = j.worker_id "
                    "WHERE j.id = ? AND j.state = 'running'", (job_id,))
    return row[0] if row else None


def state_of(db, job_id: str) -> str | None:
    with reader(db) as r:
        row = r.one("SELECT state FROM jobs WHERE id = ?", (job_id,))
    return row[0] if row else None


def proc_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def proc_status(pid: int, field: str) -> int | None:
    """A kB field of /proc/PID/status (VmRSS, VmHWM), or None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def init_store(db, **config: str) -> None:
    """Create the store and set config keys through the real CLI path (engine calls)."""
    from queuectl.store import open_store

    s = open_store(str(db))
    try:
        for key, value in config.items():
            s.config_set(key.replace("_", "-"), value)
    finally:
        s.close()


def enqueue_many(db, specs: list[dict], cwd) -> list[str]:
    from queuectl.models import NewJob
    from queuectl.store import open_store

    s = open_store(str(db))
    try:
        return s.enqueue([NewJob(**spec) for spec in specs], now=time.time(),
                         default_max_retries=3, default_cwd=str(cwd))
    finally:
        s.close()


def show_queues(db) -> list[dict]:
    from procs import cli

    done = cli(db, "queue", "list", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def show_schedule(db, name: str) -> dict:
    from procs import cli

    done = cli(db, "schedule", "show", name, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def show(db, job_id: str) -> dict:
    from procs import cli

    done = cli(db, "show", job_id, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@contextlib.contextmanager
def tmpfs(path, size: str) -> Iterator[str]:
    """A private tmpfs of `size` at `path` (root only); skips the test where mount is refused."""
    import pytest

    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'}): "
                    "disk-full and read-only file systems need one")
    try:
        yield str(path)
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(directory: str, name: str = "filler") -> str:
    """Fill the file system holding `directory` to the last byte; return the filler's path."""
    path = os.path.join(directory, name)
    with open(path, "ab", buffering=0) as f:
        block = b"\0" * 65536
        while True:
            try:
                f.write(block)
            except OSError:
                break
        for size in (4096, 512, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                except OSError:
                    break
    return path


def lines_of(path) -> list[str]:
    """The whitespace-separated words of a marker file (empty when it does not exist)."""
    return path.read_text().split() if os.path.exists(path) else []


def env_of(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return {}
    return dict(i.decode("utf-8", "replace").split("=", 1) for i in items if b"=" in i)


def start_pool(db, *args: str, env: dict | None = None) -> subprocess.Popen:
    """Like procs.start_workers, but the pool's log goes to a file, so a pool that runs thousands
    of jobs never blocks on a full pipe; read it back with stop_pool()."""
    import tempfile

    from procs import QUEUECTL, env_for

    log = tempfile.NamedTemporaryFile(prefix="pool-", suffix=".log", delete=False)
    proc = subprocess.Popen(QUEUECTL + ["worker", "start", *args], env=env or env_for(db),
                            stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    log.close()
    proc.log_path = log.name
    return proc


def stop_pool(proc: subprocess.Popen, timeout: float = 20) -> str:
    """Stop a start_pool() pool as procs.stop does (warm, then cold); return its log."""
    stop(proc, timeout)
    return pool_log(proc, remove=True)


def pool_log(proc: subprocess.Popen, remove: bool = False) -> str:
    with open(proc.log_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    if remove:
        os.unlink(proc.log_path)
    return text
