"""Run one shell command: capture its output, enforce its timeout, and kill all it started."""

from __future__ import annotations

import os
import select
import signal
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from .output import STDERR, STDOUT, OutputCapture
from .reaper import MARKER_VAR, is_subreaper, reap_children
from .spawn import SHELL, Child, close_pipes, reap, spawn
READ_SIZE = 64 * 1024
# After the shell exits, how long to keep reading output its leftovers still write.
LINGER = 0.05


def signal_name(n: int) -> str:
    """The name of signal `n` (or -n, as a returncode gives it): SIGSEGV, SIGRTMIN+3, SIG99."""
    n = abs(n)
    try:
        return signal.Signals(n).name
    except ValueError:
        rtmin = getattr(signal, "SIGRTMIN", None)
        rtmax = getattr(signal, "SIGRTMAX", None)
        if rtmin is not None and rtmax is not None and rtmin < n < rtmax:
            return f"SIGRTMIN+{n - int(rtmin)}"
        return f"SIG{n}"


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None  # None when killed by a signal or when it could not start
    signal: str | None  # e.g. "SIGSEGV"
    timed_out: bool
    stopped: object | None  # the reason tick() returned that made us kill it
    error: str | None  # why it could not start
    duration: float  # monotonic seconds
    timeout: float | None = None  # the limit it ran under, for describe()

    @property
    def ok(self) -> bool:
        return (self.exit_code == 0 and self.signal is None and not self.timed_out
                and self.stopped is None and self.error is None)

    def describe(self) -> str:
        """A one-line account of how the run ended, for a person."""
        if self.error is not None:
            return self.error
        if self.stopped is not None:
            return f"stopped: {getattr(self.stopped, 'value', self.stopped)}"
        if self.timed_out:
            return f"timed out after {self.timeout:g} s" if self.timeout is not None else "timed out"
        if self.signal is not None:
            return f"killed by {self.signal}"
        if self.exit_code == 127:
            return "command not found (exit 127)"
        if self.exit_code == 126:
            return "not executable (exit 126)"
        return f"exit code {self.exit_code}"


def _start_error(exc: Exception, cwd: str | None) -> str:
    if isinstance(exc, OSError) and cwd is not None and exc.filename == cwd:
        if isinstance(exc, FileNotFoundError):
            return f"cannot start: working directory {cwd} does not exist"
        if isinstance(exc, NotADirectoryError):
            return f"cannot start: working directory {cwd} is not a directory"
        if isinstance(exc, PermissionError):
            return f"cannot start: working directory {cwd}: permission denied"
        return f"cannot start: working directory {cwd}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot start: {exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot start: {exc.strerror}"
    return f"cannot start: {exc}"


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone, or only processes we may not signal remain in it


