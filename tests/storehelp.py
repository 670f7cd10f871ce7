"""Helpers for tests that drive a store directly."""

from __future__ import annotations

from queuectl.lifecycle import RetryPolicy
from queuectl.models import JobState
from queuectl.store.base import Lease, Store

POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)


def expire(store: Store, now: float, policy: RetryPolicy = POLICY) -> list[str]:
    """Rescue the running jobs whose lease_until is before `now`, as a rescuer that watched
    them go unrenewed for their whole lease would."""
    leases = [Lease(j.id, j.token, j.lease_until)
              for j in store.list_jobs([JobState.RUNNING], limit=None) if j.lease_until < now]
    return store.rescue_lapsed(leases, now=now, policy=policy, max_wait=60)
