"""Seeding stores for the demo, the screenshots and the tests.

`seed_demo` enqueues real commands for a running pool to work through. `seed_showcase` writes
a fixed picture of every state (runs simulated through the Store API with a given `now`), so
tests and screenshots are deterministic without running anything. Both have the same named
queues beside the default one: `encode` (at most 2 jobs at once), `gpu` (at most 4, each job
on its slot: QUEUECTL_SLOT) and `deploy`, paused, its job waiting until it is resumed.
"""

from __future__ import annotations

import os
import tempfile

from .models import NewJob
from .store.base import Outcome, RetryPolicy, Store

STDOUT, STDERR = 1, 2
LEASE = 15.0
POLICY = RetryPolicy(base=2.0, cap=3600.0, jitter=0.0)


def _cwd(store: Store) -> str:
    directory = os.path.dirname(store.location)
    return directory if os.path.isdir(directory) else tempfile.gettempdir()


def seed_queues(store: Store, now: float) -> None:
    """The named queues of the demo and the showcase (each pauses `deploy` once its jobs are
    in)."""
    store.set_queue("encode", now=now, concurrency=2, max_retries=5)
    store.set_queue("gpu", now=now, concurrency=4, timeout=4 * 3600.0)
    store.set_queue("deploy", now=now, max_retries=0)


def seed_demo(store: Store, now: float) -> list[str]:
    """A realistic mix for a live pool: quick jobs, slow ones, one that fails its way into the
    dead letter queue, a delayed one, one with colourful output and stderr; encodes two at a
    time, training runs each on its GPU slot, and a deploy held by its paused queue."""
    seed_queues(store, now)
    jobs = [NewJob(command=f"echo 'quick job {n}: hello'", id=f"quick-{n}") for n in range(1, 7)]
    jobs += [
        NewJob(command="sleep 5; echo 'slept 5s'", id="slow-5s"),
        NewJob(command="for i in $(seq 1 12); do echo \"step $i/12\"; sleep 1; done",
               id="progress-12s", priority=1),
        NewJob(command="sleep 8; echo 'slept 8s'", id="slow-8s"),
        NewJob(command="sh -c 'echo trying; echo \"no such host: db.internal\" >&2; exit 3'",
               id="flaky-deploy", max_retries=2),
        NewJob(command="echo 'I waited 20 seconds to run'", id="delayed-20s", delay=20),
        NewJob(command="printf '\\033[32mgreen\\033[0m and \\033[1mbold\\033[0m text\\n'; "
                       "echo '[bold]markup stays literal[/bold]'; echo 'a warning' >&2",
               id="colourful", priority=2),
        NewJob(command="seq 1 3000", id="long-output"),
        NewJob(command="sleep 30", id="times-out", timeout=3, max_retries=1),
        NewJob(command="sleep 600", id="cancel-me"),
    ]
    jobs += [NewJob(command=f"echo \"encoding clip {n} (slot $QUEUECTL_SLOT)\"; sleep 4; "
                            f"echo 'clip {n} encoded'", id=f"encode-clip-{n}", queue="encode")
             for n in range(1, 5)]
    jobs += [NewJob(command="echo \"training on GPU $QUEUECTL_SLOT\"; for e in 1 2 3 4 5; do "
                            "echo \"epoch $e/5\"; sleep 1; done", id=f"train-{n}", queue="gpu")
             for n in range(1, 4)]
    jobs.append(NewJob(command="echo 'deploying web v2.4.1'", id="deploy-web", queue="deploy"))
    ids = store.enqueue(jobs, now=now, default_max_retries=3, default_cwd=_cwd(store))
    store.pause_queue("deploy")
    return ids


TRICKLE = (
    ("report", "echo 'building report {n}'; sleep 2; echo 'report {n} done'", {}),
    ("thumbs", "for i in 1 2 3; do echo \"thumbnail $i of batch {n}\"; sleep 0.5; done",
     {"queue": "encode"}),
    ("notify", "echo 'notified user {n}'", {}),
    ("sync", "echo 'syncing {n}'; [ $(({n} % 3)) -ne 0 ] || {{ echo 'remote hung up' >&2; exit 1; }}",
     {"max_retries": 1}),
)


def trickle_job(n: int) -> NewJob:
    """The n-th job of the demo's steady trickle: reports, thumbnails (in `encode`),
    notifications, and a sync that fails now and then (retried once, so some land in the
    DLQ)."""
    name, command, extra = TRICKLE[n % len(TRICKLE)]
    return NewJob(command=command.format(n=n), id=f"{name}-{n}", **extra)


def _simulate(store: Store, job_id: str, worker: str, start: float, end: float | None,
              output: list[tuple[int, bytes]], exit_code: int = 0, error: str | None = None):
    """Claim `job_id` at `start` and, unless `end` is None, finish it at `end`."""
    job = store.claim(worker, now=start, lease=LEASE)
    assert job is not None and job.id == job_id, (job, job_id)
    if end is None:
        store.renew(job, now=start, lease=1e9, head=output)
        return job
    outcome = Outcome(ok=exit_code == 0, exit_code=exit_code, error=error)
    store.finish(job, outcome, now=end, policy=POLICY, head=output)
    return job


