"""Metrics: run totals counted exactly once from the store's run history (the pure fold as
tables, then against every backend after a known workload), the exposition text parsed by
prometheus_client's own parser, and `queuectl metrics`."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from clihelp import assert_error, open_db, run_cli, seed
from queuectl.lifecycle import Outcome, RetryPolicy
from queuectl.metrics.exposition import render
from queuectl.metrics.reader import MetricsReader
from queuectl.metrics.tally import BOUNDS, RunTally, Totals
from queuectl.models import JobState, NewJob
from queuectl.store.run_reads import RunRow
from storehelp import expire

POLICY = RetryPolicy(base=2.0, cap=None, jitter=0.0)
LEASE = 15.0
OK = Outcome(ok=True, exit_code=0)
FAIL = Outcome(ok=False, exit_code=1, error="exit code 1")


# -- the fold, as tables

def done(i: int, started: float, took: float, outcome: str = "completed") -> RunRow:
    return RunRow(i, started, started + took, outcome)


def going(i: int, started: float) -> RunRow:
    return RunRow(i, started, None, None)


def counted(tally: RunTally) -> dict[str, int]:
    return {outcome: t.count for (_, outcome), t in tally.totals.items() if t.count}


def scrape(tally: RunTally, rows, open_rows=None, settled_before=1000.0) -> None:
    """One scrape: `rows` after the cursor, then `open_rows` (the store's rows for the open
    ids; None: not read in this scrape)."""
    tally.begin()
    tally.take(rows, settled_before)
    if open_rows is not None:
        tally.take_open(open_rows)
    tally.end()


@pytest.mark.parametrize("seconds, first_bucket", [
    (0.0, 0.05), (0.05, 0.05), (0.0501, 0.1), (1.0, 1), (3600.0, 3600), (3600.5, None),
])
def test_a_run_falls_in_every_bucket_from_the_first_bound_it_does_not_exceed(seconds, first_bucket):
    totals = Totals()
    totals.add(seconds)
    expected = [1 if first_bucket is not None and b >= first_bucket else 0 for b in BOUNDS]
    assert totals.at_most == expected and totals.count == 1 and totals.seconds == seconds


def test_the_same_rows_seen_twice_are_counted_once():
    tally = RunTally()
    rows = [done(1, 10, 1), done(2, 11, 2, "failed")]
    scrape(tally, rows)
    scrape(tally, rows)
    assert counted(tally) == {"completed": 1, "failed": 1}
    assert tally.cursor == 2 and not tally.open and not tally.counted_ahead


def test_the_cursor_waits_for_recent_runs_and_counts_them_once_meanwhile():
    """A run id taken by a transaction that commits later (PostgreSQL) must not be stepped
    over: the cursor stays behind runs younger than SETTLE, which are counted once all the same."""
    tally = RunTally()
    scrape(tally, [done(1, 10, 1), done(3, 995, 1)], settled_before=990)
    assert tally.cursor == 1 and counted(tally) == {"completed": 2}
    # Run 2 commits late; every scrape re-reads from the cursor.
    scrape(tally, [done(2, 994, 1), done(3, 995, 1)], settled_before=990)
    assert counted(tally) == {"completed": 3} and tally.cursor == 1
    scrape(tally, [done(2, 994, 1), done(3, 995, 1)], settled_before=2000)
    assert counted(tally) == {"completed": 3} and tally.cursor == 3 and not tally.counted_ahead


def test_a_run_passed_unfinished_is_counted_when_it_finishes_and_dropped_when_it_is_gone():
    tally = RunTally()
    scrape(tally, [going(1, 10), going(2, 11), done(3, 12, 1)])
    assert tally.cursor == 3 and set(tally.open) == {1, 2}
    scrape(tally, [], open_rows=[done(1, 10, 5, "failed")])  # 2 was given back: its row is gone
    assert counted(tally) == {"completed": 1, "failed": 1} and not tally.open
    scrape(tally, [], open_rows=[done(1, 10, 5, "failed")])
    assert counted(tally) == {"completed": 1, "failed": 1}


def test_ids_handed_out_again_after_the_newest_runs_were_pruned_are_new_runs():
    """SQLite reuses the highest rowid once it is deleted: runs 2 and 3 were pruned, and new
    runs got ids 2 and 3 again. The cursor row no longer matches, so the cursor goes back to the
    newest run that is still the one it passed."""
    tally = RunTally()
    scrape(tally, [done(1, 10, 1), done(2, 11, 1), done(3, 12, 1)])
    assert counted(tally) == {"completed": 3}
    new3 = done(3, 50, 1, "failed")
    assert not tally.cursor_intact(new3) and not tally.cursor_intact(None)
    assert tally.cursor_intact(done(3, 12, 1))
    tally.rewind(done(1, 10, 1))
    scrape(tally, [done(2, 49, 1, "failed"), new3])
    assert counted(tally) == {"completed": 3, "failed": 2} and tally.cursor == 3


def test_seeding_starts_from_the_store_totals_and_the_unfinished_runs():
    from queuectl.store.run_reads import RunTotal

    tally = RunTally()
    at_most = tuple(1 if b >= 1 else 0 for b in BOUNDS)
    tally.seed([RunTotal("completed", 4, 10.0, at_most)], going(9, 100), [going(7, 90), going(9, 100)])
    assert counted(tally) == {"completed": 4} and tally.cursor == 9 and set(tally.open) == {7, 9}
    scrape(tally, [going(9, 100), done(10, 101, 1)], open_rows=[done(7, 90, 2), going(9, 100)])
    assert counted(tally) == {"completed": 6} and set(tally.open) == {9}


# -- against the store


def workload(store, clock) -> None:
    """A known mix of outcomes: 3 completed (0.02 s, 1 s, 100 s), a job failing twice to the
    DLQ, one cancelled while running, one lost with its worker, one given back by a cold stop,
    one still running, one pending."""
    ids = store.enqueue([NewJob(command="true", id=f"ok{i}", priority=5) for i in range(3)]
                        + [NewJob(command="false", id="bad", max_retries=1, priority=4),
                           NewJob(command="sleep 9", id="cancelled"),
                           NewJob(command="sleep 9", id="lost", max_retries=1),
                           NewJob(command="sleep 9", id="back"),
                           NewJob(command="sleep 9", id="busy"),
                           NewJob(command="true", id="waiting", run_at=clock.now + 3600)],
                        now=clock.now, default_max_retries=0, default_cwd="/")
    assert len(ids) == 9
    store.register_worker("w1", 4242, "box", clock.now)

    def claim(job_id):
        job = store.claim("w1", now=clock.now, lease=LEASE)
        assert job is not None and job.id == job_id, job
        return job

    for i, took in enumerate((0.02, 1.0, 100.0)):
        job = claim(f"ok{i}")
        store.finish(job, OK, now=clock.advance(took), policy=POLICY)
    job = claim("bad")
    store.finish(job, FAIL, now=clock.advance(2), policy=POLICY)
    clock.advance(10)
    job = claim("bad")
    store.finish(job, FAIL, now=clock.advance(3), policy=POLICY)
    job = claim("cancelled")
    store.cancel(["cancelled"], now=clock.now)
    store.finish(job, Outcome(ok=False, exit_code=None, signal="SIGKILL", error="killed",
                              cancelled=True), now=clock.advance(4), policy=POLICY)
    claim("lost")
    assert expire(store, clock.advance(LEASE + 1)) == ["lost"]
    job = claim("back")  # the lost job waits for its retry meanwhile
    store.finish(job, Outcome(ok=False, give_back=True, error="cold stop"),
                 now=clock.advance(0.5), policy=POLICY)
    assert claim("back").id == "back"
    store.register_worker("w1", 4242, "box", clock.now)


def truth(store) -> dict[str, list[float]]:
    """The finished runs' durations per outcome, from every job's own run history."""
    out: dict[str, list[float]] = {}
    for job in store.list_jobs(None, limit=None):
        for run in store.runs(job.id):
            if run.finished_at is not None:
                out.setdefault(run.outcome, []).append(run.finished_at - run.started_at)
    return out


def families(text: bytes) -> dict[str, dict[tuple, float]]:
    """Parsed by prometheus_client's own parser: sample name -> {sorted labels: value}."""
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


