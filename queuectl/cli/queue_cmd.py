"""`queuectl queue`: named queues — list them, set their limit and defaults, pause, resume,
remove."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from ..durations import parse_duration
from ..errors import InvalidInput
from ..models import MAX_RETRIES_LIMIT, PRIORITY_RANGE, validate_queue
from ..store.queues import UNSET
from .app import queue_app, store
from .render import emit_json, queue_json, queues_table

MAX_CONCURRENCY = 100_000
NONE_WORDS = ("none", "unset", "default")


def _concurrency(text: str) -> int | None:
    value = text.strip().lower()
    if value in ("unlimited", "none"):
        return None
    if value == "0":
        raise InvalidInput("--concurrency 0 would never start a job: to stop a queue, "
                           "use queuectl queue pause")
    try:
        n = int(value)
    except ValueError:
        raise InvalidInput(f"--concurrency: {text[:40]!r} is not a whole number or 'unlimited'") from None
    if not 1 <= n <= MAX_CONCURRENCY:
        raise InvalidInput(f"--concurrency must be from 1 to {MAX_CONCURRENCY:,}, or unlimited")
    return n


def _whole(flag: str, text: str, low: int, high: int) -> int | None:
    if text.strip().lower() in NONE_WORDS:
        return None
    try:
        n = int(text.strip())
    except ValueError:
        raise InvalidInput(f"{flag}: {text[:40]!r} is not a whole number (or 'none')") from None
    if not low <= n <= high:
        raise InvalidInput(f"{flag} must be from {low} to {high} (or 'none')")
    return n


def _seconds(flag: str, text: str) -> float | None:
    if text.strip().lower() in NONE_WORDS:
        return None
    value = parse_duration(text, flag)
    if value <= 0:
        raise InvalidInput(f"{flag} must be greater than 0 (or 'none')")
    return value


def _base(text: str) -> float | None:
    if text.strip().lower() in NONE_WORDS:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"--backoff-base: {text[:40]!r} is not a number (or 'none')") from None
    if not 1 <= value <= 1000:
        raise InvalidInput("--backoff-base must be a number from 1 to 1000 (or 'none')")
    return value


@queue_app.command("list")
def queue_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Every queue: its limit, whether it is paused, its jobs per state, its defaults."""
    queues = store(create=False).queues()
    if as_json:
        emit_json([queue_json(q) for q in queues])
    elif queues:
        queues_table(queues)
    else:
        print("no queues yet (a queue exists once a job or `queuectl queue set` names it)",
              file=sys.stderr)


@queue_app.command("set")
def queue_set(
    name: str = typer.Argument(..., help="The queue's name (created if new)."),
    concurrency: Optional[str] = typer.Option(
        None, "--concurrency", "-c", help="At most this many of its jobs run at once, on every "
                                          "host (or 'unlimited')."),
    max_retries: Optional[str] = typer.Option(None, "--max-retries", help="Default retries of its jobs (or 'none')."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Default timeout of its jobs: 30s, 5m, 2h (or 'none')."),
    backoff_base: Optional[str] = typer.Option(None, "--backoff-base", help="Retry k of its jobs waits this ** (k - 1) seconds (or 'none')."),
    priority: Optional[int] = typer.Option(None, "--priority", help="Default priority of its jobs."),
    no_priority: bool = typer.Option(False, "--no-priority", help="Drop the default priority."),
) -> None:
    """Create a queue or change its limit and the defaults its new jobs take."""
    name = validate_queue(name)
    if priority is not None and no_priority:
        raise InvalidInput("--priority and --no-priority: give one of them")
    settings = {
        "concurrency": UNSET if concurrency is None else _concurrency(concurrency),
        "max_retries": UNSET if max_retries is None else _whole("--max-retries", max_retries, 0, MAX_RETRIES_LIMIT),
        "timeout": UNSET if timeout is None else _seconds("--timeout", timeout),
        "backoff_base": UNSET if backoff_base is None else _base(backoff_base),
        "priority": None if no_priority else UNSET if priority is None else priority,
    }
    if priority is not None and not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
        raise InvalidInput(f"--priority must be from {PRIORITY_RANGE[0]} to {PRIORITY_RANGE[1]}")
    s = store(create=True)
    queue = s.set_queue(name, now=s.now(), **{k: v for k, v in settings.items() if v is not UNSET})
    queues_table([queue])


@queue_app.command("pause")
def queue_pause(
    name: str = typer.Argument(..., help="The queue."),
    kill: bool = typer.Option(False, "--kill", help="Also stop its running jobs and give them "
                                                    "back uncounted."),
) -> None:
    """Start no more of its jobs, on every pool and host, until resumed (running ones finish)."""
    queue = store(create=False).pause_queue(validate_queue(name), kill=kill)
    what = ("its running jobs are stopped and go back to it" if kill else
            f"{queue.running} running job{'s' if queue.running != 1 else ''} finish first")
    print(f"paused queue {name}: no new jobs start; {what}", file=sys.stderr)


@queue_app.command("resume")
def queue_resume(name: str = typer.Argument(..., help="The queue.")) -> None:
    """Let a paused queue's jobs start again."""
    store(create=False).resume_queue(validate_queue(name))
    print(f"resumed queue {name}", file=sys.stderr)


@queue_app.command("remove")
def queue_remove(name: str = typer.Argument(..., help="The queue.")) -> None:
    """Forget an empty queue and its settings (refused while it holds jobs)."""
    store(create=False).remove_queue(validate_queue(name))
    print(f"removed queue {name}", file=sys.stderr)


@queue_app.command("show", hidden=True)
def queue_show(name: str = typer.Argument(...),
               as_json: bool = typer.Option(False, "--json")) -> None:
    queue = store(create=False).queue(validate_queue(name))
    if as_json:
        emit_json(queue_json(queue))
    else:
        queues_table([queue])
