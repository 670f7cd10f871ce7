"""Runs every measurement, each on a fresh store of its own (a temporary SQLite file, or a
throwaway schema on the PostgreSQL server the user named), and turns the results into a Report.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from functools import partial
from typing import Callable

from . import bigstore, figures, queuestore, reference
from .bare import PostgresBare, SQLiteBare, bare_for
from .report import Figure, Omitted, Report, Target, machine, median, percentile
from .stores import PostgresPlace, SQLitePlace

SHORT_IDLE, LONG_IDLE, SCALE_IDLE = 0.05, 2.0, 20.0
SMALL, LARGE = 1_000, 1_000_000
QUEUES_SMALL = 10_000  # waiting jobs in the always-run store of many queues
CROWD = 4  # the crowded drain runs this many times the workers (8 for the default 2)
P50_TARGET = {"sqlite": Target("value", "<=", 5.0), "postgresql": Target("value", "<=", 10.0)}
P99_TARGET = Target("value", "<=", 20.0)
VS_SQLITE_TARGET = Target("ratio", ">=", 0.5)  # a server store: within 2x of SQLite's drain
DURABILITY = {"sqlite": "workers NORMAL, enqueue FULL",
              "postgresql": "workers synchronous_commit=off, enqueue on"}


@dataclass(frozen=True)
class Options:
    jobs: int = 2000
    workers: int = 2
    runs: int = 10
    bulk: int = 100_000
    scale: bool = False

    @property
    def latency_samples(self) -> int:
        return 2 * self.runs

    @property
    def claims(self) -> int:
        return 20 * self.runs


def filesystem_of(path: str) -> str:
    """The type of the filesystem holding `path` ("ext4", "tmpfs"...), or "unknown"."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    mount = parts[1].replace("\\040", " ")
                    inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                    if inside and len(mount) >= len(best):
                        best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def _load() -> float | None:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _ms(seconds: float) -> float:
    return seconds * 1000.0


def _idle_key(idle: float) -> tuple[str, str]:
    """(label, key part) of an idle time: ("50 ms", "50ms"), ("2 s", "2s")."""
    if idle < 1:
        return f"{idle * 1000:g} ms", f"{idle * 1000:g}ms"
    return f"{idle:g} s", f"{idle:g}s"


def _latency_figures(found: dict[figures.Step, list[float]], floor: list[float],
                     floor_name: str, p50_target: Target) -> list[Figure]:
    """p50 and p99 of each unlimited step beside the bare dispatcher's; the p50 of each step
    with a queue limit beside the unlimited p50 after the same idle time."""
    out = []
    free = {step.idle: values for step, values in found.items() if step.limit is None}
    for step, values in found.items():
        label, key = _idle_key(step.idle)
        if step.limit is None:
            for p, target in ((50, p50_target), (99, P99_TARGET)):
                out.append(Figure(
                    f"dispatch_p{p}_{key}", f"dispatch latency p{p}, {label} idle",
                    percentile(values, p), "ms", f"{floor_name}, p{p}",
                    percentile(floor, p), target, len(values),
                    "enqueue commit -> `date +%s%N` runs in the job"))
        else:
            out.append(Figure(
                f"dispatch_p50_limited_{key}", f"dispatch latency p50, {label} idle, queue limit",
                percentile(values, 50), "ms", "our dispatch p50, no limit",
                percentile(free[step.idle], 50), p50_target, len(values),
                f"the job's queue has a concurrency limit of {step.limit}, a slot free"))
    return out


def _size_figures(place: SQLitePlace | PostgresPlace, bare: SQLiteBare | PostgresBare,
                  size: int, label: str, opts: Options, typer_ms: float,
                  claim_1k: float | None, progress: Callable[[str], None],
                  omitted: list[Omitted]) -> tuple[list[Figure], float]:
    """Claim, status and console figures on a store with `size` waiting jobs."""
    out = []
    with place.fresh(f"jobs-{label}") as fresh:
        db = fresh.db
        progress(f"building a store with {size + opts.claims:,} waiting jobs")
        bigstore.fill(db, size + opts.claims, fresh.dir, progress)
        progress(f"claim cost with {label} waiting jobs: {opts.claims} claims")
        claim = _ms(median(bigstore.claim_times(db, opts.claims)))
        if claim_1k is None:
            ref = _ms(median(bare.claim_times(label, size, opts.claims)))
            out.append(Figure(f"claim_{label}", f"one claim, {label} waiting", claim, "ms",
                              bare.names["claim"], ref, None, opts.claims))
        else:
            out.append(Figure(f"claim_{label}", f"one claim, {label} waiting", claim, "ms",
                              "our claim, 1k waiting", claim_1k, Target("ratio", "<=", 1.5),
                              opts.claims))
        progress(f"`queuectl status` with {label} jobs: {opts.runs} runs")
        status = _ms(median(bigstore.status_times(db, opts.runs)))
        out.append(Figure(f"status_{label}", f"`queuectl status`, {label} jobs", status, "ms",
                          "python -c 'import typer'", typer_ms,
                          Target("value", "<=", 200.0) if size >= LARGE else None, opts.runs))
        progress(f"console refresh with {label} jobs: {opts.runs} runs")
        times, how = bigstore.console_refresh_times(db, opts.runs)
        if times is None:
            omitted.append(Omitted(f"console_{label}", how))
        else:
            call = _ms(median(bigstore.status_call_times(db, opts.runs)))
            out.append(Figure(f"console_{label}", f"console refresh, {label} jobs",
                              _ms(median(times)), "ms", "Store.status() in process", call,
                              Target("value", "<=", 100.0) if size >= LARGE else None,
                              opts.runs, how))
    return out, claim


