"""A store of many queues, as a busy deployment has them: 100 queues, a tenth of them with a
concurrency limit that is full (jobs running at the limit), a tenth paused, and the waiting jobs
spread evenly over all of them. Built through the Store API (`queue set`, `queue pause`, enqueue
and claim), so the claims measured on it see the gates the honest way.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Callable

from ..store import open_store
from . import bigstore
from .procs import BenchError

HOLDER = "bench-holder"  # the registered worker whose running jobs fill the limited queues
HOLD_LEASE = 24 * 3600.0  # never lapses while the figures are taken


@dataclass(frozen=True)
class Layout:
    names: tuple[str, ...]
    limited: tuple[str, ...]  # concurrency `limit`, every slot taken by a running job
    paused: tuple[str, ...]
    limit: int
    served: tuple[str, ...]  # what a worker serving a few queues serves: one of each kind

    @property
    def open(self) -> tuple[str, ...]:
        gated = set(self.limited) | set(self.paused)
        return tuple(n for n in self.names if n not in gated)

    @property
    def claimable(self) -> str:
        """The served queue the claims take jobs from (the others are full or paused)."""
        return next(n for n in self.served if n in self.open)


def layout(count: int = 100, limit: int = 2) -> Layout:
    """`count` queues q00, q01...: every tenth from q00 limited, every tenth from q05 paused; the
    few-queue worker serves one open, one full and one paused queue."""
    names = tuple(f"q{i:0{len(str(count - 1))}d}" for i in range(count))
    limited, paused = names[0::10], names[5::10]
    return Layout(names, limited, paused, limit, (names[1], limited[0], paused[0]))


def build(db: str, waiting: int, extra: int, cwd: str, plan: Layout,
          progress: Callable[[str], None]) -> None:
    """Make the queues of `plan`, add `waiting` `true` jobs spread evenly over them (and `extra`
    more to the served open queue, so the few-queue claims cannot run out), and as many jobs as
    the limited queues have slots, which HOLDER claims: `waiting + extra` jobs wait."""
    store = open_store(db, durability="normal")
    try:
        now = store.now()
        for name in plan.names:
            store.set_queue(name, now=now, concurrency=plan.limit if name in plan.limited
                            else None)
        for name in plan.paused:
            store.pause_queue(name)
        store.register_worker(HOLDER, os.getpid(), socket.gethostname(), now)
    finally:
        store.close()
    bigstore.fill(db, waiting, cwd, progress, plan.names)
    bigstore.fill(db, extra, cwd, progress, (plan.claimable,))
    bigstore.fill(db, plan.limit * len(plan.limited), cwd, progress, plan.limited)
    store = open_store(db, durability="normal")
    try:
        for name in plan.limited:
            for _ in range(plan.limit):
                if store.claim(HOLDER, now=store.now(), lease=HOLD_LEASE, queues=[name]) is None:
                    raise BenchError(f"queue {name} had no job to fill its limit")
    finally:
        store.close()
