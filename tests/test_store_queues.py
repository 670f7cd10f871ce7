"""The store contract for named queues: limits, slots, pause, defaults, the queues a worker
serves. Only the `Store` interface, so every backend runs these unchanged."""

from __future__ import annotations

import pytest

from queuectl.errors import Conflict, QueueNotFound
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.models import DEFAULT_QUEUE, JobState, NewJob
from queuectl.store.base import Store
from storehelp import expire
from transitions import RecordingStore

POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)
OK = Outcome(ok=True, exit_code=0)
FAIL = Outcome(ok=False, exit_code=1, error="exit code 1")
LEASE = 10.0
P, R, C, F, D = (JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED,
                 JobState.DEAD)


@pytest.fixture
def store(store):
    return RecordingStore(store)


def add(store: Store, now: float, *jobs: NewJob, max_retries: int = 3) -> list[str]:
    return store.enqueue(list(jobs), now=now, default_max_retries=max_retries,
                         default_cwd="/srv")


def job(queue: str | None, name: str, **fields) -> NewJob:
    return NewJob(command=f"run {name}", id=name, queue=queue, **fields)


def claim_all(store: Store, now: float, worker: str = "w1", queues=None) -> list[str]:
    got = []
    while (j := store.claim(worker, now=now, lease=LEASE, queues=queues)) is not None:
        got.append(j.id)
    return got


def test_a_job_without_a_queue_is_in_default_and_a_queue_exists_once_named(store, clock):
    assert store.queues() == []
    add(store, clock.now, job(None, "a"), job("encode", "b"))
    assert [q.name for q in store.queues()] == [DEFAULT_QUEUE, "encode"]
    assert store.get("a").queue == DEFAULT_QUEUE and store.get("b").queue == "encode"
    store.set_queue("gpu", now=clock.now, concurrency=4)
    gpu = store.queue("gpu")
    assert (gpu.concurrency, gpu.paused, gpu.total, gpu.created_at) == (4, False, 0, clock.now)
    with pytest.raises(QueueNotFound, match="'nope'"):
        store.queue("nope")


def test_the_limit_holds_and_each_running_job_holds_its_own_slot(store, clock):
    store.set_queue("encode", now=clock.now, concurrency=2)
    add(store, clock.now, *(job("encode", f"e{i}") for i in range(5)))
    first = [store.claim("w1", now=clock.now, lease=LEASE) for _ in range(3)]
    assert first[2] is None  # two at once, however many ask
    assert sorted(j.slot for j in first[:2]) == [0, 1]
    assert [store.runs(j.id)[0].slot for j in first[:2]] == [j.slot for j in first[:2]]
    store.finish(first[0], OK, now=clock.now, policy=POLICY)
    again = store.claim("w2", now=clock.now, lease=LEASE)
    assert again.slot == first[0].slot  # the freed slot, not a third one
    assert store.queue("encode").running == 2


def test_a_full_queue_does_not_hold_back_other_queues(store, clock):
    store.set_queue("encode", now=clock.now, concurrency=1)
    add(store, clock.now, *(job("encode", f"e{i}", priority=9) for i in range(3)),
        job("thumbs", "t1"), job(None, "d1"))
    got = claim_all(store, clock.now)
    assert got == ["e0", "t1", "d1"]  # one encode, then the others, not stuck behind encodes


def test_priority_orders_jobs_across_the_queues_served(store, clock):
    store.set_queue("gpu", now=clock.now, concurrency=3)
    add(store, clock.now, job("a", "a-low", priority=1), job("gpu", "g-mid", priority=5),
        job("b", "b-high", priority=9), job("gpu", "g-low", priority=0),
        job("a", "a-top", priority=10))
    assert claim_all(store, clock.now) == ["a-top", "b-high", "g-mid", "a-low", "g-low"]


