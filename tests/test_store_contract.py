"""The store contract: only the `Store` interface, so every backend runs these unchanged."""

from __future__ import annotations

import re

import pytest

from queuectl.errors import Conflict, InvalidInput, JobNotFound
from queuectl.models import Job, JobState, NewJob
from queuectl.lifecycle import RESCUE_LIMIT, Outcome, RetryPolicy
from queuectl.store.base import Stop, Store
from storehelp import expire
from transitions import RecordingStore

POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)
OK = Outcome(ok=True, exit_code=0)
FAIL = Outcome(ok=False, exit_code=1, error="exit status 1")
LEASE = 10.0
CWD = "/srv/work"
P, R, C, F, D = (JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED,
                 JobState.DEAD)


def add(store: Store, now: float, *specs: NewJob | str, max_retries: int = 3) -> list[str]:
    jobs = [NewJob(command=s) if isinstance(s, str) else s for s in specs]
    return store.enqueue(jobs, now=now, default_max_retries=max_retries, default_cwd=CWD)


def ids(jobs: list[Job]) -> list[str]:
    return [j.id for j in jobs]


def counts(store: Store, now: float) -> dict[JobState, int]:
    return store.status(now, worker_timeout=30).counts


def snapshot(store: Store) -> tuple:
    """Everything a person can see about every job, to prove an operation changed nothing."""
    jobs = store.list_jobs(limit=None)
    return (sorted(jobs, key=lambda j: j.id), {j.id: store.runs(j.id) for j in jobs})


@pytest.fixture
def store(store):
    """Every test here runs on each backend, with every job's state recorded around each call:
    a change the transition table does not list fails the test."""
    return RecordingStore(store)


def ended(finished) -> tuple:
    """(recorded, next job) of what `finish` returned."""
    return finished.recorded, finished.next


def run_and_fail(store: Store, clock, job_id: str, worker: str = "w1") -> Job:
    """Claim `job_id` (it must be the next eligible job) and record a failed run."""
    job = store.claim(worker, now=clock.now, lease=LEASE)
    assert job is not None and job.id == job_id
    assert ended(store.finish(job, FAIL, now=clock.now, policy=POLICY)) == (True, None)
    return store.get(job_id)


# -- enqueue and get ------------------------------------------------------------------------

def test_enqueue_one_stores_a_pending_job_with_defaults(store, clock):
    [jid] = add(store, clock.now, NewJob(command="echo hi", id="job-1"), max_retries=5)
    assert jid == "job-1"
    job = store.get("job-1")
    assert (job.command, job.state, job.priority, job.tries) == ("echo hi", P, 0, 0)
    assert (job.max_retries, job.cwd, job.timeout) == (5, CWD, None)
    assert job.run_at == job.created_at == job.updated_at == clock.now
    assert (job.worker_id, job.token, job.lease_until, job.attempt) == (None, None, None, 0)
    assert store.runs("job-1") == []


def test_enqueue_many_keeps_each_spec(store, clock):
    got = add(store, clock.now,
              NewJob(command="a", id="a", priority=7, max_retries=0, timeout=2.5),
              NewJob(command="b", id="b", delay=60),
              NewJob(command="c", id="c", run_at=clock.now + 3600, cwd="/elsewhere"),
              "d")
    assert got[:3] == ["a", "b", "c"] and len(got) == 4
    a, b, c = store.get("a"), store.get("b"), store.get("c")
    assert (a.priority, a.max_retries, a.timeout) == (7, 0, 2.5)
    assert b.run_at == clock.now + 60 and b.max_retries == 3
    assert c.run_at == clock.now + 3600 and c.cwd == "/elsewhere"
    assert store.get(got[3]).command == "d"
    assert counts(store, clock.now)[P] == 4


def test_enqueue_nothing_is_a_no_op(store, clock):
    assert add(store, clock.now) == []
    assert store.list_jobs() == []


def test_duplicate_id_in_batch_is_a_conflict_and_nothing_is_stored(store, clock):
    with pytest.raises(Conflict, match="x"):
        add(store, clock.now, NewJob(command="1", id="x"), NewJob(command="2"),
            NewJob(command="3", id="x"))
    assert store.list_jobs(limit=None) == []
    assert counts(store, clock.now)[P] == 0


def test_id_already_stored_is_a_conflict_and_nothing_of_the_batch_is_stored(store, clock):
    add(store, clock.now, NewJob(command="old", id="taken"))
    with pytest.raises(Conflict, match="taken"):
        add(store, clock.now, NewJob(command="new1", id="fresh"), NewJob(command="new2"),
            NewJob(command="new3", id="taken"))
    assert ids(store.list_jobs(limit=None)) == ["taken"]
    assert store.get("taken").command == "old"
    assert counts(store, clock.now)[P] == 1


def test_generated_ids_are_unique_and_url_safe(store, clock):
    got = add(store, clock.now, *(["true"] * 1000))
    assert len(set(got)) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in got)
    assert counts(store, clock.now)[P] == 1000


def test_unknown_job_is_not_found(store):
    with pytest.raises(JobNotFound, match="nope"):
        store.get("nope")
    with pytest.raises(JobNotFound):
        store.runs("nope")
    with pytest.raises(JobNotFound):
        store.output("nope")