def _has_exited(pid: int) -> bool:
    """True once the child is a zombie; does not reap it, so its pid (= its pgid) stays ours."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def run_command(
    command: str, *, cwd: str, env: Mapping[str, str] | Mapping[bytes, bytes] | None, timeout: float | None,
    capture: OutputCapture, tick: Callable[[], object | None] | None = None,
    tick_interval: float = 0.25, kill_grace: float = 2.0, every_child: bool = False,
) -> RunResult:
    """Run `/bin/sh -c command` in its own session and wait for it, feeding `capture`.

    `tick()` is called at least every `tick_interval` s while it runs; a non-None return stops
    the run. Timeout or stop: SIGTERM to the process group, SIGKILL after `kill_grace` s. Once
    the shell has exited, what is left of its group is killed. When this process is a child
    subreaper, leftovers that escaped the group are killed too: those marked with this run's
    QUEUECTL_JOB_ID, or with `every_child` (a caller that starts nothing but jobs) every child
    left, marked or not (see reap_orphans()).
    """
    if tick is not None and tick_interval <= 0:
        raise ValueError("tick_interval must be > 0")
    start = time.monotonic()
    try:
        child = spawn(command, cwd=cwd, env=env)
    except (OSError, ValueError) as exc:
        return RunResult(None, None, False, None, _start_error(exc, cwd),
                         time.monotonic() - start, timeout)
    marker = None if every_child else _marker(os.environ if env is None else env)
    try:
        watch = _Watch(child, capture, start, timeout, tick, tick_interval, kill_grace)
        watch.run()
    finally:
        # Also on an exception from tick() or capture: nothing of the job may outlive the call.
        _killpg(child.pid, signal.SIGKILL)
        code = reap(child)
        close_pipes(child)
        if is_subreaper():
            if every_child:
                reap_children(None, kill=True, every_child=True)
            else:
                reap_children(marker, kill=marker is not None)
    return RunResult(
        exit_code=code if code >= 0 else None,
        signal=signal_name(code) if code < 0 else None,
        timed_out=watch.timed_out, stopped=watch.stopped, error=None,
        duration=time.monotonic() - start, timeout=timeout,
    )


_IN = select.POLLIN | select.POLLPRI


class _Watch:
    """Waits for one shell to exit while reading its output, calling `tick`, and enforcing its
    timeout and any stop `tick` asks for (SIGTERM to the group, SIGKILL after the grace).
    The shell's exit is noticed by its pidfd where there is one, else by polling. One poll
    object serves the whole run; a short job costs a pass or two."""

    def __init__(self, child: Child, capture: OutputCapture, start: float,
                 timeout: float | None, tick: Callable[[], object | None] | None,
                 tick_interval: float, kill_grace: float) -> None:
        self.pid = child.pid
        self.capture = capture
        self.tick = tick
        self.tick_interval = tick_interval
        self.kill_grace = kill_grace
        self.poll = select.poll()
        self.streams = {child.stdout: STDOUT, child.stderr: STDERR}
        self.poll.register(child.stdout, _IN)
        self.poll.register(child.stderr, _IN)
        self.pidfd = self._open_pidfd()
        self.notified = self.pidfd is not None  # the pidfd will wake us when the shell exits
        self.deadline = None if timeout is None else start + max(0.0, timeout)
        self.next_tick = None if tick is None else start + tick_interval
        self.timed_out = False
        self.stopped: object | None = None
        self.kill_at: float | None = None  # set once SIGTERM was sent
        self.killed = False
        self.exited_at: float | None = None
        self.poll_wait = 0.0005

    def _open_pidfd(self) -> int | None:
        if not hasattr(os, "pidfd_open"):
            return None
        try:
            fd = os.pidfd_open(self.pid)
        except OSError:
            return None  # no pidfd in this kernel: poll for the exit instead
        self.poll.register(fd, select.POLLIN)
        return fd

    def run(self) -> None:
        try:
            self._loop()
        finally:
            if self.pidfd is not None:
                os.close(self.pidfd)

    def _loop(self) -> None:
        while True:
            now = time.monotonic()
            if self.next_tick is not None and now >= self.next_tick:
                self._call_tick(now)
                now = time.monotonic()
            if self.deadline is not None and now >= self.deadline:
                self._check_deadline(now)
            if self.kill_at is not None and not self.killed and now >= self.kill_at:
                self.killed = True
                _killpg(self.pid, signal.SIGKILL)
            if self.exited_at is None and not self.notified and _has_exited(self.pid):
                self.exited_at = now
            wake = self._wake_time(now)
            if wake is False:
                break
            self._wait(None if wake is None else max(0.0, (wake - now) * 1000.0))
        if self.streams:
            _killpg(self.pid, signal.SIGKILL)
            for fd in list(self.streams):  # what the leftovers wrote before they died
                for _ in range(16):
                    if not self._read(fd):
                        break

    def _call_tick(self, now: float) -> None:
        reason = self.tick()  # type: ignore[misc]
        self.next_tick = time.monotonic() + self.tick_interval
        if reason is not None and self.kill_at is None and self.exited_at is None:
            self._stop(now, stopped=reason)

    def _check_deadline(self, now: float) -> None:
        if self.kill_at is None and self.exited_at is None:
            self._stop(now, timed_out=True)

    def _stop(self, now: float, stopped: object | None = None, timed_out: bool = False) -> None:
        if _has_exited(self.pid):  # it ended on its own first: report that
            self.exited_at = now
            return
        self.stopped, self.timed_out = stopped, timed_out
        self.kill_at = now + self.kill_grace
        _terminate(self.pid)

    def _wake_time(self, now: float) -> float | None | bool:
        """When to look again (monotonic; None: only when something happens); False once the
        shell has exited and its leftovers had their moment (or their grace, while being
        terminated) to flush their output."""
        wake = self.next_tick
        if self.exited_at is not None:
            linger_end = (self.kill_at if self.kill_at is not None and not self.killed
                          else self.exited_at + LINGER)
            if not self.streams or now >= linger_end:
                return False
            return linger_end if wake is None else min(wake, linger_end)
        if self.kill_at is None:
            later = self.deadline
        elif not self.killed:
            later = self.kill_at
        else:
            later = None
        if later is not None:
            wake = later if wake is None else min(wake, later)
        if not self.notified:
            wake = now + self.poll_wait if wake is None else min(wake, now + self.poll_wait)
            self.poll_wait = min(self.poll_wait * 2, 0.05)
        return wake

    def _wait(self, timeout_ms: float | None) -> None:
        for fd, _ in self.poll.poll(timeout_ms):
            if fd == self.pidfd:
                self.poll.unregister(fd)
                self.notified = False  # it fired: confirm with waitid on the next pass
                self.poll_wait = 0.0005
            elif fd in self.streams:
                self._read(fd)

    def _read(self, fd: int) -> bool:
        """One read into the capture; False when nothing was read (EOF or would block)."""
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return False
        if data:
            self.capture.feed(self.streams[fd], data)
            return True
        self.poll.unregister(fd)
        del self.streams[fd]
        return False


def _terminate(pgid: int) -> None:
    _killpg(pgid, signal.SIGTERM)
    _killpg(pgid, signal.SIGCONT)  # a stopped process only acts on SIGTERM once continued


def _marker(env) -> str | None:
    """The job id marking this run's processes, from a str or a bytes environment."""
    for key in (MARKER_VAR, MARKER_VAR.encode()):
        try:
            value = env.get(key)
        except TypeError:  # os.environ takes str keys only
            continue
        if value is not None:
            return os.fsdecode(value)
    return None