def _drain_figures(place: SQLitePlace | PostgresPlace, bare: SQLiteBare | PostgresBare,
                   opts: Options, progress: Callable[[str], None],
                   omitted: list[Omitted]) -> list[Figure]:
    w, n = opts.workers, opts.jobs
    many = CROWD * w
    progress(f"drain: {n} jobs, {w} queuectl worker(s) on {place.kind}")
    with place.fresh("drain") as fresh:
        ours = figures.drain(fresh, n, w)
    progress(f"drain reference: {n} jobs, {w} bare loop process(es)")
    bare_run = bare.drain(n, w)
    progress(f"raw spawn rate: {n} `sh -c true`, {w} process(es)")
    spawn = reference.spawn_rate(n, w)
    progress(f"drain with more workers: {n} jobs, {many} queuectl workers")
    with place.fresh("drain-crowd") as fresh:
        crowd = figures.drain(fresh, n, many)
    workers = f"{w} worker{'s' if w != 1 else ''}"
    out = [Figure("drain", f"drain, {n} jobs, {workers}", ours.rate, "jobs/s",
                  bare.names["drain"], bare_run.rate, Target("ratio", ">=", 1.0), n),
           Figure("drain_vs_spawn", f"drain vs raw spawn, {workers}", ours.rate, "jobs/s",
                  f"raw spawn rate, {w} processes", spawn, Target("ratio", ">=", 0.8), n),
           Figure("drain_many_workers", f"drain, {n} jobs, {many} workers", crowd.rate,
                  "jobs/s", f"the same drain, {workers}", ours.rate, Target("ratio", ">=", 0.9),
                  n, f"{many} workers on {os.cpu_count()} CPUs")]
    if ours.cpu_per_job is None:
        omitted.append(Omitted("worker_cpu", "no /proc to read the workers' CPU time from"))
    else:
        out.append(Figure("worker_cpu", f"worker CPU per job, {workers}",
                          _ms(ours.cpu_per_job), "ms", f"bare loop CPU per job, {w} processes",
                          _ms(bare_run.cpu_per_job), None, n,
                          "user+sys of the worker processes themselves, not of their jobs"))
    if isinstance(place, PostgresPlace):
        progress(f"drain on SQLite for comparison: {n} jobs, {w} queuectl worker(s)")
        with SQLitePlace(place.workdir).fresh("drain-sqlite") as fresh:
            sqlite = figures.drain(fresh, n, w)
        out.append(Figure("drain_vs_sqlite", f"drain vs SQLite, {workers}", ours.rate,
                          "jobs/s", "the same drain on a temporary SQLite store", sqlite.rate,
                          VS_SQLITE_TARGET, n))
    return out


def _queue_figures(place: SQLitePlace | PostgresPlace, size: int, label: str, opts: Options,
                   claim_1k: float, progress: Callable[[str], None]) -> list[Figure]:
    """Claims on a store of many queues (`queuestore`), by a worker serving all of them and by
    one serving three, beside our claim on one queue with 1k waiting."""
    plan = queuestore.layout()
    count = len(plan.names)
    with place.fresh(f"queues-{label}") as fresh:
        progress(f"building a store with {count} queues and {size + opts.claims:,} waiting jobs")
        queuestore.build(fresh.db, size, opts.claims, fresh.dir, plan, progress)
        progress(f"claim cost with {count} queues, {label} waiting: {opts.claims} claims, "
                 f"then {opts.claims} serving {len(plan.served)} queues")
        every = _ms(median(bigstore.claim_times(fresh.db, opts.claims)))
        few = _ms(median(bigstore.claim_times(fresh.db, opts.claims, plan.served)))
    gates = (f"{len(plan.limited)} with a concurrency limit of {plan.limit}, all taken; "
             f"{len(plan.paused)} paused")
    return [Figure(f"claim_{count}q_{label}", f"one claim, {count} queues, {label} waiting",
                   every, "ms", "our claim, 1 queue, 1k waiting", claim_1k,
                   Target("ratio", "<=", 1.5), opts.claims, gates),
            Figure(f"claim_{len(plan.served)}of{count}q_{label}",
                   f"one claim serving {len(plan.served)} of {count} queues, {label} waiting",
                   few, "ms", f"our claim serving all {count}, same store", every,
                   Target("ratio", "<=", 1.5), opts.claims,
                   "it serves one open, one full and one paused queue")]


