"""`queuectl schedule` (recurring jobs) and `queuectl hook` (a job when a job reaches a state)."""

from __future__ import annotations

import os
import shlex
import sys
from typing import List, Optional

import typer

from ..durations import iso, relative
from ..errors import InvalidInput
from ..models import validate_id, validate_spec
from ..sanitize import one_line
from ..store.hooks import EVENTS
from ..ticks import CATCH_UP, OVERLAP, make_rule
from .app import hook_app, schedule_app, store
from .render import emit_json, table
from ..config import settings_of as settings


def _command(words: List[str]) -> str:
    if not words:
        raise InvalidInput("give the command after --, e.g. -- ./nightly-report.sh")
    return words[0] if len(words) == 1 else shlex.join(words)


def _template(command: str, queue, priority, timeout, max_retries, env, cwd, on_lost) -> dict:
    spec = {"command": command}
    for key, value in (("queue", queue), ("priority", priority), ("timeout", timeout),
                       ("max_retries", max_retries), ("on_lost", on_lost)):
        if value is not None:
            spec[key] = value
    if env:
        spec["env"] = list(env)
    validate_spec(spec)
    if env:
        spec["env"] = validate_spec(spec).env  # stored as an object
    return spec


def schedule_json(s, now: float) -> dict:
    return {"name": s.name, "cron": s.rule.cron, "tz": s.rule.tz, "every": s.rule.every,
            "spec": s.spec, "cwd": s.cwd, "next_at": None if s.paused else iso(s.next_at),
            "paused": s.paused, "overlap": s.overlap, "catch_up": s.catch_up,
            "last_job": s.last_job, "last_tick": iso(s.last_tick),
            "last_state": None if s.last_state is None else s.last_state.value,
            "skipped": s.skipped, "missed": s.missed, "created_at": iso(s.created_at)}


@schedule_app.command("add")
def schedule_add(
    name: str = typer.Argument(..., help="The schedule's name."),
    words: List[str] = typer.Argument(None, metavar="-- COMMAND...", help="The job's command."),
    cron: Optional[str] = typer.Option(None, "--cron", help="A cron expression, e.g. '0 3 * * *'."),
    every: Optional[str] = typer.Option(None, "--every", help="An interval, e.g. 15m."),
    tz: Optional[str] = typer.Option(None, "--tz", help="The cron's time zone, e.g. Europe/Berlin (default UTC)."),
    queue: Optional[str] = typer.Option(None, "--queue", "-q"),
    priority: Optional[int] = typer.Option(None, "--priority", "-p"),
    timeout: Optional[str] = typer.Option(None, "--timeout"),
    max_retries: Optional[int] = typer.Option(None, "--max-retries"),
    env: Optional[List[str]] = typer.Option(None, "--env", "-e", help="KEY=VALUE (repeatable)."),
    cwd: Optional[str] = typer.Option(None, "--cwd", help="Run there (default: here)."),
    on_lost: Optional[str] = typer.Option(None, "--on-lost", help="retry or fail."),
    overlap: str = typer.Option("skip", "--overlap", help="A tick while its last job still runs: skip (default) or allow."),
    catch_up: str = typer.Option("once", "--catch-up", help="Ticks missed while nothing ran: once (one job) or none."),
) -> None:
    """Add a recurring job: a new job at each tick, made by whichever pool runs."""
    name = validate_id(name, "schedule name", 64)
    if overlap not in OVERLAP:
        raise InvalidInput(f"--overlap must be one of: {', '.join(OVERLAP)}")
    if catch_up not in CATCH_UP:
        raise InvalidInput(f"--catch-up must be one of: {', '.join(CATCH_UP)}")
    spec = _template(_command(words or []), queue, priority, timeout, max_retries, env, None,
                     on_lost)
    where = os.path.abspath(cwd) if cwd is not None else os.getcwd()
    s = store(create=True)
    now = s.now()
    added = s.add_schedule(name, make_rule(cron=cron, every=every, tz=tz, now=now), spec, where,
                           overlap=overlap, catch_up=catch_up, now=now)
    print(f"schedule {name}: {added.rule.describe()}, next at {iso(added.next_at)} "
          f"({relative(added.next_at, now)})", file=sys.stderr)


