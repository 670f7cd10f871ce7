"""A `Reading` in Prometheus' text exposition format, written by `prometheus_client`."""

from __future__ import annotations

from typing import Iterator

from ..lifecycle import RunOutcome
from ..models import JobState
from .labels import SCOPE, WHOLE
from .reader import Reading
from .tally import BOUNDS, Totals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Collector:
    """Hands one reading to prometheus_client's registry as metric families."""

    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    def collect(self) -> Iterator:
        from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                            HistogramMetricFamily)

        r = self.reading
        labels = list(SCOPE)
        jobs = GaugeMetricFamily("queuectl_jobs", "Jobs in the store, per state.",
                                 labels=labels + ["state"])
        dead = GaugeMetricFamily("queuectl_dead_letter_jobs",
                                 "Jobs in the dead letter queue (state dead).", labels=labels)
        for scope, counts in sorted(r.jobs.items()):
            for state in JobState:
                jobs.add_metric(list(scope) + [state.value], counts.get(state, 0))
            dead.add_metric(list(scope), counts.get(JobState.DEAD, 0))
        yield jobs
        yield dead

        limit = GaugeMetricFamily(
            "queuectl_queue_concurrency_limit",
            "The most jobs of a queue that run at once, on every host (queues with a limit).",
            labels=labels)
        paused = GaugeMetricFamily("queuectl_queue_paused", "1 while a queue is paused.",
                                   labels=labels)
        for scope in sorted(r.limits):
            if r.limits[scope] is not None:
                limit.add_metric(list(scope), r.limits[scope])
            paused.add_metric(list(scope), int(r.paused[scope]))
        yield limit
        yield paused
        yield GaugeMetricFamily(
            "queuectl_oldest_ready_job_age_seconds",
            "How long the job that became ready first, in any queue, has waited (0: none is "
            "ready).", value=r.oldest_ready_age)

        yield GaugeMetricFamily("queuectl_workers", "Live workers (a recent heartbeat).",
                                value=r.workers)
        yield GaugeMetricFamily("queuectl_busy_workers", "Live workers running a job.",
                                value=r.busy_workers)

        finished = CounterMetricFamily(
            "queuectl_runs_finished",
            "Runs that ended, per outcome (completed, failed, cancelled, lost, interrupted).",
            labels=labels + ["outcome"])
        durations = HistogramMetricFamily(
            "queuectl_run_duration_seconds", "How long runs took, per outcome.",
            labels=labels + ["outcome"])
        for (scope, outcome), totals in sorted(_with_every_outcome(r.runs, r.jobs).items()):
            finished.add_metric(list(scope) + [outcome], totals.count)
            buckets = [(_le(bound), n) for bound, n in zip(BOUNDS, totals.at_most)]
            buckets.append(("+Inf", totals.count))
            durations.add_metric(list(scope) + [outcome], buckets, totals.seconds)
        yield finished
        yield durations

        yield GaugeMetricFamily("queuectl_metrics_read_seconds",
                                "How long reading these values from the store took.",
                                value=r.read_seconds)


def _with_every_outcome(runs: dict[tuple, Totals], queues) -> dict[tuple, Totals]:
    """The run totals, with a zero for every known outcome of every queue not seen yet (so
    that `rate()` sees each series from the first scrape)."""
    out = dict(runs)
    scopes = {scope for scope, _ in runs} | set(queues) or {WHOLE}
    for scope in scopes:
        for outcome in RunOutcome:
            out.setdefault((scope, outcome.value), Totals())
    return out


def _le(bound: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(bound)


def render(reading: Reading) -> bytes:
    """The exposition text of `reading`."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(reading))
    return generate_latest(registry)