def _measure(place: SQLitePlace | PostgresPlace, opts: Options,
             progress: Callable[[str], None], omitted: list[Omitted]) -> list[Figure]:
    bare = bare_for(place)
    out = _drain_figures(place, bare, opts, progress, omitted)

    plan = [figures.Step(SHORT_IDLE, opts.latency_samples),
            figures.Step(LONG_IDLE, opts.latency_samples)]
    if opts.scale:
        plan.append(figures.Step(SCALE_IDLE, opts.runs))
    plan.append(figures.Step(SHORT_IDLE, opts.latency_samples, limit=1))  # last: no gate before
    progress(f"dispatch reference: bare dispatcher, {opts.latency_samples} samples")
    floor = bare.dispatch_ms(opts.latency_samples, SHORT_IDLE)
    with place.fresh("latency") as fresh:
        found = figures.dispatch_latency(fresh, plan, progress)
    out.extend(_latency_figures(found, floor, bare.names["dispatch"], P50_TARGET[place.kind]))

    progress(f"bulk enqueue: {opts.bulk:,} jobs with `queuectl enqueue --file`")
    with place.fresh("bulk") as fresh:
        bulk = figures.bulk_enqueue(fresh, opts.bulk)
    raw = bare.insert_rate(opts.bulk)
    name = f"bulk enqueue --file, {opts.bulk:,} jobs"
    out += [Figure("bulk_enqueue", f"{name}, vs bare insert", bulk, "jobs/s",
                   bare.names["insert"], raw,
                   Target("ratio", ">=", 1.0), 1,
                   "wall time of the whole process (start-up and reading the file included); "
                   "the reference times its transaction on rows made beforehand"),
            Figure("bulk_enqueue_rate", name, bulk, "jobs/s", bare.names["insert"], raw,
                   Target("value", ">=", 100_000), 1)]

    progress(f"one `queuectl enqueue` process: {opts.runs} runs")
    with place.fresh("enqueue") as fresh, bare.one_shot(fresh.dir) as one_shot:
        enq, (stdlib, typer) = figures.enqueue_process(
            fresh, opts.runs, [one_shot, partial(reference.python_import_seconds, "typer")])
    enq_ms, typer_ms = _ms(median(enq)), _ms(median(typer))
    out += [Figure("enqueue_process", "one `queuectl enqueue` process", enq_ms, "ms",
                   bare.names["one_shot"], _ms(median(stdlib)), Target("ratio", "<=", 2.0),
                   opts.runs, "the same interpreter, site enabled; the same row, same store"),
            Figure("enqueue_process_vs_typer", "one `queuectl enqueue`, vs import typer", enq_ms,
                   "ms", "python -c 'import typer'", typer_ms, None, opts.runs)]

    small, claim_1k = _size_figures(place, bare, SMALL, "1k", opts, typer_ms, None, progress,
                                    omitted)
    out.extend(small)
    out.extend(_queue_figures(place, QUEUES_SMALL, "10k", opts, claim_1k, progress))
    if opts.scale:
        large, _ = _size_figures(place, bare, LARGE, "1M", opts, typer_ms, claim_1k, progress,
                                 omitted)
        out.extend(large)
        out.extend(_queue_figures(place, LARGE, "1M", opts, claim_1k, progress))
    else:
        omitted.append(Omitted("1M-job figures", "run with --scale (takes several minutes)"))
    return out


def run(opts: Options, progress: Callable[[str], None], db: str | None = None) -> Report:
    """Every measurement on temporary SQLite stores, or, when `db` is a PostgreSQL URL, on
    throwaway schemas in its database (each dropped afterwards, also on failure)."""
    started = time.monotonic()
    load_before = _load()
    omitted: list[Omitted] = []
    with tempfile.TemporaryDirectory(prefix="queuectl-bench-") as workdir:
        fs = filesystem_of(workdir)
        place = PostgresPlace(db, workdir) if db else SQLitePlace(workdir)
        try:
            out = _measure(place, opts, progress, omitted)
            store = place.describe()
        finally:
            place.close()
        if isinstance(place, PostgresPlace) and place.failed_drops:
            store["left_behind"] = list(place.failed_drops)
    settings = {**asdict(opts), "durability": DURABILITY[place.kind],
                "store_filesystem": fs, "seconds": round(time.monotonic() - started, 1),
                "load_before": load_before, "load_after": _load()}
    notes = []
    cpus = os.cpu_count() or 1
    busiest = max((x for x in (load_before, settings["load_after"]) if x is not None), default=0)
    if busiest > cpus / 2:
        notes.append(f"the machine was busy (load average up to {busiest:g} on {cpus} CPUs): "
                     "absolute figures are skewed; the references ran in the same conditions")
    if store.get("left_behind"):
        notes.append("could not drop schema(s) " + ", ".join(store["left_behind"])
                     + "; drop them with DROP SCHEMA ... CASCADE")
    return Report(machine=machine(), settings=settings, figures=tuple(out),
                  omitted=tuple(omitted), notes=tuple(notes), store=store)