def _one(store: Store, now: float, job: NewJob) -> str:
    return store.enqueue([job], now=now, default_max_retries=3, default_cwd="/srv/app")[0]


def seed_showcase(store: Store, now: float) -> None:
    """Jobs in every state as of `now`, with output, two workers, a DLQ walk, and the named
    queues (a training run on its GPU slot, encodes waiting, a deploy held by its paused
    queue)."""
    seed_queues(store, now - 600)
    w1, w2 = "w-3f9a1c", "w-7b2e04"
    store.register_worker(w1, 4101, "build-01", now - 600)
    store.register_worker(w2, 4102, "build-01", now - 600)
    t = now - 300
    completed = [
        ("thumbs-0413", "python make_thumbs.py --batch 413", 7.2,
         [(STDOUT, b"resized 120 images\nwrote thumbs/0413.tar\n")]),
        ("report-daily", "./bin/report --day 2024-05-01 --format pdf", 41.0,
         [(STDOUT, b"collecting 14 sources\nrendering 23 pages\nreport.pdf (2.1 MB)\n")]),
        ("email-digest", "send-digest --list weekly", 2.4, [(STDOUT, b"queued 1,204 emails\n")]),
        ("backup-db", "pg_dump app | gzip > /backups/app.sql.gz", 93.0, []),
        ("colourful", "printf '\\033[32mgreen\\033[0m'; echo warn >&2", 0.3,
         [(STDOUT, b"\x1b[32mgreen\x1b[0m and \x1b[1mbold\x1b[0m text\n"),
          (STDERR, b"a warning on stderr\n"), (STDOUT, b"[bold]markup stays literal[/bold]\n")]),
    ]
    for job_id, command, took, output in completed:
        queue = "encode" if job_id.startswith("thumbs-") else None
        _one(store, t, NewJob(command=command, id=job_id, queue=queue))
        _simulate(store, job_id, w1, t, t + took, output)
        t += took + 3
    # A job that fails each attempt until it lands in the dead letter queue.
    start = now - 200
    _one(store, start, NewJob(command="sh -c 'echo trying; exit 3'", id="flaky-deploy",
                              max_retries=2, queue="deploy"))
    for attempt, wait in enumerate((1.0, 2.0, None), 1):
        _simulate(store, "flaky-deploy", w2, start, start + 0.4,
                  [(STDOUT, b"trying\n"),
                   (STDERR, f"attempt {attempt}: no such host: db.internal\n".encode())],
                  exit_code=3, error="exit code 3")
        if wait is not None:
            start += 0.4 + wait + 0.1
    _one(store, now - 120, NewJob(command="curl -fsS https://example.invalid/hook", id="webhook-17",
                                  max_retries=0))
    _simulate(store, "webhook-17", w2, now - 120, now - 119,
              [(STDERR, b"curl: (6) Could not resolve host: example.invalid\n")],
              exit_code=6, error="exit code 6")
    _one(store, now - 90, NewJob(command="sleep 600", id="stuck-export"))
    store.cancel(["stuck-export"], now=now - 60)
    # Waiting to retry: failed once, next attempt in 3 seconds.
    _one(store, now - 30, NewJob(command="./sync-inventory --shop eu", id="sync-eu",
                                 max_retries=3))
    for start, end in ((now - 25, now - 24), (now - 22, now - 20), (now - 15, now - 1)):
        _simulate(store, "sync-eu", w1, start, end,
                  [(STDERR, b"HTTP 503 from upstream, giving up this attempt\n")],
                  exit_code=1, error="exit code 1")
    # Running right now, with output so far.
    _one(store, now - 75, NewJob(command="python train.py --epochs 20", id="train-model",
                                 priority=5, queue="gpu"))
    _simulate(store, "train-model", w1, now - 72, None,
              [(STDOUT, "".join(f"epoch {e}/20  loss={1.0 / e:.4f}\n" for e in range(1, 8))
                .encode())])
    _one(store, now - 12, NewJob(command="rsync -a media/ cdn:/media/", id="sync-media"))
    _simulate(store, "sync-media", w2, now - 11, None,
              [(STDOUT, b"sending incremental file list\n"), (STDERR, b"skipping socket\n")])
    # Waiting: ready ones in priority order, and delayed ones.
    for n, (job_id, command, priority, queue) in enumerate((
            ("resize-0414", "python make_thumbs.py --batch 414", 0, "encode"),
            ("resize-0415", "python make_thumbs.py --batch 415", 0, "encode"),
            ("invoice-run", "./bin/invoices --month 2024-04", 10, None),
            ("cleanup-tmp", "find /tmp/app -mtime +7 -delete", -5, None))):
        _one(store, now - 30 + n, NewJob(command=command, id=job_id, priority=priority,
                                         queue=queue))
    _one(store, now - 8, NewJob(command="./deploy.sh web --tag v2.4.1", id="release-web",
                                queue="deploy"))
    _one(store, now - 5, NewJob(command="./bin/report --weekly", id="weekly-report",
                                delay=3600 + 5))
    _one(store, now - 2, NewJob(command="echo 'I waited 20 seconds to run'", id="delayed-20s",
                                delay=22))
    store.pause_queue("deploy")
    store.heartbeat(w1, now - 1)
    store.heartbeat(w2, now - 2)
