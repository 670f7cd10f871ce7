"""Named queues under fire: the limit holds across pools and hosts while workers are killed,
each run gets a slot no overlapping run of its queue holds, pause and resume hold everywhere."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

import invariants
from invariants import check, jobs, runs, start_pool, stop_pool, worker_pids
from procs import cli, env_for, wait_for

pytestmark = pytest.mark.slow

LIMITS = {"encode": 2, "gpu": 4, "io": 1}


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("pg_url")
    return str(tmp_path / "q.db")


class Sampler(threading.Thread):
    """Reads the store every few milliseconds (each read one consistent snapshot): keeps the
    most running jobs seen per queue, and any two running jobs seen holding one slot."""

    def __init__(self, db) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.most: dict[str, int] = {}
        self.shared: list = []
        self.samples = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with invariants.reader(self.db) as r:
                rows = r.all("SELECT queue, slot FROM jobs WHERE state = 'running'")
            seen: dict[str, int] = {}
            for queue, slot in rows:
                seen[queue] = seen.get(queue, 0) + 1
            for queue, n in seen.items():
                self.most[queue] = max(self.most.get(queue, 0), n)
            slots = [(q, s) for q, s in rows if s is not None]
            if len(set(slots)) != len(slots):
                self.shared.append(rows)
            self.samples += 1
            time.sleep(0.003)


SLACK = 0.1


def shrunk(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [(start + SLACK, end) for start, end in intervals if end - start > SLACK]


def overlaps(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that hold at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda x: (x[0], x[1]))
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_limits_hold_across_pools_and_hosts_while_workers_are_killed(db, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    for queue, limit in LIMITS.items():
        assert cli(db, "queue", "set", queue, "--concurrency", str(limit)).returncode == 0
    rng = random.Random(7)
    specs = []
    for queue, n in (("encode", 30), ("gpu", 40), ("io", 15), ("default", 60)):
        for i in range(n):
            pause = rng.choice(("0.2", "0.3", "0.5"))
            specs.append({"queue": queue, "max_retries": 5, "command": (
                f'echo "${{QUEUECTL_SLOT:--}}" > {marks}/$QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT; '
                f"sleep {pause}")})
    ids = invariants.enqueue_many(db, specs, tmp_path)
    hosts = ["host-a", "host-b", "host-a"] if invariants.is_postgres(db) else [None] * 3
    pools = [start_pool(db, "--count", "3",
                        env=env_for(db, **({"QUEUECTL_HOST": h} if h else {})))
             for h in hosts]
    sampler = Sampler(db)
    sampler.start()
    killed = 0
    try:
        deadline = time.monotonic() + 240
        while any(j["state"] != "completed" for j in jobs(db).values()):
            assert time.monotonic() < deadline, "the drain did not finish"
            time.sleep(1.0)
            if killed < 6:
                pids = list(worker_pids(db).values())
                if pids:
                    try:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
    finally:
        sampler.stop.set()
        sampler.join(5)
        for pool in pools:
            stop_pool(pool)
    assert sampler.samples > 100 and killed >= 3
    assert not sampler.shared, sampler.shared[:3]
    for queue, limit in LIMITS.items():
        assert 1 <= sampler.most.get(queue, 0) <= limit, (queue, sampler.most)
    assert any(sampler.most[q] == limit for q, limit in LIMITS.items())  # limits were reached
    history = {job_id: runs(db, job_id) for job_id in ids}
    queue_of = {job_id: j["queue"] for job_id, j in jobs(db).items()}
    lost = 0
    by_slot: dict[tuple[str, int], list[tuple[float, float]]] = {}
    by_queue: dict[str, list[tuple[float, float]]] = {}
    for job_id, job_runs in history.items():
        queue = queue_of[job_id]
        for run in job_runs:
            lost += run["outcome"] == "lost"
            interval = (run["started_at"], run["finished_at"])
            by_queue.setdefault(queue, []).append(interval)
            if queue in LIMITS:
                assert run["slot"] is not None and 0 <= run["slot"] < LIMITS[queue], run
                by_slot.setdefault((queue, run["slot"]), []).append(interval)
                mark = marks / f"{job_id}.{run['attempt']}"
                if mark.exists():  # (a run killed before its first line has none)
                    assert mark.read_text().strip() == str(run["slot"]), (job_id, run)
            else:
                assert run["slot"] is None
                assert (marks / f"{job_id}.{run['attempt']}").read_text().strip() in ("-", "")
    assert lost >= 1  # workers died mid-job and their jobs were rescued
    # Each worker reads the clock just before its transaction, so a run's recorded start can
    # precede the recorded end of the run it waited for (the store's lock, the server's rows)
    # by that wait: the runs are compared with their starts moved later by SLACK.
    for key, intervals in by_slot.items():
        assert overlaps(shrunk(intervals)) <= 1, key  # no two overlapping runs share a slot
    for queue, limit in LIMITS.items():
        assert overlaps(shrunk(by_queue[queue])) <= limit, queue
    check(db, ids)


def test_pause_resume_and_pause_kill_with_running_jobs(db, tmp_path):
    marks = tmp_path / "marks"
    assert cli(db, "queue", "set", "deploy", "--concurrency", "1").returncode == 0
    first, second = invariants.enqueue_many(db, [
        {"queue": "deploy", "max_retries": 0, "command":
            f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT >> {marks}; sleep 2"},
        {"queue": "deploy", "max_retries": 0, "command":
            f"echo $QUEUECTL_JOB_ID.$QUEUECTL_ATTEMPT >> {marks}; sleep 60"}], tmp_path)
    [other] = invariants.enqueue_many(db, [{"command": "sleep 3"}], tmp_path)
    pool = start_pool(db, "--count", "2")
    try:
        wait_for(lambda: invariants.state_of(db, first) == "running", what="the first deploy")
        done = cli(db, "queue", "pause", "deploy")
        assert done.returncode == 0 and "1 running job finish first" in done.stderr
        wait_for(lambda: invariants.state_of(db, first) == "completed", timeout=15,
                 what="the running deploy finishes")
        time.sleep(1.5)
        assert invariants.state_of(db, second) == "pending"  # paused: not started
        assert invariants.state_of(db, other) in ("running", "completed")  # others go on
        assert cli(db, "queue", "resume", "deploy").returncode == 0
        wait_for(lambda: invariants.state_of(db, second) == "running", what="resumed")
        done = cli(db, "queue", "pause", "deploy", "--kill")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: invariants.state_of(db, second) == "pending", timeout=15,
                 what="the killed deploy given back")
        assert jobs(db)[second]["attempts"] == 0  # uncounted: max_retries 0 did not bury it
        assert runs(db, second)[-1]["outcome"] == "interrupted"
    finally:
        stop_pool(pool)
    # Paused survives a restart: a new pool starts nothing of it.
    pool = start_pool(db, "--count", "1")
    try:
        time.sleep(2.0)
        assert invariants.state_of(db, second) == "pending"
        listed = {q["name"]: q for q in invariants.show_queues(db)}
        assert listed["deploy"]["paused"] is True
    finally:
        stop_pool(pool)
    assert marks.read_text().split() == [f"{first}.1", f"{second}.1"]
    check(db, [first, second, other])


def test_a_due_job_that_cannot_start_does_not_keep_an_idle_worker_busy(db, tmp_path):
    """A due job in a paused (or full) queue is no reason to look again and again: the worker
    sleeps until something rings (here it must not spin for the 3 s it is watched)."""
    invariants.enqueue_many(db, [{"queue": "held", "command": "true"}], tmp_path)
    assert cli(db, "queue", "pause", "held").returncode == 0
    pool = start_pool(db, "--count", "1")
    try:
        pid = wait_for(lambda: next(iter(worker_pids(db).values()), None), what="a worker")
        time.sleep(1.0)
        before = _cpu_seconds(pid)
        time.sleep(3.0)
        used = _cpu_seconds(pid) - before
    finally:
        stop_pool(pool)
    assert used < 0.3, used  # a loop looking at once again would use about 3 s


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
