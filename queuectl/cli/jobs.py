"""Commands about jobs: init, enqueue, list, status, show, logs, cancel, prune."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..durations import format_duration, parse_duration, relative
from ..errors import InvalidInput
from ..lifecycle import why_blocked
from ..models import JobState, validate_queue
from . import hot
from .app import app, store
from .render import dependency_json, emit_json, job_json, jobs_table, run_json, table


@app.command()
def init() -> None:
    """Create the store, or upgrade it to this version's schema, and check it (safe to repeat)."""
    s = store(create=True)
    s.verify()
    print(s.location)


@app.command()
def enqueue(
    spec: Optional[str] = typer.Argument(None, help='A JSON job spec, e.g. \'{"command": "echo hi"}\'.'),
    command: Optional[str] = typer.Option(None, "--command", "-c", help="The shell command to run."),
    job_id: Optional[str] = typer.Option(None, "--id", help="A job id (default: generated)."),
    queue: Optional[str] = typer.Option(None, "--queue", "-q", help="The queue (default: default); its settings are the job's defaults."),
    priority: Optional[int] = typer.Option(None, "--priority", "-p", help="Higher runs first (default: the queue's, else 0)."),
    max_retries: Optional[int] = typer.Option(None, "--max-retries", help="Retries after the first run."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Seconds or 30s/5m/2h."),
    delay: Optional[str] = typer.Option(None, "--delay", help="Run no sooner than this from now (30s, 5m)."),
    run_at: Optional[str] = typer.Option(None, "--run-at", help="Run no sooner than this ISO 8601 time."),
    file: Optional[str] = typer.Option(None, "--file", "-f", help="JSON Lines file of specs ('-' = stdin), all or nothing."),
    after: Optional[List[str]] = typer.Option(None, "--after", help="Run once these jobs completed (ids, repeatable or comma-separated)."),
    after_any: Optional[List[str]] = typer.Option(None, "--after-any", help="Run once these jobs ended, whichever way."),
    unique_key: Optional[str] = typer.Option(None, "--unique-key", help="Not again while a job with this key waits or runs: its id is printed instead."),
    unique_for: Optional[str] = typer.Option(None, "--unique-for", help="The key also covers jobs completed this long ago (1h)."),
    on_conflict: str = typer.Option("existing", "--on-conflict", help="A unique key already held: 'existing' (print that job's id) or 'error' (exit 4)."),
    env: Optional[List[str]] = typer.Option(None, "--env", "-e", help="KEY=VALUE for the command's environment (repeatable)."),
    cwd: Optional[str] = typer.Option(None, "--cwd", help="Run in this directory (default: where it is enqueued)."),
    on_lost: Optional[str] = typer.Option(None, "--on-lost", help="A run whose worker died: 'retry' (default) or 'fail' (to the DLQ, for commands that must not run twice)."),
) -> None:
    """Add jobs to the queue; prints their ids, one per line."""
    hot.enqueue(store, spec=spec, command=command, job_id=job_id, queue=queue, priority=priority,
                max_retries=max_retries, timeout=timeout, delay=delay, run_at=run_at, file=file,
                after=after, after_any=after_any, unique_key=unique_key, unique_for=unique_for,
                on_conflict=on_conflict, env=env, cwd=cwd, on_lost=on_lost)


def _states(values: list[str] | None) -> list[JobState] | None:
    """States from repeated and/or comma-separated --state values."""
    if not values:
        return None
    return [JobState.parse(p) for v in values for p in v.split(",") if p.strip()]


@app.command("list")
def list_jobs(
    state: Optional[List[str]] = typer.Option(None, "--state", "-s", help="pending, running (processing), completed, failed, dead; repeatable."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1_000_000, help="At most this many jobs."),
    search: Optional[str] = typer.Option(None, "--search", help="Only jobs whose id or command contains this text."),
    queue: Optional[str] = typer.Option(None, "--queue", "-q", help="Only jobs of this queue."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """List jobs: waiting ones in the order they will run, the others newest first."""
    s = store(create=False)
    if queue is not None:
        s.queue(validate_queue(queue))  # an unknown queue is an error, not an empty list
    jobs = s.list_jobs(_states(state), limit=limit, text=search, queue=queue)
    waits = s.waits_for([j.id for j in jobs if j.blocked])
    if as_json:
        emit_json([{**job_json(j), "waits_for": [dependency_json(d) for d in waits.get(j.id, [])]}
                   for j in jobs])
    elif jobs:
        jobs_table(jobs, s.now(), waits)
    else:
        print("no jobs", file=sys.stderr)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts per state, live workers, the oldest waiting job's age, recent throughput."""
    hot.status(store, as_json=as_json)


@app.command()
def show(job_id: str = typer.Argument(..., metavar="ID", help="The job's id."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Everything about one job, with one entry per attempt."""
    s = store(create=False)
    job = s.get(job_id)
    runs = s.runs(job_id)
    before, after = s.dependencies(job_id), s.dependents(job_id)
    if as_json:
        emit_json({**job_json(job), "dependencies": [dependency_json(d) for d in before],
                   "dependents": [dependency_json(d) for d in after],
                   "runs": [run_json(r) for r in runs]})
        return
    now = s.now()
    fields = job_json(job)
    fields["env"] = " ".join(f"{k}={v}" for k, v in fields["env"].items()) or None
    if before:
        fields["dependencies"] = why_blocked(before) or ", ".join(
            f"{d.after} ({d.kind}: {'met' if d.met else 'waiting'})" for d in before)
    if after:
        fields["dependents"] = ", ".join(d.after for d in after)
    for key in ("run_at", "created_at", "updated_at", "started_at", "finished_at"):
        value = getattr(job, key)
        fields[key] = f"{fields[key]}  ({relative(value, now)})" if value else "-"
    table(["field", "value"], [[k, "-" if v is None else str(v)] for k, v in fields.items()])
    if runs:
        print()
        table(["attempt", "started", "took", "outcome", "exit", "worker", "slot", "error"], [
            [str(r.attempt), relative(r.started_at, now),
             format_duration((r.finished_at or now) - r.started_at), r.outcome or "running",
             r.signal or ("" if r.exit_code is None else str(r.exit_code)), r.worker or "",
             "" if r.slot is None else str(r.slot), r.error or ""] for r in runs])


@app.command()
def logs(
    job_id: str = typer.Argument(..., metavar="ID", help="The job's id."),
    attempt: Optional[int] = typer.Option(None, "--attempt", "-a", min=1, max=2**31 - 1, help="Which attempt (default: the latest)."),
    follow: bool = typer.Option(False, "--follow", "-f", "-F", help="Keep printing while the job runs."),
    raw: bool = typer.Option(False, "--raw", help="Exact bytes even on a terminal (with --json: base64)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run and its output as one JSON object."),
) -> None:
    """A run's output: stdout to stdout, stderr to stderr."""
    if as_json and follow:
        raise InvalidInput("--json prints a run's output once; it does not take --follow")
    from .logfollow import output_json, print_output

    if as_json:
        emit_json(output_json(store(create=False), job_id, attempt, raw=raw))
    else:
        print_output(store(create=False), job_id, attempt, follow=follow, raw=raw)


@app.command()
def cancel(job_ids: List[str] = typer.Argument(..., metavar="ID...", help="Job ids."),
           with_dependents: bool = typer.Option(False, "--with-dependents", help="Also cancel every job that waits for them.")) -> None:
    """Cancel jobs: waiting ones go to the DLQ, running ones are killed (then go to the DLQ)."""
    s = store(create=False)
    result = s.cancel(job_ids, now=s.now(), with_dependents=with_dependents)
    for job_id, what in result.items():
        print(f"{job_id}\t{what}")


@app.command()
def prune(
    older_than: str = typer.Option(..., "--older-than", help="Age, e.g. 7d, 12h."),
    state: Optional[List[str]] = typer.Option(None, "--state", help="completed or dead (default both)."),
) -> None:
    """Delete finished jobs (and their runs and output) older than the given age."""
    age = parse_duration(older_than, "--older-than")
    states = _states(state) or [JobState.COMPLETED, JobState.DEAD]
    bad = [s.value for s in states if s not in (JobState.COMPLETED, JobState.DEAD)]
    if bad:
        raise InvalidInput(f"prune deletes only completed or dead jobs, not {bad[0]}")
    s = store(create=False)
    n = s.prune(before=s.now() - age, states=states)
    print(f"pruned {n} job{'s' if n != 1 else ''}")
