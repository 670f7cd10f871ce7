"""`queuectl wait`: block until jobs end, woken by the store's doorbell."""

from __future__ import annotations

import sys
import time
from typing import Callable, Sequence

from ..errors import QueueError
from ..lifecycle import never_runs, why_blocked
from ..models import JobState
from ..sanitize import one_line
from ..store.base import Store

NOT_ALL_COMPLETED = 5  # a job is dead, or can never run
TIMED_OUT = 6
FALLBACK = 0.5  # seconds between looks when the store cannot be watched
ENDED = (JobState.COMPLETED, JobState.DEAD)
UNFINISHED = (JobState.PENDING, JobState.FAILED, JobState.RUNNING)


def _watched(store: Store, ids: Sequence[str] | None, queue: str | None) -> list[str]:
    if ids:
        wanted = list(dict.fromkeys(ids))
        for job_id in wanted:
            store.get(job_id)  # JobNotFound for an unknown one, before any waiting
        return wanted
    if queue is not None:
        store.queue(queue)
    return [j.id for j in store.list_jobs(UNFINISHED, limit=None, queue=queue)]


def _stuck(store: Store, blocked: Sequence[str]) -> dict[str, str]:
    """The blocked jobs among `blocked` that nothing will free by itself, with why: they wait,
    directly or through other waiting jobs, for a dead or deleted job."""
    waits: dict[str, list] = {}
    todo = list(blocked)
    while todo and len(waits) < 100_000:
        found = store.waits_for([j for j in todo if j not in waits])
        for job_id in todo:
            waits.setdefault(job_id, found.get(job_id, []))
        todo = list({d.after for deps in found.values() for d in deps
                     if d.state is JobState.PENDING and d.after not in waits})
    stuck: dict[str, str] = {}
    changed = True
    while changed:  # a fixpoint: stuck when a dependency never runs or is stuck itself
        changed = False
        for job_id, deps in waits.items():
            if job_id not in stuck and any(never_runs(d) or d.after in stuck for d in deps):
                stuck[job_id] = why_blocked(deps)
                changed = True
    return {j: stuck[j] for j in blocked if j in stuck}


def run_wait(store: Store, *, ids: Sequence[str] | None, queue: str | None,
             limit: float | None, as_json: bool, emit: Callable) -> int:
    """Wait, showing progress on a terminal; the exit code (0, NOT_ALL_COMPLETED, TIMED_OUT)."""
    watched = _watched(store, ids, queue)
    deadline = None if limit is None else time.monotonic() + limit
    progress = sys.stderr.isatty()
    try:
        bell = store.doorbell(everything=True)
    except (OSError, QueueError):
        bell = None  # looks every FALLBACK seconds instead
    states: dict[str, JobState] = {}
    stuck: dict[str, str] = {}
    try:
        while True:
            if bell is not None:
                bell.clear()
            for job_id in [j for j in watched if states.get(j) not in ENDED]:
                states[job_id] = store.get(job_id).state
            stuck = _stuck(store, [j for j in watched if states[j] is JobState.PENDING
                                   and store.get(j).blocked])
            left = [j for j in watched if states[j] not in ENDED and j not in stuck]
            if progress:
                done = len(watched) - len(left) - len(stuck)
                failed = sum(states[j] is JobState.DEAD for j in watched)
                sys.stderr.write(f"\r{done} of {len(watched)} done, {failed} dead, "
                                 f"{len(stuck)} can never run ")
                sys.stderr.flush()
            if not left:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            wait = FALLBACK if bell is None else 5.0
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            if bell is not None:
                bell.wait(wait)
            else:
                time.sleep(wait)
    finally:
        if bell is not None:
            bell.close()
        if progress:
            sys.stderr.write("\n")
    return _report(watched, states, stuck, timed_out=bool(left), limit=limit, as_json=as_json,
                   emit=emit)


def _report(watched, states, stuck, *, timed_out: bool, limit, as_json: bool, emit) -> int:
    if as_json:
        emit([{"id": j, "state": states[j].value,
               "never_runs": j in stuck, "waits_for": stuck.get(j)} for j in watched])
    left = [j for j in watched if states[j] not in ENDED and j not in stuck]
    if timed_out and left:
        print(f"error: still waiting after {limit:g}s: {len(left)} of {len(watched)} jobs have "
              f"not ended (e.g. {one_line(left[0], 40)})", file=sys.stderr)
        return TIMED_OUT
    dead = [j for j in watched if states[j] is JobState.DEAD]
    if dead or stuck:
        named = [f"{one_line(j, 40)} (dead)" for j in dead[:5]]
        named += [f"{one_line(j, 40)} (can never run: {one_line(why, 80)})"
                  for j, why in list(stuck.items())[:5]]
        print(f"error: {len(dead) + len(stuck)} of {len(watched)} jobs did not complete: "
              + "; ".join(named), file=sys.stderr)
        return NOT_ALL_COMPLETED
    return 0
