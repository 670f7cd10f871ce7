"""Helpers for CLI tests: run the real `queuectl` in a subprocess against a store in tmp_path,
check the one-line error contract, and snapshot a store to prove it did not change."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import sqlite3
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

from procs import wait_for  # noqa: F401  (re-exported for the CLI tests)

QUEUECTL = [sys.executable, "-m", "queuectl"]
TIMEOUT = 60


class Result(NamedTuple):
    code: int
    out: str | bytes
    err: str | bytes


PYCACHE = os.path.join(os.path.expanduser("~"), ".cache", "queuectl-tests", "pycache")


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without QUEUECTL_* settings, plus `env`.

    XDG_DATA_HOME points nowhere so that a test which forgets `db=` can never touch the real
    per-user store (it fails instead). Children keep compiled bytecode in a private cache
    outside the repository, so hundreds of short `queuectl` processes do not each recompile
    queuectl (PYTHONDONTWRITEBYTECODE would otherwise force that)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("QUEUECTL_")}
    base["XDG_DATA_HOME"] = "/nonexistent/queuectl-tests"
    if "PYTHONPYCACHEPREFIX" not in base:
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        base["PYTHONPYCACHEPREFIX"] = PYCACHE
    base.update(env or {})
    return base


def command(*args: str, db: str | os.PathLike | None = None) -> list[str]:
    return QUEUECTL + (["--db", str(db)] if db is not None else []) + [str(a) for a in args]


def run_cli(*args: str, db: str | os.PathLike | None = None, input: str | bytes | None = None,
            env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None,
            binary: bool = False, timeout: float = TIMEOUT) -> Result:
    """Run `python -m queuectl [--db DB] ARGS`; return (exit code, stdout, stderr).

    Text mode decodes as UTF-8 (with surrogateescape, so nothing is lost); `binary=True` gives
    bytes. stdin is empty (not a terminal) unless `input` is given."""
    if isinstance(input, str):
        input = input.encode("utf-8")
    done = subprocess.run(command(*args, db=db), input=input if input is not None else b"",
                          capture_output=True, env=cli_env(env), cwd=cwd, timeout=timeout)
    if binary:
        return Result(done.returncode, done.stdout, done.stderr)
    return Result(done.returncode, done.stdout.decode("utf-8", "surrogateescape"),
                  done.stderr.decode("utf-8", "surrogateescape"))


def ok(*args: str, db: str | os.PathLike | None = None, **kw) -> str:
    """Run a command that must succeed; return its stdout."""
    code, out, err = run_cli(*args, db=db, **kw)
    assert code == 0, f"queuectl {' '.join(map(str, args))} exited {code}: {err}"
    return out


def assert_error(result: Result, code: int, *fragments: str) -> str:
    """The bad-input contract: the documented exit code, nothing on stdout, exactly one
    `error: ` line on stderr (no traceback) containing each fragment. Returns that line."""
    got_code, out, err = result
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    assert got_code == code, f"exit {got_code}, expected {code}; stderr: {err!r}"
    assert out in ("", b""), f"stdout should be empty on error, got {out!r}"
    assert "Traceback" not in err, err
    assert err.endswith("\n") and err.count("\n") == 1, f"expected one stderr line: {err!r}"
    assert err.startswith("error: "), err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err.rstrip("\n")


def enqueue(db, spec: dict | str, **kw) -> str:
    text = spec if isinstance(spec, str) else json.dumps(spec)
    return ok("enqueue", text, db=db, **kw).strip()


def jobs(db, *args: str) -> list[dict]:
    """`list --json` parsed (every job unless --limit is among `args`)."""
    extra = list(args) if {"--limit", "-n"} & set(args) else list(args) + ["--limit", "1000000"]
    out = ok("list", "--json", *extra, db=db)
    value = json.loads(out)
    assert isinstance(value, list)
    return value


def ids(db, *args: str) -> list[str]:
    return [j["id"] for j in jobs(db, *args)]


def show(db, job_id: str) -> dict:
    return json.loads(ok("show", job_id, "--json", db=db))


def open_db(db):
    """The store, opened in this process (for setting up and reading back state quickly)."""
    from queuectl.store import open_store

    return open_store(str(db), durability="normal")


def seed(db, *specs: dict, cwd: str | os.PathLike | None = None) -> list[str]:
    """Enqueue specs in this process, without paying for a `queuectl` process each."""
    from queuectl.models import validate_spec

    store = open_db(db)
    try:
        return store.enqueue([validate_spec(s) for s in specs], now=time.time(),
                             default_max_retries=3, default_cwd=str(cwd or os.getcwd()))
    finally:
        store.close()


def stored(db) -> dict:
    """Every job in the store by id (as `queuectl.models.Job`), read in this process."""
    store = open_db(db)
    try:
        return {j.id: j for j in store.list_jobs(None, limit=None)}
    finally:
        store.close()


def copy_store(src, dest_dir: Path) -> Path:
    """A copy of a closed store (its file and any -wal/-shm) in `dest_dir`."""
    src = Path(src)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for path in src.parent.glob(src.name + "*"):
        shutil.copy2(path, dest_dir / path.name)
    return dest_dir / src.name


def snapshot(db) -> dict[str, list[tuple]] | None:
    """Every row of every table of the store (None when the file does not exist), read through
    a separate read-only connection."""
    path = Path(db)
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in tables}
    finally:
        conn.close()


def job_count(db) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    finally:
        conn.close()


def run_burst(db, **kw) -> None:
    """Run every eligible job with one burst worker (it exits once nothing is eligible)."""
    code, _, err = run_cli("worker", "start", "--burst", "--count", "1", db=db, **kw)
    assert code == 0, err


def run_on_tty(args: Sequence[str], *, db, env: dict[str, str] | None = None,
               timeout: float = TIMEOUT) -> tuple[int, bytes, bytes]:
    """Run queuectl with stdout and stderr each on its own pseudo-terminal (in raw mode, so the
    line discipline passes bytes through unchanged); return (code, stdout bytes, stderr bytes)."""
    masters, slaves = [], []
    for _ in range(2):
        master, slave = pty.openpty()
        tty.setraw(slave)
        masters.append(master)
        slaves.append(slave)
    try:
        proc = subprocess.Popen(command(*args, db=db), stdin=subprocess.DEVNULL,
                                stdout=slaves[0], stderr=slaves[1], env=cli_env(env))
    finally:
        for slave in slaves:
            os.close(slave)
    data = {m: bytearray() for m in masters}
    open_ = set(masters)
    deadline = time.monotonic() + timeout
    try:
        while open_:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"queuectl {' '.join(args)} did not finish on a tty")
            ready, _, _ = select.select(list(open_), [], [], 0.1)
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed its side
                    chunk = b""
                if chunk:
                    data[fd] += chunk
                else:
                    open_.discard(fd)
        code = proc.wait(timeout=timeout)
    finally:
        for m in masters:
            os.close(m)
    return code, bytes(data[masters[0]]), bytes(data[masters[1]])
