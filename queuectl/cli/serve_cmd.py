"""`queuectl serve` (the console in a browser, /metrics, /healthz) and `queuectl metrics`."""

from __future__ import annotations

import os
import sys
from typing import Optional
from urllib.parse import urlsplit

import typer

from ..errors import InvalidInput
from ..store import display_location
from .app import app, location, store


def _public_url(text: str | None) -> str | None:
    if text is None:
        return None
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment \
            or parts.path not in ("", "/"):
        raise InvalidInput("--public-url must be http(s)://HOST[:PORT], e.g. "
                           "https://queue.example.com (the address of your TLS proxy)")
    return f"{parts.scheme}://{parts.netloc}"


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on (beyond loopback only with QUEUECTL_SERVE_TOKEN)."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port (0: any free port)."),
    workers: int = typer.Option(0, "--workers", "-w", min=0, max=256,
                                help="Workers of serve's one pool (0 = only watch); tabs never have their own."),
    public_url: Optional[str] = typer.Option(
        None, "--public-url", help="The address people open when a TLS proxy is in front "
                                   "(e.g. https://queue.example.com)."),
) -> None:
    """The console in a browser, with /metrics and /healthz, behind a token (printed once)."""
    from ..serve.access import TOKEN_ENV, check_token, is_loopback, new_token

    given = os.environ.pop(TOKEN_ENV, None)  # never handed on to workers, jobs or tabs
    token = check_token(given) if given is not None else new_token()
    if given is None and not is_loopback(host):
        raise InvalidInput(f"--host {host} is not a loopback address: set {TOKEN_ENV} (a long "
                           "random secret) to serve beyond this machine, behind a TLS proxy")
    url = _public_url(public_url)
    store(create=workers > 0).close()  # a missing or unusable store: one line, before binding
    from ..serve.server import Options, run

    loc = location()
    run(Options(loc, display_location(loc), host, port, workers, token, given is not None, url))


@app.command("metrics")
def metrics() -> None:
    """Print the metrics of /metrics once (for node_exporter's textfile collector or cron)."""
    from ..metrics.exposition import render
    from ..metrics.reader import MetricsReader

    reader = MetricsReader(lambda: store(create=False))
    try:
        text = render(reader.read())
    finally:
        reader.close()
    sys.stdout.buffer.write(text)