def _rows(schedules, now: float) -> list[list[str]]:
    rows = []
    for s in schedules:
        nxt = "paused" if s.paused else relative(s.next_at, now)
        last = "-" if s.last_job is None else (
            f"{s.last_job} ({s.last_state.value if s.last_state else 'gone'})")
        rows.append([s.name, s.rule.describe(), nxt, last, s.spec["command"]])
    return rows


@schedule_app.command("list")
def schedule_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Every schedule: its rule, its next run, its last job and that job's state."""
    s = store(create=False)
    now = s.now()
    found = s.schedules()
    if as_json:
        emit_json([schedule_json(x, now) for x in found])
    elif found:
        table(["schedule", "rule", "next", "last job", "command"], _rows(found, now), flex=4)
    else:
        print("no schedules", file=sys.stderr)


@schedule_app.command("show")
def schedule_show(name: str = typer.Argument(...),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """One schedule, whole."""
    s = store(create=False)
    now = s.now()
    value = schedule_json(s.schedule(name), now)
    if as_json:
        emit_json(value)
        return
    table(["field", "value"], [[k, "-" if v is None else one_line(str(v))]
                               for k, v in value.items()])


@schedule_app.command("pause")
def schedule_pause(name: str = typer.Argument(...)) -> None:
    """Make no more jobs of it until resumed."""
    s = store(create=False)
    s.pause_schedule(name, paused=True, now=s.now())


@schedule_app.command("resume")
def schedule_resume(name: str = typer.Argument(...)) -> None:
    """Make its jobs again, from its next tick on (ticks while it was paused are not made up)."""
    s = store(create=False)
    s.pause_schedule(name, paused=False, now=s.now())


@schedule_app.command("remove")
def schedule_remove(name: str = typer.Argument(...)) -> None:
    """Forget a schedule (the jobs it made stay)."""
    store(create=False).remove_schedule(name)


@schedule_app.command("run-now")
def schedule_run_now(name: str = typer.Argument(...)) -> None:
    """Make one of its jobs now (its next tick stays as it is); prints the job's id."""
    s = store(create=False)
    print(s.run_schedule_now(name, now=s.now(), default_max_retries=settings(s).max_retries))


# -- hooks


@hook_app.command("add")
def hook_add(
    event: str = typer.Argument(..., help=f"One of: {', '.join(EVENTS)}."),
    words: List[str] = typer.Argument(None, metavar="-- COMMAND...", help="The hook's command."),
    queue: Optional[str] = typer.Option(None, "--queue", "-q", help="Only for jobs of this queue (default: all)."),
    cwd: Optional[str] = typer.Option(None, "--cwd", help="Run there (default: here)."),
) -> None:
    """When a job reaches that state, run COMMAND as a job of its own (in the `hooks` queue),
    with the job's id, command, queue, state, exit code, error, attempt and the tail of its
    output in QUEUECTL_HOOK_* variables. Prints the hook's id."""
    from ..models import validate_queue

    command = _command(words or [])
    validate_spec({"command": command})
    s = store(create=True)
    hook = s.add_hook(event, command, queue=None if queue is None else validate_queue(queue),
                      cwd=os.path.abspath(cwd) if cwd else os.getcwd(), now=s.now())
    print(hook.id)


@hook_app.command("list")
def hook_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Every hook, with its id."""
    found = store(create=False).hooks()
    if as_json:
        emit_json([{"id": h.id, "event": h.event, "queue": h.queue, "command": h.command,
                    "cwd": h.cwd, "created_at": iso(h.created_at)} for h in found])
    elif found:
        table(["id", "event", "queue", "command"],
              [[str(h.id), h.event, h.queue or "(every queue)", h.command] for h in found], flex=3)
    else:
        print("no hooks", file=sys.stderr)


def _hook_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{text[:40]!r} is not a hook id (hook list shows them)") from None


@hook_app.command("remove")
def hook_remove(hook_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Forget a hook."""
    store(create=False).remove_hook(_hook_id(hook_id))


@hook_app.command("test")
def hook_test(hook_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Enqueue the hook once against a made-up dead job; prints its job's id."""
    s = store(create=False)
    print(s.test_hook(_hook_id(hook_id), now=s.now()))

