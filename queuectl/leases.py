"""Judging other workers' leases on this process's monotonic clock.

A running job's lease is lapsed when this watcher has seen it unrenewed for a whole lease of
that job's own claim (the lease its worker renews by, not this worker's setting). Comparing
`lease_until` with this host's wall clock instead would rescue healthy jobs after a forward
clock step, and none for an hour after a step back of an hour.

Time in which this worker's own store calls failed or were held up (a server outage, a write
lock held by a big enqueue) does not count: whatever kept this worker waiting kept the other
workers' renewals waiting too, so every wait starts again once the store answers promptly.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, NamedTuple

from .models import Job
from .store.base import Lease


class _Seen(NamedTuple):
    lease: Lease
    since: float  # monotonic: when this lease was first seen as it is


class LeaseWatch:
    def __init__(self, default_lease: float, monotonic: Callable[[], float]) -> None:
        self.default_lease = default_lease  # for claims made by a queuectl that did not record one
        self.monotonic = monotonic
        self._seen: dict[str, _Seen] = {}
        self._held_up_at = -math.inf

    def held_up(self) -> None:
        """This worker's store calls failed or waited: start every wait again."""
        self._held_up_at = self.monotonic()

    def lapsed(self, running: Iterable[Job]) -> list[Lease]:
        """The leases among `running` that have gone unrenewed for a whole lease."""
        mono = self.monotonic()
        seen: dict[str, _Seen] = {}
        out = []
        for job in running:
            if job.token is None or job.lease_until is None:
                continue
            lease = Lease(job.id, job.token, job.lease_until)
            before = self._seen.get(job.id)
            if before is not None and before.lease == lease and before.since > self._held_up_at:
                since = before.since
            else:
                since = mono
            seen[job.id] = _Seen(lease, since)
            if mono - since >= (job.lease or self.default_lease):
                out.append(lease)
        self._seen = seen
        return out
