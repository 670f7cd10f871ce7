"""CPU time of processes themselves (user + system), never of their children: what a worker or
a bare loop spends to claim, start and record jobs, apart from what the jobs spend.

Our workers are read from outside (`/proc/<pid>/stat`, in clock ticks); the bare loops read
their own (`resource.getrusage(RUSAGE_SELF)`). Both are the kernel's utime + stime of every
thread of the process, without the children it waited for.
"""

from __future__ import annotations

import os
import resource
from typing import Iterable

from .procs import BenchError

_UTIME, _STIME = 11, 12  # fields 14 and 15 of /proc/<pid>/stat, counted after the ")"


def stat_ticks(stat: str) -> int:
    """utime + stime (clock ticks) from the text of a /proc/<pid>/stat. The command name is in
    parentheses and may hold spaces or ")": the fields are counted after the last ")"."""
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[_UTIME]) + int(fields[_STIME])


def available() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/stat")


def processes_seconds(pids: Iterable[int]) -> float:
    """CPU seconds the processes `pids` have used so far, summed (BenchError if one is gone)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                ticks += stat_ticks(f.read())
        except (OSError, IndexError, ValueError) as exc:
            raise BenchError(f"cannot read the CPU time of process {pid} ({exc})") from None
    return ticks / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds this process has used so far (its threads, not its children)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
