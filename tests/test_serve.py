"""`queuectl serve` as a real process on a free loopback port: the token in front of every
route, /metrics against the store after a real workload, /healthz, bad input, and stopping
(warm, cold, SIGTERM, kill -9) with nothing left behind."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from clihelp import assert_error, cli_env, open_db, run_cli, seed, stored
from procs import processes_with_env
from servehelp import (HOST, descendants, free_port, get, gone, raw, start_serve, stop_serve,
                       wait_for)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "store" / "q.db"
    seed(path, {"command": "true", "id": "first"})
    return path


@pytest.fixture
def served(db):
    s = start_serve(db)
    yield s
    if s.proc.poll() is None:
        stop_serve(s)


def cookie_of(reply) -> str:
    return reply.headers["Set-Cookie"].split(";", 1)[0]


def parsed(text: str) -> dict[str, dict[tuple, float]]:
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


# -- access


@pytest.mark.parametrize("path", ["/", "/ws", "/metrics", "/healthz", "/static/js/textual.js",
                                  "/static/../../etc/passwd", "/nowhere"])
def test_every_route_refuses_a_request_without_the_token(served, path):
    for reply in (get(served, path), get(served, path, token="wrong-" + "x" * 40),
                  get(served, path, cookie=f"queuectl_token_{served.port}=nope"),
                  get(served, path + ("&" if "?" in path else "?") + "token=nope")):
        assert reply.status == 401, (path, reply.status)
        assert reply.text.startswith("error: ") and reply.text.count("\n") == 1
        assert served.token not in reply.text
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_tokened_url_sets_a_strict_cookie_and_drops_the_token_from_the_address(served):
    assert served.url == f"http://{HOST}:{served.port}/?token={served.token}"
    assert len(served.token) >= 32
    reply = get(served, f"/?token={served.token}")
    assert reply.status == 303 and reply.headers["Location"] == "/"
    cookie = reply.headers["Set-Cookie"]
    assert cookie.startswith(f"queuectl_token_{served.port}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = get(served, "/", cookie=cookie_of(reply))
    assert page.status == 200 and "text/html" in page.headers["Content-Type"]
    assert f'data-session-websocket-url="ws://{HOST}:{served.port}/ws"' in page.text
    assert served.token not in page.text
    assert "googleapis" not in page.text and "https://" not in page.text  # no third party
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert get(served, "/static/js/textual.js", cookie=cookie_of(reply)).status == 200
    assert get(served, "/healthz", token=served.token).text.startswith("ok")
    code, _, err = stop_serve(served)
    assert code == 0
    assert served.token not in err  # never logged: the access log has paths, not queries
    assert "GET / 303" in err and "GET /healthz 200" in err


def test_the_websocket_refuses_another_origin(served):
    reply = get(served, "/ws", token=served.token,
                headers={"Origin": "http://evil.example", "Connection": "Upgrade",
                         "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert reply.status == 403 and reply.text.startswith("error: ")


def test_an_operator_token_is_used_and_not_printed(db):
    token = "operator-chosen-token-0123456789"
    s = start_serve(db, env={"QUEUECTL_SERVE_TOKEN": token})
    try:
        assert s.url == f"http://{HOST}:{s.port}/" and s.token is None
        assert get(s, "/healthz", token=token).status == 200
        assert get(s, "/healthz", token=token[:-1]).status == 401
        # Neither the workers' nor the tabs' environment gets it (serve's own /proc environ
        # keeps what it was started with).
        with_it = set(processes_with_env("QUEUECTL_SERVE_TOKEN")) - {s.proc.pid}
        assert with_it.isdisjoint(descendants(s.proc.pid))
    finally:
        code, _, err = stop_serve(s)
    assert code == 0 and token not in err


@pytest.mark.parametrize("args, env, fragment", [
    (["--host", "0.0.0.0"], {}, "not a loopback address"),
    (["--host", "::"], {}, "not a loopback address"),
    ([], {"QUEUECTL_SERVE_TOKEN": "short"}, "QUEUECTL_SERVE_TOKEN must be"),
    ([], {"QUEUECTL_SERVE_TOKEN": "has spaces in it, which are not allowed"}, "must be"),
    (["--public-url", "ftp://x"], {}, "--public-url must be"),
    (["--public-url", "https://q.example/?token=1"], {}, "--public-url must be"),
    (["--port", "70000"], {}, "--port"),
])
def test_unsafe_or_bad_options_are_refused_in_one_line(db, args, env, fragment):
    assert_error(run_cli("serve", *args, db=db, env=env), 2, fragment)


def test_a_port_in_use_is_one_line(db):
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = run_cli("serve", "--port", str(port), db=db)
    assert_error(result, 1, f"cannot listen on 127.0.0.1:{port}", "in use")


@pytest.mark.parametrize("content, workers, code, fragment", [
    (None, "0", 66, "no queuectl store"),
    (b"not a database at all " * 200, "0", 69, "not a queuectl store"),
    (b"not a database at all " * 200, "1", 69, "not a queuectl store"),
])
def test_a_store_that_cannot_be_opened_is_one_line(tmp_path, content, workers, code, fragment):
    db = tmp_path / "q.db"
    if content is not None:
        db.write_bytes(content)
    port = free_port()
    assert_error(run_cli("serve", "--port", str(port), "--workers", workers, db=db), code,
                 fragment)
    assert not (tmp_path / "q.db-wal").exists()


# -- bad requests


def test_huge_or_malformed_requests_get_a_status_never_a_traceback(served):
    answers = [
        raw(served, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"),
        raw(served, b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        raw(served, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64)),  # TLS
        raw(served, b"NOT-HTTP\r\n\r\n"),
        raw(served, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: nine\r\n\r\n"),
    ]
    for answer in answers:  # aiohttp's parser answers these itself: a 400 and its reason
        assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), answer[:200]
        assert b"Traceback" not in answer and b'File "' not in answer
    post = get(served, "/metrics", token=served.token, method="POST", body=b"x" * 2_000_000)
    assert post.status == 405 and post.text.startswith("error: ")
    assert get(served, "/nowhere", token=served.token).text == "error: not found\n"
    assert get(served, "/healthz", token=served.token).status == 200  # still serving
    code, _, err = stop_serve(served)
    assert code == 0 and "Traceback" not in err
    assert all(line[:2].isdigit() for line in err.splitlines()), err  # one line per entry


def test_garbage_on_the_websocket_is_ignored_and_the_console_still_answers(served):
    async def talk():
        import aiohttp

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {served.token}"}) as s:
            async with s.ws_connect(f"ws://{HOST}:{served.port}/ws?width=abc&height=-5") as ws:
                for junk in ("not json", "[]", "{}", "[1, 2]", '["stdin", 5]',
                             '["resize", "big"]', '["resize", {"width": 1e99}]', '["ping"]'):
                    await ws.send_str(junk)
                await ws.send_bytes(b"\x00\xff binary")
                await ws.send_str('["ping", "still here"]')
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    message = await ws.receive(timeout=30)
                    if message.type == aiohttp.WSMsgType.TEXT and "still here" in message.data:
                        return True
                    if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        return False
            return False

    assert asyncio.run(talk())
    async def too_big():
        import aiohttp

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {served.token}"}) as s:
            async with s.ws_connect(f"ws://{HOST}:{served.port}/ws") as ws:
                await ws.send_str('["stdin", "' + "x" * 200_000 + '"]')
                message = await ws.receive(timeout=30)
                while message.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    message = await ws.receive(timeout=30)
                return ws.close_code

    assert asyncio.run(too_big()) == 1009  # message too big: the tab is closed
    assert get(served, "/healthz", token=served.token).status == 200


def test_untrusted_text_is_inert_in_the_page_and_the_log(tmp_path):
    db = tmp_path / "<b>x</b>\x1b[31m" / "q.db"
    seed(db, {"command": "true"})
    s = start_serve(db)
    try:
        reply = get(s, f"/?token={s.token}")
        page = get(s, "/", cookie=cookie_of(reply))
        assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
        raw(s, b"GET /\x1b]0;owned\x07/%1b[2J HTTP/1.1\r\nHost: x\r\n\r\n")
        get(s, "/%1b]0;owned%07", token=s.token)
    finally:
        code, _, err = stop_serve(s)
    assert "\x1b" not in err and "\x07" not in err and "^[" in err


# -- metrics and health


def test_metrics_match_the_store_after_a_real_workload(tmp_path):
    db = tmp_path / "q.db"
    specs = ([{"command": "true"} for _ in range(6)]
             + [{"command": "exit 3", "max_retries": 1} for _ in range(2)]
             + [{"command": "sleep 0.3"} for _ in range(2)]
             + [{"command": "true", "delay": "1h"}])
    seed(db, *specs)
    s = start_serve(db, "--workers", "2")
    try:
        def drained():
            jobs = stored(db).values()
            return all(j.state.value in ("completed", "dead") for j in jobs if j.command != "true"
                       or j.run_at < time.time()) and sum(j.state.value == "pending" for j in jobs) == 1
        wait_for(drained, timeout=60, what="the workload to finish")
        wait_for(lambda: sum(1 for _ in stored(db)) == 11)
        got = parsed(get(s, "/metrics", token=s.token).text)
        store = open_db(db)
        try:
            status = store.status(store.now(), 30)
            runs = [r for j in store.list_jobs(None, limit=None) for r in store.runs(j.id)]
        finally:
            store.close()
        for state, n in status.counts.items():
            assert got["queuectl_jobs"][(("queue", "default"), ("state", state.value))] == n
        assert got["queuectl_jobs"][(("queue", "default"), ("state", "completed"))] == 8
        assert got["queuectl_jobs"][(("queue", "default"), ("state", "dead"))] == 2
        assert got["queuectl_runs_finished_total"][(("outcome", "completed"), ("queue", "default"))] == 8
        assert got["queuectl_runs_finished_total"][(("outcome", "failed"), ("queue", "default"))] == 4
        took = [r.finished_at - r.started_at for r in runs if r.outcome == "completed"]
        assert math.isclose(got["queuectl_run_duration_seconds_sum"][(("outcome", "completed"), ("queue", "default"))],
                            sum(took), abs_tol=1e-6)
        assert got["queuectl_run_duration_seconds_bucket"][(("le", "0.25"), ("outcome", "completed"), ("queue", "default"))] \
            == sum(1 for t in took if t <= 0.25) >= 6
        assert got["queuectl_workers"][()] == 2  # serve's one pool
        # `queuectl metrics` prints the same counters (read afresh from the store).
        once = parsed(run_cli("metrics", db=db).out)
        for name in ("queuectl_jobs", "queuectl_runs_finished_total",
                     "queuectl_run_duration_seconds_bucket", "queuectl_workers"):
            assert once[name] == got[name], name
    finally:
        code, _, err = stop_serve(s)
    assert code == 0, err


def test_healthz_answers_for_a_healthy_store_and_503_for_an_unusable_one(served, db):
    ok = get(served, "/healthz", token=served.token)
    assert ok.status == 200 and ok.text == "ok: 1 jobs\n"
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(db) + suffix):
            os.unlink(str(db) + suffix)
    db.write_bytes(b"garbage, not a database " * 400)
    bad = get(served, "/healthz", token=served.token)
    assert bad.status == 503
    assert bad.text.startswith("error: the store does not answer: ") and bad.text.count("\n") == 1
    assert "not a queuectl store" in bad.text
    os.unlink(db)
    gone_ = get(served, "/healthz", token=served.token)
    assert gone_.status == 503 and "no queuectl store" in gone_.text


def test_healthz_and_metrics_on_postgresql_when_the_schema_goes_away(pg_url, pg_server):
    import psycopg

    from queuectl.models import NewJob
    from queuectl.store import open_store

    store = open_store(pg_url)
    store.enqueue([NewJob(command="true")], now=store.now(), default_max_retries=0,
                  default_cwd="/")
    store.close()
    s = start_serve(pg_url)
    try:
        assert get(s, "/healthz", token=s.token).status == 200
        assert parsed(get(s, "/metrics", token=s.token).text)["queuectl_jobs"][
            (("queue", "default"), ("state", "pending"))] == 1
        schema = pg_url.rsplit("schema=", 1)[1]
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        health = get(s, "/healthz", token=s.token)
        assert health.status == 503 and "no queuectl store" in health.text
        metrics = get(s, "/metrics", token=s.token)
        assert metrics.status == 503 and metrics.text.startswith("error: the store does not answer")
    finally:
        code, _, err = stop_serve(s)
    assert code == 0 and "Traceback" not in err


# -- stopping


async def _open_tab(port: int, token: str):
    """A console tab over a websocket, with its first screen received."""
    import aiohttp

    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
    ws = await session.ws_connect(f"ws://{HOST}:{port}/ws?width=120&height=40")
    while True:
        message = await ws.receive(timeout=60)
        assert message.type == aiohttp.WSMsgType.BINARY, message
        if b"Pending" in message.data:
            return session, ws


def tab_pids(serve_pid: int) -> list[int]:
    out = []
    for pid in descendants(serve_pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"queuectl.serve.tab" in f.read():
                    out.append(pid)
        except OSError:
            pass
    return out


def listening(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        return True
    except OSError:
        return False


def job_processes(job_id: str) -> list[int]:
    return processes_with_env("QUEUECTL_JOB_ID", job_id)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_warm_stop_closes_the_tabs_and_lets_the_running_job_finish(tmp_path, how):
    db = tmp_path / "q.db"
    [job_id] = seed(db, {"command": "sleep 2", "id": f"slow-{how}"})  # unique: tests run at once
    s = start_serve(db, "--workers", "1")

    async def scenario():
        session, ws = await _open_tab(s.port, s.token)
        try:
            wait_for(lambda: len(tab_pids(s.proc.pid)) == 1, what="the tab's process")
            wait_for(lambda: job_processes(job_id), what="the job to start")
            below = descendants(s.proc.pid)
            s.proc.send_signal(getattr(signal, how))
            closed = await ws.receive(timeout=30)
            return below, closed
        finally:
            await session.close()

    below, closed = asyncio.run(scenario())
    code, _, err = stop_serve(s, sig=None)
    assert code == 0, err
    assert "warm stop: waiting for 1 running job(s)" in err
    assert stored(db)[job_id].state.value == "completed"
    wait_for(lambda: gone(below), timeout=10, what="every process serve started to end")
    assert job_processes(job_id) == []
    left = processes_with_env("QUEUECTL_DB", str(db))
    assert left == [], [open(f"/proc/{p}/cmdline", "rb").read() for p in left]


def test_a_second_ctrl_c_stops_cold_and_gives_the_job_back(tmp_path):
    db = tmp_path / "q.db"
    [job_id] = seed(db, {"command": "sleep 60", "id": "long"})
    s = start_serve(db, "--workers", "1")
    wait_for(lambda: job_processes(job_id), what="the job to start")
    below = descendants(s.proc.pid)
    s.proc.send_signal(signal.SIGINT)
    wait_for(lambda: not listening(s.port), timeout=15, what="serve to stop listening")
    s.proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    code, _, err = stop_serve(s, sig=None)
    assert code == 0, err
    assert time.monotonic() - started < 20
    assert "cold stop" in err
    job = stored(db)[job_id]
    assert job.state.value == "pending" and job.tries == 0  # given back, uncounted
    wait_for(lambda: gone(below), timeout=10, what="every process serve started to end")
    assert job_processes(job_id) == []


def test_kill_9_of_serve_leaves_nothing_behind(tmp_path):
    db = tmp_path / "q.db"
    [job_id] = seed(db, {"command": "sleep 60", "id": "orphan"})
    s = start_serve(db, "--workers", "1")

    async def scenario():
        session, ws = await _open_tab(s.port, s.token)
        try:
            wait_for(lambda: job_processes(job_id), what="the job to start")
            below = descendants(s.proc.pid)
            assert len(tab_pids(s.proc.pid)) == 1
            os.kill(s.proc.pid, signal.SIGKILL)
            s.proc.wait(10)
            return below
        finally:
            await session.close()

    below = asyncio.run(scenario())
    wait_for(lambda: gone(below), timeout=30, what="the tab and the pool to go away")
    wait_for(lambda: job_processes(job_id) == [], timeout=10, what="the job to be killed")


def test_one_pool_per_serve_not_per_tab(tmp_path):
    db = tmp_path / "q.db"
    seed(db, {"command": "true"})
    s = start_serve(db, "--workers", "2")

    async def scenario():
        tabs = [await _open_tab(s.port, s.token) for _ in range(3)]
        try:
            wait_for(lambda: len(tab_pids(s.proc.pid)) == 3, what="three tabs")
            store = open_db(db)
            try:
                return len(store.workers())
            finally:
                store.close()
        finally:
            for session, _ in tabs:
                await session.close()

    try:
        assert asyncio.run(scenario()) == 2
        wait_for(lambda: tab_pids(s.proc.pid) == [], timeout=20, what="closed tabs to end")
    finally:
        code, _, err = stop_serve(s)
    assert code == 0, err


def test_importing_the_cli_and_enqueueing_load_no_web_or_metrics_library(tmp_path):
    heavy = ("aiohttp", "textual_serve", "prometheus_client", "jinja2", "selenium")
    probe = ("import sys\nfrom queuectl.cli import main\n"
             f"assert main(['--db', {str(tmp_path / 'q.db')!r}, 'enqueue', '-c', 'true']) == 0\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=cli_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
