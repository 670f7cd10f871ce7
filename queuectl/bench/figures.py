"""Our own figures: drain throughput and the workers' CPU per job, dispatch latency (also with
a queue limit), bulk enqueue, one enqueue process.

Every measurement runs on a fresh store of its own (`stores.Fresh`: a temporary SQLite file or a
throwaway PostgreSQL schema), with real `queuectl` processes where a person would use them
(`worker start`, `enqueue`). Times written into the store come from the store's clock
(`Store.now()`, the server's for PostgreSQL), as the workers write theirs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

from ..models import JobState, NewJob
from ..store import open_store
from ..store.base import Store
from . import cpu
from .procs import BenchError, WorkerProcesses, child_env, queuectl_argv, timed_run, wait_until
from .reference import read_stamp
from .stores import Fresh

FINISHED = (JobState.COMPLETED, JobState.DEAD)


def _finished(store: Store) -> int:
    counts = store.status(store.now(), worker_timeout=60).counts
    return sum(counts.get(s, 0) for s in FINISHED)


def _last_finish(store: Store) -> float:
    times = [j.finished_at or j.updated_at
             for state in FINISHED for j in store.list_jobs([state], limit=1)]
    return max(times)


@dataclass(frozen=True)
class Drain:
    rate: float  # jobs/s
    seconds: float
    dead: int
    cpu_per_job: float | None  # CPU seconds of the worker processes themselves, per job


def drain(fresh: Fresh, jobs: int, workers: int) -> Drain:
    """`worker start --count W` idle on an empty store; then N `true` jobs are enqueued in one
    transaction. Timed from the enqueue's return (commit + doorbell) to the last job's
    `finished_at` as its worker recorded it, so polling for the end costs no precision.
    The workers' own CPU time (not their jobs') is read before the enqueue and once the last
    job is done, before they are stopped (None where /proc cannot tell)."""
    db, log = fresh.db, os.path.join(fresh.dir, "workers.log")
    store = open_store(db)  # durability full, as the CLI's enqueue commits
    try:
        with WorkerProcesses(db, store, workers, log) as procs:
            pids = procs.pids() if cpu.available() else []
            cpu_before = cpu.processes_seconds(pids)
            store.enqueue([NewJob(command="true") for _ in range(jobs)], now=store.now(),
                          default_max_retries=0, default_cwd=fresh.dir)
            start = store.now()
            wait_until(lambda: _finished(store) >= jobs, max(120.0, jobs / 20),
                       f"{jobs} jobs to be drained", interval=0.2)
            used = cpu.processes_seconds(pids) - cpu_before
            end = _last_finish(store)
        dead = store.status(store.now(), worker_timeout=60).counts.get(JobState.DEAD, 0)
    finally:
        store.close()
    if dead:
        raise BenchError(f"{dead} of {jobs} `true` jobs failed during the drain; see {log}")
    seconds = end - start
    return Drain(rate=jobs / seconds, seconds=seconds, dead=dead,
                 cpu_per_job=used / jobs if pids else None)


class Step(NamedTuple):
    """Dispatches after `idle` seconds idle, `samples` times; with `limit`, each job goes to a
    queue of its own with that concurrency limit (a slot free), so the limit is in force."""

    idle: float
    samples: int
    limit: int | None = None


LIMITED_QUEUE = "bench-limited"


def dispatch_latency(fresh: Fresh, plan: Sequence[Step],
                     progress: Callable[[str], None]) -> dict[Step, list[float]]:
    """Milliseconds from an enqueue's return to its job's `date +%s%N` on one idle worker,
    for each step of `plan`: the worker has been idle that long each time."""
    db, stamps = fresh.db, fresh.dir
    store = open_store(db)
    found: dict[Step, list[float]] = {}
    try:
        with WorkerProcesses(db, store, 1, os.path.join(fresh.dir, "worker.log")):
            for n, step in enumerate(plan):
                queue = None
                if step.limit is not None:
                    queue = LIMITED_QUEUE
                    store.set_queue(queue, now=store.now(), concurrency=step.limit)
                limited = f", queue limit {step.limit}" if queue else ""
                progress(f"dispatch latency after {step.idle:g} s idle{limited}: "
                         f"{step.samples} samples")
                found[step] = []
                for i in range(step.samples):
                    stamp = os.path.join(stamps, f"stamp-{n}-{i}")
                    time.sleep(step.idle)
                    [job_id] = store.enqueue([NewJob(command=f"date +%s%N > {stamp}",
                                                     queue=queue)],
                                             now=store.now(), default_max_retries=0,
                                             default_cwd=stamps)
                    committed = time.time_ns()
                    started = wait_until(lambda: read_stamp(stamp), 30,
                                         "a dispatched job to start", interval=0.002)
                    wait_until(lambda: store.get(job_id).state in FINISHED, 30,
                               "a dispatched job to finish", interval=0.005)
                    found[step].append((started - committed) / 1e6)
    finally:
        store.close()
    return found


def bulk_enqueue(fresh: Fresh, jobs: int) -> float:
    """Jobs/s of one `queuectl enqueue --file` of `jobs` JSON lines, wall time of the process."""
    env = child_env(fresh.db)
    timed_run(queuectl_argv() + ["init"], env=env)
    path = os.path.join(fresh.dir, "jobs.jsonl")
    with open(path, "w") as f:
        f.write('{"command": "true"}\n' * jobs)
    seconds = timed_run(queuectl_argv() + ["enqueue", "--file", path], env=env, cwd=fresh.dir)
    store = open_store(fresh.db)
    try:
        stored = store.status(store.now(), 60).counts.get(JobState.PENDING, 0)
    finally:
        store.close()
    if stored != jobs:
        raise BenchError(f"bulk enqueue stored {stored} of {jobs} jobs")
    return jobs / seconds


def enqueue_process(fresh: Fresh, runs: int, references: Sequence[Callable[[], float]]
                    ) -> tuple[list[float], list[list[float]]]:
    """Wall seconds of `runs` single `queuectl enqueue --command true` processes, and of `runs`
    calls of each of `references`, interleaved so all see the same machine."""
    env = child_env(fresh.db)
    timed_run(queuectl_argv() + ["init"], env=env)
    ours: list[float] = []
    refs: list[list[float]] = [[] for _ in references]
    for _ in range(runs):
        ours.append(timed_run(queuectl_argv() + ["enqueue", "--command", "true"], env=env,
                              cwd=fresh.dir))
        for times, reference in zip(refs, references):
            times.append(reference())
    return ours, refs
