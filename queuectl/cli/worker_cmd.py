"""`queuectl worker`: start, stop and list worker processes."""

from __future__ import annotations

import shutil
import sys
import time
from typing import List, Optional

import typer

from ..durations import format_duration, iso, parse_duration, relative
from ..errors import InvalidInput
from ..models import validate_queue
from ..sanitize import one_line
from ..store.base import Stop
from ..store import display_location
from .app import fail, location, store, worker_app
from .render import emit_json, table
from ..config import live_window, settings_of as settings


@worker_app.command("start")
def worker_start(
    count: Optional[int] = typer.Option(None, "--count", "-n", min=1, max=256,
                                        help="Worker processes (default: the `workers` setting)."),
    burst: bool = typer.Option(False, "--burst", help="Exit once no job is eligible to run."),
    queue: Optional[List[str]] = typer.Option(None, "--queue", "-q", help="Serve only these queues (repeatable or comma-separated; default: all)."),
) -> None:
    """Run workers in the foreground. Ctrl+C: finish running jobs, then exit; twice: kill them."""
    from ..pool import Pool, log_to_stderr

    s = store(create=True)
    n = count if count is not None else max(1, settings(s).workers)
    s.close()
    served = None
    if queue:
        served = list(dict.fromkeys(validate_queue(q.strip()) for v in queue
                                    for q in v.split(",") if q.strip()))
    pool = Pool(location(), n, burst=burst, log=log_to_stderr, queues=served)
    log_to_stderr(f"starting {n} worker{'s' if n != 1 else ''} on {display_location(location())}"
                  + (f" for queue{'s' if len(served) != 1 else ''} {', '.join(served)}"
                     if served else "") + (" (burst)" if burst else ""))
    code = pool.run()
    if code:
        raise fail(f"workers stopped: they cannot use the store {display_location(location())} (see above)", code)


STILL_RUNNING = 75  # `worker stop --timeout` ran out: the stop goes on; ask again later


def _live(s) -> list:
    """The workers whose heartbeat is recent enough to count them alive."""
    now = s.now()
    window = live_window(settings(s))
    return [w for w in s.workers() if w.heartbeat_at >= now - window]


def _workers(live: list) -> str:
    return f"{len(live)} worker{'s' if len(live) != 1 else ''}"


def _jobs(live: list) -> str:
    """What the live workers are doing: "1 running job: a1b2", "idle"."""
    jobs = [one_line(w.job_id) for w in live if w.job_id]
    if not jobs:
        return "idle"
    shown = ", ".join(jobs[:3]) + (", …" if len(jobs) > 3 else "")
    return f"{len(jobs)} running job{'s' if len(jobs) != 1 else ''}: {shown}"


class _Progress:
    """One line on stderr, rewritten in place while stderr is a terminal (else not shown)."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.shown = ""

    def show(self, text: str) -> None:
        if not self.on or text == self.shown:
            return
        width = shutil.get_terminal_size((80, 24)).columns - 1
        text = text[:width]
        sys.stderr.write("\r" + text + " " * max(0, len(self.shown) - len(text)))
        sys.stderr.flush()
        self.shown = text

    def end(self, text: str | None = None) -> None:
        """Replace the progress line by `text` (a last line), or just end it."""
        if text is not None and not self.on:
            print(text, file=sys.stderr)
            return
        if text is not None:
            self.show(text)
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.shown = ""


@worker_app.command("stop")
def worker_stop(
    force: bool = typer.Option(False, "--force", help="Kill running jobs and give them back."),
    timeout: Optional[str] = typer.Option(
        None, "--timeout", help="Give up waiting after this long (e.g. 30s); exit 75 then."),
    no_wait: bool = typer.Option(False, "--no-wait", help="Ask them to stop and return at once."),
) -> None:
    """Ask every worker using this store to stop, and wait until they have exited.

    A warm stop (the default) waits for running jobs to finish, so it takes as long as the
    longest of them; --force kills them (their jobs go back to the queue uncounted)."""
    limit = parse_duration(timeout, "--timeout") if timeout is not None else None
    if no_wait and limit is not None:
        raise InvalidInput("--no-wait and --timeout: give one of them")
    s = store(create=False)
    n = s.request_stop(Stop.COLD if force else Stop.WARM, now=s.now())
    if n == 0:
        print("no workers are running on this store", file=sys.stderr)
        return
    how = "cold: running jobs are killed and given back" if force else "warm: running jobs finish first"
    asked = f"asked {n} worker{'s' if n != 1 else ''} to stop ({how})"
    if no_wait:
        print(f"{asked}; not waiting", file=sys.stderr)
        return
    live = _live(s)
    print(f"{asked}; waiting for {_workers(live)} ({_jobs(live)})", file=sys.stderr)
    progress = _Progress()
    started = time.monotonic()
    while live:
        waited = time.monotonic() - started
        if limit is not None and waited > limit:
            progress.end()
            raise fail(f"{_workers(live)} still running after {timeout} ({_jobs(live)})"
                       + ("" if force else "; they stop once their jobs end"),
                       STILL_RUNNING)
        progress.show(f"waiting for {_workers(live)} ({_jobs(live)}) … {int(waited)}s")
        time.sleep(0.1)
        live = _live(s)
    progress.end(f"all workers stopped after {format_duration(time.monotonic() - started)}")


@worker_app.command("list")
def worker_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Live workers: id, pid, host, started, last heartbeat, current job."""
    s = store(create=False)
    now = s.now()
    live = _live(s)
    if as_json:
        emit_json([{"id": w.id, "pid": w.pid, "host": w.host, "started_at": iso(w.started_at),
                    "heartbeat_at": iso(w.heartbeat_at), "job": w.job_id,
                    "stopping": bool(w.stop)} for w in live])
    elif live:
        table(["id", "pid", "host", "started", "heartbeat", "job"],
              [[w.id, str(w.pid), w.host, relative(w.started_at, now),
                relative(w.heartbeat_at, now), w.job_id or "-"] for w in live])
    else:
        print("no workers are running on this store", file=sys.stderr)
