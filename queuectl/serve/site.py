"""The aiohttp application: the console page and its websocket (one console process per tab),
textual-serve's static files, /metrics and /healthz — every route behind the token (`access`).

Every error is a one-line `error: ...` text body with its status, never a traceback; store
reads run in threads of their own, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, NamedTuple

import jinja2
import textual_serve
from aiohttp import WSMsgType, web

from ..errors import QueueError
from ..sanitize import one_line
from ..store import open_store
from .access import Gate
from .tabs import Tabs

log = logging.getLogger("queuectl.serve")

STATIC = Path(textual_serve.__file__).parent / "static"
PAGE = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent),
                          autoescape=True).get_template("page.html")
MAX_WS_MESSAGE = 64 * 1024  # a browser sends keys and sizes: a few bytes each
MAX_TABS = 16
SIZE_LIMITS = (10, 1000)  # columns and rows a tab may ask for

_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self' {ws}; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class Settings(NamedTuple):
    location: str  # the store (as given: a URL keeps its password; never shown)
    display: str  # the store as shown to people
    public_url: str | None  # the address people use (behind a proxy); None: the Host header
    debug: bool = False


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=f"error: {message}\n", content_type="text/plain")


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    """Every failure as one line of text with its status; details only in the log."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text if (exc.text or "").startswith("error: ") else \
            f"error: {(exc.reason or 'error').lower()}\n"
        return web.Response(status=exc.status, text=text, content_type="text/plain",
                            headers=_kept(exc.headers))
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as exc:  # a bug: the client gets one line, the log the type and message
        log.error("internal error on %s: %s: %s", one_line(request.path, 200),
                  type(exc).__name__, one_line(str(exc), 300), exc_info=log.isEnabledFor(logging.DEBUG))
        return _text(500, "internal error (see the server's log)")


def _kept(headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k in ("Allow", "WWW-Authenticate", "Location")}


@web.middleware
async def hardening(request: web.Request, handler) -> web.StreamResponse:
    """Headers that keep the page to itself: no framing, no sniffing, no caching, no referrer."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _harden(exc)
        raise
    _harden(response)
    return response


def _harden(response: web.StreamResponse) -> None:
    if response.prepared:  # a websocket: its headers are gone already
        return
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")


class Site:
    """The routes and what they share: the tabs, the token gate, the metrics reader."""

    def __init__(self, settings: Settings, gate: Gate, metrics: Callable[[], bytes],
                 health: Callable[[], str]) -> None:
        self.settings = settings
        self.gate = gate
        self.tabs = Tabs(settings.location, MAX_TABS)
        self._metrics = metrics
        self._health = health
        # One thread each: the metrics reader keeps its store connection (and run totals) in
        # its thread; a slow scrape never holds up a health check.
        self._metrics_thread = ThreadPoolExecutor(1, thread_name_prefix="metrics")
        self._health_thread = ThreadPoolExecutor(1, thread_name_prefix="health")

    def app(self) -> web.Application:
        app = web.Application(middlewares=[hardening, errors, self.gate.middleware],
                              client_max_size=64 * 1024)
        app.add_routes([
            web.get("/", self.page),
            web.get("/ws", self.console),
            web.static("/static", STATIC, show_index=False, follow_symlinks=False),
            web.get("/metrics", self.metrics),
            web.get("/healthz", self.healthz),
            web.get("/favicon.ico", _no_icon),
        ])
        app.on_shutdown.append(self._close_tabs)
        return app

    def close(self) -> None:
        self._metrics_thread.shutdown(wait=True)
        self._health_thread.shutdown(wait=True)

    # -- the console
    def _origin(self, request: web.Request) -> tuple[str, str]:
        """(the page's origin, its websocket URL)."""
        if self.settings.public_url:
            base = self.settings.public_url.rstrip("/")
        else:
            base = f"{'https' if request.secure else 'http'}://{request.host}"
        scheme, rest = base.split("://", 1)
        return base, ("wss" if scheme == "https" else "ws") + "://" + rest + "/ws"

    async def page(self, request: web.Request) -> web.Response:
        origin, websocket = self._origin(request)
        html = PAGE.render(static="/static/", websocket_url=websocket,
                           location=self.settings.display)
        response = web.Response(text=html, content_type="text/html")
        response.headers["Content-Security-Policy"] = _CSP.format(ws=websocket)
        if not request.cookies.get(self.gate.cookie):
            self.gate.remember(response)  # a bearer-token client's page can open its websocket
        return response

    async def console(self, request: web.Request) -> web.StreamResponse:
        origin, _ = self._origin(request)
        sent = request.headers.get("Origin")
        if sent is not None and sent.rstrip("/") != origin:
            raise web.HTTPForbidden(text="error: this page's origin may not open the console\n")
        if self.tabs.full:
            raise web.HTTPServiceUnavailable(
                text=f"error: {MAX_TABS} console tabs are open already; close one\n")
        ws = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_WS_MESSAGE)
        await ws.prepare(request)
        tab = self.tabs.new(ws.send_bytes, ws.send_str, ws.close)
        try:
            await tab.start(_size(request.query.get("width"), 80),
                            _size(request.query.get("height"), 24))
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await _forward(ws, tab, message.data)
        finally:
            await self.tabs.close(tab)
            await ws.close()
        return ws

    async def _close_tabs(self, app: web.Application) -> None:
        for tab in list(self.tabs.open):
            await self.tabs.close(tab)

    # -- metrics and health
    async def metrics(self, request: web.Request) -> web.Response:
        from ..metrics.exposition import CONTENT_TYPE

        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(self._metrics_thread, self._metrics)
        except QueueError as exc:
            return _text(503, f"the store does not answer: {one_line(str(exc), 500)}")
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def healthz(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            text = await loop.run_in_executor(self._health_thread, self._health)
        except QueueError as exc:
            return _text(503, f"the store does not answer: {one_line(str(exc), 500)}")
        return web.Response(text=text + "\n", content_type="text/plain")


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def _size(text: str | None, default: int) -> int:
    try:
        value = int(text) if text is not None else default
    except ValueError:
        value = default
    return min(max(value, SIZE_LIMITS[0]), SIZE_LIMITS[1])


async def _forward(ws: web.WebSocketResponse, tab, data: str) -> None:
    """One message of the page's protocol to the tab; anything malformed is ignored."""
    try:
        envelope = json.loads(data)
    except ValueError:
        return
    if not isinstance(envelope, list) or not envelope or not isinstance(envelope[0], str):
        return
    kind, body = envelope[0], envelope[1] if len(envelope) > 1 else None
    if kind == "stdin" and isinstance(body, str):
        await tab.send_bytes(body.encode("utf-8", "replace"))
    elif kind == "resize" and isinstance(body, dict):
        await tab.set_terminal_size(_size(str(body.get("width")), 80),
                                    _size(str(body.get("height")), 24))
    elif kind == "ping":
        await ws.send_json(["pong", body if isinstance(body, (str, int, float)) else None])
    elif kind == "blur":
        await tab.blur()
    elif kind == "focus":
        await tab.focus()


def health_check(location: str) -> str:
    """Open the store afresh and read its counts: what `/healthz` reports."""
    store = open_store(location, create=False)
    try:
        status = store.status(store.now(), 60.0)
        return f"ok: {sum(status.counts.values())} jobs"
    finally:
        store.close()
