"""The reliability invariants of issue 6, checked against a real store file after a scenario.

`check(db, acknowledged)` asserts invariants 1, 3, 4, 5 and 7 on the file (2 is a property of a
scenario's history: the run rows it leaves, checked by the scenario itself); `one_line_error`
asserts invariant 6 on a finished CLI process. Plus the helpers the fault tests share: a private
tmpfs (for disk-full and read-only stores), worker pids, stored output per stream.
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


def connect(db) -> sqlite3.Connection:
    """A plain read connection to the store file (the tests' own, not queuectl's)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def stored_output(db, job_id: str, attempt: int | None = None) -> Stored:
    conn = connect(db)
    try:
        if attempt is None:
            attempt = conn.execute("SELECT runs FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
        run_id, total, dropped = conn.execute(
            "SELECT id, output_bytes, dropped FROM runs WHERE job_id = ? AND attempt = ?",
            (job_id, attempt)).fetchone()
        chunks = [(s, bytes(d)) for s, d in conn.execute(
            "SELECT stream, data FROM output WHERE run_id = ? ORDER BY part, seq", (run_id,))]
    finally:
        conn.close()
    return Stored(stdout=b"".join(d for s, d in chunks if s == 1),
                  stderr=b"".join(d for s, d in chunks if s == 2),
                  chunks=chunks, output_bytes=total, dropped=dropped)


def jobs(db) -> dict[str, dict]:
    conn = connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return {r["id"]: dict(r) for r in conn.execute("SELECT * FROM jobs")}
    finally:
        conn.close()


def runs(db, job_id: str) -> list[dict]:
    conn = connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(
            "SELECT * FROM runs WHERE job_id = ? ORDER BY attempt", (job_id,))]
    finally:
        conn.close()


def lease_setting(db) -> float:
    from queuectl.config import resolve

    conn = connect(db)
    try:
        stored = dict(conn.execute("SELECT key, value FROM config"))
    finally:
        conn.close()
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
    - 4: `PRAGMA quick_check` is ok; with `leases_rescued` (workers are running), no running
      job's lease expired longer ago than rescuing it takes (about a lease);
    - 5: no live process carries QUEUECTL_JOB_ID of a job that is not running;
    - 7: with `expected_output` ({id: stdout bytes}), the latest run stored exactly those bytes.
    """
    acknowledged = list(acknowledged)
    conn = connect(db)
    try:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        conn.row_factory = sqlite3.Row
        rows = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM jobs")}
        all_runs: dict[str, list[dict]] = {}
        for r in conn.execute("SELECT * FROM runs ORDER BY job_id, attempt"):
            all_runs.setdefault(r["job_id"], []).append(dict(r))
        counts = dict(conn.execute("SELECT state, n FROM counts").fetchall())
    finally:
        conn.close()

    missing = [i for i in acknowledged if i not in rows]
    assert not missing, f"{len(missing)} acknowledged job(s) vanished, e.g. {missing[:3]}"
    by_state: dict[str, int] = {}
    for job_id, job in rows.items():
        assert job["state"] in STATES, (job_id, job["state"])
        by_state[job["state"]] = by_state.get(job["state"], 0) + 1
    assert {s: n for s, n in counts.items() if n} == by_state, (counts, by_state)

    lease = lease_setting(db)
    now = time.time()
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
    conn = connect(db)
    try:
        return dict(conn.execute("SELECT id, pid FROM workers"))
    finally:
        conn.close()


def worker_pid_of(db, job_id: str) -> int | None:
    conn = connect(db)
    try:
        row = conn.execute("SELECT w.pid FROM jobs j JOIN workers w ON w.id = j.worker_id "
                           "WHERE j.id = ? AND j.state = 'running'", (job_id,)).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def state_of(db, job_id: str) -> str | None:
    conn = connect(db)
    try:
        row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        conn.close()
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