def test_a_worker_serving_some_queues_takes_only_theirs(store, clock):
    store.set_queue("gpu", now=clock.now, concurrency=1)
    add(store, clock.now, job("a", "a1"), job("b", "b1", priority=5), job("gpu", "g1"),
        job("gpu", "g2"), job("c", "c1", priority=9))
    assert claim_all(store, clock.now, queues=["a", "gpu"]) == ["a1", "g1"]
    assert claim_all(store, clock.now, queues=["nothing-here"]) == []
    assert claim_all(store, clock.now) == ["c1", "b1"]


def test_pause_holds_on_every_claim_until_resumed_and_running_jobs_finish(store, clock):
    add(store, clock.now, job("deploy", "d1"), job("deploy", "d2"), job("other", "o1"))
    running = store.claim("w1", now=clock.now, lease=LEASE)
    assert running.id == "d1"
    paused = store.pause_queue("deploy")
    assert paused.paused and not paused.kill
    assert claim_all(store, clock.now) == ["o1"]
    assert claim_all(store, clock.now, queues=["deploy"]) == []
    orders = store.renew(running, now=clock.now, lease=LEASE)
    assert not orders.give_back  # a plain pause lets it finish
    store.finish(running, OK, now=clock.now, policy=POLICY)
    assert not store.resume_queue("deploy").paused
    assert claim_all(store, clock.now) == ["d2"]


def test_pause_with_kill_tells_running_jobs_to_go_back_uncounted(store, clock):
    store.set_queue("gpu", now=clock.now, concurrency=1)
    add(store, clock.now, job("gpu", "g1", max_retries=0))
    running = store.claim("w1", now=clock.now, lease=LEASE)
    assert store.pause_queue("gpu", kill=True).kill
    assert store.renew(running, now=clock.now, lease=LEASE).give_back
    assert store.orders(running).give_back
    store.finish(running, Outcome(ok=False, give_back=True), now=clock.now, policy=POLICY)
    back = store.get("g1")
    assert (back.state, back.tries, back.slot) == (P, 0, None)
    assert store.queue("gpu").running == 0
    store.resume_queue("gpu")
    assert store.claim("w1", now=clock.now, lease=LEASE).slot == 0


def test_a_lost_or_released_job_frees_its_slot(store, clock):
    store.register_worker("w1", 1, "h", clock.now)
    store.set_queue("gpu", now=clock.now, concurrency=1)
    add(store, clock.now, job("gpu", "g1"), job("gpu", "g2"), job("gpu", "g3"))
    a = store.claim("w1", now=clock.now, lease=LEASE)
    assert store.claim("w1", now=clock.now, lease=LEASE) is None
    assert expire(store, clock.now + LEASE + 1) == [a.id]
    b = store.claim("w1", now=clock.now + 100, lease=LEASE)
    assert b.slot == 0 and b.id != a.id
    assert store.release(b, now=clock.now + 100)
    c = store.claim("w1", now=clock.now + 100, lease=LEASE)
    assert c.id == b.id and c.slot == 0
    assert store.rescue_dead_workers(["w1"], now=clock.now + 100, policy=POLICY) == [c.id]
    assert store.claim("w2", now=clock.now + 100, lease=LEASE).slot == 0


def test_a_lower_limit_admits_nothing_until_below_it_and_unlimited_lifts_it(store, clock):
    add(store, clock.now, *(job("q", f"j{i}") for i in range(6)))
    store.set_queue("q", now=clock.now, concurrency=3)
    three = [store.claim("w1", now=clock.now, lease=LEASE) for _ in range(3)]
    store.set_queue("q", now=clock.now, concurrency=1)
    assert store.claim("w1", now=clock.now, lease=LEASE) is None
    store.finish(three[0], OK, now=clock.now, policy=POLICY)
    store.finish(three[1], OK, now=clock.now, policy=POLICY)
    assert store.claim("w1", now=clock.now, lease=LEASE) is None  # one still runs
    store.set_queue("q", now=clock.now, concurrency=None)
    assert len(claim_all(store, clock.now)) == 3
    assert store.queue("q").concurrency is None


