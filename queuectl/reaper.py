"""Killing what a job leaves behind: the worker as child subreaper, orphans re-parented to it,
and the job processes of a worker that died."""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import sys
import threading
import time
from typing import Iterable

MARKER_VAR = "QUEUECTL_JOB_ID"
WORKER_VAR = "QUEUECTL_WORKER_ID"  # the worker that started a job process, see kill_leftovers()
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


_libc = None


def _prctl(option: int, arg: object) -> int | None:
    """prctl(option, arg) via libc; None where there is no prctl."""
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            return None
    prctl = getattr(_libc, "prctl", None)
    if prctl is None:
        return None
    zero = ctypes.c_ulong(0)
    return prctl(ctypes.c_int(option), arg, zero, zero, zero)


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); False if unavailable.

    A job that escapes its process group (setsid, double fork) is then re-parented to us when
    its parent dies, rather than to init, so reap_orphans() can still find and kill it.
    """
    global _subreaper_pid
    if _prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1)) == 0:
        _subreaper_pid = os.getpid()
        return True
    return False


_subreaper_pid: int | None = None  # this process, once it became a subreaper (forks are not)


def is_subreaper() -> bool:
    """Whether this process is a child subreaper."""
    if _subreaper_pid == os.getpid():
        return True
    value = ctypes.c_int(0)
    return _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(value)) == 0 and value.value != 0


def reap_orphans(job_id: str | None = None, *, every_child: bool = False) -> None:
    """SIGKILL and reap orphaned job processes that were re-parented to this subreaper.

    Only direct children are considered, so no pid can be recycled under us. A live child is
    killed only when its /proc environ carries QUEUECTL_JOB_ID (equal to `job_id` when given):
    every job process inherits it unless it rewrote its environment. With `every_child`, every
    live child is killed, marked or not: for a caller that starts no processes but jobs, between
    jobs (the worker), so that a job which escaped with `setsid` and a scrubbed environment is
    found too. Zombie children (whose environ can no longer be read) are all reaped: the worker
    runs one job at a time and starts no other processes, so any zombie child it has is an
    orphan. Does nothing when this process is not a subreaper, since then orphans go to init and
    every child of ours is tracked.
    """
    if is_subreaper():
        reap_children(job_id, kill=True, any_marker=job_id is None, every_child=every_child)


def kill_leftovers(worker_ids: Iterable[str], wait: float = 2.0) -> list[int]:
    """SIGKILL what is left of the jobs of workers that died on this host, and wait for it to go.

    A job runs in its own session, so it outlives a worker killed with SIGKILL; it must die
    before its job is rescued and run again, or the job would run in two places at once. Job
    processes are found by the WORKER_VAR their worker put in their environment (a process that
    rewrote its environment is not found here; see kill_orphans). Each is pinned with a pidfd
    before its environment is checked, so a recycled pid is never signalled, and stopped
    (SIGSTOP) at once with its whole process group (the job's): a stopped process cannot fork,
    and a signal to a group reaches a child forked at that moment too, so looking again until a
    look finds no new process converges even on a job that keeps forking new forkers. Then all
    of them are killed. Returns the pids killed.
    """
    wanted = {f"{WORKER_VAR}={w}".encode() for w in worker_ids}
    if not wanted or not os.path.isdir("/proc"):
        return []
    held: dict[int, int | None] = {}  # pid -> pidfd (None where pidfds are missing)
    groups: set[int] = set()  # their process groups, stopped whole: a fork cannot escape that
    ours = os.getpgid(0)
    try:
        for _ in range(_MAX_PASSES):
            found = [pid for pid in _marked(wanted) if pid not in held]
            for pid in found:
                fd = _pin(pid, wanted)
                if fd is False:
                    continue
                held[pid] = fd
                _send(pid, fd, signal.SIGSTOP)
                group = _group_of(pid)
                if group is not None and group != ours and group not in groups:
                    groups.add(group)
                    _killpg(group, signal.SIGSTOP)
            if not found:
                break
        for group in groups:
            _killpg(group, signal.SIGKILL)
        for pid, fd in held.items():
            _send(pid, fd, signal.SIGKILL)
        _wait_gone([fd for fd in held.values() if fd is not None], wait)
    finally:
        for fd in held.values():
            if fd is not None:
                os.close(fd)
    return list(held)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _killpg(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


_MAX_PASSES = 100


def _marked(wanted: set[bytes]) -> list[int]:
    me = os.getpid()
    return [int(name) for name in os.listdir("/proc")
            if name.isdigit() and int(name) != me and wanted.intersection(_environ(int(name)))]


def _pin(pid: int, wanted: set[bytes]):
    """A pidfd of `pid` if it is still a marked process (None without pidfds), else False."""
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        fd = None
    if not wanted.intersection(_environ(pid)):  # it exited, and maybe the pid was reused
        if fd is not None:
            os.close(fd)
        return False
    return fd


def _send(pid: int, fd: int | None, sig: int) -> None:
    try:
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_gone(fds: list[int], wait: float) -> None:
    """Wait up to `wait` seconds until every pidfd in `fds` says its process exited."""
    deadline = time.monotonic() + wait
    sel = selectors.DefaultSelector()
    try:
        for fd in fds:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                sel.unregister(key.fd)  # readable: the process has exited
    finally:
        sel.close()


def kill_orphans(keep: Iterable[int]) -> list[int]:
    """SIGKILL and reap this subreaper's children that are job processes orphaned by a worker
    that died: every child in another session than ours, except the pids in `keep`.

    The pool's supervisor is a subreaper, so when a worker dies, what its jobs left (a process
    that escaped with `setsid` and scrubbed its environment included) is re-parented here rather
    than to init. Jobs always run in sessions of their own, while the supervisor's own children
    (its workers, multiprocessing's helpers) share its session, so the session tells them apart.
    Returns the pids killed."""
    if not is_subreaper():
        return []
    keep = set(keep)
    mine = os.getsid(0)
    killed: list[int] = []
    for _ in range(8):  # killing one re-parents its children to us: look again
        doomed = []
        for pid in _child_pids():
            if pid in keep:
                continue
            fields = _stat_fields(pid)
            if fields is None or int(fields[3]) == mine:  # gone, or one of ours
                continue
            if fields[0] in (b"Z", b"X"):
                _reap(pid)
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
            doomed.append(pid)
        if not doomed:
            break
        killed += doomed
        _reap_all(doomed, time.monotonic() + 1.0)
    return killed


def reap_children(job_id: str | None, *, kill: bool, any_marker: bool = False,
                   every_child: bool = False) -> None:
    want = f"{MARKER_VAR}={job_id}".encode() if job_id is not None else None
    prefix = f"{MARKER_VAR}=".encode()
    for _ in range(8):  # killing an intermediate re-parents its children to us: look again
        doomed = []
        for pid in _child_pids():
            state = _proc_state(pid)
            if state is None:
                continue
            if state in ("Z", "X"):
                _reap(pid)
            elif kill:
                entries = [] if every_child else _environ(pid)
                if every_child or (any(e.startswith(prefix) for e in entries) if any_marker
                                   else want in entries):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except PermissionError:
                        continue  # a setuid program we may not signal
                    doomed.append(pid)
        if not doomed:
            return
        _reap_all(doomed, time.monotonic() + 1.0)


def _child_pids() -> list[int]:
    """This process's children. Orphans are re-parented to the subreaper's main thread, and
    a process with one thread has no other list to read, so that is one small read."""
    me = os.getpid()
    try:
        if threading.active_count() == 1 and threading.current_thread() is threading.main_thread():
            return _children_of(f"/proc/{me}/task/{me}/children")
        pids = []
        for tid in os.listdir(f"/proc/{me}/task"):
            pids.extend(_children_of(f"/proc/{me}/task/{tid}/children"))
        return pids
    except FileNotFoundError:
        pass  # no per-task children lists in this kernel: scan every process
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _proc_ppid(int(name)) == me:
            pids.append(int(name))
    return pids


def _children_of(path: str) -> list[int]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = b""
        while True:
            part = os.read(fd, 65536)
            if not part:
                return [int(p) for p in data.split()]
            data += part
    finally:
        os.close(fd)


def _stat_fields(pid: int) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(b")") + 2:].split()  # the command name may hold spaces and ')'


def _proc_state(pid: int) -> str | None:
    fields = _stat_fields(pid)
    return fields[0].decode() if fields else None


def _proc_ppid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []  # exited meanwhile, or not ours to read: not a job process we may kill


def _reap(pid: int) -> bool:
    """Reap a child if it has exited; True once it is gone."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # already reaped elsewhere
    return done != 0


def _reap_all(pids: list[int], until: float) -> None:
    """Reap killed children, waiting for them up to `until` (monotonic)."""
    pause = 0.0005
    while pids:
        pids = [p for p in pids if not _reap(p)]
        if not pids or time.monotonic() >= until:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