Q = ("queue", "default")  # the label of the default queue


def check_against_store(got: dict, store, clock) -> None:
    status = store.status(clock.now, 30)
    for state in JobState:
        assert got["queuectl_jobs"][(Q, ("state", state.value))] == status.counts[state], state
    assert got["queuectl_dead_letter_jobs"][(Q,)] == status.counts[JobState.DEAD]
    runs = truth(store)
    assert set(runs) == {"completed", "failed", "cancelled", "lost", "interrupted"}
    for outcome in ("completed", "failed", "cancelled", "lost", "interrupted"):
        took = runs.get(outcome, [])
        key = (("outcome", outcome), Q)
        assert got["queuectl_runs_finished_total"][key] == len(took), outcome
        assert got["queuectl_run_duration_seconds_count"][key] == len(took)
        assert math.isclose(got["queuectl_run_duration_seconds_sum"][key], sum(took),
                            abs_tol=1e-6)
        buckets = got["queuectl_run_duration_seconds_bucket"]
        for bound in BOUNDS:
            from prometheus_client.utils import floatToGoString

            le = (("le", floatToGoString(bound)), ("outcome", outcome), Q)
            assert buckets[le] == sum(1 for t in took if t <= bound), (outcome, bound)
        assert buckets[(("le", "+Inf"), ("outcome", outcome), Q)] == len(took)


