"""Recording the states of every job around each call of a store, and checking each change
against lifecycle's transition table."""

from __future__ import annotations

from typing import Callable

from queuectl.lifecycle import BORN, DELETABLE, TRANSITIONS
from queuectl.models import JobState
from queuectl.store.base import Store

# Calls that only read: nothing to record around them.
READS = frozenset({"get", "list_jobs", "runs", "output", "status", "workers", "next_due",
                   "config_items", "orders", "now", "doorbell", "verify", "close"})


class RecordingStore:
    """Wraps a store; every other call is bracketed by two looks at every job's state. A change
    that lifecycle.TRANSITIONS does not list (or a job born in a state other than BORN, or a
    deletion of one not in DELETABLE) fails the call with an AssertionError."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.seen: set[tuple[JobState | None, JobState | None]] = set()

    def _states(self) -> dict[str, JobState]:
        return {j.id: j.state for j in self._store.list_jobs(limit=None)}

    def __getattr__(self, name: str):
        value = getattr(self._store, name)
        if name in READS or name.startswith("_") or not callable(value):
            return value
        return self._recorded(name, value)

    def _recorded(self, name: str, call: Callable):
        def recorded(*args, **kwargs):
            before = self._states()
            try:
                return call(*args, **kwargs)
            finally:
                self._check(name, before, self._states())
        return recorded

    def _check(self, name: str, before: dict, after: dict) -> None:
        for job_id in before.keys() | after.keys():
            old, new = before.get(job_id), after.get(job_id)
            if old == new:
                continue
            self.seen.add((old, new))
            if old is None:
                assert new in BORN, f"{name} made job {job_id!r} {new.value}"
            elif new is None:
                assert old in DELETABLE, f"{name} deleted {old.value} job {job_id!r}"
            else:
                assert new in TRANSITIONS[old], (
                    f"{name} moved job {job_id!r} from {old.value} to {new.value}, a "
                    "transition lifecycle.TRANSITIONS does not list")