def test_ids_with_quotes_and_wildcards_round_trip(store, clock):
    weird = ["it's", 'say"hi"', "100%", "a_b", "back\\slash", "%", "_", "ünï"]
    add(store, clock.now, *(NewJob(command="true", id=i) for i in weird))
    for i in weird:
        assert store.get(i).id == i
    with pytest.raises(JobNotFound):
        store.get("a%")


# -- listing --------------------------------------------------------------------------------

def test_waiting_jobs_list_in_run_order(store, clock):
    t = clock.now
    add(store, t, NewJob(command="x", id="low-first"),
        NewJob(command="x", id="high", priority=5),
        NewJob(command="x", id="low-earlier", run_at=t - 10),
        NewJob(command="x", id="low-second"),
        NewJob(command="x", id="negative", priority=-1),
        NewJob(command="x", id="high-later", priority=5, delay=30))
    expected = ["high", "high-later", "low-earlier", "low-first", "low-second", "negative"]
    assert ids(store.list_jobs([P, F])) == expected
    assert ids(store.list_jobs([P])) == expected
    assert ids(store.list_jobs([P], limit=2)) == expected[:2]


def test_waiting_list_mixes_pending_and_failed_in_run_order(store, clock):
    add(store, clock.now, NewJob(command="x", id="a"), NewJob(command="x", id="b"))
    run_and_fail(store, clock, "a")  # failed, due at now + 1
    assert ids(store.list_jobs([P, F])) == ["b", "a"]
    assert ids(store.list_jobs([F])) == ["a"]
    assert ids(store.list_jobs([P])) == ["b"]


def test_finished_jobs_list_newest_first(store, clock):
    add(store, clock.now, *(NewJob(command="x", id=f"j{i}", max_retries=0) for i in range(4)))
    for i in range(4):  # j0 finishes first, j3 last
        clock.advance(1)
        job = store.claim("w1", now=clock.now, lease=LEASE)
        assert job.id == f"j{i}"
        store.finish(job, OK if i % 2 == 0 else FAIL, now=clock.now, policy=POLICY)
    assert ids(store.list_jobs([C])) == ["j2", "j0"]
    assert ids(store.list_jobs([D])) == ["j3", "j1"]
    assert ids(store.list_jobs([C], limit=1)) == ["j2"]
    assert ids(store.list_jobs([D], limit=1)) == ["j3"]


def test_list_filters_by_state_and_limit(store, clock):
    add(store, clock.now, *(NewJob(command="x", id=f"j{i}") for i in range(5)))
    running = store.claim("w1", now=clock.now, lease=LEASE)
    done = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(done, OK, now=clock.now, policy=POLICY)
    assert ids(store.list_jobs([R])) == [running.id]
    assert ids(store.list_jobs([C])) == [done.id]
    assert store.list_jobs([D]) == []
    assert {j.state for j in store.list_jobs([P, C])} == {P, C}
    assert len(store.list_jobs([P, C], limit=None)) == 4
    everything = store.list_jobs(limit=None)
    assert sorted(ids(everything)) == [f"j{i}" for i in range(5)]
    assert len(store.list_jobs(limit=3)) == 3
    assert len(store.list_jobs(limit=100)) == 5


@pytest.mark.parametrize("text, expected", [
    ("%", {"pct%", "cmd-pct"}),
    ("_", {"under_score", "cmd-under"}),
    ("\\", {"back\\slash", "cmd-back"}),
    ("'", {"it's", "cmd-quote"}),
    ('"', {'dq"x', "cmd-dq"}),
    ("r_s", {"under_score"}),
    ("t%", {"pct%"}),
    ("plain", {"plainjob"}),
    ("echo", {"pct%", "under_score", "back\\slash", "it's", 'dq"x', "plainjob", "cmd-pct",
              "cmd-under", "cmd-back", "cmd-quote", "cmd-dq", "other"}),
    ("nothing-matches", set()),
])
def test_text_filter_matches_id_or_command_literally(store, clock, text, expected):
    add(store, clock.now,
        NewJob(command="echo 1", id="pct%"), NewJob(command="echo 2", id="under_score"),
        NewJob(command="echo 3", id="back\\slash"), NewJob(command="echo 4", id="it's"),
        NewJob(command="echo 5", id='dq"x'), NewJob(command="echo 6", id="plainjob"),
        NewJob(command="echo 100%", id="cmd-pct"), NewJob(command="echo a_b", id="cmd-under"),
        NewJob(command="echo c:\\dir", id="cmd-back"), NewJob(command="echo 'q'", id="cmd-quote"),
        NewJob(command='echo "q"', id="cmd-dq"), NewJob(command="echo other", id="other"))
    assert set(ids(store.list_jobs(text=text, limit=None))) == expected
    assert set(ids(store.list_jobs([P], text=text, limit=None))) == expected


# -- claim ----------------------------------------------------------------------------------

def test_claim_from_empty_store_is_none(store, clock):
    assert store.claim("w1", now=clock.now, lease=LEASE) is None


def test_claim_takes_higher_priority_then_earlier_then_older(store, clock):
    t = clock.now
    add(store, t, NewJob(command="x", id="a"), NewJob(command="x", id="b", priority=3),
        NewJob(command="x", id="c", run_at=t - 5), NewJob(command="x", id="d"),
        NewJob(command="x", id="e", priority=-2))
    order = [store.claim("w1", now=t, lease=LEASE).id for _ in range(5)]
    assert order == ["b", "c", "a", "d", "e"]
    assert store.claim("w1", now=t, lease=LEASE) is None


