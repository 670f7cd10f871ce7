"""Child processes of the benchmark: the environment pointing at the temporary store, timed
command runs, and a `queuectl worker start` pool running in the background."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Callable

from ..errors import QueueError
from ..store.base import Store


class BenchError(QueueError):
    """A measurement could not be taken (a child failed, or a wait ran out of time)."""


def queuectl_argv() -> list[str]:
    """How a person runs queuectl with this interpreter: the console script if installed."""
    script = os.path.join(os.path.dirname(sys.executable), "queuectl")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "queuectl"]


def child_env(db: str) -> dict[str, str]:
    """This environment without any QUEUECTL_* setting of the user, pointed at `db`.

    PYTHONDONTWRITEBYTECODE is dropped so commands run from cached bytecode, as installed
    programs do (with it, every run would compile every module it imports)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("QUEUECTL_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["QUEUECTL_DB"] = db
    return env


def timed_run(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
              stdin_path: str | None = None) -> float:
    """Wall seconds of one run of `argv` (stdout discarded); a failure raises BenchError."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, cwd=cwd, stdin=stdin, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        took = time.perf_counter() - start
    finally:
        if stdin_path:
            stdin.close()
    if done.returncode != 0:
        text = done.stderr.decode(errors="replace").strip().splitlines()
        raise BenchError(f"{' '.join(argv[-3:])} failed (exit {done.returncode}): "
                         f"{text[-1] if text else 'no message'}")
    return took


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = 0.01) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def _sleeping(pid: int) -> bool:
    """True when `pid` is blocked (state S), e.g. waiting on its doorbell."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"S"
    except (OSError, IndexError):
        return True  # no /proc: the settle delay alone has to do


class WorkerProcesses:
    """`queuectl worker start --count N` in the background on the temporary store.

    `store` is the caller's open connection to `db`, used to watch the workers: this process
    must not open a second connection to the same file (see `open_connection`'s header check,
    which drops this process's POSIX locks on the file when a connection is already open).
    """

    def __init__(self, db: str, store: Store, count: int, log_path: str) -> None:
        self.db = db
        self.store = store
        self.count = count
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def __enter__(self) -> "WorkerProcesses":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            queuectl_argv() + ["worker", "start", "--count", str(self.count)],
            env=child_env(self.db), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, start_new_session=True)
        try:
            self.wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def pids(self) -> list[int]:
        """The worker processes (their rows in the store), not the pool that started them."""
        return [w.pid for w in self.store.workers()]

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until every worker has registered and is blocked waiting for work."""
        def registered() -> list[int] | None:
            if self.proc is not None and self.proc.poll() is not None:
                raise BenchError(f"`queuectl worker start` exited ({self.proc.returncode}); "
                                 f"see {self.log_path}")
            pids = self.pids()
            return pids if len(pids) >= self.count else None

        pids = wait_until(registered, timeout, f"{self.count} workers to start", 0.02)
        streak = 0

        def settled() -> bool:
            nonlocal streak
            streak = streak + 1 if all(_sleeping(p) for p in pids) else 0
            return streak >= 5

        wait_until(settled, timeout, "the workers to become idle", 0.02)

    def stop(self) -> None:
        """Warm stop (SIGTERM), then cold, then SIGKILL of the group we started."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                for sig, wait in ((signal.SIGTERM, 20), (signal.SIGTERM, 10)):
                    proc.send_signal(sig)
                    try:
                        proc.wait(wait)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
