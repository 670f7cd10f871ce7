"""The store contract for schedules and hooks, on every backend: each tick's job made once even
by racing firers, overlap and catch-up, pause and run-now; hooks enqueued in the transaction
of the transition, for their queue, never for a hook's own job."""

from __future__ import annotations

import threading

import pytest

from conftest import BACKENDS
from queuectl.errors import Conflict, InvalidInput, NotFound
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.models import JobState, NewJob
from queuectl.store.hooks import HOOKS_QUEUE
from queuectl.ticks import make_rule
from storehelp import expire

POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)
OK = Outcome(ok=True, exit_code=0)
FAIL = Outcome(ok=False, exit_code=3, error="exit code 3")
LEASE = 10.0


def every(seconds: str, now: float):
    return make_rule(cron=None, every=seconds, tz=None, now=now)


def jobs_of(store, name: str) -> list:
    return [j for j in store.list_jobs(limit=None) if j.origin == f"schedule:{name}"]


def run(store, now, outcome=OK, queues=None):
    job = store.claim("w1", now=now, lease=LEASE, queues=queues)
    assert job is not None
    store.finish(job, outcome, now=now, policy=POLICY)
    return job


# -- schedules --------------------------------------------------------------------------------

def test_a_schedule_fires_once_per_tick_and_moves_on(store, clock):
    t0 = clock.now
    s = store.add_schedule("tick", every("10s", t0), {"command": "echo tick", "queue": "cron"},
                           "/srv", overlap="allow", catch_up="once", now=t0)
    assert s.next_at == t0 + 10 and store.next_tick() == t0 + 10
    assert store.fire_schedules(t0 + 9.9, default_max_retries=0) == []
    [fired] = store.fire_schedules(t0 + 10.2, default_max_retries=0)
    assert (fired.why, fired.tick) == ("fired", t0 + 10)
    assert store.fire_schedules(t0 + 10.3, default_max_retries=0) == []  # that tick is done
    [job] = jobs_of(store, "tick")
    assert (job.command, job.queue, job.unique_key, job.cwd) == (
        "echo tick", "cron", f"schedule:tick:{t0 + 10:.3f}", "/srv")
    assert store.schedule("tick").last_job == job.id
    assert store.next_tick() == t0 + 20
    with pytest.raises(Conflict, match="exists"):
        store.add_schedule("tick", every("10s", t0), {"command": "x"}, "/", overlap="skip",
                           catch_up="once", now=t0)


def test_racing_firers_make_each_tick_once(store, clock, tmp_path, request):
    t0 = clock.now
    store.add_schedule("race", every("1s", t0), {"command": "true"}, "/", overlap="allow",
                       catch_up="once", now=t0)
    others = [BACKENDS[request.node.callspec.params["store"]](tmp_path, request) for _ in range(4)]
    try:
        for tick in range(1, 21):
            now = t0 + tick + 0.05
            barrier = threading.Barrier(len(others))
            errors = []

            def fire(s):
                try:
                    barrier.wait()
                    s.fire_schedules(now, default_max_retries=0)
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=fire, args=(s,)) for s in others]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            assert not errors, errors
    finally:
        for s in others:
            s.close()
    keys = sorted(j.unique_key for j in jobs_of(store, "race"))
    assert keys == sorted(f"schedule:race:{t0 + k:.3f}" for k in range(1, 21))


def test_overlap_skip_records_a_skip_while_the_last_job_runs(store, clock):
    t0 = clock.now
    store.add_schedule("slow", every("10s", t0), {"command": "sleep 30"}, "/", overlap="skip",
                       catch_up="once", now=t0)
    store.fire_schedules(t0 + 10, default_max_retries=0)
    running = store.claim("w1", now=t0 + 10, lease=LEASE)
    [fired] = store.fire_schedules(t0 + 20, default_max_retries=0)
    assert fired.why == "skipped" and store.schedule("slow").skipped == 1
    store.finish(running, OK, now=t0 + 25, policy=POLICY)
    [fired] = store.fire_schedules(t0 + 30, default_max_retries=0)
    assert fired.why == "fired" and len(jobs_of(store, "slow")) == 2


def test_missed_ticks_are_caught_up_once_or_not_at_all(store, clock):
    t0 = clock.now
    for name, catch_up in (("once", "once"), ("none", "none")):
        store.add_schedule(name, every("1h", t0), {"command": "true"}, "/", overlap="allow",
                           catch_up=catch_up, now=t0)
    late = t0 + 3 * 3600 + 120  # nothing ran at 3 ticks; the last one was 2 minutes ago
    fired = {f.schedule: f for f in store.fire_schedules(late, default_max_retries=0)}
    assert fired["once"].why == "fired" and fired["none"].why == "missed"
    assert len(jobs_of(store, "once")) == 1 and jobs_of(store, "none") == []
    assert store.schedule("once").missed == 2 and store.schedule("none").missed == 3
    assert store.schedule("once").next_at == t0 + 4 * 3600


