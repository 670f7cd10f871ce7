"""`queuectl bench`: registered on the app; the measurement code is imported only when it runs."""

from __future__ import annotations

import signal
import sys

import typer

from ..cli.app import app, location
from ..store import is_url


HELP = (
    "Measure this queue on this machine: each figure beside a reference measured in the same "
    "run, with the ratio and the target it should meet.\n\n"
    "Without --db or QUEUECTL_DB, or when they name a file, every measurement runs on a "
    "temporary SQLite store of its own, deleted afterwards; the file named is never opened.\n\n"
    "When --db or QUEUECTL_DB is a PostgreSQL URL (postgresql://user@host:port/db), every "
    "measurement runs on that server instead, each in a throwaway schema "
    "queuectl_bench_<pid>_<n> of that database, dropped afterwards (also when the run fails or "
    "is interrupted); the URL's own ?schema= is never touched. The references are then bare "
    "psycopg loops on the same server, and the drain is also measured on a temporary SQLite "
    "store for comparison (target: within 2x of SQLite's).\n\n"
    "Every other QUEUECTL_* setting is ignored. Progress goes to stderr, results to stdout."
)


def server_url() -> str | None:
    """The PostgreSQL URL to measure on (--db, else QUEUECTL_DB), or None for SQLite."""
    given = location().strip()
    return given if is_url(given) else None


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # run the clean-up (workers, temporary files, schemas), exit 130


@app.command("bench", help=HELP)
def bench(
    jobs: int = typer.Option(2000, "--jobs", "-n", min=1, max=10_000_000,
                             help="Jobs drained by the workers (and by the bare reference loop)."),
    workers: int = typer.Option(2, "--workers", "-w", min=1, max=256,
                                help="Worker processes (and reference processes)."),
    runs: int = typer.Option(10, "--runs", "-r", min=1, max=1000,
                             help="Repetitions: medians of R processes, 2R latency samples per "
                                  "idle time (R after 20 s idle), 20R claims."),
    bulk: int = typer.Option(100_000, "--bulk", min=1, max=10_000_000,
                             help="Jobs in the bulk `enqueue --file` measurement."),
    scale: bool = typer.Option(False, "--scale",
                               help="Add the 1,000,000-job figures and the 20 s idle latency "
                                    "(several minutes)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Run every measurement and print the report (see HELP)."""
    from . import report as report_mod
    from .suite import Options, run

    def progress(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    result = run(Options(jobs=jobs, workers=workers, runs=runs, bulk=bulk, scale=scale),
                 progress, db=server_url())
    if as_json:
        import json

        sys.stdout.write(json.dumps(report_mod.to_json(result), indent=2) + "\n")
    else:
        sys.stdout.write(report_mod.render_table(result))
