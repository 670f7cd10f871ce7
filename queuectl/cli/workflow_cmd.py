"""Commands on one job at a time — edit, restart, run-now, remove — and `wait`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import List, Optional

import typer

from ..durations import parse_duration, parse_iso
from ..errors import InvalidInput
from ..models import MAX_RETRIES_LIMIT, PRIORITY_RANGE, validate_queue, validate_spec
from .app import app, store
from .render import emit_json, job_json

EDITABLE_SPEC = ("command", "priority", "queue", "run_at", "timeout", "max_retries")


def _flag_changes(command, priority, queue, run_at, delay, timeout, max_retries, now) -> dict:
    changes: dict = {}
    if command is not None:
        changes["command"] = validate_spec({"command": command}).command
    if priority is not None:
        if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
            raise InvalidInput(f"--priority must be from {PRIORITY_RANGE[0]} to {PRIORITY_RANGE[1]}")
        changes["priority"] = priority
    if queue is not None:
        changes["queue"] = validate_queue(queue)
    if run_at is not None and delay is not None:
        raise InvalidInput("give --run-at or --delay, not both")
    if run_at is not None:
        changes["run_at"] = parse_iso(run_at, "--run-at")
    if delay is not None:
        changes["run_at"] = now + parse_duration(delay, "--delay")
    if timeout is not None:
        changes["timeout"] = None if timeout.strip().lower() == "none" else parse_duration(
            timeout, "--timeout")
    if max_retries is not None:
        if not 0 <= max_retries <= MAX_RETRIES_LIMIT:
            raise InvalidInput(f"--max-retries must be from 0 to {MAX_RETRIES_LIMIT}")
        changes["max_retries"] = max_retries
    return changes


def _edit_in_editor(job) -> dict:
    """The job's editable fields as JSON in $EDITOR (then validated as `enqueue` does)."""
    if not sys.stdin.isatty():
        raise InvalidInput("edit with no flags opens $EDITOR, which needs a terminal; "
                           "give the changes as flags (see queuectl edit --help)")
    shown = {k: v for k, v in job_json(job).items() if k in EDITABLE_SPEC}
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".json", prefix="queuectl-edit-",
                                     delete=False) as f:
        json.dump(shown, f, indent=2, ensure_ascii=False)
        f.write("\n")
        path = f.name
    try:
        if subprocess.call([*editor.split(), path]) != 0:
            raise InvalidInput(f"the editor ({editor}) failed; nothing changed")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    finally:
        os.unlink(path)
    try:
        edited = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the edited spec is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(edited, dict):
        raise InvalidInput("the edited spec must be a JSON object")
    unknown = set(edited) - set(EDITABLE_SPEC)
    if unknown:
        raise InvalidInput(f"{sorted(unknown)[0]!r} cannot be edited (editable: {', '.join(EDITABLE_SPEC)})")
    spec = validate_spec({k: v for k, v in edited.items() if v is not None and k != "run_at"}
                         | ({"run_at": edited["run_at"]} if edited.get("run_at") else {}))
    changes = {k: getattr(spec, k) for k in EDITABLE_SPEC
               if edited.get(k) != shown.get(k) and k in edited}
    if "timeout" in changes and edited.get("timeout") is None:
        changes["timeout"] = None
    return changes


@app.command()
def edit(
    job_id: str = typer.Argument(..., metavar="ID", help="A job that is not running."),
    command: Optional[str] = typer.Option(None, "--command", "-c", help="The new command."),
    priority: Optional[int] = typer.Option(None, "--priority", "-p"),
    queue: Optional[str] = typer.Option(None, "--queue", "-q"),
    run_at: Optional[str] = typer.Option(None, "--run-at", help="ISO 8601 time."),
    delay: Optional[str] = typer.Option(None, "--delay", help="Due this long from now."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="30s, 5m, 2h, or 'none'."),
    max_retries: Optional[int] = typer.Option(None, "--max-retries"),
) -> None:
    """Change a job that is not running (with no flags: its spec in $EDITOR)."""
    s = store(create=False)
    now = s.now()
    changes = _flag_changes(command, priority, queue, run_at, delay, timeout, max_retries, now)
    if not changes:
        changes = _edit_in_editor(s.get(job_id))
        if not changes:
            print("nothing changed", file=sys.stderr)
            return
    s.edit_job(job_id, now=now, **changes)
    print(job_id)


@app.command()
def restart(
    job_id: str = typer.Argument(..., metavar="ID", help="A completed or dead job."),
    edit_first: bool = typer.Option(False, "--edit", help="Edit its spec in $EDITOR first."),
) -> None:
    """Run a completed or dead job again, as a new attempt with a fresh retry budget."""
    s = store(create=False)
    if edit_first:
        changes = _edit_in_editor(s.get(job_id))
        if changes:
            s.edit_job(job_id, now=s.now(), **changes)
    job = s.restart(job_id, now=s.now())
    print(job.id)


@app.command("run-now")
def run_now(job_id: str = typer.Argument(..., metavar="ID", help="A delayed job, or one waiting for its retry.")) -> None:
    """Make a delayed or retrying job due now."""
    s = store(create=False)
    print(s.run_now(job_id, now=s.now()).id)


@app.command()
def remove(job_ids: List[str] = typer.Argument(..., metavar="ID...", help="Jobs that are not running."),
           yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete jobs that are not running, with their runs and output."""
    if not yes and sys.stdin.isatty():
        if not typer.confirm(f"Delete {len(job_ids)} job{'s' if len(job_ids) != 1 else ''} "
                             "with their runs and output?"):
            raise typer.Exit(1)
    s = store(create=False)
    for job_id in dict.fromkeys(job_ids):
        s.get(job_id)  # every id is checked before any is removed
    for job_id in dict.fromkeys(job_ids):
        s.remove_job(job_id)
        print(job_id)


@app.command()
def wait(
    job_ids: Optional[List[str]] = typer.Argument(None, metavar="[ID...]", help="The jobs to wait for."),
    queue: Optional[str] = typer.Option(None, "--queue", "-q", help="Every unfinished job of this queue."),
    all_jobs: bool = typer.Option(False, "--all", help="Every unfinished job."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Give up after this long (exit 6)."),
    as_json: bool = typer.Option(False, "--json", help="Print the jobs' final states as JSON."),
) -> None:
    """Wait until jobs end (completed or dead). Exit 0 if all completed; 5 if one is dead or can
    never run (it waits for a dead or deleted job); 6 when --timeout runs out."""
    from .waiting import run_wait

    chosen = sum((bool(job_ids), queue is not None, all_jobs))
    if chosen != 1:
        raise InvalidInput("give job ids, --queue or --all (one of them)")
    limit = None if timeout is None else parse_duration(timeout, "--timeout")
    code = run_wait(store(create=False), ids=job_ids, queue=validate_queue(queue) if queue else None,
                    limit=limit, as_json=as_json, emit=emit_json)
    if code:
        raise typer.Exit(code)