def test_pause_resume_run_now_and_remove(store, clock):
    t0 = clock.now
    store.add_schedule("p", every("10s", t0), {"command": "true"}, "/", overlap="allow",
                       catch_up="once", now=t0)
    assert store.pause_schedule("p", paused=True, now=t0).paused
    assert store.fire_schedules(t0 + 100, default_max_retries=0) == []
    assert store.next_tick() is None
    resumed = store.pause_schedule("p", paused=False, now=t0 + 105)
    assert resumed.next_at == t0 + 110  # the paused ticks are not made up
    job_id = store.run_schedule_now("p", now=t0 + 106, default_max_retries=0)
    assert store.get(job_id).origin == "schedule:p" and store.schedule("p").next_at == t0 + 110
    store.remove_schedule("p")
    with pytest.raises(NotFound):
        store.schedule("p")
    assert store.get(job_id).state is JobState.PENDING  # its jobs stay
    with pytest.raises(InvalidInput):
        store.add_schedule("bad", every("10s", t0), {"command": ""}, "/", overlap="skip",
                           catch_up="once", now=t0)


# -- hooks ------------------------------------------------------------------------------------

def test_a_hook_is_a_job_enqueued_with_the_transition(store, clock):
    dead_hook = store.add_hook("on-dead", "notify dead", queue=None, cwd="/srv", now=clock.now)
    store.add_hook("on-complete", "notify done", queue="reports", cwd="/srv", now=clock.now)
    store.add_hook("on-retry", "notify retry", queue=None, cwd="/srv", now=clock.now)
    store.enqueue([NewJob(command="report", id="r1", queue="reports"),
                   NewJob(command="other", id="o1", max_retries=1)],
                  now=clock.now, default_max_retries=0, default_cwd="/")
    run(store, clock.now, queues=["reports"])
    job = store.claim("w1", now=clock.now, lease=LEASE, queues=["default"])
    store.finish(job, FAIL, now=clock.now, policy=POLICY, head=[(1, b"it broke\n")])
    clock.advance(5)
    job = store.claim("w1", now=clock.now, lease=LEASE, queues=["default"])
    store.finish(job, FAIL, now=clock.now, policy=POLICY, head=[(2, b"again\n")])
    hooked = store.list_jobs(queue=HOOKS_QUEUE, limit=None)
    by_command = sorted((j.command, j.env["QUEUECTL_HOOK_JOB_ID"], j.env["QUEUECTL_HOOK_STATE"])
                        for j in hooked)
    assert by_command == [("notify dead", "o1", "dead"), ("notify done", "r1", "completed"),
                          ("notify retry", "o1", "failed")]
    dead = next(j for j in hooked if j.command == "notify dead")
    assert dead.origin == f"hook:{dead_hook.id}" and dead.cwd == "/srv"
    assert dead.env["QUEUECTL_HOOK_OUTPUT"] == "again\n"
    assert (dead.env["QUEUECTL_HOOK_EXIT_CODE"], dead.env["QUEUECTL_HOOK_ERROR"],
            dead.env["QUEUECTL_HOOK_ATTEMPT"], dead.env["QUEUECTL_HOOK_QUEUE"]) == (
        "3", "exit code 3", "2", "default")


def test_a_hooks_own_death_fires_no_hook(store, clock):
    store.add_hook("on-dead", "exit 1", queue=None, cwd="/", now=clock.now)
    store.enqueue([NewJob(command="false", id="x")], now=clock.now, default_max_retries=0,
                  default_cwd="/")
    run(store, clock.now, FAIL)
    [hook_job] = store.list_jobs(queue=HOOKS_QUEUE, limit=None)
    run(store, clock.now, FAIL, queues=[HOOKS_QUEUE])  # the hook's job dies too
    assert [j.id for j in store.list_jobs(queue=HOOKS_QUEUE, limit=None)] == [hook_job.id]


def test_cancel_and_rescue_fire_on_dead_hooks(store, clock):
    store.add_hook("on-dead", "tell", queue=None, cwd="/", now=clock.now)
    store.enqueue([NewJob(command="a", id="a"), NewJob(command="b", id="b")], now=clock.now,
                  default_max_retries=0, default_cwd="/")
    store.cancel(["a"], now=clock.now)
    store.claim("w1", now=clock.now, lease=LEASE)
    assert expire(store, clock.now + LEASE + 1) == ["b"]
    told = sorted(j.env["QUEUECTL_HOOK_JOB_ID"] for j in store.list_jobs(queue=HOOKS_QUEUE,
                                                                        limit=None))
    assert told == ["a", "b"]


def test_hook_list_test_and_remove(store, clock):
    hook = store.add_hook("on-dead", "tell", queue="q", cwd="/", now=clock.now)
    assert [(h.id, h.event, h.queue) for h in store.hooks()] == [(hook.id, "on-dead", "q")]
    job_id = store.test_hook(hook.id, now=clock.now)
    assert store.get(job_id).env["QUEUECTL_HOOK_JOB_ID"] == "sample-job"
    store.remove_hook(hook.id)
    assert store.hooks() == []
    with pytest.raises(NotFound):
        store.remove_hook(hook.id)
    with pytest.raises(InvalidInput, match="unknown hook event"):
        store.add_hook("on-whatever", "x", queue=None, cwd="/", now=clock.now)
