"""The state machine as tables: what every way a run can end does to its job (lifecycle.py)."""

from __future__ import annotations

import itertools

import pytest

from queuectl.errors import Conflict, JobNotFound
from queuectl.lifecycle import (BORN, DELETABLE, RESCUE_LIMIT, TRANSITIONS, Dependency, Outcome,
                                RetryPolicy, RunOutcome, check_cancellable, check_restartable,
                                check_retryable, finish_change, given_back_state, met_by,
                                never_runs, releases, require_found, rescue_change, why_blocked)
from queuectl.workflow import AFTER_ANY, AFTER_OK
from queuectl.models import Job, JobState

NOW = 1_000.0
POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)
P, R, C, F, D = (JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED,
                 JobState.DEAD)

OUTCOMES = {
    "ok": Outcome(ok=True, exit_code=0),
    "failed": Outcome(ok=False, exit_code=3, error="exit code 3"),
    "killed": Outcome(ok=False, signal="SIGSEGV", error="killed by SIGSEGV"),
    "cancelled": Outcome(ok=False, cancelled=True, exit_code=None, signal="SIGTERM",
                         error="killed while running"),
    "given back": Outcome(ok=False, give_back=True, error="interrupted by a cold stop"),
}


def running(tries: int = 1, max_retries: int = 2, rescues: int = 0, **fields) -> Job:
    """A claimed job on its `tries`-th counted try (the claim counted it)."""
    return Job(id="j", command="x", state=R, priority=0, tries=tries, max_retries=max_retries,
               timeout=None, cwd="/", run_at=NOW - 50, created_at=NOW - 60, updated_at=NOW - 5,
               started_at=NOW - 5, worker_id="w1", lease_until=NOW + 10, lease=15.0,
               rescues=rescues, token="t", attempt=tries, last_error="before", **fields)


# (outcome, retries left after this try, cancel requested) -> (state, run outcome, tries delta)
FINISH = {
    ("ok", True, False): (C, RunOutcome.COMPLETED, 0),
    ("ok", False, False): (C, RunOutcome.COMPLETED, 0),
    ("ok", True, True): (C, RunOutcome.COMPLETED, 0),  # it completed before the cancel landed
    ("ok", False, True): (C, RunOutcome.COMPLETED, 0),
    ("failed", True, False): (F, RunOutcome.FAILED, 0),
    ("failed", False, False): (D, RunOutcome.FAILED, 0),
    ("failed", True, True): (D, RunOutcome.CANCELLED, 0),  # cancelled: never retried
    ("failed", False, True): (D, RunOutcome.CANCELLED, 0),
    ("killed", True, False): (F, RunOutcome.FAILED, 0),
    ("killed", False, False): (D, RunOutcome.FAILED, 0),
    ("killed", True, True): (D, RunOutcome.CANCELLED, 0),
    ("killed", False, True): (D, RunOutcome.CANCELLED, 0),
    ("cancelled", True, False): (D, RunOutcome.CANCELLED, 0),
    ("cancelled", False, False): (D, RunOutcome.CANCELLED, 0),
    ("cancelled", True, True): (D, RunOutcome.CANCELLED, 0),
    ("cancelled", False, True): (D, RunOutcome.CANCELLED, 0),
    ("given back", True, False): ("waiting", RunOutcome.INTERRUPTED, -1),
    ("given back", False, False): ("waiting", RunOutcome.INTERRUPTED, -1),
    ("given back", True, True): (D, RunOutcome.CANCELLED, 0),  # a cold stop does not undo a cancel
    ("given back", False, True): (D, RunOutcome.CANCELLED, 0),
}


def test_the_finish_table_covers_every_outcome_retries_left_and_cancel_flag():
    assert set(FINISH) == set(itertools.product(OUTCOMES, (True, False), (True, False)))


@pytest.mark.parametrize("key", sorted(FINISH, key=str), ids=lambda k: "-".join(map(str, k)))
def test_finish(key):
    name, left, cancel = key
    outcome = OUTCOMES[name]
    for tries in (1, 2, 3):  # first try and later ones
        max_retries = tries if left else tries - 1
        job = running(tries=tries, max_retries=max_retries)
        change = finish_change(job, outcome, now=NOW, policy=POLICY, cancel_requested=cancel)
        state, run_outcome, tries_delta = FINISH[key]
        if state == "waiting":
            state = F if tries > 1 else P
        assert (change.state, change.run_outcome, change.tries) == (state, run_outcome, tries_delta)
        assert change.state in TRANSITIONS[R]
        assert change.rescues == 0
        assert change.wakes_workers == (state in (P, F))
        assert change.cancelled == (run_outcome is RunOutcome.CANCELLED)
        if state is F and run_outcome is RunOutcome.FAILED:
            assert change.run_at == NOW + POLICY.base ** (tries - 1)  # the backoff rule
        else:
            assert change.run_at is None  # unchanged: a given-back job keeps its place in line
        assert change.finished_at == (NOW if state in (C, D) else None)
        if state is C:
            assert (change.error, change.exit_code) == (None, 0)
        elif run_outcome is RunOutcome.INTERRUPTED:
            assert change.error == "before"  # the last error of a real failure stays
        elif run_outcome is RunOutcome.CANCELLED:
            assert change.error.startswith("cancelled")
        else:
            assert change.error == outcome.error and change.run_error == outcome.error
            assert change.exit_code == outcome.exit_code