def test_metrics_after_a_known_workload_match_the_store(store, clock):
    workload(store, clock)
    reader = MetricsReader(lambda: store)
    got = families(render(reader.read()))
    check_against_store(got, store, clock)
    assert got["queuectl_runs_finished_total"][(("outcome", "completed"), Q)] == 3
    assert got["queuectl_runs_finished_total"][(("outcome", "failed"), Q)] == 2
    assert got["queuectl_jobs"][(Q, ("state", "running"))] == 1
    assert got["queuectl_jobs"][(Q, ("state", "dead"))] == 2  # bad, cancelled
    assert got["queuectl_jobs"][(Q, ("state", "failed"))] == 1  # lost, waiting for its retry
    # The store's clock is past the test's: the lost job's retry is due, the oldest ready job.
    assert got["queuectl_oldest_ready_job_age_seconds"][()] > 0


def test_counters_carry_on_across_scrapes_and_a_restart_starts_from_the_store(store, clock):
    workload(store, clock)
    reader = MetricsReader(lambda: store)
    reader.read()
    busy = store.list_jobs([JobState.RUNNING])[0]
    store.finish(busy, OK, now=clock.advance(7), policy=POLICY)  # a run passed unfinished
    store.enqueue([NewJob(command="true", id="later")], now=clock.now, default_max_retries=0,
                  default_cwd="/")
    store.finish(store.claim("w1", now=clock.now, lease=LEASE), FAIL, now=clock.advance(1),
                 policy=POLICY)
    got = families(render(reader.read()))
    check_against_store(got, store, clock)
    restarted = families(render(MetricsReader(lambda: store).read()))
    for name in ("queuectl_runs_finished_total", "queuectl_run_duration_seconds_bucket"):
        assert restarted[name] == got[name]


