"""Run `queuectl serve`: bind, start the pool (if any), serve until a signal, stop everything.

Stopping: the first Ctrl+C / SIGTERM closes the listening socket and every tab's console, then
stops the pool warm (running jobs finish); a second one stops it cold (they are killed and given
back). SIGHUP (the terminal closed) stops cold at once. Nothing started here outlives `serve`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import threading
import time
from typing import NamedTuple

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..errors import PermissionDenied, QueueError
from ..sanitize import one_line
from ..store import open_store
from .access import Gate
from .site import Settings, Site, health_check

log = logging.getLogger("queuectl.serve")
SHUTDOWN_WAIT = 10.0  # seconds open requests get to finish once `serve` stops


class AddressUnavailable(QueueError):
    """The address cannot be listened on (the port is taken, or the address is not ours)."""


class Options(NamedTuple):
    location: str
    display: str
    host: str
    port: int
    workers: int
    token: str
    token_from_env: bool
    public_url: str | None
    debug: bool = False


class _OneLine(logging.Formatter):
    """`HH:MM:SS message`, one inert line (untrusted text cannot move the cursor or colour
    the terminal); a traceback only with --debug."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        line = time.strftime("%H:%M:%S ", time.localtime(record.created)) + one_line(
            record.getMessage(), 2000)
        if self.debug and record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine(debug))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("asyncio", "aiohttp.websocket"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)


class AccessLog(AbstractAccessLogger):
    """One line per request: client, method, path (never the query, which may hold the
    token), status and time."""

    def log(self, request, response, time: float) -> None:
        self.logger.info("%s %s %s %s %.1f ms", request.remote, one_line(request.method, 20),
                         one_line(request.path, 200), response.status, time * 1000)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or a one-line error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressUnavailable(f"--host {host!r}: cannot resolve it ({exc})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise AddressUnavailable(f"cannot listen on {where}: the port is in use "
                                     "(choose another with --port)") from None
        if exc.errno == errno.EACCES:
            raise PermissionDenied(f"cannot listen on {where}: permission denied "
                                   "(ports below 1024 need privileges)") from None
        raise AddressUnavailable(f"cannot listen on {where}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


class PoolKeeper:
    """The one pool of a `serve` (never one per tab), owned by one thread: it supervises the
    pool until asked to stop, then stops it warm or, once asked again, cold."""

    def __init__(self, location: str, count: int) -> None:
        from ..pool import Pool, log_to_stderr

        self.pool = Pool(location, count, log=log_to_stderr)
        self._stop = threading.Event()
        self._cold = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pool", daemon=True)

    def start(self) -> None:
        try:
            self.pool.start()
        except BaseException:
            self.pool.stop(cold=True, timeout=10)  # whatever it had started
            raise
        self._thread.start()

    def busy(self) -> int:
        return self.pool.busy()

    def stop(self, cold: bool = False) -> None:
        if cold:
            self._cold.set()
        self._stop.set()

    def join(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()

    def _run(self) -> None:
        from ..pool import SUPERVISE_EVERY

        try:
            while not self._stop.wait(SUPERVISE_EVERY):
                self.pool.supervise()
            self.pool.request_stop(cold=self._cold.is_set())
            while self.pool.worker_ids():
                if self._cold.is_set() and not self.pool.cold:
                    self.pool.request_stop(cold=True)
                time.sleep(0.05)
        finally:
            self.pool.stop(cold=self.pool.cold or self._cold.is_set(), timeout=10)


def url_of(o: Options, port: int) -> str:
    """The address people open (without the token)."""
    if o.public_url:
        return o.public_url.rstrip("/") + "/"
    host = o.host
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def run(o: Options) -> int:
    """Serve until stopped; 0 when stopped by a signal."""
    setup_logging(o.debug)
    sock = listen(o.host, o.port)  # before the pool starts: a taken port fails at once
    try:
        keeper = PoolKeeper(o.location, o.workers) if o.workers else None
        if keeper is not None:
            keeper.start()
        try:
            asyncio.run(_serve(o, sock, keeper))
        finally:
            if keeper is not None:  # stopped already, unless serving failed: then stop cold
                keeper.stop(cold=True)
                keeper.join()
    finally:
        sock.close()
    return 0


async def _serve(o: Options, sock: socket.socket, keeper: PoolKeeper | None) -> None:
    from ..metrics.exposition import render
    from ..metrics.reader import MetricsReader

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    asked = 0

    def on_stop_signal() -> None:
        nonlocal asked
        asked += 1
        if asked == 1:
            stopping.set()
        elif keeper is not None and asked == 2:
            log.info("cold stop: killing running jobs and giving them back")
            keeper.stop(cold=True)

    def on_hangup() -> None:
        if keeper is not None:
            keeper.stop(cold=True)
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_stop_signal)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)

    port = sock.getsockname()[1]
    url = url_of(o, port)
    gate = Gate(o.token, cookie=f"queuectl_token_{port}", secure=url.startswith("https://"))
    reader = MetricsReader(lambda: open_store(o.location, create=False))
    site = Site(Settings(o.location, o.display, o.public_url, o.debug), gate,
                metrics=lambda: render(reader.read()), health=lambda: health_check(o.location))
    runner = web.AppRunner(site.app(), handle_signals=False, access_log_class=AccessLog,
                           access_log=logging.getLogger("queuectl.serve.access"),
                           shutdown_timeout=SHUTDOWN_WAIT)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    loop.run_in_executor(site._metrics_thread, _warm, reader)

    pool = f"with a pool of {o.workers} worker{'s' if o.workers != 1 else ''}" if keeper \
        else "watching only (no workers)"
    log.info("serving the console of %s on %s, %s; Ctrl+C to stop", o.display, url, pool)
    if o.token_from_env:
        print(url, flush=True)  # the operator knows the token: it is not printed
    else:
        print(f"{url}?token={o.token}", flush=True)  # the one place the token is shown

    await stopping.wait()
    log.info("stopping: closing %d console tab(s)", len(site.tabs.open))
    await runner.cleanup()
    await loop.run_in_executor(site._metrics_thread, reader.close)
    site.close()
    if keeper is not None:
        if not keeper.pool.cold and asked < 2:
            log.info("warm stop: waiting for %d running job(s) to finish (Ctrl+C again to kill "
                     "them and give them back)", keeper.busy())
        keeper.stop()
        await loop.run_in_executor(None, keeper.join)  # signals are still handled meanwhile
    log.info("stopped")


def _warm(reader) -> None:
    """Read the run totals once at start, so the first scrape does not pay for it."""
    try:
        reader.read()
    except QueueError as exc:
        log.warning("metrics: the store does not answer yet: %s", exc)