def test_delayed_job_is_not_claimed_before_run_at(store, clock):
    t = clock.now
    add(store, t, NewJob(command="x", id="later", delay=60, priority=10),
        NewJob(command="x", id="now"))
    assert store.claim("w1", now=t, lease=LEASE).id == "now"
    assert store.claim("w1", now=t + 59.999, lease=LEASE) is None
    assert store.claim("w1", now=t + 60, lease=LEASE).id == "later"


def test_claim_sets_attempts_run_row_lease_and_worker(store, clock):
    store.register_worker("w1", pid=4242, host="box", now=clock.now)
    [jid] = add(store, clock.now, NewJob(command="x", id="j"))
    clock.advance(5)
    job = store.claim("w1", now=clock.now, lease=LEASE)
    assert (job.id, job.state, job.tries, job.attempt) == ("j", R, 1, 1)
    assert (job.worker_id, job.lease_until, job.started_at) == ("w1", clock.now + LEASE, clock.now)
    assert job.token
    assert store.get("j") == job
    [run] = store.runs("j")
    assert (run.job_id, run.attempt, run.started_at, run.finished_at) == ("j", 1, clock.now, None)
    assert (run.worker, run.host, run.outcome) == ("w1", "box", None)
    [w] = store.workers()
    assert w.job_id == "j"


