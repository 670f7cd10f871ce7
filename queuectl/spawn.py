"""Starting a job's shell: `/bin/sh -c COMMAND` in a session of its own, stdin from /dev/null,
stdout and stderr on pipes, in a working directory, with an environment.

It starts the shell exactly as `subprocess.Popen(..., start_new_session=True, close_fds=True)`
does (SIGPIPE and SIGXFSZ back to their defaults, no descriptor of this process inherited), but
with `os.posix_spawn` where it can: no Python-level fork machinery and no Python-level encoding
of every environment variable, which is most of what a worker spends on a short job's start.
posix_spawn cannot change directory in the child, so this process changes directory around the
call; it does so only while it has a single thread, and otherwise, or where posix_spawn or its
setsid flag is missing, it uses Popen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Mapping, NamedTuple

SHELL = "/bin/sh"
_DEFAULT_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ")
                         if hasattr(signal, name))
_FD_DIR = "/proc/self/fd"


class Child(NamedTuple):
    """A started shell: its pid (= its process group and session), the read ends of its stdout
    and stderr pipes (non-blocking, close-on-exec), and the Popen that started it, if one did
    (it must then be waited for through that object, which would otherwise reap it itself)."""

    pid: int
    stdout: int
    stderr: int
    popen: subprocess.Popen | None = None


class _Fast:
    """Whether os.posix_spawn is used (tests turn it off to check the fallback)."""

    enabled = (hasattr(os, "posix_spawn") and sys.platform.startswith("linux")
               and os.path.isdir(_FD_DIR))


def fast_spawn_enabled() -> bool:
    return _Fast.enabled


def set_fast_spawn(enabled: bool) -> bool:
    """Use os.posix_spawn when possible (True) or always Popen (False); the previous setting."""
    before, _Fast.enabled = _Fast.enabled, bool(enabled) and hasattr(os, "posix_spawn")
    return before


def spawn(command: str, *, cwd: str, env: Mapping | None) -> Child:
    """Start `/bin/sh -c command`; OSError (with the failing path as its filename) or
    ValueError (a NUL byte) when it cannot start, as Popen raises them."""
    if _Fast.enabled and threading.active_count() == 1:
        try:
            return _posix_spawn(command, cwd, os.environ if env is None else env)
        except NotImplementedError:  # no setsid for posix_spawn in this libc
            _Fast.enabled = False
        except _NoWayBack:
            pass
    return _popen(command, cwd, env)


def _pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()  # both close-on-exec (PEP 446)
    os.set_blocking(read_fd, False)
    return read_fd, write_fd


def _inherited() -> list[int]:
    """Descriptors above 2 that a new program would inherit (Python makes its own
    non-inheritable, but a process started by multiprocessing holds some that are not)."""
    found = []
    for name in os.listdir(_FD_DIR):
        fd = int(name)
        if fd > 2:
            try:
                if os.get_inheritable(fd):
                    found.append(fd)
            except OSError:  # the directory's own descriptor, closed by now
                pass
    return found


class _Sealed:
    """Whether this process made its inherited descriptors close-on-exec yet."""

    done = False


def _seal() -> None:
    """Before the first spawn, make every inheritable descriptor above 2 close-on-exec: those
    a process is started with (multiprocessing leaves some in a worker). Python, SQLite, libpq
    and the file watcher open theirs close-on-exec, so later spawns need no look at all (one
    listing of /proc/self/fd per job was a tenth of a short job's cost in the worker); only a
    descriptor this process itself made inheritable afterwards would reach a job."""
    if _Sealed.done:
        return
    for fd in _inherited():
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    _Sealed.done = True


class _NoWayBack(Exception):
    """This process's own directory cannot be opened, so it could not change back to it."""


def _here() -> int:
    try:
        return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise _NoWayBack from None


def _posix_spawn(command: str, cwd: str, env: Mapping) -> Child:
    out_r, out_w = _pipe()
    try:
        err_r, err_w = _pipe()
    except BaseException:
        os.close(out_r)
        os.close(out_w)
        raise
    try:
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
        _seal()
        home = _here()
        try:
            os.chdir(cwd)
            try:
                pid = os.posix_spawn(SHELL, [SHELL, "-c", command], env, file_actions=actions,
                                     setsid=True, setsigdef=_DEFAULT_SIGNALS)
            finally:
                os.fchdir(home)
        finally:
            os.close(home)
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return Child(pid, out_r, err_r)


def _popen(command: str, cwd: str, env: Mapping | None) -> Child:
    proc = subprocess.Popen([SHELL, "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                            start_new_session=True)
    out, err = proc.stdout.fileno(), proc.stderr.fileno()
    os.set_blocking(out, False)
    os.set_blocking(err, False)
    return Child(proc.pid, out, err, proc)


def close_pipes(child: Child) -> None:
    if child.popen is not None:
        child.popen.stdout.close()
        child.popen.stderr.close()
    else:
        os.close(child.stdout)
        os.close(child.stderr)


def reap(child: Child) -> int:
    """Wait for the shell and reap it; its returncode as Popen gives it (-N: signal N)."""
    if child.popen is not None:
        return child.popen.wait()
    _, status = os.waitpid(child.pid, 0)
    return os.waitstatus_to_exitcode(status)
