"""A throwaway PostgreSQL server for the tests: initdb into a temporary directory, listen on a
free loopback port, stop and delete it afterwards.

The binaries come from the machine (PATH, then /usr/lib/postgresql/<version>/bin). PostgreSQL
refuses to run as root, so when the tests run as root the server runs as the `postgres` user.
Nothing here is mocked: the tests talk to a real server over TCP.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator, NamedTuple

# Settings for a disposable server: no fsync (a crash loses only test data), room for the
# fault tests' many worker connections.
FAST = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "64MB",
    "listen_addresses": "'127.0.0.1'",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


class PostgresUnavailable(RuntimeError):
    pass


def find_bin_dir() -> str:
    """The directory holding initdb/pg_ctl/postgres (newest version first)."""
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0,
                        reverse=True)
    if not candidates:
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed; on Debian: "
            "apt-get install postgresql")
    return os.path.dirname(candidates[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(NamedTuple):
    base_url: str  # postgresql://postgres@127.0.0.1:PORT
    data_dir: str
    port: int
    bin_dir: str
    run_as: str | None

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        return f"{self.base_url}/{database}" + (f"?schema={schema}" if schema else "")


def _as_user(user: str | None):
    if user is None:
        return None
    entry = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    return demote


def _run(args: list[str], run_as: str | None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, preexec_fn=_as_user(run_as), capture_output=True, text=True,
                          check=False, **kw)


def start(parent: str | None = None) -> Server:
    bin_dir = find_bin_dir()
    run_as = "postgres" if os.geteuid() == 0 else None
    root = tempfile.mkdtemp(prefix="queuectl-pg-", dir=parent)
    data_dir = os.path.join(root, "data")
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    os.chmod(root, 0o700)
    init = _run([os.path.join(bin_dir, "initdb"), "-D", data_dir, "-U", "postgres",
                 "--auth=trust", "-E", "UTF8", "--no-instructions", "--no-sync"], run_as,
                cwd=root)
    if init.returncode != 0:
        raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
    port = free_port()
    options = " ".join(f"-c {k}={v}" for k, v in FAST.items())
    options += f" -p {port} -k {root}"
    for attempt in range(3):
        ctl = _run([os.path.join(bin_dir, "pg_ctl"), "-D", data_dir, "-l",
                    os.path.join(root, "server.log"), "-o", options, "-w", "-t", "60", "start"],
                   run_as, cwd=root)
        if ctl.returncode == 0:
            break
        port = free_port()  # someone took the port between the probe and the start: try another
        options = options.rsplit(" -p ", 1)[0] + f" -p {port} -k {root}"
    else:
        log = ""
        try:
            with open(os.path.join(root, "server.log")) as f:
                log = f.read()[-800:]
        except OSError:
            pass
        raise PostgresUnavailable(f"pg_ctl start failed: {ctl.stderr.strip()[-300:]} {log}")
    return Server(f"postgresql://postgres@127.0.0.1:{port}", data_dir, port, bin_dir, run_as)


def stop(server: Server) -> None:
    _run([os.path.join(server.bin_dir, "pg_ctl"), "-D", server.data_dir, "-m", "immediate",
          "-w", "-t", "30", "stop"], server.run_as, cwd=os.path.dirname(server.data_dir))
    shutil.rmtree(os.path.dirname(server.data_dir), ignore_errors=True)


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(server.url(), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def running(parent: str | None = None) -> Iterator[Server]:
    """A started, ready server, stopped and deleted on exit."""
    server = start(parent)
    try:
        wait_ready(server)
        yield server
    finally:
        stop(server)
