"""`queuectl bench`: registered on the app; the measurement code is imported only when it runs."""

from __future__ import annotations

import sys

import typer

from ..cli.app import app


HELP = (
    "Measure this queue on this machine: each figure beside a reference measured in the same "
    "run, with the ratio and the target of issue 5.\n\n"
    "Always runs on a temporary store, deleted afterwards: --db, QUEUECTL_DB and every other "
    "QUEUECTL_* setting are ignored. Progress goes to stderr, results to stdout."
)


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

    result = run(Options(jobs=jobs, workers=workers, runs=runs, bulk=bulk, scale=scale),
                 progress)
    if as_json:
        import json

        sys.stdout.write(json.dumps(report_mod.to_json(result), indent=2) + "\n")
    else:
        sys.stdout.write(report_mod.render_table(result))