def test_each_claim_gets_a_distinct_token(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    first = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(first, FAIL, now=clock.now, policy=POLICY)
    second = store.claim("w1", now=clock.now + 1, lease=LEASE)
    assert second.id == "j" and second.token != first.token


# -- finish ---------------------------------------------------------------------------------

def test_finish_ok_completes_the_job(store, clock):
    store.register_worker("w1", pid=1, host="h", now=clock.now)
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    clock.advance(3)
    assert ended(store.finish(job, OK, now=clock.now, policy=POLICY)) == (True, None)
    done = store.get("j")
    assert (done.state, done.exit_code, done.finished_at, done.tries) == (C, 0, clock.now, 1)
    assert (done.worker_id, done.token, done.lease_until, done.last_error) == (None, None, None, None)
    [run] = store.runs("j")
    assert (run.finished_at, run.exit_code, run.outcome) == (clock.now, 0, "completed")
    assert store.workers()[0].job_id is None
    assert store.claim("w1", now=clock.now + 1000, lease=LEASE) is None


def test_failures_back_off_then_go_dead_after_max_retries(store, clock):
    add(store, clock.now, NewJob(command="x", id="j", max_retries=2))
    t0 = clock.now
    job = run_and_fail(store, clock, "j")
    assert (job.state, job.tries, job.run_at) == (F, 1, t0 + 1)
    assert (job.exit_code, job.last_error, job.finished_at) == (1, "exit status 1", None)
    assert store.claim("w1", now=t0 + 0.999, lease=LEASE) is None
    clock.set(t0 + 1)
    job = run_and_fail(store, clock, "j")
    assert (job.state, job.tries, job.run_at) == (F, 2, clock.now + 2)
    assert store.claim("w1", now=clock.now + 1.999, lease=LEASE) is None
    clock.advance(2)
    job = run_and_fail(store, clock, "j")
    assert (job.state, job.tries, job.finished_at) == (D, 3, clock.now)
    runs = store.runs("j")
    assert [r.attempt for r in runs] == [1, 2, 3]
    assert all(r.outcome == "failed" and r.exit_code == 1 for r in runs)
    assert store.claim("w1", now=clock.now + 10_000, lease=LEASE) is None
    assert counts(store, clock.now)[D] == 1


def test_no_retries_means_dead_after_the_first_failure(store, clock):
    add(store, clock.now, NewJob(command="x", id="j", max_retries=0))
    assert run_and_fail(store, clock, "j").state is D


def test_backoff_uses_the_policy(store, clock):
    add(store, clock.now, NewJob(command="x", id="j", max_retries=5))
    policy = RetryPolicy(base=3.0, cap=5.0, jitter=0.0)
    waits = []
    for _ in range(3):
        job = store.claim("w1", now=clock.now, lease=LEASE)
        store.finish(job, FAIL, now=clock.now, policy=policy)
        waits.append(store.get("j").run_at - clock.now)
        clock.set(store.get("j").run_at)
    assert waits == [1.0, 3.0, 5.0]


def test_stale_token_cannot_finish_or_renew_and_changes_nothing(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    clock.advance(LEASE + 1)
    assert expire(store, clock.now) == ["j"]
    before = snapshot(store)
    for outcome in (OK, FAIL, Outcome(ok=False, cancelled=True), Outcome(ok=False, give_back=True)):
        assert ended(store.finish(job, outcome, now=clock.now, policy=POLICY,
                            head=[(1, b"late")], claim_next="w1", lease=LEASE)) == (False, None)
    control = store.renew(job, now=clock.now, lease=LEASE, head=[(1, b"late")])
    assert control.lease_lost
    assert snapshot(store) == before
    assert store.output("j").chunks == []


def test_old_claim_cannot_touch_the_job_once_another_worker_runs_it(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    old = store.claim("w1", now=clock.now, lease=LEASE)
    clock.advance(LEASE + 1)
    expire(store, clock.now)
    clock.advance(1)
    new = store.claim("w2", now=clock.now, lease=LEASE)
    assert new.id == "j" and new.state is R
    before = snapshot(store)
    assert store.renew(old, now=clock.now, lease=100, head=[(1, b"old")]).lease_lost
    for outcome in (OK, FAIL, Outcome(ok=False, give_back=True)):
        assert ended(store.finish(old, outcome, now=clock.now, policy=POLICY)) == (False, None)
    assert snapshot(store) == before
    assert store.get("j").token == new.token and store.get("j").worker_id == "w2"
    assert not store.renew(new, now=clock.now, lease=LEASE, head=[(1, b"new")]).lease_lost
    assert ended(store.finish(new, OK, now=clock.now, policy=POLICY)) == (True, None)
    assert store.output("j").chunks == [(1, b"new")]
    assert store.output("j", 1).chunks == []


def test_finishing_twice_is_refused_the_second_time(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    assert ended(store.finish(job, OK, now=clock.now, policy=POLICY)) == (True, None)
    before = snapshot(store)
    assert ended(store.finish(job, FAIL, now=clock.now + 1, policy=POLICY)) == (False, None)
    assert snapshot(store) == before


def test_finish_can_claim_the_next_job_in_the_same_call(store, clock):
    add(store, clock.now, NewJob(command="x", id="a", priority=1), NewJob(command="x", id="b"))
    a = store.claim("w1", now=clock.now, lease=LEASE)
    clock.advance(2)
    recorded, _, nxt = store.finish(a, OK, now=clock.now, policy=POLICY, claim_next="w1", lease=LEASE)
    assert recorded and nxt is not None
    assert (nxt.id, nxt.state, nxt.worker_id, nxt.tries) == ("b", R, "w1", 1)
    assert nxt.lease_until == clock.now + LEASE
    assert store.get("a").state is C
    assert store.get("b") == nxt
    assert [r.attempt for r in store.runs("b")] == [1]
    recorded, _, nxt = store.finish(nxt, OK, now=clock.now, policy=POLICY, claim_next="w1", lease=LEASE)
    assert recorded and nxt is None


def test_give_back_returns_the_job_without_counting_the_attempt(store, clock):
    add(store, clock.now, NewJob(command="x", id="j", max_retries=0))
    queued = clock.now
    job = store.claim("w1", now=clock.now, lease=LEASE)
    clock.advance(4)
    assert ended(store.finish(job, Outcome(ok=False, give_back=True), now=clock.now,
                              policy=POLICY)) == (True, None)
    back = store.get("j")
    # It keeps its place in line: run_at is still when it was first due.
    assert (back.state, back.tries, back.run_at, back.worker_id) == (P, 0, queued, None)
    assert store.runs("j")[0].outcome == "interrupted"
    again = store.claim("w2", now=clock.now, lease=LEASE)
    assert (again.id, again.tries, again.attempt) == ("j", 1, 2)
    # The budget is untouched: with max_retries=0 one real failure still kills it.
    store.finish(again, FAIL, now=clock.now, policy=POLICY)
    assert store.get("j").state is D


# -- cancel ---------------------------------------------------------------------------------

def test_cancel_waiting_jobs_moves_them_to_the_dlq(store, clock):
    add(store, clock.now, NewJob(command="x", id="p"), NewJob(command="x", id="f"),
        NewJob(command="x", id="other", priority=-1))
    run_and_fail(store, clock, "p")
    assert (store.get("p").state, store.get("f").state) == (F, P)
    clock.advance(1)
    result = store.cancel(["p", "f"], now=clock.now)
    assert result == {"p": "cancelled", "f": "cancelled"}
    for jid in ("p", "f"):
        job = store.get(jid)
        assert (job.state, job.cancelled, job.last_error) == (D, True, "cancelled")
        assert job.finished_at == clock.now
    assert store.get("other").state is P
    assert store.claim("w1", now=clock.now + 100, lease=LEASE).id == "other"


def test_cancel_running_job_flags_it_for_its_worker(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    control = store.renew(job, now=clock.now, lease=LEASE)
    assert (control.lease_lost, control.cancel) == (False, False)
    assert store.cancel(["j"], now=clock.now) == {"j": "cancelling"}
    assert store.get("j").state is R
    control = store.renew(job, now=clock.now + 1, lease=LEASE)
    assert (control.lease_lost, control.cancel) == (False, True)
    store.finish(job, Outcome(ok=False, cancelled=True, signal="SIGTERM"), now=clock.now + 2,
                 policy=POLICY)
    done = store.get("j")
    assert (done.state, done.cancelled) == (D, True)
    assert "cancelled" in done.last_error
    assert store.runs("j")[0].outcome == "cancelled"


@pytest.mark.parametrize("finished", ["completed", "dead"])
def test_cancel_finished_job_is_a_conflict_and_nothing_changes(store, clock, finished):
    add(store, clock.now, NewJob(command="x", id="done", max_retries=0, priority=1),
        NewJob(command="x", id="waiting"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(job, OK if finished == "completed" else FAIL, now=clock.now, policy=POLICY)
    before = snapshot(store)
    with pytest.raises(Conflict, match="done"):
        store.cancel(["waiting", "done"], now=clock.now)
    assert snapshot(store) == before


def test_cancel_unknown_id_is_not_found_and_nothing_changes(store, clock):
    add(store, clock.now, NewJob(command="x", id="a"), NewJob(command="x", id="b"))
    before = snapshot(store)
    with pytest.raises(JobNotFound, match="ghost"):
        store.cancel(["a", "ghost", "b"], now=clock.now)
    assert snapshot(store) == before
    assert counts(store, clock.now)[P] == 2


# -- the DLQ --------------------------------------------------------------------------------

def _dead(store: Store, clock, jid: str, max_retries: int = 0) -> None:
    add(store, clock.now, NewJob(command="x", id=jid, max_retries=max_retries))
    for _ in range(max_retries + 1):
        run_and_fail(store, clock, jid)
        clock.set(max(clock.now, store.get(jid).run_at))
    assert store.get(jid).state is D


def test_retry_dead_gives_a_fresh_budget_and_keeps_history(store, clock):
    _dead(store, clock, "j", max_retries=1)
    assert [r.attempt for r in store.runs("j")] == [1, 2]
    clock.advance(100)
    assert store.retry_dead(["j"], now=clock.now) == ["j"]
    job = store.get("j")
    assert (job.state, job.tries, job.run_at, job.last_error) == (P, 0, clock.now, None)
    assert (job.finished_at, job.exit_code, job.cancelled, job.attempt) == (None, None, False, 2)
    assert counts(store, clock.now)[D] == 0 and counts(store, clock.now)[P] == 1
    job = run_and_fail(store, clock, "j")  # a fresh budget: one retry left again
    assert (job.state, job.tries, job.attempt) == (F, 1, 3)
    assert [r.attempt for r in store.runs("j")] == [1, 2, 3]
    clock.set(job.run_at)
    assert run_and_fail(store, clock, "j").state is D
    assert [r.attempt for r in store.runs("j")] == [1, 2, 3, 4]


def test_retry_dead_of_a_cancelled_job_clears_the_mark(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    store.cancel(["j"], now=clock.now)
    assert store.retry_dead(["j"], now=clock.now) == ["j"]
    job = store.get("j")
    assert (job.state, job.cancelled) == (P, False)


def test_retry_all_dead(store, clock):
    _dead(store, clock, "a")
    _dead(store, clock, "b")
    add(store, clock.now, NewJob(command="x", id="alive"))
    assert sorted(store.retry_dead(None, now=clock.now)) == ["a", "b"]
    assert {j.id: j.state for j in store.list_jobs(limit=None)} == {"a": P, "b": P, "alive": P}
    assert store.retry_dead(None, now=clock.now) == []


@pytest.mark.parametrize("blocker", ["pending", "running", "completed", "failed"])
def test_retry_of_a_job_that_is_not_dead_is_a_conflict_and_nothing_changes(store, clock, blocker):
    _dead(store, clock, "dead")
    add(store, clock.now, NewJob(command="x", id="other", max_retries=1))
    if blocker != "pending":
        job = store.claim("w1", now=clock.now, lease=LEASE)
        if blocker != "running":
            store.finish(job, OK if blocker == "completed" else FAIL, now=clock.now, policy=POLICY)
    assert store.get("other").state.value == blocker
    before = snapshot(store)
    with pytest.raises(Conflict, match="other"):
        store.retry_dead(["dead", "other"], now=clock.now)
    assert snapshot(store) == before


def test_retry_of_an_unknown_job_is_not_found_and_nothing_changes(store, clock):
    _dead(store, clock, "dead")
    before = snapshot(store)
    with pytest.raises(JobNotFound):
        store.retry_dead(["dead", "ghost"], now=clock.now)
    assert snapshot(store) == before


def _with_output(store: Store, clock, jid: str, outcome: Outcome, **spec) -> None:
    add(store, clock.now, NewJob(command="x", id=jid, **spec))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    assert job.id == jid
    store.renew(job, now=clock.now, lease=LEASE, head=[(1, b"head")], tail=([(2, b"tail")], 3))
    store.finish(job, outcome, now=clock.now, policy=POLICY)


def test_purge_dead_removes_jobs_runs_and_output(store, clock):
    _with_output(store, clock, "d1", FAIL, max_retries=0)
    _with_output(store, clock, "d2", FAIL, max_retries=0)
    _with_output(store, clock, "ok", OK)
    assert store.purge_dead() == 2
    for jid in ("d1", "d2"):
        with pytest.raises(JobNotFound):
            store.get(jid)
    assert counts(store, clock.now)[D] == 0 and counts(store, clock.now)[C] == 1
    assert store.output("ok").chunks == [(1, b"head"), (2, b"tail")]
    # A new job under a purged id starts with no history.
    add(store, clock.now, NewJob(command="x", id="d1"))
    assert store.runs("d1") == [] and store.output("d1") is None
    job = store.claim("w1", now=clock.now, lease=LEASE)
    assert job.id == "d1" and job.attempt == 1
    assert store.output("d1").chunks == []
    assert store.purge_dead() == 0


def test_prune_removes_old_jobs_of_the_given_states(store, clock):
    _with_output(store, clock, "old-ok", OK)
    _with_output(store, clock, "old-dead", FAIL, max_retries=0)
    clock.advance(100)
    _with_output(store, clock, "new-ok", OK)
    add(store, clock.now - 1000, NewJob(command="x", id="old-pending"))
    assert store.prune(before=clock.now - 50, states=[C]) == 1
    with pytest.raises(JobNotFound):
        store.get("old-ok")
    assert {j.id for j in store.list_jobs(limit=None)} == {"old-dead", "new-ok", "old-pending"}
    assert store.prune(before=clock.now + 1, states=[C, D]) == 2
    assert ids(store.list_jobs(limit=None)) == ["old-pending"]
    assert counts(store, clock.now) == {P: 1, R: 0, C: 0, F: 0, D: 0}
    add(store, clock.now, NewJob(command="x", id="old-ok"))
    assert store.runs("old-ok") == []


# -- rescue ---------------------------------------------------------------------------------

def test_rescue_fails_a_job_whose_lease_expired(store, clock):
    store.register_worker("w1", pid=1, host="h", now=clock.now)
    add(store, clock.now, NewJob(command="x", id="j"))
    store.claim("w1", now=clock.now, lease=LEASE)
    assert expire(store, clock.now + LEASE - 0.5) == []
    assert store.get("j").state is R
    clock.advance(LEASE + 1)
    assert expire(store, clock.now) == ["j"]
    job = store.get("j")
    assert (job.state, job.tries, job.run_at, job.worker_id) == (F, 1, clock.now + 1, None)
    assert "w1" in job.last_error
    [run] = store.runs("j")
    assert (run.outcome, run.finished_at) == ("lost", clock.now)
    assert expire(store, clock.now) == []
    again = store.claim("w2", now=clock.now + 1, lease=LEASE)
    assert (again.id, again.tries, again.attempt) == ("j", 2, 2)


def test_renew_extends_the_lease(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    clock.advance(LEASE - 1)
    assert not store.renew(job, now=clock.now, lease=LEASE).lease_lost
    assert store.get("j").lease_until == clock.now + LEASE
    assert expire(store, clock.now + LEASE - 1) == []
    assert ended(store.finish(job, OK, now=clock.now + 2, policy=POLICY)) == (True, None)


def test_rescue_of_a_known_dead_worker_ignores_the_lease(store, clock):
    store.register_worker("w1", pid=1, host="h", now=clock.now)
    store.register_worker("w2", pid=2, host="h", now=clock.now)
    add(store, clock.now, NewJob(command="x", id="a"), NewJob(command="x", id="b"))
    a = store.claim("w1", now=clock.now, lease=1000)
    store.claim("w2", now=clock.now, lease=1000)
    assert store.rescue_dead_workers(["w1"], now=clock.now + 1, policy=POLICY) == ["a"]
    assert store.get("a").state is F and store.get("b").state is R
    assert "w1" in store.get("a").last_error
    assert store.runs("a")[0].outcome == "lost"
    assert [w.id for w in store.workers()] == ["w2"]
    assert ended(store.finish(a, OK, now=clock.now + 2, policy=POLICY)) == (False, None)


def test_rescue_applies_the_retry_rule(store, clock):
    add(store, clock.now, NewJob(command="x", id="j", max_retries=0))
    store.claim("w1", now=clock.now, lease=LEASE)
    assert expire(store, clock.now + LEASE + 1) == ["j"]
    assert store.get("j").state is D
    assert counts(store, clock.now)[D] == 1


def test_job_rescued_rescue_limit_times_goes_dead(store, clock):
    add(store, clock.now, NewJob(command="x", id="j", max_retries=100))
    for n in range(1, RESCUE_LIMIT + 1):
        job = store.claim("w1", now=clock.now, lease=LEASE)
        assert job.id == "j"
        clock.advance(LEASE + 1)
        assert expire(store, clock.now) == ["j"]
        state = store.get("j").state
        assert state is (D if n == RESCUE_LIMIT else F)
        clock.set(max(clock.now, store.get("j").run_at))
    assert [r.outcome for r in store.runs("j")] == ["lost"] * RESCUE_LIMIT
    assert store.claim("w1", now=clock.now + 10_000, lease=LEASE) is None


def test_rescue_of_a_job_being_cancelled_buries_it_as_cancelled(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    store.claim("w1", now=clock.now, lease=LEASE)
    store.cancel(["j"], now=clock.now)
    assert expire(store, clock.now + LEASE + 1) == ["j"]
    job = store.get("j")
    assert (job.state, job.cancelled) == (D, True)


# -- output ---------------------------------------------------------------------------------

def test_output_head_appends_tail_replaces_and_dropped_is_recorded(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    assert store.output("j").chunks == []
    store.renew(job, now=clock.now, lease=LEASE, head=[(1, b"a"), (2, b"b")])
    assert store.output("j").chunks == [(1, b"a"), (2, b"b")]
    assert store.output("j").cut_at is None
    store.renew(job, now=clock.now, lease=LEASE, head=[(1, b"c")], tail=([(1, b"t1")], 4))
    store.renew(job, now=clock.now, lease=LEASE, tail=([(1, b"t2"), (2, b"t3")], 10))
    store.finish(job, OK, now=clock.now, policy=POLICY, tail=([(2, b"t4\xff")], 12))
    out = store.output("j")
    assert out.chunks == [(1, b"a"), (2, b"b"), (1, b"c"), (2, b"t4\xff")]
    assert (out.tail_start, out.cut_at) == (3, 3)
    assert out.run.dropped_bytes == 12
    assert out.run.output_bytes == 3 + 3 + 12
    assert out.run.attempt == 1 and out.run.outcome == "completed"


def test_output_without_a_cut(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(job, OK, now=clock.now, policy=POLICY, head=[(1, b"hello\n"), (2, b"oops\n")])
    out = store.output("j")
    assert out.chunks == [(1, b"hello\n"), (2, b"oops\n")]
    assert (out.cut_at, out.run.dropped_bytes, out.run.output_bytes) == (None, 0, 11)
    assert out.tail_start == len(out.chunks)


def test_output_latest_or_a_specific_attempt(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    assert store.output("j") is None  # never ran
    with pytest.raises(InvalidInput, match="attempt 1"):
        store.output("j", 1)
    for n in (1, 2):
        job = store.claim("w1", now=clock.now, lease=LEASE)
        store.finish(job, FAIL, now=clock.now, policy=POLICY, head=[(1, f"run {n}".encode())])
        clock.set(store.get("j").run_at)
    assert store.output("j").chunks == [(1, b"run 2")]
    assert store.output("j").run.attempt == 2
    assert store.output("j", 1).chunks == [(1, b"run 1")]
    assert store.output("j", 2).chunks == [(1, b"run 2")]
    for bad in (0, 3, -1):
        with pytest.raises(InvalidInput):
            store.output("j", bad)


def test_output_of_a_running_job_is_visible(store, clock):
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    store.renew(job, now=clock.now, lease=LEASE, head=[(1, b"partial")])
    out = store.output("j")
    assert out.chunks == [(1, b"partial")] and out.run.finished_at is None


def test_binary_output_is_kept_byte_for_byte(store, clock):
    blob = bytes(range(256)) * 4
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(job, OK, now=clock.now, policy=POLICY, head=[(1, blob), (2, b"\x00")])
    assert store.output("j").chunks == [(1, blob), (2, b"\x00")]


# -- status ---------------------------------------------------------------------------------

def test_status_counts_follow_every_transition(store, clock):
    def expect(**n):
        assert counts(store, clock.now) == {s: n.get(s.value, 0) for s in JobState}

    expect()
    add(store, clock.now, *(NewJob(command="x", id=f"j{i}", max_retries=1) for i in range(5)))
    expect(pending=5)
    j0 = store.claim("w1", now=clock.now, lease=LEASE)
    j1 = store.claim("w1", now=clock.now, lease=LEASE)
    expect(pending=3, running=2)
    store.finish(j0, OK, now=clock.now, policy=POLICY)
    store.finish(j1, FAIL, now=clock.now, policy=POLICY)
    expect(pending=3, completed=1, failed=1)
    store.cancel(["j2"], now=clock.now)
    expect(pending=2, completed=1, failed=1, dead=1)
    j3 = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(j3, Outcome(ok=False, give_back=True), now=clock.now, policy=POLICY)
    expect(pending=2, completed=1, failed=1, dead=1)
    store.claim("w1", now=clock.now, lease=LEASE)
    expire(store, clock.now + LEASE + 1)
    expect(pending=1, completed=1, failed=2, dead=1)
    store.retry_dead(None, now=clock.now)
    expect(pending=2, completed=1, failed=2)
    store.cancel(["j2"], now=clock.now)
    assert store.purge_dead() == 1
    expect(pending=1, completed=1, failed=2)
    assert store.prune(before=clock.now + 1, states=[C]) == 1
    expect(pending=1, failed=2)
    with pytest.raises(Conflict):
        add(store, clock.now, NewJob(command="x", id="new"), NewJob(command="x", id="j4"))
    expect(pending=1, failed=2)


def test_status_workers_alive_within_the_timeout(store, clock):
    t = clock.now
    store.register_worker("fresh", pid=1, host="h", now=t - 5)
    store.register_worker("silent", pid=2, host="h", now=t - 100)
    store.register_worker("beating", pid=3, host="h", now=t - 100)
    store.heartbeat("beating", now=t - 1)
    assert store.status(t, worker_timeout=30).workers == 2
    assert store.status(t, worker_timeout=200).workers == 3
    assert store.status(t + 100, worker_timeout=30).workers == 0


def test_status_oldest_waiting_age_and_next_due(store, clock):
    t = clock.now
    empty = store.status(t, worker_timeout=30)
    assert (empty.oldest_waiting_age, empty.next_due, empty.finished_last_minute) == (None, None, 0)
    assert store.next_due(t) is None
    add(store, t, NewJob(command="x", id="later", delay=60))
    st = store.status(t, worker_timeout=30)
    assert (st.oldest_waiting_age, st.next_due) == (None, t + 60)
    assert store.next_due(t) == t + 60
    add(store, t, NewJob(command="x", id="due-a", run_at=t - 7), NewJob(command="x", id="due-b"))
    st = store.status(t + 3, worker_timeout=30)
    assert st.oldest_waiting_age == 10
    assert st.next_due == t + 60
    assert store.next_due(t + 3) == t + 60  # the next one not due yet
    # A failed job waits for its retry time; a running one is not waiting.
    store.claim("w1", now=t + 3, lease=LEASE)  # due-a
    store.claim("w1", now=t + 3, lease=LEASE)  # due-b
    assert store.status(t + 3, worker_timeout=30).oldest_waiting_age is None
    assert store.next_due(t + 3) == t + 60


def test_status_finished_last_minute(store, clock):
    add(store, clock.now, NewJob(command="x", id="a"), NewJob(command="x", id="b", max_retries=0),
        NewJob(command="x", id="c"))
    store.finish(store.claim("w1", now=clock.now, lease=LEASE), OK, now=clock.now, policy=POLICY)
    store.finish(store.claim("w1", now=clock.now, lease=LEASE), FAIL, now=clock.now + 30,
                 policy=POLICY)
    assert store.status(clock.now + 30, worker_timeout=30).finished_last_minute == 2
    assert store.status(clock.now + 60, worker_timeout=30).finished_last_minute == 2
    assert store.status(clock.now + 61, worker_timeout=30).finished_last_minute == 1
    assert store.status(clock.now + 100, worker_timeout=30).finished_last_minute == 0


# -- config and workers ---------------------------------------------------------------------

def test_config_set_get_unset(store):
    assert store.config_items() == {}
    store.config_set("max-retries", "5")
    store.config_set("lease", "20s")
    store.config_set("max-retries", "7")
    assert store.config_items() == {"lease": "20s", "max-retries": "7"}
    assert store.config_unset("max-retries") is True
    assert store.config_unset("max-retries") is False
    assert store.config_items() == {"lease": "20s"}
    store.config_set("weird'key%", "va'lue\\")
    assert store.config_items()["weird'key%"] == "va'lue\\"


def test_workers_register_heartbeat_stop_unregister(store, clock):
    t = clock.now
    store.register_worker("w1", pid=101, host="alpha", now=t)
    store.register_worker("w2", pid=102, host="beta", now=t + 1)
    w1, w2 = store.workers()
    assert (w1.id, w1.pid, w1.host, w1.started_at, w1.heartbeat_at) == ("w1", 101, "alpha", t, t)
    assert (w1.job_id, w1.stop, w2.id) == (None, Stop.NONE, "w2")
    assert store.heartbeat("w1", now=t + 5) == Stop.NONE
    assert store.workers()[0].heartbeat_at == t + 5
    assert store.request_stop(Stop.WARM, ["w1"]) == 1
    assert store.heartbeat("w1", now=t + 6) == Stop.WARM
    assert store.heartbeat("w2", now=t + 6) == Stop.NONE
    assert store.request_stop(Stop.COLD) == 2
    assert store.request_stop(Stop.WARM) == 2  # never downgrades a cold stop
    assert store.heartbeat("w2", now=t + 7) == Stop.COLD
    assert store.request_stop(Stop.WARM, ["ghost"]) == 0
    store.unregister_worker("w1")
    assert [w.id for w in store.workers()] == ["w2"]
    assert store.heartbeat("w1", now=t + 8) is None
    assert store.heartbeat("never-registered", now=t + 8) is None
    store.unregister_worker("never-registered")


def test_renew_reports_a_stop_request(store, clock):
    store.register_worker("w1", pid=1, host="h", now=clock.now)
    add(store, clock.now, NewJob(command="x", id="j"))
    job = store.claim("w1", now=clock.now, lease=LEASE)
    assert store.renew(job, now=clock.now, lease=LEASE).stop == Stop.NONE
    store.request_stop(Stop.COLD, ["w1"])
    assert store.renew(job, now=clock.now + 1, lease=LEASE).stop == Stop.COLD
    assert store.workers()[0].heartbeat_at == clock.now + 1


# -- the transition table is what the stores do -------------------------------------------------

def test_every_listed_transition_happens_and_nothing_else(store, clock):
    """Drive each transition of lifecycle.TRANSITIONS once (the recording store fails on any
    other), then check that all of them, births and deletions were seen."""
    from queuectl.lifecycle import BORN, DELETABLE, TRANSITIONS

    store.register_worker("w1", pid=1, host="h", now=clock.now)
    add(store, clock.now, *(NewJob(command="x", id=f"j{i}", max_retries=1, priority=-i)
                            for i in range(6)))
    j0 = store.claim("w1", now=clock.now, lease=LEASE)                    # pending -> running
    store.finish(j0, OK, now=clock.now, policy=POLICY)                    # running -> completed
    j1 = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(j1, FAIL, now=clock.now, policy=POLICY)                  # running -> failed
    clock.advance(10)
    j1 = store.claim("w1", now=clock.now, lease=LEASE)                    # failed -> running
    store.finish(j1, FAIL, now=clock.now, policy=POLICY)                  # running -> dead
    store.retry_dead(["j1"], now=clock.now)                               # dead -> pending
    j1 = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(j1, Outcome(ok=False, give_back=True), now=clock.now,
                 policy=POLICY)                                           # running -> pending
    store.cancel(["j1"], now=clock.now)                                   # pending -> dead
    j2 = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(j2, FAIL, now=clock.now, policy=POLICY)
    store.cancel(["j2"], now=clock.now)                                   # failed -> dead
    assert store.purge_dead() == 2                                        # dead -> (gone)
    store.restart("j0", now=clock.now)                                    # completed -> pending
    j0 = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(j0, OK, now=clock.now, policy=POLICY)
    assert store.prune(before=clock.now + 1, states=[C]) == 1             # completed -> (gone)
    store.remove_job("j3")                                                # pending -> (gone)
    j4 = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(j4, FAIL, now=clock.now, policy=POLICY)
    store.remove_job(j4.id)                                               # failed -> (gone)
    listed = {(a, b) for a, after in TRANSITIONS.items() for b in after}
    listed |= {(None, b) for b in BORN} | {(a, None) for a in DELETABLE}
    assert store.seen == listed


def test_the_recorder_fails_on_a_transition_the_table_does_not_list(store):
    with pytest.raises(AssertionError, match="from completed to failed"):
        store._check("prune", {"a": C}, {"a": F})
    with pytest.raises(AssertionError, match="deleted running job"):
        store._check("prune", {"a": R}, {})
    with pytest.raises(AssertionError, match="made job 'a' running"):
        store._check("enqueue", {}, {"a": R})
