"""The store contract for workflows: dependencies, unique keys, editing one job, env and cwd,
on-lost. Only the `Store` interface, so every backend runs these unchanged."""

from __future__ import annotations

import pytest

from queuectl.errors import Conflict, InvalidInput, JobNotFound
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.models import JobState, NewJob
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


def add(store: Store, now: float, *jobs: NewJob, **kw):
    return store.enqueue(list(jobs), now=now, default_max_retries=0, default_cwd="/srv", **kw)


def job(name: str, **fields) -> NewJob:
    return NewJob(command=f"run {name}", id=name, **fields)


def run(store: Store, now: float, expect: str, outcome: Outcome = OK) -> None:
    claimed = store.claim("w1", now=now, lease=LEASE)
    assert claimed is not None and claimed.id == expect, claimed
    store.finish(claimed, outcome, now=now, policy=POLICY)


def claimable(store: Store, now: float) -> list[str]:
    got = []
    while (j := store.claim("w-peek", now=now, lease=LEASE)) is not None:
        got.append(j.id)
        store.release(j, now=now)
        break
    return got


# -- dependencies -----------------------------------------------------------------------------

def test_a_job_waits_for_its_dependencies_to_complete(store, clock):
    add(store, clock.now, job("a"), job("b"), job("c", after=("a", "b"), priority=9))
    assert store.get("c").blocked == 2
    assert [d.after for d in store.waits_for(["c"])["c"]] == ["a", "b"]
    run(store, clock.now, "a")
    assert store.get("c").blocked == 1
    run(store, clock.now, "b")
    assert store.get("c").blocked == 0 and store.waits_for(["c"]) == {}
    run(store, clock.now, "c")
    assert [(d.after, d.met, d.state) for d in store.dependencies("c")] == [
        ("a", True, C), ("b", True, C)]
    assert [d.after for d in store.dependents("a")] == ["c"]


def test_a_dead_dependency_keeps_its_dependents_waiting_until_retried(store, clock):
    add(store, clock.now, job("x"), job("y", after=("x",)), job("z", after=("y",)))
    run(store, clock.now, "x", FAIL)
    assert store.get("x").state is D
    assert store.claim("w1", now=clock.now, lease=LEASE) is None  # y waits for a dead job
    [waits] = store.waits_for(["y"])["y"]
    assert (waits.after, waits.state) == ("x", D)
    store.retry_dead(["x"], now=clock.now)
    run(store, clock.now, "x")
    run(store, clock.now, "y")  # the chain goes on by itself
    run(store, clock.now, "z")


def test_after_any_runs_once_the_dependency_ended_either_way(store, clock):
    add(store, clock.now, job("x"), job("cleanup", after_any=("x",)), job("next", after=("x",)))
    run(store, clock.now, "x", FAIL)
    run(store, clock.now, "cleanup")
    assert store.get("next").blocked == 1


def test_a_dependency_already_completed_or_dead_counts_at_enqueue(store, clock):
    add(store, clock.now, job("done"), job("dead"))
    run(store, clock.now, "done")
    run(store, clock.now, "dead", FAIL)
    add(store, clock.now, job("a", after=("done",)), job("b", after_any=("dead",)),
        job("c", after=("dead",)))
    assert [store.get(i).blocked for i in ("a", "b", "c")] == [0, 0, 1]


def test_bad_dependencies_are_refused_and_nothing_is_stored(store, clock):
    add(store, clock.now, job("old"))
    before = {j.id for j in store.list_jobs(limit=None)}
    with pytest.raises(JobNotFound, match="'ghost'"):
        add(store, clock.now, job("n1"), job("n2", after=("ghost",)))
    with pytest.raises(InvalidInput, match="itself"):
        add(store, clock.now, job("self", after=("self",)))
    with pytest.raises(InvalidInput, match="comes later in the batch"):
        add(store, clock.now, job("first", after=("second",)), job("second"))
    assert {j.id for j in store.list_jobs(limit=None)} == before


def test_a_batch_may_depend_on_its_earlier_jobs(store, clock):
    add(store, clock.now, job("s1"), job("s2", after=("s1",)), job("s3", after=("s1", "s2")))
    for name in ("s1", "s2", "s3"):
        run(store, clock.now, name)


def test_blocked_jobs_are_listed_waiting_and_never_claimed(store, clock):
    add(store, clock.now, job("root", delay=3600), job("leaf", after=("root",), priority=5))
    assert [j.id for j in store.list_jobs([P])] == ["leaf", "root"]
    assert store.claim("w1", now=clock.now + 10, lease=LEASE) is None


def test_cancel_with_dependents_cancels_the_whole_chain(store, clock):
    add(store, clock.now, job("a"), job("b", after=("a",)), job("c", after=("b",)), job("d"))
    assert store.cancel(["a"], now=clock.now, with_dependents=True) == {
        "a": "cancelled", "b": "cancelled", "c": "cancelled"}
    assert store.get("d").state is P
    add(store, clock.now, job("e"), job("f", after=("e",)), job("g", after_any=("e",)))
    store.cancel(["e"], now=clock.now)
    assert store.get("f").blocked == 1 and store.get("g").blocked == 0