def test_a_job_back_from_a_retry_or_the_dlq_keeps_to_its_queues_limit(store, clock):
    add(store, clock.now, job("q", "j1", max_retries=1), job("q", "j2"))
    first = store.claim("w1", now=clock.now, lease=LEASE)
    store.set_queue("q", now=clock.now, concurrency=1)  # while j1 runs
    store.finish(first, FAIL, now=clock.now, policy=POLICY)  # j1 waits for its retry
    later = clock.now + 10
    second = store.claim("w1", now=later, lease=LEASE)
    assert second is not None and second.slot == 0
    assert store.claim("w1", now=later, lease=LEASE) is None
    store.finish(second, FAIL if second.id == "j1" else OK, now=later, policy=POLICY)


def test_queue_defaults_apply_unless_the_job_says_otherwise(store, clock):
    store.set_queue("reports", now=clock.now, max_retries=7, timeout=60.0, priority=4,
                    backoff_base=5.0)
    add(store, clock.now, job("reports", "plain"),
        job("reports", "own", max_retries=1, timeout=5.0, priority=-2), job(None, "elsewhere"))
    plain, own, elsewhere = (store.get(i) for i in ("plain", "own", "elsewhere"))
    assert (plain.max_retries, plain.timeout, plain.priority) == (7, 60.0, 4)
    assert (own.max_retries, own.timeout, own.priority) == (1, 5.0, -2)
    assert (elsewhere.max_retries, elsewhere.timeout, elsewhere.priority) == (3, None, 0)
    j = store.claim("w1", now=clock.now, lease=LEASE)
    assert j.id == "plain"
    store.finish(j, FAIL, now=clock.now, policy=POLICY)
    assert store.get("plain").run_at == clock.now + 1  # retry 1 waits base ** 0 = 1 s
    j = store.claim("w1", now=clock.now + 1, lease=LEASE)
    store.finish(j, FAIL, now=clock.now + 1, policy=POLICY)
    assert store.get("plain").run_at == clock.now + 1 + 5.0  # retry 2: the queue's base 5


def test_a_queue_with_jobs_cannot_be_removed(store, clock):
    add(store, clock.now, job("old", "j1"))
    with pytest.raises(Conflict, match="still holds 1 job"):
        store.remove_queue("old")
    store.cancel(["j1"], now=clock.now)
    store.purge_dead()
    store.remove_queue("old")
    assert [q.name for q in store.queues()] == []
    with pytest.raises(QueueNotFound):
        store.remove_queue("old")
    with pytest.raises(QueueNotFound):
        store.pause_queue("old")


def test_counts_per_queue_follow_every_transition(store, clock):
    store.set_queue("b", now=clock.now, concurrency=1)
    add(store, clock.now, job("a", "a1", max_retries=0), job("a", "a2"), job("b", "b1"),
        job("b", "b2"))
    a1 = store.claim("w1", now=clock.now, lease=LEASE, queues=["a"])
    b1 = store.claim("w1", now=clock.now, lease=LEASE, queues=["b"])
    store.finish(a1, FAIL, now=clock.now, policy=POLICY)
    by_name = {q.name: {s: n for s, n in q.counts.items() if n} for q in store.queues()}
    assert by_name == {"a": {D: 1, P: 1}, "b": {R: 1, P: 1}}
    store.finish(b1, OK, now=clock.now, policy=POLICY)
    store.retry_dead(["a1"], now=clock.now)
    by_name = {q.name: {s: n for s, n in q.counts.items() if n} for q in store.queues()}
    assert by_name == {"a": {P: 2}, "b": {C: 1, P: 1}}
    assert store.status(clock.now, 30).counts[P] == 3


def test_list_filters_by_queue(store, clock):
    add(store, clock.now, job("a", "a1"), job("b", "b1", priority=3), job("a", "a2", priority=5))
    assert [j.id for j in store.list_jobs(queue="a")] == ["a2", "a1"]
    assert [j.id for j in store.list_jobs([P], queue="b")] == ["b1"]
    assert [j.id for j in store.list_jobs([P])] == ["a2", "b1", "a1"]
