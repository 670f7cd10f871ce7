"""Commands for the dead letter queue: list, retry, purge."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from ..errors import InvalidInput
from ..models import JobState
from .app import dlq_app, store
from .render import emit_json, job_json, jobs_table


@dlq_app.command("list")
def dlq_list(
    limit: int = typer.Option(100, "--limit", "-n", min=1, max=1_000_000, help="At most this many jobs."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """Dead jobs, newest first."""
    s = store(create=False)
    jobs = s.list_jobs([JobState.DEAD], limit=limit)
    if as_json:
        emit_json([job_json(j) for j in jobs])
    elif jobs:
        jobs_table(jobs, s.now())
    else:
        print("the DLQ is empty", file=sys.stderr)


@dlq_app.command("retry")
def dlq_retry(
    job_ids: Optional[List[str]] = typer.Argument(None, help="Dead jobs to retry."),
    all_jobs: bool = typer.Option(False, "--all", help="Retry every dead job."),
) -> None:
    """Move dead jobs back to pending with a fresh retry budget."""
    if bool(job_ids) == all_jobs:
        raise InvalidInput("give job ids or --all (one of them)")
    s = store(create=False)
    done = s.retry_dead(None if all_jobs else job_ids, now=s.now())
    sys.stdout.write("".join(i + "\n" for i in done))
    if all_jobs and not done:
        print("the DLQ is empty; nothing to retry", file=sys.stderr)


@dlq_app.command("purge")
def dlq_purge(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Delete every dead job, with its runs and output."""
    if not yes:
        if not sys.stdin.isatty():
            raise InvalidInput("refusing to purge without --yes (stdin is not a terminal)")
        if not typer.confirm("Delete every dead job and its output?"):
            raise typer.Exit(1)
    n = store(create=False).purge_dead()
    print(f"purged {n} dead job{'s' if n != 1 else ''}")