def test_a_dependency_of_a_limited_queue_is_gated_when_it_is_freed(store, clock):
    store.set_queue("gpu", now=clock.now, concurrency=1)
    add(store, clock.now, job("prep"), job("g1", queue="gpu", after=("prep",)),
        job("g2", queue="gpu", after=("prep",)))
    run(store, clock.now, "prep")
    first = store.claim("w1", now=clock.now, lease=LEASE)
    assert first.queue == "gpu" and first.slot == 0
    assert store.claim("w2", now=clock.now, lease=LEASE) is None  # the limit holds


# -- unique keys ------------------------------------------------------------------------------

def test_a_second_job_with_an_active_unique_key_answers_with_the_first(store, clock):
    [first] = add(store, clock.now, NewJob(command="export", unique_key="nightly"))
    again = add(store, clock.now, NewJob(command="export", unique_key="nightly"))
    assert list(again) == [first] and again.existing == {first}
    assert len(store.list_jobs(limit=None)) == 1
    with pytest.raises(Conflict, match="unique key 'nightly'"):
        add(store, clock.now, NewJob(command="export", unique_key="nightly"),
            on_conflict="error")
    run(store, clock.now, first)
    [later] = add(store, clock.now, NewJob(command="export", unique_key="nightly"))
    assert later != first  # completed: free again


def test_unique_for_also_covers_jobs_completed_within_that_time(store, clock):
    [first] = add(store, clock.now, NewJob(command="x", unique_key="k"))
    run(store, clock.now, first)
    same = add(store, clock.now + 30, NewJob(command="x", unique_key="k"), unique_for=60)
    assert list(same) == [first]
    fresh = add(store, clock.now + 61, NewJob(command="x", unique_key="k"), unique_for=60)
    assert list(fresh) != [first]


def test_a_batch_with_one_key_twice_makes_one_job(store, clock):
    ids = add(store, clock.now, NewJob(command="x", unique_key="k"),
              NewJob(command="y", unique_key="k"))
    assert ids[0] == ids[1] and len(store.list_jobs(limit=None)) == 1


# -- one job at a time ------------------------------------------------------------------------

def test_edit_changes_a_job_that_is_not_running(store, clock):
    add(store, clock.now, job("j", delay=60))
    edited = store.edit_job("j", now=clock.now, command="run fixed", priority=3, queue="new",
                            timeout=9.0, max_retries=2, run_at=clock.now)
    assert (edited.command, edited.priority, edited.queue, edited.timeout, edited.max_retries,
            edited.run_at) == ("run fixed", 3, "new", 9.0, 2, clock.now)
    assert "new" in [q.name for q in store.queues()]
    assert store.queue("new").waiting == 1
    running = store.claim("w1", now=clock.now, lease=LEASE)
    with pytest.raises(Conflict, match="running"):
        store.edit_job("j", now=clock.now, command="too late")
    assert running.command == "run fixed"


def test_edit_into_a_limited_queue_keeps_to_its_limit(store, clock):
    store.set_queue("one", now=clock.now, concurrency=1)
    add(store, clock.now, job("a", queue="one"), job("b"))
    store.claim("w1", now=clock.now, lease=LEASE, queues=["one"])
    store.edit_job("b", now=clock.now, queue="one")
    assert store.claim("w1", now=clock.now, lease=LEASE) is None


def test_restart_runs_a_finished_job_again_as_a_new_attempt(store, clock):
    add(store, clock.now, job("done"), job("dead"))
    run(store, clock.now, "done")
    run(store, clock.now, "dead", FAIL)
    for name in ("done", "dead"):
        again = store.restart(name, now=clock.now)
        assert (again.state, again.tries, again.attempt) == (P, 0, 1)
    run(store, clock.now, "done")
    assert [r.attempt for r in store.runs("done")] == [1, 2]
    with pytest.raises(Conflict, match="only completed or dead"):
        store.restart("dead", now=clock.now)


def test_run_now_makes_a_delayed_or_retrying_job_due(store, clock):
    add(store, clock.now, job("later", delay=3600), job("now"))
    assert store.run_now("later", now=clock.now).run_at == clock.now
    with pytest.raises(Conflict, match="due already"):
        store.run_now("now", now=clock.now)
    with pytest.raises(JobNotFound):
        store.run_now("ghost", now=clock.now)


def test_remove_deletes_a_job_that_is_not_running_with_its_runs(store, clock):
    add(store, clock.now, job("a"), job("b"), job("c", after=("b",)))
    run(store, clock.now, "a")
    store.remove_job("a")
    with pytest.raises(JobNotFound):
        store.get("a")
    with pytest.raises(Conflict, match="waits for 'b'"):
        store.remove_job("b")
    running = store.claim("w1", now=clock.now, lease=LEASE)
    with pytest.raises(Conflict, match="running"):
        store.remove_job(running.id)


# -- env, cwd, on-lost ------------------------------------------------------------------------

def test_env_cwd_and_on_lost_are_kept_with_the_job(store, clock):
    add(store, clock.now, job("j", env={"LANG": "C", "API_TOKEN": "s3cr3t"}, cwd="/tmp",
                              on_lost="fail", max_retries=5))
    stored = store.get("j")
    assert (stored.env, stored.cwd, stored.on_lost) == ({"LANG": "C", "API_TOKEN": "s3cr3t"},
                                                       "/tmp", "fail")
    store.claim("w1", now=clock.now, lease=LEASE)
    assert expire(store, clock.now + LEASE + 1) == ["j"]
    lost = store.get("j")
    assert lost.state is D and "on-lost fail" in lost.last_error
