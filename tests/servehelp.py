"""Helpers for the `queuectl serve` tests: start it on a free loopback port, talk HTTP to it,
stop it, and find what it left running."""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import time
from typing import NamedTuple
from urllib.parse import urlsplit

from clihelp import cli_env, command
from procs import wait_for

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Served(NamedTuple):
    proc: subprocess.Popen
    url: str  # as printed (with ?token=... unless the token came from the environment)
    port: int
    token: str | None

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the process's stdout, waiting at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    fd = proc.stdout.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None and not select.select([fd], [], [], 0)[0]:
            raise AssertionError(f"serve printed no URL (exit {proc.poll()}): "
                                 f"{proc.stderr.read().decode() if proc.poll() is not None else ''}")
        if select.select([fd], [], [], min(left, 0.2))[0]:
            chunk = os.read(fd, 1)
            if not chunk:
                continue
            data += chunk
    return data.decode().strip()


def start_serve(db, *args: str, env: dict | None = None, timeout: float = 60) -> Served:
    """`queuectl serve --port FREE ARGS` in its own session; waits for its URL."""
    port = free_port()
    proc = subprocess.Popen(command("serve", "--port", str(port), *args, db=db),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env(env), start_new_session=True)
    url = read_line(proc, timeout)
    token = dict(p.split("=", 1) for p in urlsplit(url).query.split("&") if "=" in p).get("token")
    return Served(proc, url, port, token)


def stop_serve(served: Served, sig: int | None = signal.SIGINT,
               timeout: float = 30) -> tuple[int, str, str]:
    """Signal serve (sig None: it was signalled already) and collect (exit code, stdout rest,
    stderr)."""
    if sig is not None and served.proc.poll() is None:
        served.proc.send_signal(sig)
    try:
        out, err = served.proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(served.proc.pid, signal.SIGKILL)
        out, err = served.proc.communicate()
        raise AssertionError(f"serve did not stop within {timeout}s: {err.decode()}")
    return served.proc.returncode, out.decode(), err.decode()


class Reply(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def get(served: Served, path: str, *, token: str | None = None, cookie: str | None = None,
        method: str = "GET", headers: dict | None = None, body: bytes | None = None) -> Reply:
    conn = http.client.HTTPConnection(HOST, served.port, timeout=30)
    try:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            sent["Cookie"] = cookie
        conn.request(method, path, body=body, headers=sent)
        reply = conn.getresponse()
        return Reply(reply.status, reply.headers, reply.read())
    finally:
        conn.close()


def raw(served: Served, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes; return everything the server answers before it closes."""
    with socket.create_connection((HOST, served.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`."""
    from procs import children_of

    out, todo = [], [pid]
    while todo:
        kids = children_of(todo.pop())
        out += kids
        todo += kids
    return out


def gone(pids) -> bool:
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                    return False
        except OSError:
            continue
    return True


__all__ = ["Served", "free_port", "start_serve", "stop_serve", "get", "raw", "descendants",
           "gone", "wait_for", "HOST"]