@pytest.mark.parametrize("state", [P, C, F, D])
def test_only_a_running_job_can_finish_or_be_rescued(state):
    job = running()._replace(state=state)
    for outcome in OUTCOMES.values():
        with pytest.raises(ValueError, match="not running"):
            finish_change(job, outcome, now=NOW, policy=POLICY)
    with pytest.raises(ValueError, match="not running"):
        rescue_change(job, died=True, now=NOW, policy=POLICY)


# (retries left, lost runs before this one, cancel requested) -> state
RESCUE = {
    (True, 0, False): F,
    (True, RESCUE_LIMIT - 2, False): F,
    (True, RESCUE_LIMIT - 1, False): D,  # this loss is the RESCUE_LIMIT-th: buried
    (False, 0, False): D,
    (True, 0, True): D,
    (False, RESCUE_LIMIT - 1, True): D,
}


@pytest.mark.parametrize("key", sorted(RESCUE), ids=lambda k: "-".join(map(str, k)))
@pytest.mark.parametrize("died", [True, False], ids=["died", "lapsed"])
def test_rescue(key, died):
    left, rescues, cancel = key
    job = running(tries=2, max_retries=2 if left else 1, rescues=rescues)
    change = rescue_change(job, died=died, now=NOW, policy=POLICY, cancel_requested=cancel)
    assert change.state is RESCUE[key]
    assert (change.run_outcome, change.rescues, change.tries) == (RunOutcome.LOST, 1, 0)
    how = "w1 died" if died else "w1 lost (lease expired)"
    assert change.run_error == f"worker {how}"
    if cancel:
        assert (change.cancelled, change.error) == (True, "cancelled")
    elif rescues + 1 >= RESCUE_LIMIT:
        assert change.error.endswith(f"lost {RESCUE_LIMIT} times, moved to the DLQ")
    else:
        assert change.error == f"worker {how}"
    assert change.run_at == (NOW + 2.0 if change.state is F else None)
    assert change.wakes_workers == (change.state is F)


@pytest.mark.parametrize("tries, state", [(1, P), (2, F), (5, F)])
def test_a_given_back_try_waits_as_it_did_before_the_claim(tries, state):
    assert given_back_state(running(tries=tries)) is state


def test_the_transition_table():
    assert set(TRANSITIONS) == set(JobState)
    assert BORN == {P} and DELETABLE == {P, F, C, D}  # never a running job
    for state, after in TRANSITIONS.items():
        assert state not in after


def test_admission_rules():
    check_retryable("j", D)
    for state in (P, R, C, F):
        with pytest.raises(Conflict, match="only dead jobs can be retried"):
            check_retryable("j", state)
    for state in (P, R, F):
        check_cancellable("j", state)
    for state in (C, D):
        with pytest.raises(Conflict, match=f"already {state.value}"):
            check_cancellable("j", state)
    require_found(["a"], {"a": P})
    with pytest.raises(JobNotFound, match="'b'"):
        require_found(["a", "b"], {"a": P})


@pytest.mark.parametrize("died", [True, False])
def test_a_lost_run_of_an_on_lost_fail_job_is_buried_not_run_again(died):
    job = running(tries=1, max_retries=5)._replace(on_lost="fail")
    change = rescue_change(job, died=died, now=NOW, policy=POLICY)
    assert (change.state, change.run_outcome, change.cancelled) == (D, RunOutcome.LOST, False)
    assert "not run again (on-lost fail)" in change.error
    cancelled = rescue_change(job, died=died, now=NOW, policy=POLICY, cancel_requested=True)
    assert (cancelled.state, cancelled.error) == (D, "cancelled")


# (kind, the dependency's state) -> met
MET = {(AFTER_OK, C): True, (AFTER_ANY, C): True, (AFTER_OK, D): False, (AFTER_ANY, D): True}


@pytest.mark.parametrize("kind", [AFTER_OK, AFTER_ANY])
@pytest.mark.parametrize("state", list(JobState) + [None])
def test_when_a_dependency_is_met(kind, state):
    assert met_by(kind, state) is MET.get((kind, state), False)
    assert (kind in releases(state)) is MET.get((kind, state), False) if state else True


def test_what_a_blocked_job_waits_for():
    deps = [Dependency("a", AFTER_OK, False, R), Dependency("b", AFTER_OK, False, D),
            Dependency("c", AFTER_OK, False, None), Dependency("d", AFTER_ANY, False, D),
            Dependency("e", AFTER_OK, True, C)]
    assert why_blocked(deps) == "waits for a, b (dead), c (gone), d"
    assert [never_runs(d) for d in deps] == [False, True, True, False, False]


def test_only_finished_jobs_restart():
    for state in (C, D):
        check_restartable("j", state)
    for state in (P, R, F):
        with pytest.raises(Conflict, match="only completed or dead"):
            check_restartable("j", state)
