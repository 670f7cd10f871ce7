"""`queuectl worker`: start, stop and list worker processes."""

from __future__ import annotations

import sys
import time
from typing import Optional

import typer

from ..durations import iso, parse_duration, relative
from ..errors import InvalidInput
from ..store.base import STOP_COLD, STOP_WARM
from ..store import display_location
from .app import fail, location, store, worker_app
from .render import emit_json, table
from ..config import settings_of as settings


@worker_app.command("start")
def worker_start(
    count: Optional[int] = typer.Option(None, "--count", "-n", min=1, max=256,
                                        help="Worker processes (default: the `workers` setting)."),
    burst: bool = typer.Option(False, "--burst", help="Exit once no job is eligible to run."),
) -> None:
    """Run workers in the foreground. Ctrl+C: finish running jobs, then exit; twice: kill them."""
    from ..pool import Pool, log_to_stderr

    s = store(create=True)
    n = count if count is not None else max(1, settings(s).workers)
    s.close()
    pool = Pool(location(), n, burst=burst, log=log_to_stderr)
    log_to_stderr(f"starting {n} worker{'s' if n != 1 else ''} on {display_location(location())}"
                  + (" (burst)" if burst else ""))
    code = pool.run()
    if code:
        raise fail(f"workers stopped: they cannot use the store {display_location(location())} (see above)", code)


@worker_app.command("stop")
def worker_stop(
    force: bool = typer.Option(False, "--force", help="Kill running jobs and give them back."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Give up waiting after this long (e.g. 30s)."),
) -> None:
    """Ask every worker using this store to stop, and wait until they have."""
    limit = parse_duration(timeout, "--timeout") if timeout is not None else None
    s = store(create=False)
    n = s.request_stop(STOP_COLD if force else STOP_WARM)
    if n == 0:
        print("no workers are running on this store", file=sys.stderr)
        return
    print(f"asked {n} worker{'s' if n != 1 else ''} to stop "
          f"({'cold' if force else 'warm: running jobs finish first'})", file=sys.stderr)
    lease = settings(s).lease
    deadline = None if limit is None else time.monotonic() + limit
    while True:
        now = s.now()
        alive = [w for w in s.workers() if w.heartbeat_at >= now - 2 * lease]
        if not alive:
            print("all workers stopped", file=sys.stderr)
            return
        if deadline is not None and time.monotonic() > deadline:
            raise InvalidInput(f"{len(alive)} worker(s) still running after {timeout}")
        time.sleep(0.1)


@worker_app.command("list")
def worker_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON array.")) -> None:
    """Live workers: id, pid, host, started, last heartbeat, current job."""
    s = store(create=False)
    now = s.now()
    lease = settings(s).lease
    live = [w for w in s.workers() if w.heartbeat_at >= now - 2 * lease]
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