def test_runs_that_reuse_the_ids_of_pruned_runs_are_counted(store, clock):
    store.enqueue([NewJob(command="true", id=f"a{i}") for i in range(3)], now=clock.now,
                  default_max_retries=0, default_cwd="/")
    store.register_worker("w1", 4242, "box", clock.now)
    for _ in range(3):
        store.finish(store.claim("w1", now=clock.now, lease=LEASE), OK, now=clock.advance(1),
                     policy=POLICY)
    reader = MetricsReader(lambda: store)
    reader.read()
    assert store.prune(before=clock.advance(1), states=[JobState.COMPLETED]) == 3
    store.enqueue([NewJob(command="false", id=f"b{i}") for i in range(2)], now=clock.now,
                  default_max_retries=0, default_cwd="/")
    for _ in range(2):
        store.finish(store.claim("w1", now=clock.now, lease=LEASE), FAIL, now=clock.advance(1),
                     policy=POLICY)
    got = families(render(reader.read()))
    assert got["queuectl_runs_finished_total"][(("outcome", "completed"), Q)] == 3  # a counter
    assert got["queuectl_runs_finished_total"][(("outcome", "failed"), Q)] == 2


def test_a_store_that_fails_is_reopened_and_the_totals_carry_on(tmp_path, clock):
    db = tmp_path / "q.db"
    seed(db, {"command": "true", "id": "one"})
    opened = []

    def opener():
        opened.append(open_db(db))
        return opened[-1]

    reader = MetricsReader(opener)
    reader.read()
    opened[-1].close()  # as a failing connection would be: the next read fails...
    with pytest.raises(Exception):
        reader.read()
    reader.read()  # ...and the one after opens the store again
    assert len(opened) == 2
    reader.close()


def test_every_value_is_per_queue_with_its_limit_and_pause(store, clock):
    store.set_queue("gpu", now=clock.now, concurrency=2)
    store.enqueue([NewJob(command="true", id="g1", queue="gpu"),
                   NewJob(command="true", id="g2", queue="gpu"),
                   NewJob(command="true", id="d1")], now=clock.now, default_max_retries=0,
                  default_cwd="/")
    store.pause_queue("default")
    store.register_worker("w1", 4242, "box", clock.now)
    job = store.claim("w1", now=clock.now, lease=LEASE)
    store.finish(job, OK, now=clock.advance(2), policy=POLICY)
    store.claim("w1", now=clock.now, lease=LEASE)
    got = families(render(MetricsReader(lambda: store).read()))
    gpu, default = ("queue", "gpu"), ("queue", "default")
    assert got["queuectl_jobs"][(gpu, ("state", "completed"))] == 1
    assert got["queuectl_jobs"][(gpu, ("state", "running"))] == 1
    assert got["queuectl_jobs"][(default, ("state", "pending"))] == 1
    assert got["queuectl_queue_concurrency_limit"] == {(gpu,): 2}
    assert got["queuectl_queue_paused"] == {(gpu,): 0, (default,): 1}
    assert got["queuectl_runs_finished_total"][(("outcome", "completed"), gpu)] == 1
    assert got["queuectl_runs_finished_total"][(("outcome", "completed"), default)] == 0


# -- the command


def test_queuectl_metrics_prints_the_same_text_once(tmp_path):
    db = tmp_path / "q.db"
    seed(db, {"command": "true", "id": "one"}, {"command": "false", "id": "two", "max_retries": 0})
    code, out, err = run_cli("worker", "start", "--burst", "--count", "1", db=db)
    assert code == 0, err
    code, out, err = run_cli("metrics", db=db)
    assert code == 0 and err == "", err
    got = families(out.encode())
    assert got["queuectl_jobs"][(Q, ("state", "completed"))] == 1
    assert got["queuectl_runs_finished_total"][(("outcome", "completed"), Q)] == 1
    assert got["queuectl_runs_finished_total"][(("outcome", "failed"), Q)] == 1
    assert got["queuectl_workers"][()] == 0


@pytest.mark.parametrize("content, code, fragment", [
    (None, 66, "no queuectl store"),
    (b"this is not a database, just some text" * 100, 69, "not a queuectl store"),
])
def test_queuectl_metrics_on_a_store_that_cannot_be_opened_is_one_line(tmp_path, content, code,
                                                                        fragment):
    db = tmp_path / "q.db"
    if content is not None:
        db.write_bytes(content)
    assert_error(run_cli("metrics", db=db), code, fragment)
